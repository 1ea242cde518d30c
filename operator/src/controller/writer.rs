//! The effect of the controller's decisions: each KafkaPartition status is replaced with the
//! resourceVersion it was decided on. A 409 means someone wrote in between (the partition's
//! leader, or another controller): re-read the object and decide again from it, never force.
//! So a zombie controller (one that lost the leader Lease without knowing) can delay a
//! partition but never overwrite a newer state with an older decision.
//!
//! Writes for many partitions run concurrently, with a bound so a broker failure does not
//! flood the API server.

use std::sync::Arc;

use futures::{stream, StreamExt};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use tributary_crds::KafkaPartition;

use super::cache::{key_of, PartitionKey};
use super::election::{violations, Change, Decision, Violation};

/// Conflicts tolerated for one partition in one pass; past that the next pass tries again.
pub const MAX_CONFLICTS: u32 = 5;

/// One write to make: the object as the decision saw it, and the decision.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The object decided on (its resourceVersion is the write's precondition).
    pub base: Arc<KafkaPartition>,
    /// The decision.
    pub decision: Decision,
}

/// How one partition's write ended.
#[derive(Debug)]
pub enum Outcome {
    /// The status was written (possibly after conflicts and fresh decisions).
    Written {
        /// The object as the API server stored it.
        object: KafkaPartition,
        /// What the written decision changed.
        change: Change,
        /// Conflicts met on the way.
        conflicts: u32,
    },
    /// After a conflict, the fresh object needed no change (someone else did it), or the
    /// partition is gone.
    Settled {
        /// The fresh object, if it still exists.
        object: Option<KafkaPartition>,
        /// Conflicts met on the way.
        conflicts: u32,
    },
    /// The write failed; the next pass decides again.
    Failed {
        /// The partition.
        key: PartitionKey,
        /// What failed.
        error: String,
        /// Conflicts met on the way (all of them, when the error is too many conflicts).
        conflicts: u32,
    },
    /// The decision broke an invariant (a bug in the decision): nothing was written.
    Refused {
        /// The partition.
        key: PartitionKey,
        /// What it broke.
        violations: Vec<Violation>,
    },
}

impl Outcome {
    /// Conflicts this write met.
    pub fn conflicts(&self) -> u32 {
        match self {
            Outcome::Written { conflicts, .. }
            | Outcome::Settled { conflicts, .. }
            | Outcome::Failed { conflicts, .. } => *conflicts,
            Outcome::Refused { .. } => 0,
        }
    }
}

/// Writes every planned decision, at most `concurrency` at a time; `decide` re-decides a
/// partition from a fresh copy after a conflict.
pub async fn write_all<F>(
    client: &Client,
    planned: Vec<Planned>,
    decide: &F,
    concurrency: usize,
) -> Vec<Outcome>
where
    F: Fn(&KafkaPartition) -> Option<Decision> + Sync,
{
    stream::iter(planned)
        .map(|p| write_one(client, p, decide))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// Writes one decision, re-reading and re-deciding on conflict.
pub async fn write_one<F>(client: &Client, planned: Planned, decide: &F) -> Outcome
where
    F: Fn(&KafkaPartition) -> Option<Decision> + Sync,
{
    let Planned {
        mut base,
        mut decision,
    } = planned;
    let key = key_of(&base);
    let api: Api<KafkaPartition> = Api::namespaced(client.clone(), &key.0);
    let mut conflicts = 0;
    loop {
        let broken = violations(&base.spec.replicas, base.status.as_ref(), &decision.status);
        if !broken.is_empty() {
            return Outcome::Refused {
                key,
                violations: broken,
            };
        }
        let mut next = (*base).clone();
        next.status = Some(decision.status.clone());
        next.metadata.managed_fields = None;
        match api
            .replace_status(&key.1, &PostParams::default(), &next)
            .await
        {
            Ok(object) => {
                return Outcome::Written {
                    object,
                    change: decision.change,
                    conflicts,
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Outcome::Settled {
                    object: None,
                    conflicts,
                }
            }
            Err(kube::Error::Api(s)) if s.code == 409 => conflicts += 1,
            Err(e) => {
                return Outcome::Failed {
                    key,
                    error: e.to_string(),
                    conflicts,
                }
            }
        }
        if conflicts >= MAX_CONFLICTS {
            return Outcome::Failed {
                key,
                error: format!("{conflicts} conflicts in a row"),
                conflicts,
            };
        }
        let fresh = match api.get_opt(&key.1).await {
            Ok(Some(fresh)) => fresh,
            Ok(None) => {
                return Outcome::Settled {
                    object: None,
                    conflicts,
                }
            }
            Err(e) => {
                return Outcome::Failed {
                    key,
                    error: e.to_string(),
                    conflicts,
                }
            }
        };
        match decide(&fresh) {
            Some(d) => {
                tracing::debug!(partition = %fresh.name_any(), "conflict; decided again from the fresh copy");
                base = Arc::new(fresh);
                decision = d;
            }
            None => {
                return Outcome::Settled {
                    object: Some(fresh),
                    conflicts,
                }
            }
        }
    }
}
