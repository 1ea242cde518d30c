//! The partitions this broker hosts and their roles, kept in line with the cluster metadata
//! by the [`ReplicaManager`]: become leader, become follower, stop and delete; and the one
//! path every write to them takes ([`append`]).

pub mod append;
mod dirs;
pub mod fetcher;
pub mod fsync;
mod host;
mod isr_changes;
pub mod lag;
mod manager;

pub(crate) use dirs::is_partition_dir_name;
pub use host::ReplicaHost;
pub use isr_changes::{IsrCounters, IsrWriter};
pub use manager::{ReplicaManager, ReplicaParts};

#[cfg(test)]
mod tests;
