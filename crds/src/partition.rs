//! `KafkaPartition`: one partition of a topic, the state ZooKeeper's partition znode holds in
//! Apache Kafka (its PartitionRegistration in KRaft). `spec.replicas` is the assignment, written
//! by the operator; `status` is leadership and the in-sync replicas, written by the controller
//! (the active operator) at elections and by the partition's leader when the ISR changes.
//!
//! One object per partition keeps every object small (etcd caps objects at 1.5 MiB) and keeps
//! writes from conflicting across partitions: an ISR change of one partition never retries
//! because another changed. Objects are named `<kafkatopic>-<partition>` and owned by their
//! KafkaTopic, so deleting the topic deletes them.
//!
//! # Who writes what, and how
//!
//! Every write is a replace (or patch) carrying the `resourceVersion` the writer read, and a
//! status write also checks `partitionEpoch`: a writer that read an older epoch re-reads and
//! decides again, never overwrites. Each write raises `partitionEpoch`; elections raise
//! `leaderEpoch` too. Nothing here changes with offsets or high watermarks: the API server is
//! a coordination store, written on transitions only.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topic::MAX_REPLICATION_FACTOR;

/// Leader id of a partition that has none.
pub const NO_LEADER: i32 = -1;

/// Annotation asking the controller for a leader election of this partition: Kafka's
/// ElectLeaders (KIP-460) as a Kubernetes object. The value is an [`ElectionType`]
/// (`preferred` or `unclean`). A broker serving ElectLeaders sets it with a patch, and so can a
/// human (`kubectl annotate kp orders-0 tributary.dev/elect-leader=preferred`).
///
/// The contract:
/// - The controller acts on it at its next pass over the partition, once the failover rules
///   leave the partition as it is (a dead or shutting-down leader is replaced first; each status
///   write makes one change, so epochs rise once per change).
/// - `preferred`: if the first replica of `spec.replicas` is alive (the controller has seen its
///   Lease renewed), not shutting down, in the ISR under its current incarnation and not the
///   leader, it becomes the leader (leader and partition epochs + 1, ISR unchanged), whatever
///   `auto.leader.rebalance.enable` and the imbalance threshold say.
/// - `unclean`: if the partition has no leader, the first live replica in assignment order that
///   is not shutting down leads alone in the ISR even if it was not in it (as
///   `unclean.leader.election.enable` would; records acknowledged by the old ISR may be lost).
///   A partition with a leader is left as it is.
/// - Then the controller removes the annotation (a write conditional on the resourceVersion it
///   read, so a request made meanwhile is decided again, not dropped). It removes it too when the
///   request cannot be satisfied or its value is not an [`ElectionType`], with a Warning Event on
///   the KafkaPartition saying why.
/// - The requester waits for the annotation to go, then reads `status`: a `preferred` request
///   succeeded if `status.leader` is the first replica (else Kafka's
///   PREFERRED_LEADER_NOT_AVAILABLE), an `unclean` one if `status.leader` is not -1 (else
///   ELIGIBLE_LEADERS_NOT_AVAILABLE). ELECTION_NOT_NEEDED is for the requester to tell before
///   asking, as Kafka's controller does: the preferred replica already leads, or (unclean) the
///   partition has a leader.
pub const ELECT_LEADER_ANNOTATION: &str = "tributary.dev/elect-leader";

/// The elections [`ELECT_LEADER_ANNOTATION`] asks for, as in Kafka's ElectLeaders request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ElectionType {
    /// Move leadership to the preferred (first) replica if it is an eligible ISR member.
    Preferred,
    /// Elect any live replica of a partition without a leader, in or out of the ISR.
    Unclean,
}

impl ElectionType {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            ElectionType::Preferred => "preferred",
            ElectionType::Unclean => "unclean",
        }
    }

    /// The election an annotation value names, if it names one.
    pub fn parse(value: &str) -> Option<ElectionType> {
        match value {
            "preferred" => Some(ElectionType::Preferred),
            "unclean" => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// A partition's assignment.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "KafkaPartition",
    namespaced,
    status = "KafkaPartitionStatus",
    derive = "PartialEq",
    shortname = "kp",
    category = "tributary",
    doc = "One partition of a KafkaTopic: its replicas, leader, epochs and in-sync replicas.",
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topic"),
    printcolumn(name = "Partition", type_ = "integer", json_path = ".spec.partition"),
    printcolumn(name = "Leader", type_ = "integer", json_path = ".status.leader"),
    printcolumn(name = "Epoch", type_ = "integer", json_path = ".status.leaderEpoch"),
    printcolumn(name = "ISR", type_ = "string", json_path = ".status.isr[*].brokerId"),
    printcolumn(
        name = "Replicas",
        type_ = "string",
        json_path = ".spec.replicas",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaPartitionSpec {
    /// Name of the KafkaCluster (same namespace) hosting the partition.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: String,

    /// Kafka topic name.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("topic is immutable"))]
    pub topic: String,

    /// Kafka topic id (22-character URL-safe base64), from the KafkaTopic's UID.
    #[schemars(length(min = 22, max = 22))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("topicId is immutable"))]
    pub topic_id: String,

    /// Partition number.
    #[schemars(range(min = 0, max = 9999))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("partition is immutable"))]
    pub partition: i32,

    /// Broker ids holding a replica; the first is the preferred leader.
    #[schemars(length(min = 1, max = 7))]
    #[x_kube(validation = kube::core::Rule::new("self.all(b, b >= 0)").message("broker ids are not negative"))]
    #[x_kube(validation = kube::core::Rule::new("self.all(b, self.exists_one(c, c == b))").message("replicas are distinct brokers"))]
    pub replicas: Vec<i32>,
}

/// A member of the in-sync replica set: the broker and the incarnation that caught up. A
/// broker restarted since (a new incarnation, possibly with an empty disk) is not in sync
/// until it catches up again (KIP-841, KIP-903).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct IsrEntry {
    /// Broker id.
    pub broker_id: i32,
    /// The broker's incarnation epoch when it joined the ISR.
    pub broker_epoch: i64,
}

/// Leadership and in-sync replicas of a partition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaPartitionStatus {
    /// Current leader, or -1.
    pub leader: i32,
    /// Raised at every leadership change; fences requests of older leaders.
    pub leader_epoch: i32,
    /// Raised at every change of this status; writers compare it.
    pub partition_epoch: i32,
    /// In-sync replicas with their incarnations.
    #[serde(default)]
    #[schemars(length(max = 7))]
    pub isr: Vec<IsrEntry>,
}

const _: () = assert!(
    MAX_REPLICATION_FACTOR == 7,
    "keep the schema's max length in step"
);

impl KafkaPartition {
    /// The object name of partition `partition` of the KafkaTopic named `kafka_topic`.
    pub fn object_name(kafka_topic: &str, partition: i32) -> String {
        format!("{kafka_topic}-{partition}")
    }

    /// The value of the [`ELECT_LEADER_ANNOTATION`] request on this partition, if any.
    pub fn election_request(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(ELECT_LEADER_ANNOTATION)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_types_round_trip_through_their_annotation_values() {
        for t in [ElectionType::Preferred, ElectionType::Unclean] {
            assert_eq!(ElectionType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ElectionType::parse("PREFERRED"), None);
        assert_eq!(ElectionType::parse(""), None);
    }

    #[test]
    fn the_election_request_is_read_from_the_annotation() {
        let mut p = KafkaPartition::new(
            "t-0",
            KafkaPartitionSpec {
                cluster_ref: "demo".into(),
                topic: "t".into(),
                topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                partition: 0,
                replicas: vec![0],
            },
        );
        assert_eq!(p.election_request(), None);
        p.metadata.annotations =
            Some([(ELECT_LEADER_ANNOTATION.to_owned(), "unclean".to_owned())].into());
        assert_eq!(p.election_request(), Some("unclean"));
    }
}
