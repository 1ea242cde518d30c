//! The KafkaTopic controller: validate, place replicas into KafkaPartition objects, summarize
//! them in the topic's status, delete via finalizer. Leadership is the controller role's.

pub mod partitions;
pub mod plan;
pub mod reconcile;

pub use reconcile::{error_policy, reconcile};
