//! Placement into KafkaPartition objects: which partitions of a topic need an object. Existing
//! objects are never rewritten here: replicas move (off brokers leaving the cluster, onto new
//! ones, to a new replication factor) only by bounded reassignments, which the cluster
//! reconciler plans (`crate::cluster::rebalance`), and a completed reassignment (Kafka's
//! AlterPartitionReassignments) is never undone. Pure; the reconciler creates the objects.
//!
//! Each object is named `<kafkatopic>-<n>`, owned by its KafkaTopic (so the garbage collector
//! deletes it with the topic) and labelled with the cluster and the topic's UID. The UID label
//! selects one topic's partitions, and tells them from those of an earlier topic of the same
//! name that the garbage collector has not removed yet.

use std::collections::{BTreeMap, BTreeSet};

use kube::{Resource, ResourceExt};
use tributary_crds::ids::kafka_id_from_uid;
use tributary_crds::{
    KafkaPartition, KafkaPartitionSpec, KafkaTopic, PartitionReplicas, CLUSTER_LABEL,
};

use crate::builders::BuildError;

/// Label carrying the UID of the KafkaTopic a KafkaPartition belongs to.
pub const TOPIC_UID_LABEL: &str = "tributary.dev/topic-uid";

/// Label selector for the KafkaPartitions of the KafkaTopic with `uid`.
pub fn selector(uid: &str) -> String {
    format!("{TOPIC_UID_LABEL}={uid}")
}

/// The replica lists recorded in `partitions`, indexed by partition number (empty where a
/// partition has no object); the target replicas of a reassignment in progress.
pub fn recorded_assignment(partitions: &[KafkaPartition]) -> Vec<Vec<i32>> {
    let by_number: BTreeMap<usize, &KafkaPartition> = partitions
        .iter()
        .filter_map(|p| Some((usize::try_from(p.spec.partition).ok()?, p)))
        .collect();
    let len = by_number.keys().next_back().map_or(0, |n| n + 1);
    (0..len)
        .map(|n| {
            by_number
                .get(&n)
                .map(|p| p.spec.target_replicas())
                .unwrap_or_default()
        })
        .collect()
}

/// `recorded` with the replicas `requested` names for partitions of the topic's `partitions`
/// that have no object yet: manual assignments, which placement then keeps as it keeps the
/// replicas of existing partitions (dropping ids that are not brokers and repeats, filling up
/// to the replication factor).
pub fn with_requested(
    mut recorded: Vec<Vec<i32>>,
    existing: &[KafkaPartition],
    requested: &[PartitionReplicas],
    partitions: i32,
) -> Vec<Vec<i32>> {
    let present: BTreeSet<i32> = existing.iter().map(|p| p.spec.partition).collect();
    for r in requested
        .iter()
        .filter(|r| r.partition < partitions && !present.contains(&r.partition))
    {
        let Ok(at) = usize::try_from(r.partition) else {
            continue;
        };
        if recorded.len() <= at {
            recorded.resize(at + 1, Vec::new());
        }
        recorded[at] = r.replicas.clone();
    }
    recorded
}

/// What placement changes in the KafkaPartition objects.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartitionChanges {
    /// Objects to create.
    pub create: Vec<KafkaPartition>,
}

/// The object for partition `partition` of `topic`, placed on `replicas`.
pub fn partition_object(
    topic: &KafkaTopic,
    partition: i32,
    replicas: Vec<i32>,
) -> Result<KafkaPartition, BuildError> {
    let name = topic.name_any();
    let unstored = |field| BuildError::UnstoredTopic {
        name: name.clone(),
        field,
    };
    let uid = topic.uid().ok_or_else(|| unstored("metadata.uid"))?;
    let namespace = topic
        .namespace()
        .ok_or_else(|| unstored("metadata.namespace"))?;
    let owner = topic
        .controller_owner_ref(&())
        .ok_or_else(|| unstored("metadata.uid"))?;
    let topic_id = kafka_id_from_uid(&uid).map_err(|_| unstored("a UUID metadata.uid"))?;
    let mut object = KafkaPartition::new(
        &KafkaPartition::object_name(&name, partition),
        KafkaPartitionSpec {
            cluster_ref: topic.spec.cluster_ref.clone(),
            topic: topic.kafka_name().to_owned(),
            topic_id,
            partition,
            replicas,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        },
    );
    object.metadata.namespace = Some(namespace);
    object.metadata.owner_references = Some(vec![owner]);
    object.metadata.labels = Some(BTreeMap::from([
        (CLUSTER_LABEL.to_owned(), topic.spec.cluster_ref.clone()),
        (TOPIC_UID_LABEL.to_owned(), uid),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            crate::FIELD_MANAGER.to_owned(),
        ),
    ]));
    Ok(object)
}

/// The objects of `assignment` that `existing` lacks.
pub fn changes(
    topic: &KafkaTopic,
    existing: &[KafkaPartition],
    assignment: &[Vec<i32>],
) -> Result<PartitionChanges, BuildError> {
    let have: BTreeSet<i32> = existing.iter().map(|p| p.spec.partition).collect();
    let mut out = PartitionChanges::default();
    for (n, replicas) in assignment.iter().enumerate() {
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        if !have.contains(&n) {
            out.create
                .push(partition_object(topic, n, replicas.clone())?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> KafkaTopic {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic",
            "metadata": { "name": "orders", "namespace": "ns", "uid": "fb2e7c4a-1d3f-4a8b-9c2e-0123456789ab" },
            "spec": { "clusterRef": "demo", "topicName": "Orders_v1", "partitions": 3, "replicationFactor": 2 },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn existing(n: i32, replicas: &[i32]) -> KafkaPartition {
        let mut p =
            partition_object(&topic(), n, replicas.to_vec()).unwrap_or_else(|e| panic!("{e}"));
        p.metadata.resource_version = Some(format!("{}", 10 + n));
        p
    }

    #[test]
    fn a_partition_object_is_named_owned_labelled_and_carries_the_topic_id() {
        let p = partition_object(&topic(), 2, vec![1, 0]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.name_any(), "orders-2");
        assert_eq!(p.namespace().as_deref(), Some("ns"));
        assert_eq!(
            p.spec.topic, "Orders_v1",
            "the Kafka name, not the object name"
        );
        assert_eq!(p.spec.cluster_ref, "demo");
        assert_eq!(p.spec.partition, 2);
        assert_eq!(p.spec.replicas, [1, 0]);
        assert_eq!(
            Ok(p.spec.topic_id.clone()),
            kafka_id_from_uid("fb2e7c4a-1d3f-4a8b-9c2e-0123456789ab")
        );
        let owner = &p.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("KafkaTopic", "orders")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            p.labels().get(CLUSTER_LABEL).map(String::as_str),
            Some("demo")
        );
        assert_eq!(
            selector("fb2e7c4a-1d3f-4a8b-9c2e-0123456789ab"),
            format!("{TOPIC_UID_LABEL}={}", p.labels()[TOPIC_UID_LABEL])
        );
        assert!(p.status.is_none(), "the controller writes the first status");
    }

    #[test]
    fn missing_partitions_are_created_and_existing_ones_never_rewritten() {
        let have = [existing(0, &[0, 1]), existing(2, &[2, 4])];
        assert_eq!(
            recorded_assignment(&have),
            vec![vec![0, 1], vec![], vec![2, 4]]
        );
        let assignment = vec![vec![0, 1], vec![1, 2], vec![2, 0], vec![0, 2]];
        let c = changes(&topic(), &have, &assignment).unwrap_or_else(|e| panic!("{e}"));
        let created: Vec<(String, Vec<i32>)> = c
            .create
            .iter()
            .map(|p| (p.name_any(), p.spec.replicas.clone()))
            .collect();
        assert_eq!(
            created,
            [
                ("orders-1".to_owned(), vec![1, 2]),
                ("orders-3".to_owned(), vec![0, 2])
            ],
            "partition 2, on broker 4 that left, waits for the rebalance to move it"
        );
        let none = changes(&topic(), &have, &[vec![0, 1]]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            none,
            PartitionChanges::default(),
            "nothing to do once placed"
        );
    }

    #[test]
    fn requested_replicas_are_kept_for_partitions_not_created_yet_and_placement_fills_the_rest() {
        use crate::placement::{place, Broker, PlacementRequest};
        let have = [existing(0, &[0, 1])];
        let requested = |partition: i32, replicas: &[i32]| PartitionReplicas {
            partition,
            replicas: replicas.to_vec(),
        };
        let wanted = with_requested(
            recorded_assignment(&have),
            &have,
            &[
                requested(0, &[2, 1]),
                requested(1, &[2, 0]),
                requested(3, &[1, 9]),
                requested(7, &[0, 1]),
            ],
            4,
        );
        assert_eq!(
            wanted,
            vec![vec![0, 1], vec![2, 0], vec![], vec![1, 9]],
            "partition 0 exists and keeps its replicas; 7 is beyond the topic"
        );
        let brokers: Vec<Broker> = (0..3).map(|id| Broker { id, rack: None }).collect();
        let placed = place(PlacementRequest {
            brokers: &brokers,
            partitions: 4,
            replication_factor: 2,
            existing: &wanted,
            others: &[],
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(placed[1], [2, 0], "as asked, the preferred leader first");
        assert_eq!(
            placed[3][0], 1,
            "an unknown broker is replaced, the rest kept"
        );
        assert_eq!(placed[2].len(), 2, "a partition nobody named is placed");
    }

    #[test]
    fn placement_counts_the_targets_of_reassignments_in_progress() {
        let mut moving = existing(0, &[1, 2, 3, 0]);
        moving.spec.adding_replicas = vec![3];
        moving.spec.removing_replicas = vec![0];
        // RF 2 grown to 3 by a reassignment.
        let grown = existing(1, &[1, 2, 0]);
        let have = [moving, grown];
        assert_eq!(
            recorded_assignment(&have),
            vec![vec![1, 2, 3], vec![1, 2, 0]],
        );
    }

    #[test]
    fn an_unstored_topic_is_an_error_not_a_panic() {
        let mut t = topic();
        t.metadata.uid = None;
        assert!(partition_object(&t, 0, vec![0]).is_err());
    }
}
