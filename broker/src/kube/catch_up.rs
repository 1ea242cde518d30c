//! Catching up after a lapse. A broker whose registration lapsed may have lost leaderships
//! while it was fenced; when a renewal succeeds again, its watches may not have delivered
//! those elections yet (a frozen process resumes with its watch streams behind). Leading on
//! such an image would take writes for partitions another broker now leads, writes the next
//! image truncates. So the fence comes down only once the applied image shows every
//! KafkaPartition at least at the partition epoch a read made after the renewal returned:
//! partition epochs only rise, and the controller cannot elect again while the renewed Lease
//! holds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client};
use tributary_crds::ids::kafka_id_from_uid;
use tributary_crds::KafkaPartition;

use super::KubeError;
use crate::metadata::{ClusterImage, MetadataCache};

/// Partition epochs as the API server holds them: (Kafka topic, its Kafka topic id,
/// partition) → epoch. The id tells a topic from an earlier one of the same name whose objects
/// are not yet gone.
pub type Epochs = BTreeMap<(String, String, i32), i32>;

/// Reads the cluster's partitions and waits for the image to reflect them.
pub struct CatchUp {
    api: Api<KafkaPartition>,
    cluster: String,
    metadata: Arc<MetadataCache>,
}

impl CatchUp {
    /// Catching up cluster `cluster`'s partitions in `namespace` into `metadata`.
    pub fn new(
        client: Client,
        namespace: &str,
        cluster: &str,
        metadata: Arc<MetadataCache>,
    ) -> CatchUp {
        CatchUp {
            api: Api::namespaced(client, namespace),
            cluster: cluster.to_owned(),
            metadata,
        }
    }

    /// Lists the partitions now and waits, at most `within`, until the image the replica
    /// manager applied shows each at least at the listed epoch.
    pub async fn wait(&self, within: Duration) -> Result<(), KubeError> {
        let listed = self
            .api
            .list(&ListParams::default())
            .await
            .map_err(|e| KubeError::api("list KafkaPartitions to catch up", e))?;
        let epochs: Epochs = listed
            .items
            .iter()
            .filter(|p| {
                p.spec.cluster_ref == self.cluster && p.metadata.deletion_timestamp.is_none()
            })
            .map(|p| {
                let epoch = p.status.as_ref().map_or(0, |s| s.partition_epoch);
                let key = (
                    p.spec.topic.clone(),
                    p.spec.topic_id.clone(),
                    p.spec.partition,
                );
                (key, epoch)
            })
            .collect();
        let mut applied = self.metadata.subscribe_applied();
        let waited =
            tokio::time::timeout(within, applied.wait_for(|image| caught_up(image, &epochs))).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(KubeError::Invalid("the replica manager stopped".into())),
            Err(_) => Err(KubeError::Invalid(format!(
                "the cluster image did not catch up with the KafkaPartitions within {} ms",
                within.as_millis()
            ))),
        }
    }
}

/// Whether `image` shows every partition it has at least at its epoch in `epochs`. A
/// partition the image lacks, or has of another topic of the same name (an earlier one being
/// deleted, or a newer one), is not led here under that epoch, so it cannot hold the fence up.
pub fn caught_up(image: &ClusterImage, epochs: &Epochs) -> bool {
    epochs.iter().all(|((topic, id, partition), epoch)| {
        image
            .topic(topic)
            .filter(|t| kafka_id_from_uid(&t.id.to_string()).is_ok_and(|shown| shown == *id))
            .and_then(|t| t.partition(*partition))
            .is_none_or(|p| p.partition_epoch >= *epoch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{PartitionState, TopicImage};

    const SHOWN: &str = "6f1c6a4e-2b8d-4c1e-9a57-3d2f0b7e8c11";
    const EARLIER: &str = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d";

    fn image(epochs: &[i32]) -> ClusterImage {
        let mut image = ClusterImage::new("c".into(), 0, vec![]);
        image.put_topic(Arc::new(TopicImage {
            name: "t".into(),
            id: uuid::Uuid::parse_str(SHOWN).unwrap_or_default(),
            configs: BTreeMap::new(),
            replication_factor: 3,
            partitions: epochs
                .iter()
                .map(|e| PartitionState::sole(0, 1, *e))
                .collect(),
        }));
        image
    }

    /// Listed epochs of topics named `t` (of the shown topic) or `t@earlier`.
    fn listed(pairs: &[(&str, i32, i32)]) -> Epochs {
        pairs
            .iter()
            .map(|(t, p, e)| {
                let (name, uid) = t.split_once('@').map_or((*t, SHOWN), |(n, _)| (n, EARLIER));
                let id = kafka_id_from_uid(uid).unwrap_or_default();
                ((name.to_owned(), id, *p), *e)
            })
            .collect()
    }

    #[test]
    fn the_image_has_caught_up_once_no_partition_is_behind_the_listing() {
        let image = image(&[3, 5]);
        assert!(caught_up(&image, &listed(&[("t", 0, 3), ("t", 1, 4)])));
        assert!(
            !caught_up(&image, &listed(&[("t", 0, 3), ("t", 1, 6)])),
            "an election the image has not seen holds the fence up"
        );
        assert!(
            caught_up(&image, &listed(&[("other", 0, 9), ("t", 7, 9)])),
            "partitions the image lacks are led elsewhere or not yet at all"
        );
        assert!(caught_up(&image, &Epochs::new()));
    }

    #[test]
    fn an_earlier_topic_of_the_same_name_never_holds_the_fence_up() {
        let image = image(&[3, 5]);
        assert!(
            caught_up(&image, &listed(&[("t", 0, 3), ("t@earlier", 0, 40)])),
            "a deleted topic's objects, not yet gone, are at epochs the new topic never had"
        );
    }
}
