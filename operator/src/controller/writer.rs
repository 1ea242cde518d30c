//! The effect of the controller's plans: each KafkaPartition status is replaced with the
//! resourceVersion it was decided on, a completed reassignment's spec is replaced next (on the
//! resourceVersion the status write returned), and an answered election request loses its
//! annotation by a patch carrying the resourceVersion too. A 409 means someone wrote in between (the partition's
//! leader, a requester, or another controller): re-read the object and plan again from it,
//! never force. So a zombie controller (one that lost the leader Lease without knowing) can
//! delay a partition but never overwrite a newer state with an older decision.
//!
//! Writes for many partitions run concurrently, with a bound so a broker failure does not
//! flood the API server.

use std::sync::Arc;

use futures::{stream, StreamExt};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tributary_crds::{KafkaPartition, ELECT_LEADER_ANNOTATION};

use super::cache::{key_of, PartitionKey};
use super::election::{violations, Change, Violation};
use super::plan::{Answer, Plan};

/// Conflicts tolerated for one partition in one pass; past that the next pass tries again.
pub const MAX_CONFLICTS: u32 = 5;

/// One partition's work: the object as the plan saw it, and the plan.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The object planned on (its resourceVersion is the writes' precondition).
    pub base: Arc<KafkaPartition>,
    /// The plan.
    pub plan: Plan,
}

/// Why a partition's writes stopped short; the next pass plans again.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The API server refused a write (other than a conflict) or a re-read.
    #[error("Kubernetes API call failed: {0}")]
    Api(#[source] kube::Error),
    /// Others kept writing the object between our reads and writes.
    #[error("{0} conflicts in a row; deciding again next pass")]
    Conflicts(u32),
    /// The decision broke an invariant (a bug in the decision): nothing was written.
    #[error("refused a decision that breaks partition invariants: {}", listed(.0))]
    Refused(Vec<Violation>),
}

impl WriteError {
    /// Label in `tributary_operator_controller_writes_total{result}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            WriteError::Api(_) | WriteError::Conflicts(_) => "error",
            WriteError::Refused(_) => "refused",
        }
    }
}

fn listed(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// How one partition's writes ended.
#[derive(Debug)]
pub struct Outcome {
    /// The partition.
    pub key: PartitionKey,
    /// The newest copy of the object seen (the API server's answer to our last write, or a
    /// re-read); `None` once it is gone or if nothing newer than the plan's copy was seen.
    pub object: Option<KafkaPartition>,
    /// The status change written, if one was.
    pub change: Option<Change>,
    /// The election request answered (annotation removed), if one was.
    pub answered: Option<Answer>,
    /// A reassignment was completed (its spec written).
    pub reassigned: bool,
    /// Conflicts met on the way.
    pub conflicts: u32,
    /// Why the work stopped short, if it did.
    pub failure: Option<WriteError>,
}

/// Applies every plan, at most `concurrency` partitions at a time; `replan` plans a partition
/// again from a fresh copy after a conflict.
pub async fn write_all<F>(
    client: &Client,
    planned: Vec<Planned>,
    replan: &F,
    concurrency: usize,
) -> Vec<Outcome>
where
    F: Fn(&KafkaPartition) -> Plan + Sync,
{
    stream::iter(planned)
        .map(|p| write_one(client, p, replan))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// What one API call came to.
enum Step {
    /// Written: the stored object.
    Done(Box<KafkaPartition>),
    /// Someone wrote in between.
    Conflict,
    /// The object is gone.
    Gone,
    /// Any other failure.
    Failed(kube::Error),
}

impl From<kube::Result<KafkaPartition>> for Step {
    fn from(r: kube::Result<KafkaPartition>) -> Step {
        match r {
            Ok(object) => Step::Done(Box::new(object)),
            Err(kube::Error::Api(s)) if s.code == 404 => Step::Gone,
            Err(kube::Error::Api(s)) if s.code == 409 => Step::Conflict,
            Err(e) => Step::Failed(e),
        }
    }
}

/// Applies one plan: the status first, then the request's annotation; after a conflict,
/// re-reads and plans again.
pub async fn write_one<F>(client: &Client, planned: Planned, replan: &F) -> Outcome
where
    F: Fn(&KafkaPartition) -> Plan + Sync,
{
    let Planned { mut base, mut plan } = planned;
    let key = key_of(&base);
    let api: Api<KafkaPartition> = Api::namespaced(client.clone(), &key.0);
    let mut out = Outcome {
        key: key.clone(),
        object: None,
        change: None,
        answered: None,
        reassigned: false,
        conflicts: 0,
        failure: None,
    };
    loop {
        let step = if let Some(decision) = &plan.decision {
            let broken = violations(&base.spec.replicas, base.status.as_ref(), &decision.status);
            if !broken.is_empty() {
                out.failure = Some(WriteError::Refused(broken));
                return out;
            }
            let mut next = (*base).clone();
            next.status = Some(decision.status.clone());
            next.metadata.managed_fields = None;
            let step = api
                .replace_status(&key.1, &PostParams::default(), &next)
                .await
                .into();
            if let Step::Done(object) = &step {
                out.change = Some(decision.change);
                plan.decision = None;
                base = Arc::new((**object).clone());
            }
            step
        } else if let Some(replicas) = &plan.replicas {
            // The status already keeps to the target replicas (the plan's status write, or a
            // fresh copy's); a spec that would leave the leader or an ISR member unassigned is
            // a bug in the plan, and refused.
            if let Some(status) = &base.status {
                let broken = violations(replicas, None, status);
                if !broken.is_empty() {
                    out.failure = Some(WriteError::Refused(broken));
                    return out;
                }
            }
            let mut next = (*base).clone();
            next.spec.replicas = replicas.clone();
            next.spec.adding_replicas.clear();
            next.spec.removing_replicas.clear();
            next.metadata.managed_fields = None;
            let step = api
                .replace(&key.1, &PostParams::default(), &next)
                .await
                .into();
            if let Step::Done(object) = &step {
                out.reassigned = true;
                plan.replicas = None;
                base = Arc::new((**object).clone());
            }
            step
        } else if let Some(answer) = &plan.answer {
            // Conditional like every write: a request re-made or changed meanwhile is planned
            // again rather than removed unanswered.
            let patch = json!({ "metadata": {
                "resourceVersion": base.resource_version(),
                "annotations": { ELECT_LEADER_ANNOTATION: null },
            } });
            let step = api
                .patch(&key.1, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .into();
            if let Step::Done(_) = &step {
                out.answered = Some(answer.clone().credited(out.change));
                plan.answer = None;
            }
            step
        } else {
            return out;
        };
        match step {
            Step::Done(object) => out.object = Some(*object),
            Step::Gone => {
                out.object = None;
                return out;
            }
            Step::Failed(e) => {
                out.failure = Some(WriteError::Api(e));
                return out;
            }
            Step::Conflict => {
                out.conflicts += 1;
                if out.conflicts >= MAX_CONFLICTS {
                    out.failure = Some(WriteError::Conflicts(out.conflicts));
                    return out;
                }
                let fresh = match api.get_opt(&key.1).await {
                    Ok(Some(fresh)) => fresh,
                    Ok(None) => {
                        out.object = None;
                        return out;
                    }
                    Err(e) => {
                        out.failure = Some(WriteError::Api(e));
                        return out;
                    }
                };
                tracing::debug!(partition = %fresh.name_any(), "conflict; planning again from the fresh copy");
                plan = replan(&fresh);
                base = Arc::new(fresh.clone());
                out.object = Some(fresh);
            }
        }
    }
}
