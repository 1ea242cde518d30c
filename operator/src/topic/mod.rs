//! The KafkaTopic controller: validate, place replicas, elect leaders, delete via finalizer.

pub mod plan;
pub mod reconcile;

pub use reconcile::{error_policy, reconcile};
