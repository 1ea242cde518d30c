//! `KafkaTopic`: a topic's desired shape in `spec`, and in `status` a summary the operator
//! keeps (phase, conditions, topic id, how many partitions are placed, how many lack a leader
//! or a full ISR). The partitions themselves are `KafkaPartition` objects owned by the topic
//! ([`crate::partition`]): one object per partition keeps each object small and keeps an ISR
//! change of one partition from conflicting with every other partition's.
//!
//! # Size bound
//!
//! Each partition is its own object, so the topic's status stays a few hundred bytes however
//! many partitions it has. [`MAX_PARTITIONS`] is a published limit (one object per partition
//! costs one write per leadership change), not an etcd object-size bound.
//!
//! # Who writes what
//!
//! The operator creates the KafkaPartition objects (placement) and writes this status:
//! `phase`, `conditions`, `effectiveConfig`, and the counts, computed from the
//! KafkaPartitions. Every status write carries a resourceVersion precondition and retries on
//! conflict.
//!
//! # Deletion
//!
//! Deleting a KafkaTopic with `deletionPolicy: Delete` sets `phase: Deleting` and lists in
//! `status.pendingDeletion` every broker that holds a replica. Each broker deletes its local
//! partition data and then removes its own id from that list (conditional write). When the list
//! is empty the operator drops its finalizer, the object goes away and the garbage collector
//! deletes its KafkaPartitions.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]
// Several `printcolumn(...)` entries repeat `type_ = ...`, which clippy mistakes for duplicated
// attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{topic_keys_rule, MAX_CONFIG_ENTRIES};

/// Largest partition count a KafkaTopic may have: a published limit, since every partition is
/// an object the controller writes at each leadership change (see the module docs).
pub const MAX_PARTITIONS: i32 = 10_000;
/// Largest replication factor a KafkaTopic may have (bounds the ISR list of a KafkaPartition).
pub const MAX_REPLICATION_FACTOR: i32 = 7;
/// Finalizer the operator keeps on a KafkaTopic until brokers have dropped its data.
pub const TOPIC_FINALIZER: &str = "tributary.dev/topic-data";

/// Desired state of a topic.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "KafkaTopic",
    namespaced,
    status = "KafkaTopicStatus",
    derive = "PartialEq",
    shortname = "kt",
    category = "tributary",
    doc = "A Kafka topic of a KafkaCluster in the same namespace.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(
        name = "Replication Factor",
        type_ = "integer",
        json_path = ".spec.replicationFactor"
    ),
    printcolumn(
        name = "Leaderless",
        type_ = "integer",
        json_path = ".status.leaderlessPartitions"
    ),
    printcolumn(
        name = "Under Replicated",
        type_ = "integer",
        json_path = ".status.underReplicatedPartitions"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Placed",
        type_ = "integer",
        json_path = ".status.placedPartitions",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)").message("topicName is immutable"))]
pub struct KafkaTopicSpec {
    /// Name of the KafkaCluster (same namespace) that hosts the topic.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: String,

    /// Kafka topic name when it differs from `metadata.name` (Kafka allows `_` and upper case,
    /// Kubernetes names do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = kube::core::Rule::new("self != '.' && self != '..'").message("topicName may not be '.' or '..'"))]
    pub topic_name: Option<String>,

    /// Number of partitions. Can grow, never shrink (Kafka cannot remove partitions).
    #[schemars(range(min = 1, max = 10000))]
    #[x_kube(validation = kube::core::Rule::new("self >= oldSelf").message("partitions can only increase"))]
    pub partitions: i32,

    /// Replicas per partition. A change is carried out by partition reassignments (a new
    /// replica joins and catches up before an old one leaves), at most the cluster's
    /// `rebalance.maxConcurrentMoves` at a time.
    #[schemars(range(min = 1, max = 7))]
    pub replication_factor: i32,

    /// Topic configs (`retention.ms`, `cleanup.policy`, ...). A `null` value leaves that key
    /// unmanaged: changes made through the Kafka API are kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_CONFIG_ENTRIES))]
    #[x_kube(validation = topic_keys_rule())]
    pub config: BTreeMap<String, Option<String>>,

    /// What happens to the data when the KafkaTopic is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Replicas of partitions not created yet, in preference order (the first leads): what
    /// CreateTopics and CreatePartitions with manual replica assignments ask for. The operator
    /// places every partition this does not name; a partition that exists keeps its replicas
    /// (they move by reassignment, not by this field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000))]
    pub replica_assignments: Vec<PartitionReplicas>,
}

/// The replicas asked for one partition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionReplicas {
    /// Partition index.
    #[schemars(range(min = 0, max = 9999))]
    pub partition: i32,
    /// Broker ids, each once, the preferred leader first.
    #[schemars(length(min = 1, max = 7))]
    pub replicas: Vec<i32>,
}

impl KafkaTopic {
    /// The Kafka topic name: `spec.topicName`, else `metadata.name`.
    pub fn kafka_name(&self) -> &str {
        self.spec
            .topic_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

/// Fate of the topic's data when the KafkaTopic is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// Brokers delete the partitions; the object goes away once they have.
    #[default]
    Delete,
    /// The object goes away at once; the data stays on the brokers' volumes.
    Retain,
}

/// Lifecycle phase of a topic.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TopicPhase {
    /// Not yet placed (cluster missing or not observed yet).
    Pending,
    /// Every partition has replicas assigned (a KafkaPartition object each).
    Provisioned,
    /// `spec.config` has a value the broker would reject.
    InvalidConfig,
    /// `replicationFactor` exceeds the number of brokers.
    InsufficientBrokers,
    /// Being deleted; waiting for brokers to drop the data.
    Deleting,
}

/// Observed state of a topic: a summary, so it stays small however many partitions there are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready and Degraded, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TopicPhase>,
    /// Kafka topic id (derived from the object's UID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// The managed topic configs the brokers apply (spec.config minus unmanaged keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub effective_config: BTreeMap<String, String>,
    /// Partitions with replicas assigned (a KafkaPartition object each); equals
    /// `spec.partitions` once placement has caught up with the spec.
    #[serde(default)]
    pub placed_partitions: i32,
    /// Placed partitions without a leader (offline, or not yet given one by the controller).
    #[serde(default)]
    pub leaderless_partitions: i32,
    /// Placed partitions whose ISR is smaller than their replica set.
    #[serde(default)]
    pub under_replicated_partitions: i32,
    /// During deletion: brokers that still hold data for this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_deletion: Option<Vec<i32>>,
}
