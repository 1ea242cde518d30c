//! The KafkaCluster controller: render children, apply them, report status.

pub mod reconcile;
pub mod scale;
pub mod status;

pub use reconcile::{error_policy, reconcile};
