//! Tributary's storage floor: per-partition log storage (segments of Kafka RecordBatch v2 stored
//! exactly as produced, sparse offset and time indexes, leader epoch cache, checkpoints, crash
//! recovery and retention, and compaction of `cleanup.policy=compact` logs), the commit journal
//! group commits write to, the compression codecs, and the disk's capacity.
//!
//! A crate of its own so the compiler keeps it below everything else: it knows nothing of
//! partitions' replicas, coordinators, the wire protocol or Kubernetes.
//!
//! Layout of a partition directory:
//! - `<20-digit base offset>.log`: batches, back to back;
//! - `.index`: (relative offset u32, position u32) every `index.interval.bytes`;
//! - `.timeindex`: (timestamp i64, relative offset u32) when the max timestamp grows;
//! - `leader-epoch-checkpoint`, `high-watermark`, `recovery-point`, `log-start-offset`.
//!
//! [`PartitionLog`] is the entry point; [`batch`] has the header views and [`check_records`]
//! the record-level checks the protocol layer uses to validate produce requests; [`journal`]
//! is the commit journal; [`codec`] the codecs and a topic's `compression.type` policy; [`disk`]
//! what the file system holding the log directory offers.

pub mod batch;
mod checkpoint;
pub mod clock;
mod compaction;
mod config;
mod epoch;
mod error;
mod index;
mod index_file;
mod log;
mod read;
mod recent;
mod records;
mod recovery;
mod replay;
mod replicated;
mod reservation;
mod retention;
mod scan;
mod segment;
mod split_batch;
mod sync;
mod tiering;
mod time_index;
mod timestamp;
mod validate;
mod vectored;
mod writeback;

pub mod codec;
pub mod disk;
pub mod durable_file;
pub mod journal;

/// Hostile bytes for the decoders' property tests, shared with the broker's.
#[cfg(any(test, feature = "test-support"))]
pub mod hostile;
/// RecordBatch bytes for tests, shared with the broker's.
#[cfg(any(test, feature = "test-support"))]
pub mod test_util;

/// Exit code of a broker halted by a failed fsync: after a failed fsync the page cache may no
/// longer hold what was written, so the process stops rather than go on from it.
pub const FSYNC_FAILURE_EXIT_CODE: i32 = 70;

pub use batch::{BatchError, BatchHeaderInfo, BatchView, BatchViewMut};
pub(crate) use checkpoint::sync_dir;
pub use compaction::{
    AbortedRange, CleanerTxns, CompactedSegments, CompactionJob, CompactionOutcome,
};
pub use config::{LogConfig, TimestampType};
pub use epoch::EpochEntry;
pub use error::{Result, StorageError};
pub use log::{AppendInfo, PartitionLog};
pub use read::ReadPlan;
pub use records::{data_keys_values, marker_batch, marker_is_commit, DataRecords};
pub use replicated::Replicated;
pub use retention::{RetentionOutcome, RetiredFiles};
pub use split_batch::SplitBatch;
pub use sync::{CheckpointPlan, FlushDue, PendingSync};
pub use tiering::SegmentSummary;
pub use validate::{check_decompressed, check_records, OffsetDeltas, RecordInfo, Span};
pub use writeback::{Writeback, WRITEBACK_STEP};

/// A producer's identity in a transactional request (and in the marker ending its
/// transaction): the pair a RecordBatch header carries, shared by the producer state and the
/// coordinators.
#[derive(Debug, Clone, Copy)]
pub struct ProducerRef {
    /// Producer id.
    pub id: i64,
    /// Producer epoch.
    pub epoch: i16,
}

/// The COMMIT or ABORT marker ending a producer's transaction in one partition.
#[derive(Debug, Clone, Copy)]
pub struct Marker {
    /// The producer whose transaction ends; its epoch fences older instances.
    pub producer: ProducerRef,
    /// COMMIT (true) or ABORT.
    pub commit: bool,
    /// The transaction version (KIP-890) the transaction ended with: at 2 every end bumps
    /// the epoch, so the partition refuses a marker not above its producer's epoch
    /// (KIP-1228); 0 and 1 the classic protocol.
    pub transaction_version: i8,
}
