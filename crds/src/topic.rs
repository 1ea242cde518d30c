//! `KafkaTopic`: a topic's desired shape in `spec`, and in `status` the partition metadata that
//! ZooKeeper holds in Apache Kafka (replicas, leader, leader epoch, ISR).
//!
//! # Size bound
//!
//! The whole status lives in one object, and Kubernetes (etcd) caps an object at 1.5 MiB. One
//! partition entry with replication factor 7 is about 120 bytes of JSON, so the schema caps a
//! topic at 10,000 partitions and a replication factor of 7 (about 1.2 MiB at worst). Larger
//! topics need sharded status objects, which do not exist yet.
//!
//! # Who writes what
//!
//! The operator creates `status.partitions` (placement), sets `phase`, `conditions` and
//! `effectiveConfig`. Partition leaders write `leader`, `leaderEpoch` and `isr` of their own
//! partitions. Every status write carries a resourceVersion precondition and retries on
//! conflict, so neither side overwrites the other.
//!
//! # Deletion
//!
//! Deleting a KafkaTopic with `deletionPolicy: Delete` sets `phase: Deleting` and lists in
//! `status.pendingDeletion` every broker that holds a replica. Each broker deletes its local
//! partition data and then removes its own id from that list (conditional write). When the list
//! is empty the operator drops its finalizer and the object goes away.

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

/// Largest partition count a KafkaTopic may have (see the module docs for why).
pub const MAX_PARTITIONS: i32 = 10_000;
/// Largest replication factor a KafkaTopic may have (see the module docs for why).
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
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
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

    /// Replicas per partition. Immutable until partition reassignment exists.
    #[schemars(range(min = 1, max = 7))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("replicationFactor is immutable until reassignment exists"))]
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
    /// Every partition has replicas assigned.
    Provisioned,
    /// `spec.config` has a value the broker would reject.
    InvalidConfig,
    /// `replicationFactor` exceeds the number of brokers.
    InsufficientBrokers,
    /// Being deleted; waiting for brokers to drop the data.
    Deleting,
}

/// Observed state of a topic, shared by the operator and the partition leaders.
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
    /// Partition assignments and leadership, ordered by partition number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000))]
    pub partitions: Vec<PartitionStatus>,
    /// Partitions without a leader.
    #[serde(default)]
    pub leaderless_partitions: i32,
    /// Partitions whose ISR is smaller than their replica set.
    #[serde(default)]
    pub under_replicated_partitions: i32,
    /// During deletion: brokers that still hold data for this topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_deletion: Option<Vec<i32>>,
}

/// One partition's assignment and leadership (Kafka's PartitionRegistration).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionStatus {
    /// Partition number.
    pub partition: i32,
    /// Broker ids holding a replica; the first is the preferred leader.
    #[schemars(length(max = 7))]
    pub replicas: Vec<i32>,
    /// Current leader broker id, -1 when none.
    pub leader: i32,
    /// Incremented on every leadership change; fences stale leaders.
    pub leader_epoch: i32,
    /// In-sync replicas.
    #[schemars(length(max = 7))]
    pub isr: Vec<i32>,
}
