//! Partition reassignments (Kafka's AlterPartitionReassignments and
//! ListPartitionReassignments, KIP-455). The broker checks a request against its image as
//! Kafka's controller does ([`check_target`]); in cluster mode the change is then recorded in
//! the partition's KafkaPartition spec by the contract documented on
//! `tributary_crds::Assignment` (see `crate::kube::reassignments`), and the controller
//! completes it. A standalone broker hosts every partition alone: nothing is ever reassigning.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;

use super::BrokerInfo;

/// Why a partition's reassignment request was refused; the handler maps each to its Kafka
/// error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassignError {
    /// No such topic or partition.
    #[error("no such topic or partition")]
    UnknownTopicOrPartition,
    /// The target replica list is not one the cluster can hold.
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// The target changes the replication factor and the request does not allow it (KIP-860).
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    /// A cancellation of a partition that is not being reassigned.
    #[error("no reassignment is in progress")]
    NoReassignmentInProgress,
    /// The cluster's metadata store could not be reached or refused the change.
    #[error("cannot record the reassignment: {0}")]
    Unavailable(String),
}

/// One partition's request: its topic and index, and the target replicas (`None` cancels).
pub type Requested = ((String, i32), Option<Vec<i32>>);

/// One partition's outcome: its topic and index, and whether the change was recorded.
pub type Altered = ((String, i32), Result<(), ReassignError>);

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ongoing {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The current replicas: the target ones, then those being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

/// Where a broker records reassignments: the cluster's partition objects.
pub trait PartitionReassignments: Send + Sync {
    /// Starts, replaces or cancels the reassignment of every partition in `requested` (each
    /// target already passed [`check_target`]); each one's outcome, within `timeout`.
    fn alter(&self, requested: Vec<Requested>, timeout: Duration) -> BoxFuture<'_, Vec<Altered>>;

    /// The reassignments in progress, of every partition or of those in `only`.
    fn list(&self, only: Option<&[(String, i32)]>) -> Vec<Ongoing>;
}

/// Checks a target replica list as Kafka's controller does for a manual assignment: not
/// empty, no broker twice, every broker registered (`brokers`, which a negative id never is).
pub fn check_target(
    target: &[i32],
    brokers: &BTreeMap<i32, BrokerInfo>,
) -> Result<(), ReassignError> {
    if target.is_empty() {
        return Err(ReassignError::InvalidReplicaAssignment(
            "the replica list is empty".into(),
        ));
    }
    for (i, b) in target.iter().enumerate() {
        if target[..i].contains(b) {
            return Err(ReassignError::InvalidReplicaAssignment(format!(
                "broker {b} is listed twice"
            )));
        }
        if !brokers.contains_key(b) {
            return Err(ReassignError::InvalidReplicaAssignment(format!(
                "broker {b} is not registered"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_as_kafka_checks_manual_assignments() {
        let brokers: BTreeMap<i32, BrokerInfo> = (0..4)
            .map(|id| {
                let info = BrokerInfo {
                    id,
                    host: "h".into(),
                    port: 9092,
                    rack: None,
                    incarnation: 1,
                    endpoints: Vec::new(),
                };
                (id, info)
            })
            .collect();
        let invalid = |m: &str| Err(ReassignError::InvalidReplicaAssignment(m.into()));
        assert_eq!(check_target(&[1, 2, 3], &brokers), Ok(()));
        assert_eq!(
            check_target(&[], &brokers),
            invalid("the replica list is empty")
        );
        assert_eq!(
            check_target(&[1, 2, 1], &brokers),
            invalid("broker 1 is listed twice")
        );
        assert_eq!(
            check_target(&[1, 7], &brokers),
            invalid("broker 7 is not registered")
        );
        assert_eq!(
            check_target(&[-1, 1], &brokers),
            invalid("broker -1 is not registered")
        );
    }
}
