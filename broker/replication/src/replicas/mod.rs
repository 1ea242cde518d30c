//! The partitions this broker hosts and their roles, kept in line with the cluster image by
//! the [`ReplicaManager`]: opened from the data directory, become leader or follower, given
//! their topic's settings, stopped and deleted; and the ISR changes their leaders propose.

mod dirs;
mod isr_changes;
mod manager;

pub use dirs::is_partition_dir_name;
pub use isr_changes::{IsrCounters, IsrWriter};
pub use manager::{Applied, ReplicaManager, ReplicaParts};
