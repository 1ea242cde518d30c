//! Tiered storage (KIP-405) is the `tributary_tiered` crate, on the storage and replication
//! floors; the broker uses it through this path, and keeps here the tests that drive whole
//! brokers (and clusters) over it.

pub use tributary_tiered::*;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod list_offsets_tests;
#[cfg(test)]
mod log_dirs_tests;
#[cfg(test)]
mod tests;
