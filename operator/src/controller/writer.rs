//! The effect of the controller's plans: each KafkaPartition status is replaced with the
//! resourceVersion it was decided on, a completed reassignment's spec is replaced next (on the
//! resourceVersion the status write returned), and an answered election request loses its
//! annotation by a replace carrying the resourceVersion too, each a conditional update
//! ([`tributary_crds::update`]). A 409 means someone wrote in between (the partition's
//! leader, a requester, or another controller): re-read the object and plan again from it,
//! never force. So a zombie controller (one that lost the leader Lease without knowing) can
//! delay a partition but never overwrite a newer state with an older decision.
//!
//! Writes for many partitions run concurrently, with a bound so a broker failure does not
//! flood the API server.

use std::sync::Arc;

use futures::{stream, StreamExt};
use kube::{Api, Client, ResourceExt};
use tributary_crds::update::{ConditionalUpdate, Decision, RetryPolicy, UpdateError};
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
    /// The copy planned on has no resourceVersion, so no write could be conditional.
    #[error("the partition as planned on has no resourceVersion; nothing was written")]
    Unversioned,
}

impl WriteError {
    /// Label in `tributary_operator_controller_writes_total{result}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            WriteError::Api(_) | WriteError::Conflicts(_) | WriteError::Unversioned => "error",
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

/// Which of a plan's writes one conditional update makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The plan's status decision.
    Status,
    /// The spec completing a reassignment.
    Spec,
    /// The election request's annotation removed (its answer).
    Answer,
}

/// Why a plan's next write is not made.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// The object no longer exists.
    #[error("the partition is gone")]
    Gone,
    /// The write would break an invariant (a bug in the plan).
    #[error("refused a decision that breaks partition invariants: {}", listed(.0))]
    Refused(Vec<Violation>),
}

/// The next write `plan` makes to `base` (as planned on or as read again; `None`: it is
/// gone), in the plan's order: the status, then a completed reassignment's spec, then the
/// answered request's annotation removed; nothing when the plan has no write left. A write
/// that would leave the leader or an ISR member unassigned is a bug in the plan, and refused.
pub fn next_write(
    base: Option<&KafkaPartition>,
    plan: &Plan,
) -> Decision<KafkaPartition, Option<Step>, Stop> {
    let Some(base) = base else {
        return Decision::Abort(Stop::Gone);
    };
    let mut next = base.clone();
    next.metadata.managed_fields = None;
    if let Some(decision) = &plan.decision {
        let broken = violations(&base.spec.replicas, base.status.as_ref(), &decision.status);
        if !broken.is_empty() {
            return Decision::Abort(Stop::Refused(broken));
        }
        next.status = Some(decision.status.clone());
        Decision::ReplaceStatus(next, Some(Step::Status))
    } else if let Some(replicas) = &plan.replicas {
        // The status already keeps to the target replicas (the plan's status write, or a
        // fresh copy's).
        if let Some(status) = &base.status {
            let broken = violations(replicas, None, status);
            if !broken.is_empty() {
                return Decision::Abort(Stop::Refused(broken));
            }
        }
        next.spec.replicas = replicas.clone();
        next.spec.adding_replicas.clear();
        next.spec.removing_replicas.clear();
        Decision::Replace(next, Some(Step::Spec))
    } else if plan.answer.is_some() {
        // Conditional like every write: a request re-made or changed meanwhile is planned
        // again rather than removed unanswered.
        if let Some(annotations) = next.metadata.annotations.as_mut() {
            annotations.remove(ELECT_LEADER_ANNOTATION);
        }
        Decision::Replace(next, Some(Step::Answer))
    } else {
        Decision::Keep(None)
    }
}

/// Applies one plan, write by write ([`next_write`]), each a conditional update; after a
/// conflict, the fresh object is planned again. At most [`MAX_CONFLICTS`] conflicts for the
/// whole plan.
pub async fn write_one<F>(client: &Client, planned: Planned, replan: &F) -> Outcome
where
    F: Fn(&KafkaPartition) -> Plan + Sync,
{
    let Planned { base, mut plan } = planned;
    let key = key_of(&base);
    let api: Api<KafkaPartition> = Api::namespaced(client.clone(), &key.0);
    let mut base = Arc::unwrap_or_clone(base);
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
        // Every decision after the first of an update follows a conflict, on a fresh copy.
        let mut decisions = 0;
        let mut fresh: Option<Option<KafkaPartition>> = None;
        let policy =
            RetryPolicy::DEFAULT.with_attempts(MAX_CONFLICTS.saturating_sub(out.conflicts));
        let result = ConditionalUpdate::new(&api, &key.1)
            .policy(policy)
            .starting_from(base.clone())
            .run(|object| {
                decisions += 1;
                if decisions > 1 {
                    if let Some(object) = object {
                        tracing::debug!(partition = %object.name_any(), "conflict; planning again from the fresh copy");
                        plan = replan(object);
                    }
                    fresh = Some(object.cloned());
                }
                next_write(object, &plan)
            })
            .await;
        out.conflicts += match &result {
            Ok(updated) => updated.conflicts,
            Err(UpdateError::Exhausted { attempts, .. }) => *attempts,
            // A read fails only after a conflict.
            Err(UpdateError::Read { .. }) => decisions,
            Err(_) => decisions - 1,
        };
        if let Some(fresh) = fresh {
            out.object = fresh;
        }
        let updated = match result {
            Ok(updated) => updated,
            Err(UpdateError::Aborted(Stop::Gone) | UpdateError::Gone { .. }) => {
                out.object = None;
                return out;
            }
            Err(UpdateError::Aborted(Stop::Refused(broken))) => {
                out.failure = Some(WriteError::Refused(broken));
                return out;
            }
            Err(UpdateError::Exhausted { .. }) => {
                out.failure = Some(WriteError::Conflicts(out.conflicts));
                return out;
            }
            Err(UpdateError::Read { source, .. } | UpdateError::Write { source, .. }) => {
                out.failure = Some(WriteError::Api(*source));
                return out;
            }
            Err(UpdateError::Unversioned { .. }) => {
                out.failure = Some(WriteError::Unversioned);
                return out;
            }
        };
        let (Some(step), Some(written)) = (updated.value, updated.object) else {
            return out;
        };
        match step {
            Step::Status => out.change = plan.decision.take().map(|d| d.change),
            Step::Spec => {
                out.reassigned = true;
                plan.replicas = None;
            }
            Step::Answer => {
                out.answered = plan.answer.take().map(|a| a.credited(out.change));
            }
        }
        base = written.clone();
        out.object = Some(written);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::election::Decision as StatusDecision;
    use crate::controller::fixtures::st;
    use crate::controller::plan::{Answer, RequestOutcome};
    use tributary_crds::{ElectionType, KafkaPartitionSpec};

    fn partition(replicas: &[i32], removing: &[i32]) -> KafkaPartition {
        let mut p = KafkaPartition::new(
            "t-0",
            KafkaPartitionSpec {
                cluster_ref: "demo".into(),
                topic: "t".into(),
                topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                partition: 0,
                replicas: replicas.to_vec(),
                adding_replicas: Vec::new(),
                removing_replicas: removing.to_vec(),
            },
        );
        p.status = Some(st(0, 1, 1, &[(0, 1), (1, 1)]));
        p.metadata.annotations =
            Some([(ELECT_LEADER_ANNOTATION.to_owned(), "preferred".to_owned())].into());
        p
    }

    fn answer() -> Answer {
        Answer {
            request: "preferred".into(),
            outcome: RequestOutcome::Elected(ElectionType::Preferred),
        }
    }

    #[test]
    fn a_plans_writes_go_status_then_spec_then_answer() {
        let base = partition(&[1, 0], &[0]);
        let mut plan = Plan {
            decision: Some(StatusDecision {
                status: st(1, 2, 2, &[(1, 1)]),
                change: Change::Reassignment,
            }),
            answer: Some(answer()),
            replicas: Some(vec![1]),
        };
        let Decision::ReplaceStatus(next, Some(Step::Status)) = next_write(Some(&base), &plan)
        else {
            panic!("the status first");
        };
        assert_eq!(next.status.as_ref().map(|s| s.leader), Some(1));
        assert_eq!(next.spec, base.spec);

        plan.decision = None;
        let Decision::Replace(next, Some(Step::Spec)) = next_write(Some(&next), &plan) else {
            panic!("then the spec");
        };
        assert_eq!(next.spec.replicas, [1]);
        assert!(!next.spec.is_reassigning());

        plan.replicas = None;
        let Decision::Replace(next, Some(Step::Answer)) = next_write(Some(&next), &plan) else {
            panic!("then the answer");
        };
        assert_eq!(next.election_request(), None);
        assert_eq!(next.spec.replicas, [1]);

        plan.answer = None;
        assert!(matches!(
            next_write(Some(&next), &plan),
            Decision::Keep(None)
        ));
        assert!(matches!(
            next_write(None, &plan),
            Decision::Abort(Stop::Gone)
        ));
    }

    #[test]
    fn a_write_breaking_an_invariant_is_refused() {
        let base = partition(&[0, 1], &[]);
        let leader_not_a_replica = Plan {
            decision: Some(StatusDecision {
                status: st(5, 2, 2, &[(5, 1)]),
                change: Change::CleanElection,
            }),
            ..Plan::default()
        };
        assert!(matches!(
            next_write(Some(&base), &leader_not_a_replica),
            Decision::Abort(Stop::Refused(_))
        ));
        let leader_unassigned = Plan {
            replicas: Some(vec![1]),
            ..Plan::default()
        };
        assert!(matches!(
            next_write(Some(&base), &leader_unassigned),
            Decision::Abort(Stop::Refused(_))
        ));
    }
}
