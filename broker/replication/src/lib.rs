//! Tributary's replication floor: one partition replica (its log, producer state and the
//! waiters of its appends under one lock), the leader's ISR and high-watermark decisions, the
//! follower's fetch decisions, Kafka's checks on a produced batch, the broker-wide group-commit
//! flusher, the self-fence and the replica manager hosting a broker's partitions. It sits on
//! the storage floor only; the broker's metadata sources and handlers drive it.
//!
//! - [`partition`]: one replica, with [`partition::isr`] (who is in sync, the high watermark)
//!   and [`partition::follower`] (what a follower does with a fetch answer).
//! - [`client_batch`]: Kafka's checks on a produced batch, made outside the partition lock.
//! - [`append`]: the one append path (Kafka's `ReplicaManager.appendRecords`) every writer
//!   takes, through the [`append::AppendHost`] the broker implements.
//! - [`append_error`] and [`role`]: what the append path refuses with, and a replica's role,
//!   below both the batch checks and the partition; [`error_codes`]: their Kafka codes.
//! - [`producer`]: idempotent and transactional producers: ids, sequences, open transactions.
//! - [`flusher`]: group-commit fsync: one round at a time for the whole broker.
//! - [`fetcher`]: the follower fetchers, one task per leader followed, through the
//!   [`fetcher::FetcherHost`] the broker implements (peer connections, throttles, remote log).
//! - [`fence`]: self-fencing, so a broker whose registration lapsed stops acting as leader.
//! - [`replicas`]: the replica manager: which partitions this broker hosts, in which role.
//! - [`settings`]: what the replica manager takes from the broker's configuration.
//! - [`topic_names`]: Kafka's topic-name rule, which partition directory names follow.
//! - [`metadata`]: the cluster image (brokers, topics, leaders, ISRs) and the cache holding
//!   the current one, which the replica manager above compares to find what changed.

pub mod append;
pub mod append_error;
pub mod client_batch;
pub mod error_codes;
pub mod fence;
pub mod fetcher;
pub mod flusher;
pub mod metadata;
pub mod partition;
pub mod producer;
pub mod replicas;
pub mod role;
pub mod settings;
pub mod topic_names;
