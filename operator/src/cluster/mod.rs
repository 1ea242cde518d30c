//! The KafkaCluster controller: render children, apply them, roll the brokers one at a time
//! when their pod template changes ([`roll`] decides, [`rollout`] acts), report status.

pub mod reconcile;
pub mod roll;
pub mod rollout;
pub mod scale;
pub mod status;

pub use reconcile::{error_policy, reconcile};
