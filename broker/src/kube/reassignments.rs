//! AlterPartitionReassignments and ListPartitionReassignments in cluster mode: a broker records
//! a reassignment in the partition's KafkaPartition spec by the contract documented on
//! [`tributary_crds::Assignment`] (one replace carrying the resourceVersion read; a conflict is
//! re-read and decided again, never forced), and answers at once, as Kafka's controller
//! answers once the change is recorded. The controller completes it when the target replicas
//! are in sync. Listing reads the watched objects.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{stream, FutureExt, StreamExt};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tributary_crds::update::{ConditionalUpdate, Decision, UpdateError};
use tributary_crds::{Assignment, KafkaPartition, KafkaPartitionSpec, KafkaPartitionStatus};

use super::names::partition_object;
use crate::config::ClusterSettings;
use crate::metadata::reassignments::{
    Altered, Ongoing, PartitionReassignments, ReassignError, Requested,
};

/// Partitions written at once for one request.
const CONCURRENCY: usize = 16;

/// Records reassignments in KafkaPartition objects.
pub struct KubeReassignments {
    api: Api<KafkaPartition>,
    cluster: String,
    partitions: Store<KafkaPartition>,
}

impl KubeReassignments {
    /// Reassignments for the cluster in `settings`, finding objects through the watch's store.
    pub fn new(
        client: Client,
        settings: &ClusterSettings,
        partitions: Store<KafkaPartition>,
    ) -> KubeReassignments {
        KubeReassignments {
            api: Api::namespaced(client, &settings.namespace),
            cluster: settings.name.clone(),
            partitions,
        }
    }

    async fn alter_one(
        &self,
        (topic, index): &(String, i32),
        target: Option<&[i32]>,
    ) -> Result<(), ReassignError> {
        let name = partition_object(&self.partitions, &self.cluster, topic, *index)
            .ok_or(ReassignError::UnknownTopicOrPartition)?;
        let updated = ConditionalUpdate::new(&self.api, &name)
            .run(|object| decide(object, target))
            .await
            .map_err(|error| match error {
                UpdateError::Aborted(refused) => refused,
                UpdateError::Gone { .. } => ReassignError::UnknownTopicOrPartition,
                UpdateError::Read { source, .. } | UpdateError::Write { source, .. } => {
                    ReassignError::Unavailable(source.to_string())
                }
                exhausted => ReassignError::Unavailable(exhausted.to_string()),
            })?;
        if let Some(written) = updated.object.filter(|_| updated.written) {
            tracing::info!(object = name, replicas = ?written.spec.replicas,
                adding = ?written.spec.adding_replicas, removing = ?written.spec.removing_replicas,
                "reassignment recorded");
        }
        Ok(())
    }
}

/// What a request makes of the partition object as read (`None`: it does not exist): the
/// object with the lists [`next_assignment`] gives, or nothing to write.
pub fn decide(
    object: Option<&KafkaPartition>,
    target: Option<&[i32]>,
) -> Decision<KafkaPartition, (), ReassignError> {
    let Some(object) = object else {
        return Decision::Abort(ReassignError::UnknownTopicOrPartition);
    };
    match next_assignment(&object.spec, object.status.as_ref(), target) {
        Err(refused) => Decision::Abort(refused),
        Ok(None) => Decision::Keep(()),
        Ok(Some(next)) => {
            let mut written = object.clone();
            written.spec.set_assignment(next);
            written.metadata.managed_fields = None;
            Decision::Replace(written, ())
        }
    }
}

impl PartitionReassignments for KubeReassignments {
    fn alter(&self, requested: Vec<Requested>, timeout: Duration) -> BoxFuture<'_, Vec<Altered>> {
        async move {
            stream::iter(requested)
                .map(|(key, target)| async move {
                    let altered =
                        tokio::time::timeout(timeout, self.alter_one(&key, target.as_deref()));
                    let result = altered.await.unwrap_or_else(|_| {
                        Err(ReassignError::Unavailable(format!(
                            "not recorded within {timeout:?}"
                        )))
                    });
                    (key, result)
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await
        }
        .boxed()
    }

    fn list(&self, only: Option<&[(String, i32)]>) -> Vec<Ongoing> {
        let mut out: Vec<Ongoing> = self
            .partitions
            .state()
            .iter()
            .filter(|p| {
                p.spec.cluster_ref == self.cluster
                    && p.metadata.deletion_timestamp.is_none()
                    && p.spec.is_reassigning()
            })
            .filter(|p| {
                only.is_none_or(|only| {
                    only.iter()
                        .any(|(t, i)| *t == p.spec.topic && *i == p.spec.partition)
                })
            })
            .map(|p| Ongoing {
                topic: p.spec.topic.clone(),
                partition: p.spec.partition,
                replicas: p.spec.replicas.clone(),
                adding: p.spec.adding_replicas.clone(),
                removing: p.spec.removing_replicas.clone(),
            })
            .collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }
}

/// The spec lists a request leaves a partition with (`None`: nothing to write), by the
/// contract on [`Assignment`]: a target starts (or replaces) a reassignment from the current
/// replicas, checked by [`KafkaPartitionSpec::reassignment`]; `None` cancels the one in
/// progress, unless no in-sync replica would remain among the original replicas (that would
/// take an unclean election, which Kafka refuses too).
pub fn next_assignment(
    spec: &KafkaPartitionSpec,
    status: Option<&KafkaPartitionStatus>,
    target: Option<&[i32]>,
) -> Result<Option<Assignment>, ReassignError> {
    let Some(target) = target else {
        if !spec.is_reassigning() {
            return Err(ReassignError::NoReassignmentInProgress);
        }
        let cancelled = spec.cancelled();
        let in_sync = status.is_none_or(|s| {
            s.isr.is_empty()
                || s.isr
                    .iter()
                    .any(|e| cancelled.replicas.contains(&e.broker_id))
        });
        if !in_sync {
            return Err(ReassignError::InvalidReplicaAssignment(
                "cancelling would leave no in-sync replica among the original replicas".into(),
            ));
        }
        return Ok(Some(cancelled));
    };
    spec.reassignment(target)
        .map_err(|e| ReassignError::InvalidReplicaAssignment(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_crds::IsrEntry;

    fn spec(replicas: &[i32], adding: &[i32], removing: &[i32]) -> KafkaPartitionSpec {
        KafkaPartitionSpec {
            cluster_ref: "demo".into(),
            topic: "t".into(),
            topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            partition: 0,
            replicas: replicas.to_vec(),
            adding_replicas: adding.to_vec(),
            removing_replicas: removing.to_vec(),
        }
    }

    fn isr(ids: &[i32]) -> KafkaPartitionStatus {
        KafkaPartitionStatus {
            leader: ids.first().copied().unwrap_or(-1),
            leader_epoch: 1,
            partition_epoch: 1,
            isr: ids
                .iter()
                .map(|&broker_id| IsrEntry {
                    broker_id,
                    broker_epoch: 1,
                })
                .collect(),
        }
    }

    fn lists(replicas: &[i32], adding: &[i32], removing: &[i32]) -> Option<Assignment> {
        Some(Assignment {
            replicas: replicas.to_vec(),
            adding: adding.to_vec(),
            removing: removing.to_vec(),
        })
    }

    #[test]
    fn requests_become_spec_lists_as_kafka_records_them() {
        let settled = spec(&[0, 1, 2], &[], &[]);
        let moving = spec(&[1, 2, 3, 0], &[3], &[0]);
        let synced = isr(&[0, 1, 2]);
        let cases = [
            (
                "start",
                &settled,
                Some(&[1, 2, 3][..]),
                Ok(lists(&[1, 2, 3, 0], &[3], &[0])),
            ),
            (
                "the same again: nothing to write",
                &moving,
                Some(&[1, 2, 3][..]),
                Ok(None),
            ),
            (
                "replaced while in progress, from the current replicas",
                &moving,
                Some(&[0, 1, 2][..]),
                Ok(lists(&[0, 1, 2, 3], &[], &[3])),
            ),
            ("cancel", &moving, None, Ok(lists(&[1, 2, 0], &[], &[]))),
            (
                "cancel with nothing in progress",
                &settled,
                None,
                Err(ReassignError::NoReassignmentInProgress),
            ),
            (
                "more replicas than a partition may have",
                &settled,
                Some(&[0, 1, 2, 3, 4, 5, 6, 7][..]),
                Err(ReassignError::InvalidReplicaAssignment(
                    "at most 7 replicas per partition".into(),
                )),
            ),
        ];
        for (what, spec, target, want) in cases {
            assert_eq!(next_assignment(spec, Some(&synced), target), want, "{what}");
        }
        // Only the adding replica is in sync: cancelling would need an unclean election.
        assert!(matches!(
            next_assignment(&moving, Some(&isr(&[3])), None),
            Err(ReassignError::InvalidReplicaAssignment(_))
        ));
    }

    #[test]
    fn a_request_is_decided_on_the_object_read() {
        let mut read = KafkaPartition::new("t-0", spec(&[0, 1, 2], &[], &[]));
        read.status = Some(isr(&[0, 1, 2]));
        let Decision::Replace(next, ()) = decide(Some(&read), Some(&[1, 2, 3])) else {
            panic!("expected a write");
        };
        assert_eq!(
            (
                next.spec.replicas,
                next.spec.adding_replicas,
                next.spec.removing_replicas
            ),
            (vec![1, 2, 3, 0], vec![3], vec![0])
        );
        assert!(matches!(
            decide(Some(&read), Some(&[0, 1, 2])),
            Decision::Keep(())
        ));
        assert!(matches!(
            decide(Some(&read), None),
            Decision::Abort(ReassignError::NoReassignmentInProgress)
        ));
        assert!(matches!(
            decide(None, Some(&[1])),
            Decision::Abort(ReassignError::UnknownTopicOrPartition)
        ));
    }
}
