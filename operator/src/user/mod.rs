//! The KafkaUser controller: a Kafka principal's SCRAM credential or client certificate in a
//! Secret of its own, its credential and ACLs in the cluster's shared documents (which every
//! broker follows), removed through a finalizer when the user is deleted.

pub mod documents;
pub mod password;
pub mod plan;
pub mod reconcile;

pub use reconcile::{error_policy, reconcile};
