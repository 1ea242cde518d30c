//! The partitions this broker hosts and their roles, kept in line with the cluster metadata
//! by the [`ReplicaManager`]: become leader, become follower, stop and delete.

mod dirs;
mod manager;

pub use manager::ReplicaManager;

#[cfg(test)]
mod tests;
