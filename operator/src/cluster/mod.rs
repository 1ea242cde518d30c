//! The KafkaCluster controller: render children, apply them, roll the brokers one at a time
//! when their pod template changes ([`roll`] decides, [`rollout`] acts), move replicas by
//! bounded reassignments ([`rebalance`] decides, [`moves`] acts), hold the feature levels the
//! spec pins ([`features`]), report status.

pub mod certificates;
pub mod features;
pub mod moves;
pub mod rebalance;
pub mod reconcile;
pub mod registry;
pub mod roll;
pub mod rollout;
pub mod scale;
pub mod status;

pub use reconcile::{error_policy, reconcile};
