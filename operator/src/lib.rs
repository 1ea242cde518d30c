//! Tributary operator: turns `KafkaCluster` objects into broker StatefulSets (and their
//! Services, ConfigMaps, RBAC and PodDisruptionBudget) and `KafkaTopic` objects into
//! `KafkaPartition` objects and `KafkaUser` objects into credentials and ACLs in the shared
//! documents the brokers follow, and `KafkaSchema` objects into schemas in the cluster's
//! schema registry, and acts as the Kafka controller ([`controller`]: broker liveness
//! from Leases, leader elections and ISR upkeep in each KafkaPartition).
//!
//! Decisions are pure functions ([`placement`], [`builders`], [`cluster::status`],
//! [`topic::plan`], [`user::plan`], [`schema::plan`], [`controller::liveness`], [`controller::election`]); the reconcilers and
//! the controller loop only read the world, call them, and apply the result.

pub mod apply;
pub mod builders;
pub mod certs;
pub mod cluster;
pub mod context;
pub mod controller;
pub mod crds;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod pause;
pub mod permissions;
pub mod pki;
pub mod placement;
pub mod run;
pub mod schema;
pub mod shared_documents;
pub mod topic;
pub mod trigger;
pub mod user;

pub use error::{Error, Result};

/// Field manager for every server-side apply, so ownership of fields is attributable.
pub const FIELD_MANAGER: &str = "tributary-operator";
