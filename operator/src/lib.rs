//! Tributary operator: turns `KafkaCluster` objects into broker StatefulSets (and their
//! Services, ConfigMap, RBAC and PodDisruptionBudget) and `KafkaTopic` objects into partition
//! assignments, and acts as the Kafka controller (leader election after broker failure).
//!
//! Decisions are pure functions ([`placement`], [`builders`], [`cluster::status`],
//! [`topic::plan`]); the reconcilers only read the world, call them, and apply the result.

pub mod apply;
pub mod builders;
pub mod cluster;
pub mod context;
pub mod crds;
pub mod error;
pub mod http;
pub mod leader;
pub mod liveness;
pub mod metrics;
pub mod pause;
pub mod placement;
pub mod run;
pub mod topic;

pub use error::{Error, Result};

/// Field manager for every server-side apply, so ownership of fields is attributable.
pub const FIELD_MANAGER: &str = "tributary-operator";
