//! A Confluent-compatible schema registry for Tributary (issue 33).
//!
//! It is a Kafka client of the cluster, as Confluent's registry is: its only storage is the
//! compacted `_schemas` topic ([`records`]), replayed into memory ([`state`]); writes are
//! decided by pure functions ([`ops`], [`compat`]; a client's Avro schema checked as
//! strictly as Confluent checks it, [`avro_rules`]) and appended by one writer at a time
//! ([`service`], [`elector`]; in Kubernetes a Lease elects it, [`lease`], and the others
//! forward writes to it; the cluster fences a deposed writer through Kafka transactions,
//! [`kafka::writer`]); the REST API ([`http`]) speaks Confluent's paths, content types and
//! error codes, over HTTPS with basic or mTLS authentication when configured ([`tls`],
//! [`auth`]).

pub mod auth;
pub mod avro_rules;
pub mod bootstrap;
pub mod compat;
pub mod elector;
pub mod error;
pub mod http;
pub mod kafka;
pub mod lease;
pub mod metrics;
pub mod mode;
pub mod ops;
pub mod records;
pub mod reload;
pub mod schema;
pub mod service;
pub mod state;
pub mod tls;

pub use error::ApiError;
