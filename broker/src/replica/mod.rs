//! The partitions this broker hosts and their roles, kept in line with the cluster metadata
//! by the [`ReplicaManager`]: become leader, become follower, stop and delete; and the one
//! path every write to them takes ([`append`]).

mod host;

pub use host::ReplicaHost;
pub use tributary_replication::replicas::{
    is_partition_dir_name, IsrCounters, IsrWriter, ReplicaManager, ReplicaParts,
};
pub use tributary_replication::{append, fetcher};

#[cfg(test)]
mod append_tests;
#[cfg(test)]
mod tests;
