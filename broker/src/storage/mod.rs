//! Per-partition log storage: segments of Kafka RecordBatch v2 stored exactly as produced,
//! sparse offset and time indexes, leader epoch cache, checkpoints, crash recovery and
//! retention.
//!
//! Layout of a partition directory:
//! - `<20-digit base offset>.log`: batches, back to back;
//! - `.index`: (relative offset u32, position u32) every `index.interval.bytes`;
//! - `.timeindex`: (timestamp i64, relative offset u32) when the max timestamp grows;
//! - `leader-epoch-checkpoint`, `high-watermark`, `recovery-point`, `log-start-offset`.
//!
//! [`PartitionLog`] is the entry point; [`batch`] has the header views the protocol layer
//! uses to validate produce requests.

pub mod batch;
mod config;
mod error;

#[cfg(test)]
mod test_util;

pub use batch::{BatchError, BatchHeaderInfo, BatchView, BatchViewMut};
pub use config::{LogConfig, TimestampType};
pub use error::{Result, StorageError};
