//! A leader's ISR changes, written to its partition's KafkaPartition status (Kafka's
//! AlterPartition): read the object, check that it is still at the leader and partition
//! epochs the change was decided under, write it with the object's resourceVersion. A write
//! that loses a race is re-read and checked again, never forced; the controller's elections
//! and the leader's ISR changes are thereby serialised by the API server.

use futures::future::BoxFuture;
use futures::FutureExt;
use kube::api::PostParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tributary_crds::{IsrEntry, KafkaPartition};

use super::error::is_conflict;
use super::names::partition_object;
use crate::config::ClusterSettings;
use crate::partition::IsrProposal;
use crate::replica::IsrWriter;

/// Rounds of re-reading after a conflict before the change is given up (the next fetch or
/// shrink check proposes it again from the new state).
const ATTEMPTS: usize = 3;

/// Writes ISR changes to KafkaPartition objects.
pub struct KubeIsrWriter {
    api: Api<KafkaPartition>,
    cluster: String,
    partitions: Store<KafkaPartition>,
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
        }
    }

    /// The object holding partition `index` of Kafka topic `topic`.
    fn object_name(&self, topic: &str, index: i32) -> Option<String> {
        partition_object(&self.partitions, &self.cluster, topic, index)
    }

    async fn write_change(&self, proposal: &IsrProposal) -> Option<i32> {
        let name = self.object_name(&proposal.topic, proposal.partition)?;
        for _ in 0..ATTEMPTS {
            let mut object = match self.api.get_status(&name).await {
                Ok(object) => object,
                Err(error) => {
                    tracing::warn!(object = name, %error, "cannot read a partition for an ISR change");
                    return None;
                }
            };
            let status = object.status.as_mut()?;
            if status.leader != proposal.leader
                || status.leader_epoch != proposal.leader_epoch
                || status.partition_epoch != proposal.partition_epoch
            {
                return None;
            }
            // Decided on an older assignment (a reassignment completed or was cancelled
            // since): an ISR holds replicas only, so the leader decides again from the new one.
            let replicas = &object.spec.replicas;
            if proposal.isr.iter().any(|m| !replicas.contains(&m.broker)) {
                return None;
            }
            status.isr = proposal
                .isr
                .iter()
                .map(|m| IsrEntry {
                    broker_id: m.broker,
                    broker_epoch: m.incarnation,
                })
                .collect();
            status.partition_epoch = status.partition_epoch.saturating_add(1);
            let written = status.partition_epoch;
            match self
                .api
                .replace_status(&name, &PostParams::default(), &object)
                .await
            {
                Ok(_) => return Some(written),
                Err(error) if is_conflict(&error) => continue,
                Err(error) => {
                    tracing::warn!(object = name, %error, "cannot write an ISR change");
                    return None;
                }
            }
        }
        None
    }
}

impl IsrWriter for KubeIsrWriter {
    fn write<'a>(&'a self, proposal: &'a IsrProposal) -> BoxFuture<'a, Option<i32>> {
        self.write_change(proposal).boxed()
    }
}
