//! The KafkaSchema controller: take each declared schema to its cluster's schema registry
//! ([`client`]), deciding with the pure [`plan`] what to call and what status the answer
//! makes, and on deletion soft-delete the subject when the object asks for it.

pub mod client;
pub mod plan;
pub mod reconcile;
pub mod tls;

pub use reconcile::{error_policy, reconcile};
