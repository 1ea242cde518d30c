//! A leader's ISR changes, written to its partition's KafkaPartition status (Kafka's
//! AlterPartition): read the object, check that it is still at the leader and partition
//! epochs the change was decided under, write it with the object's resourceVersion. A write
//! that loses a race is re-read and checked again, never forced; the controller's elections
//! and the leader's ISR changes are thereby serialised by the API server.

use futures::future::BoxFuture;
use futures::FutureExt;
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tributary_crds::update::{ConditionalUpdate, Decision, UpdateError};
use tributary_crds::{IsrEntry, KafkaPartition, KafkaPartitionStatus};

use super::names::partition_object;
use crate::config::ClusterSettings;
use crate::partition::IsrProposal;
use crate::replica::IsrWriter;

/// ISR writes one broker has in flight at most. Each is a request of its own (one object per
/// partition), so a broker restarted with hundreds of partitions would otherwise open a
/// connection per partition at once; the API server serialises writes anyway, and a real one
/// answers a burst beyond its in-flight limit with 429.
const MAX_WRITES_IN_FLIGHT: usize = 8;

/// Writes ISR changes to KafkaPartition objects.
pub struct KubeIsrWriter {
    api: Api<KafkaPartition>,
    cluster: String,
    partitions: Store<KafkaPartition>,
    in_flight: tokio::sync::Semaphore,
}

impl KubeIsrWriter {
    /// A writer for the cluster in `settings`, finding objects through the watch's store.
    pub fn new(
        client: Client,
        settings: &ClusterSettings,
        partitions: Store<KafkaPartition>,
    ) -> KubeIsrWriter {
        KubeIsrWriter {
            api: Api::namespaced(client, &settings.namespace),
            cluster: settings.name.clone(),
            partitions,
            in_flight: tokio::sync::Semaphore::new(MAX_WRITES_IN_FLIGHT),
        }
    }

    /// The object holding partition `index` of Kafka topic `topic`.
    fn object_name(&self, topic: &str, index: i32) -> Option<String> {
        partition_object(&self.partitions, &self.cluster, topic, index)
    }

    async fn write_change(&self, proposal: &IsrProposal) -> Option<i32> {
        let name = self.object_name(&proposal.topic, proposal.partition)?;
        // Never closed: a failed acquire only means the change is not recorded.
        let _slot = self.in_flight.acquire().await.ok()?;
        let written = ConditionalUpdate::new(&self.api, &name)
            .run(|object| decide(object, proposal))
            .await;
        match written {
            Ok(updated) => updated.value,
            // Decided under other epochs or replicas, or the object is gone: the leader
            // decides again from what its image shows next.
            Err(UpdateError::Aborted(Stale) | UpdateError::Gone { .. }) => None,
            Err(UpdateError::Read { source, .. }) => {
                tracing::warn!(object = name, error = %source, "cannot read a partition for an ISR change");
                None
            }
            Err(error) => {
                tracing::warn!(object = name, %error, "cannot write an ISR change");
                None
            }
        }
    }
}

/// Why an ISR change is not written: the partition is no longer as the leader saw it when it
/// decided the change (other epochs or replicas, or no status yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the partition changed since the ISR change was decided")]
pub struct Stale;

/// What `proposal` makes of the partition object as read: its status with the proposed ISR
/// and the partition epoch raised (answering the epoch written), if the object is still at
/// the leader and partition epochs the change was decided under and the ISR holds replicas
/// only; otherwise nothing.
pub fn decide(
    object: Option<&KafkaPartition>,
    proposal: &IsrProposal,
) -> Decision<KafkaPartition, Option<i32>, Stale> {
    let Some(object) = object else {
        return Decision::Abort(Stale);
    };
    let Some(status) = object.status.as_ref() else {
        return Decision::Abort(Stale);
    };
    if status.leader != proposal.leader
        || status.leader_epoch != proposal.leader_epoch
        || status.partition_epoch != proposal.partition_epoch
    {
        return Decision::Abort(Stale);
    }
    // Decided on an older assignment (a reassignment completed or was cancelled since): an
    // ISR holds replicas only, so the leader decides again from the new one.
    let replicas = &object.spec.replicas;
    if proposal.isr.iter().any(|m| !replicas.contains(&m.broker)) {
        return Decision::Abort(Stale);
    }
    let mut next = object.clone();
    let written = status.partition_epoch.saturating_add(1);
    next.status = Some(KafkaPartitionStatus {
        isr: proposal
            .isr
            .iter()
            .map(|m| IsrEntry {
                broker_id: m.broker,
                broker_epoch: m.incarnation,
            })
            .collect(),
        partition_epoch: written,
        ..status.clone()
    });
    Decision::ReplaceStatus(next, Some(written))
}

impl IsrWriter for KubeIsrWriter {
    fn write<'a>(&'a self, proposal: &'a IsrProposal) -> BoxFuture<'a, Option<i32>> {
        self.write_change(proposal).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::IsrMember;
    use tributary_crds::KafkaPartitionSpec;

    fn partition(replicas: &[i32], status: Option<(i32, i32, i32)>) -> KafkaPartition {
        let mut p = KafkaPartition::new(
            "t-0",
            KafkaPartitionSpec {
                cluster_ref: "demo".into(),
                topic: "t".into(),
                topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                partition: 0,
                replicas: replicas.to_vec(),
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        );
        p.status = status.map(
            |(leader, leader_epoch, partition_epoch)| KafkaPartitionStatus {
                leader,
                leader_epoch,
                partition_epoch,
                isr: vec![IsrEntry {
                    broker_id: leader,
                    broker_epoch: 1,
                }],
            },
        );
        p
    }

    fn proposal(isr: &[i32]) -> IsrProposal {
        IsrProposal {
            topic: "t".into(),
            partition: 0,
            leader: 0,
            leader_epoch: 2,
            partition_epoch: 5,
            isr: isr
                .iter()
                .map(|&broker| IsrMember {
                    broker,
                    incarnation: 3,
                })
                .collect(),
        }
    }

    #[test]
    fn a_change_decided_under_the_current_epochs_is_written_with_the_epoch_raised() {
        let read = partition(&[0, 1, 2], Some((0, 2, 5)));
        let Decision::ReplaceStatus(next, written) = decide(Some(&read), &proposal(&[0, 1])) else {
            panic!("expected a status write");
        };
        assert_eq!(written, Some(6));
        let status = next.status.unwrap_or_default();
        assert_eq!(
            (status.leader, status.leader_epoch, status.partition_epoch),
            (0, 2, 6)
        );
        assert_eq!(
            status.isr,
            [0, 1].map(|broker_id| IsrEntry {
                broker_id,
                broker_epoch: 3
            })
        );
        assert_eq!(next.spec, read.spec, "only the status changes");
    }

    #[test]
    fn a_change_decided_on_another_state_is_not_written() {
        let stale = |read: Option<&KafkaPartition>, isr: &[i32]| {
            matches!(decide(read, &proposal(isr)), Decision::Abort(Stale))
        };
        assert!(stale(None, &[0]), "gone");
        assert!(
            stale(Some(&partition(&[0, 1], None)), &[0]),
            "no status yet"
        );
        assert!(
            stale(Some(&partition(&[0, 1], Some((0, 2, 6)))), &[0]),
            "partition epoch moved"
        );
        assert!(
            stale(Some(&partition(&[0, 1], Some((0, 3, 5)))), &[0]),
            "leader epoch moved"
        );
        assert!(
            stale(Some(&partition(&[0, 1], Some((1, 2, 5)))), &[0]),
            "another leader"
        );
        assert!(
            stale(Some(&partition(&[0, 1], Some((0, 2, 5)))), &[0, 2]),
            "an ISR member no longer a replica"
        );
    }

    /// A burst of ISR changes (every partition of a restarted broker) keeps at most
    /// MAX_WRITES_IN_FLIGHT requests open against the API server, and every change ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_changes_keeps_a_bounded_number_of_requests_in_flight() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n, m) = (now.clone(), most.clone());
        // Every request waits a little, then finds its object gone.
        let service = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
            let (now, most) = (n.clone(), m.clone());
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#;
                http::Response::builder()
                    .status(404)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body.as_bytes().to_vec()))
            }
        });
        let (store, mut writer) = kube::runtime::reflector::store::<KafkaPartition>();
        let partitions = 40;
        for index in 0..partitions {
            let mut p = partition(&[0, 1, 2], Some((0, 2, 5)));
            p.metadata.name = Some(format!("t-{index}"));
            p.spec.partition = index;
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(p));
        }
        let settings = ClusterSettings {
            name: "demo".into(),
            namespace: "kafka".into(),
            pod_name: "demo-broker-0".into(),
            lease_duration: std::time::Duration::from_secs(15),
            renew_interval: std::time::Duration::from_secs(5),
            renew_deadline: std::time::Duration::from_secs(10),
            external_listeners: Vec::new(),
            host_ip: None,
        };
        let isr = KubeIsrWriter::new(kube::Client::new(service, "kafka"), &settings, store);
        let proposals: Vec<IsrProposal> = (0..partitions)
            .map(|index| IsrProposal {
                partition: index,
                ..proposal(&[0, 1])
            })
            .collect();
        let written = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            futures::future::join_all(proposals.iter().map(|p| isr.write(p))),
        )
        .await
        .expect("every write ends within 30 s");
        assert_eq!(
            written,
            vec![None; partitions as usize],
            "every object was gone"
        );
        let most = most.load(Ordering::SeqCst);
        assert!(
            (2..=MAX_WRITES_IN_FLIGHT).contains(&most),
            "{most} requests in flight at once"
        );
    }
}
