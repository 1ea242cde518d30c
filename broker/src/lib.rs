//! Tributary broker: a Kafka-wire-compatible broker.
//!
//! Every module, from the network edge down. Nothing below [`handlers`] imports it, and none
//! of the parts [`broker`] is built from imports [`broker`]: they see it through the narrow
//! traits it implements (the append path's, the fetchers', the coordinators', the shutdown's).
//!
//! The edge:
//! - [`server`]: the accept loop, its connection limit and graceful shutdown.
//! - [`connection`]: one client connection: TLS, SASL, then frames dispatched and answered in
//!   order.
//! - [`protocol`] (the `tributary-protocol` crate): the wire format at the edge: frames, request
//!   headers, served API versions.
//! - [`handlers`]: one module per Kafka API behind one dispatch.
//! - [`frame_parts`]: Fetch responses whose record sets are sent from their segment files
//!   (`sendfile`) on plaintext connections.
//! - [`http`]: the operators' HTTP endpoint: `/metrics`, `/healthz` and `/readyz`.
//!
//! The broker and its start:
//! - [`broker`]: the shared state handlers receive, built last from parts made complete.
//! - [`config`]: flags, environment and YAML, with Kafka's defaults for the rest.
//! - [`properties`]: the `server.properties` keys Kafka operators use, so one config serves.
//! - [`dynamic_config`]: the broker configs that change at runtime (the topics' `log.*`
//!   defaults, replication throttles), kept per broker and for every broker.
//! - [`limits`]: what the process may hold (file descriptors) and the budgets derived from it.
//! - [`metrics`]: Prometheus metrics under the names Kafka dashboards already chart.
//! - [`kube`]: cluster mode: registration, watches and metadata kept in Kubernetes.
//!
//! The coordinators ([`coordinator`], the `tributary-coordinator` crate: the runtime every
//! coordinator is a shard of, with the [`group`] and [`txn`] shards, re-exported under their
//! old names):
//! - [`coordinator_host`]: what the coordinators need of the broker (their logs over its
//!   partitions, the transaction markers) and the leaders' transaction verification.
//!
//! The cluster and its partitions:
//! - [`metadata`]: where the cluster image comes from (its sources, validation, elections and
//!   reassignments); the image and its cache are the replication floor's `metadata`.
//! - [`replica`]: the host the coordinators write through; the replica manager, the one
//!   append path and the follower fetchers are the replication floor's, re-exported here.
//! - the `tributary-replication` crate, re-exported under its modules' old names:
//!   [`partition`] (one replica: its log, producer state and waiters under one lock),
//!   [`client_batch`] (Kafka's checks on a produced batch, outside the partition lock),
//!   [`producer`] (idempotent and transactional producers), [`flusher`] (group-commit fsync,
//!   one round at a time for the whole broker) and [`fence`] (self-fencing, so a broker whose
//!   registration lapsed stops acting as leader).
//! - [`topics`]: topic names and configs, how they are described and altered, a standalone
//!   broker's topic file.
//! - [`peer`]: requests to other brokers over the inter-broker listener.
//!
//! Durability:
//! - [`storage`] (the `tributary-storage` crate, the floor below everything here): the
//!   segmented log of RecordBatch v2, indexes, checkpoints, recovery and compaction; with
//!   [`journal`], the commit journal (one sequential write per round instead of many fsyncs),
//!   [`codec`], compression codecs and a topic's `compression.type` policy, and [`disk`], the
//!   log directory's file system capacity. Re-exported under their old names.
//! - [`tiered`] (the `tributary-tiered` crate, on the storage and replication floors): tiered
//!   storage (KIP-405), segments copied to a bucket and read back; the broker keeps the tests
//!   that drive whole brokers over it.
//! - `fsutil`: a standalone broker's JSON documents, written with the storage floor's
//!   `durable_file`.
//!
//! Security and client limits:
//! - [`security`]: listeners, TLS, SASL, the SCRAM credentials kept as Kafka keeps them, and
//!   the principal a connection authenticates as.
//! - [`acl`]: the authorizer and Kafka's ACLs.
//! - [`quotas`]: client quotas and the byte rates they are enforced against.
//! - [`telemetry`]: client telemetry (KIP-714) answered with no metrics receiver.
//! - [`shared_state`]: documents every broker of a cluster shares (ACLs, credentials, quotas,
//!   dynamic configs).
//!
//! Across the layers:
//! - [`clock`]: the one wall clock every timestamp and expiry reads.
//! - `error_codes`: where internal errors become Kafka error codes (storage and append
//!   failures map on the replication floor, for the append path there).
//! - `test_support` (tests only): setting up topics through the real metadata source.

pub use tributary_coordinator as coordinator;
pub use tributary_coordinator::{group, share, txn};
pub use tributary_protocol as protocol;
pub use tributary_replication::{client_batch, fence, flusher, partition, producer};
pub use tributary_storage as storage;
pub use tributary_storage::{clock, codec, disk, journal};

pub mod acl;
pub mod broker;
pub mod config;
pub mod connection;
pub mod coordinator_host;
pub mod dynamic_config;
mod error_codes;
pub mod features;
pub mod flags;
pub mod frame_parts;
mod fsutil;
pub mod group_configs;
pub mod handlers;
pub mod http;
pub mod kube;
pub mod limits;
pub mod metadata;
pub mod metrics;
pub mod peer;
pub mod properties;
pub mod quotas;
pub mod replica;
pub mod schema_validation;
pub mod security;
pub mod server;
pub mod share_broker_config;
pub mod share_log;
pub mod share_state;
pub mod shared_state;
pub mod standalone;
pub mod telemetry;
pub mod tiered;
pub mod topics;

#[cfg(test)]
mod test_support;

pub use broker::Broker;
