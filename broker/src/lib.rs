//! Tributary broker: a Kafka-wire-compatible broker.
//!
//! - [`protocol`]: frames, request headers, the served API versions.
//! - [`handlers`]: one module per Kafka API behind one dispatch.
//! - [`broker`]: shared state; [`metadata`]: the cluster image (brokers, topics, leaders,
//!   ISRs) and where it comes from; [`replica`]: the partitions this broker hosts and their
//!   roles; [`topics`]: topic names and configs; [`partition`]: a partition's log, producer
//!   state and waiters; [`client_batch`]: Kafka's checks on produced batches; [`producer`]:
//!   idempotent producers.
//! - [`storage`]: segmented log of RecordBatch v2, indexes, checkpoints, recovery.
//! - [`coordinator`]: the runtime every coordinator is a shard of (partition ownership,
//!   loading by replay, unloading) and the record codec helpers; [`group`]: the group
//!   coordinator (consumer groups and committed offsets); [`txn`]: the transaction
//!   coordinator.
//! - [`flusher`]: group-commit fsync, through the [`journal`] when it is ready;
//!   [`server`] and [`connection`]: the network edge.
//! - [`quotas`]: client quotas and the byte rates they are enforced against.
//! - [`metrics`] and [`http`]: Prometheus metrics and health endpoints.

pub mod acl;
pub mod broker;
pub mod client_batch;
pub mod clock;
pub mod codec;
pub mod config;
pub mod connection;
pub mod coordination;
pub mod coordinator;
pub mod fence;
pub mod flusher;
mod fsutil;
pub mod group;
pub mod handlers;
pub mod http;
pub mod journal;
pub mod kube;
pub mod limits;
pub mod metadata;
pub mod metrics;
pub mod partition;
pub mod peer;
pub mod producer;
pub mod properties;
pub mod protocol;
pub mod quotas;
pub mod replica;
pub mod scram;
pub mod security;
pub mod server;
pub mod shared;
pub mod storage;
pub mod topics;
pub mod txn;

#[cfg(test)]
mod test_support;

pub use broker::Broker;
