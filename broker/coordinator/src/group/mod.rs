//! Consumer groups: the classic group protocol (JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup), committed offsets, and their persistence in `__consumer_offsets`.
//!
//! - Pure decisions, tested step by step: [`state`] (legal transitions), [`protocol`]
//!   (protocol choice), [`classic`] (the group) with [`join`], [`sync`], [`heartbeat`], [`rebalance`] (the
//!   state machine and its deadlines), [`commit`] (who may commit), [`offsets`] (committed
//!   offsets and retention), [`summary`], [`rebalance_log`] (rebalances for the metrics). Operations return [`effects::Effects`] instead of
//!   doing I/O.
//! - Persistence: [`records`] (Kafka's record schemas), [`load`] (replay on start),
//!   [`txn_offsets`] (offsets of open transactions, until their marker); the offsets topic is
//!   read and written through the runtime's [`crate::log`], its partition chosen by
//!   [`crate::partitioner`].
//! - [`coordinator`]: the shared entry point the request handlers call; it locks a group,
//!   runs an operation and carries out its effects, and runs the timers. It is a shard of the
//!   coordinator runtime ([`crate`]), which loads and unloads its partitions.
//! - [`consumer`]: groups of the KIP-848 consumer protocol (ConsumerGroupHeartbeat): their
//!   pure state machine, assignors and records, not yet served.

pub mod classic;
pub mod commit;
pub mod config;
pub mod consumer;
pub mod coordinator;
pub mod effects;
pub mod heartbeat;
pub mod join;
pub mod load;
pub mod member;
pub mod offsets;
pub mod protocol;
pub mod rebalance;
pub mod rebalance_log;
pub mod records;
pub mod state;
pub mod summary;
pub mod sync;
pub mod txn_offsets;

#[cfg(test)]
mod tests;

pub use config::GroupConfig;
pub use coordinator::GroupCoordinator;
pub use state::GroupState;

/// Name of the internal topic holding offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
