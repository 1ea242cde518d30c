//! What tiered storage needs of a partition log: a description of its segments (to choose
//! what to upload) and the end of what the bucket holds (which bounds local retention).

use std::path::PathBuf;

use super::log::PartitionLog;
use super::segment::{file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// One local segment as the uploader sees it; the files are read outside the log's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// First offset.
    pub base_offset: i64,
    /// Offset after the last batch.
    pub end_offset: i64,
    /// Bytes of valid data in the `.log` file (the file may be preallocated past it).
    pub size_bytes: u64,
    /// Largest record timestamp (-1 when none).
    pub max_timestamp: i64,
    /// Whether this is the active segment, which is never uploaded.
    pub active: bool,
    /// The `.log` file.
    pub log_path: PathBuf,
    /// The offset index file.
    pub index_path: PathBuf,
    /// The time index file.
    pub time_index_path: PathBuf,
}

impl PartitionLog {
    /// Every segment, oldest first, the active one last.
    pub fn segment_summaries(&self) -> Vec<SegmentSummary> {
        let last = self.segments.len().saturating_sub(1);
        self.segments
            .iter()
            .enumerate()
            .map(|(i, s)| SegmentSummary {
                base_offset: s.base_offset(),
                end_offset: s.next_offset(),
                size_bytes: s.size(),
                max_timestamp: s.largest_timestamp_for_retention(),
                active: i == last,
                log_path: self.dir.join(file_name(s.base_offset(), LOG_SUFFIX)),
                index_path: self.dir.join(file_name(s.base_offset(), INDEX_SUFFIX)),
                time_index_path: self.dir.join(file_name(s.base_offset(), TIME_INDEX_SUFFIX)),
            })
            .collect()
    }

    /// Records that the bucket holds everything below `offset`, so local retention may
    /// delete those segments.
    pub fn set_remote_copied_end(&mut self, offset: i64) {
        self.remote_copied_end = offset;
    }

    /// Offset after the last record the bucket holds, as last recorded.
    pub fn remote_copied_end(&self) -> i64 {
        self.remote_copied_end
    }
}
