//! Tributary broker: a Kafka-wire-compatible broker.
//!
//! Modules:
//! - [`storage`]: per-partition segmented log of RecordBatch v2, indexes, checkpoints, recovery.

pub mod storage;
