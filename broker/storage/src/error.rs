//! Errors of the storage layer, with enough context to act on them.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use super::batch::BatchError;

/// Everything that can go wrong in a partition log. Kafka error codes are assigned by the
/// protocol layer: `InvalidBatch` maps through its [`BatchError`], `OffsetOutOfRange` to
/// OFFSET_OUT_OF_RANGE, I/O variants to KAFKA_STORAGE_ERROR.
#[derive(Debug, Error)]
pub enum StorageError {
    /// A batch of an append was rejected; nothing of that append was written.
    #[error("batch {index} of the append is invalid: {source}")]
    InvalidBatch {
        /// Position of the batch in the request, from 0.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: BatchError,
    },
    /// An append carried no batches.
    #[error("append carries no record batches")]
    EmptyAppend,
    /// The requested offset is outside the log.
    #[error(
        "offset {offset} is out of range: the log holds [{log_start_offset}, {log_end_offset})"
    )]
    OffsetOutOfRange {
        /// Requested offset.
        offset: i64,
        /// First offset still stored.
        log_start_offset: i64,
        /// Next offset to be written.
        log_end_offset: i64,
    },
    /// Creating or listing the partition directory failed.
    #[error("cannot access partition directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Opening or creating a segment (or index) file failed.
    #[error("cannot open segment file {path}: {source}")]
    SegmentOpen {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Reading a segment or index file failed.
    #[error("cannot read {path}: {source}")]
    SegmentRead {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing, truncating or syncing a segment or index file failed; the disk may be full
    /// or failing.
    #[error("cannot write {path}: {source}")]
    SegmentWrite {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Deleting a segment file or the partition directory failed.
    #[error("cannot delete {path}: {source}")]
    Delete {
        /// The file or directory.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing a checkpoint file failed.
    #[error("cannot persist or load checkpoint {path}: {source}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// A batch header inside a segment that recovery already trusted is damaged (disk
    /// corruption after the fact); the log should be taken offline and repaired.
    #[error("segment {path} is corrupt at byte {position}: {source}")]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the damaged batch.
        position: u64,
        /// What is wrong.
        #[source]
        source: BatchError,
    },
    /// Decoding the records of a stored batch failed (e.g. bad compressed payload).
    #[error("cannot decode records of the batch at offset {offset}: {reason}")]
    RecordDecode {
        /// Base offset of the batch.
        offset: i64,
        /// Decoder message.
        reason: String,
    },
    /// Reading the batches the commit journal holds for this partition failed.
    #[error("cannot read the commit journal: {source}")]
    JournalRead {
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Batches copied from the leader do not continue this replica's log.
    #[error("replicated batches start at offset {found}, but the log ends at {expected}")]
    NotContiguous {
        /// The log end offset.
        expected: i64,
        /// Base offset of the first new batch.
        found: i64,
    },
    /// One append would span more offsets than a segment can address.
    #[error("append spans {offsets} offsets, more than one segment can address")]
    OffsetOverflow {
        /// Offsets the append needs.
        offsets: i64,
    },
}

impl StorageError {
    /// Short stable label for counting errors by kind in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidBatch { source, .. } => source.metric_label(),
            Self::EmptyAppend => "empty_append",
            Self::OffsetOutOfRange { .. } => "offset_out_of_range",
            Self::Directory { .. } => "directory",
            Self::SegmentOpen { .. } => "segment_open",
            Self::SegmentRead { .. } => "segment_read",
            Self::SegmentWrite { .. } => "segment_write",
            Self::Delete { .. } => "delete",
            Self::Checkpoint { .. } => "checkpoint",
            Self::CorruptSegment { .. } => "corrupt_segment",
            Self::RecordDecode { .. } => "record_decode",
            Self::JournalRead { .. } => "journal_read",
            Self::OffsetOverflow { .. } => "offset_overflow",
            Self::NotContiguous { .. } => "not_contiguous",
        }
    }

    /// True when the error comes from the disk rather than from the request; the broker
    /// should then take the log offline (KAFKA_STORAGE_ERROR).
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            Self::Directory { .. }
                | Self::SegmentOpen { .. }
                | Self::SegmentRead { .. }
                | Self::SegmentWrite { .. }
                | Self::Delete { .. }
                | Self::Checkpoint { .. }
                | Self::CorruptSegment { .. }
                | Self::JournalRead { .. }
        )
    }
}

/// Result with [`StorageError`] as the default error.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
