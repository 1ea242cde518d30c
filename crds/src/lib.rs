//! Custom resources shared by the Tributary broker and operator.
//!
//! `KafkaCluster` describes a set of brokers; `KafkaTopic` describes a topic; `KafkaPartition`
//! holds one partition's assignment, leader, epochs and in-sync replicas (the state ZooKeeper
//! holds in Apache Kafka); `KafkaUser` describes a Kafka principal's credentials and ACLs;
//! `KafkaSchema` declares a schema in a cluster's schema registry ([`schema`],
//! [`schema_registry`]). All live in group `tributary.dev`, version `v1alpha1`.
//! [`registration`] names the Lease annotations brokers register with and the objects producer
//! ids, ACLs, SCRAM credentials and client quotas are kept in; [`acls`], [`scram`] and
//! [`quotas`] define the JSON documents the ACLs, SCRAM credentials and client quotas are,
//! which brokers and the operator both write. [`features`] holds the feature levels (KIP-584) brokers
//! serve and the operator pins. [`update`] is the one conditional-update loop
//! (read, decide, replace on the resourceVersion read, retry on conflict) both use for every
//! object others may change at the same time.

pub mod acls;
pub mod cluster;
pub mod conditions;
pub mod config;
pub mod crdgen;
pub mod features;
pub mod ids;
pub mod lease;
pub mod listener;
pub mod partition;
pub mod quotas;
pub mod registration;
pub mod schema;
pub mod schema_registry;
pub mod scram;
pub mod shared;
pub mod tiered_storage;
pub mod topic;
pub mod update;
pub mod user;

pub use cluster::{KafkaCluster, KafkaClusterSpec, KafkaClusterStatus};
pub use partition::{
    Assignment, AssignmentError, ElectionType, IsrEntry, KafkaPartition, KafkaPartitionSpec,
    KafkaPartitionStatus, ELECT_LEADER_ANNOTATION,
};
pub use schema::{KafkaSchema, KafkaSchemaSpec, KafkaSchemaStatus};
pub use topic::{KafkaTopic, KafkaTopicSpec, KafkaTopicStatus, PartitionReplicas, TopicPhase};
pub use user::{KafkaUser, KafkaUserSpec, KafkaUserStatus};

/// API group of every Tributary resource.
pub const GROUP: &str = "tributary.dev";

/// Annotation that, set to `"true"` on a KafkaCluster or KafkaTopic, stops the operator from
/// changing anything for it (for manual surgery during an incident).
pub const PAUSE_ANNOTATION: &str = "tributary.dev/paused";

/// Label carrying the owning KafkaCluster's name on every object the operator creates, and on
/// KafkaTopics, so brokers and the operator can select by cluster.
pub const CLUSTER_LABEL: &str = "tributary.dev/cluster";

/// True when `meta` carries the pause annotation with value `"true"`.
pub fn is_paused(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(PAUSE_ANNOTATION))
        .is_some_and(|v| v == "true")
}
