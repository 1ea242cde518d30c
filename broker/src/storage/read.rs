//! Fetch path: locate whole batches under the lock, read their bytes outside it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use super::error::{Result, StorageError};
use super::log::PartitionLog;

/// A byte range of one segment file holding whole batches, to be read with
/// [`ReadPlan::load`] after the partition lock is released. Appends only add bytes past the
/// range and a deleted segment stays readable through the open handle, so the range stays
/// valid; only a truncation (follower catching up with a new leader) can rewrite it.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// The segment file.
    pub file: Arc<File>,
    /// Byte position of the first batch.
    pub position: u64,
    /// Bytes to read; 0 for nothing to return.
    pub length: usize,
}

impl ReadPlan {
    /// True when there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Reads the planned bytes with `pread`; call without holding the partition lock.
    pub fn load(&self) -> io::Result<Bytes> {
        if self.length == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = vec![0u8; self.length];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(Bytes::from(buf))
    }
}

impl PartitionLog {
    /// Plans a fetch from `offset`: whole batches starting with the one that contains
    /// `offset`, all ending before `max_offset_exclusive` (usually the high watermark),
    /// at most `max_bytes` in total, except that with `min_one_batch` the first batch is
    /// returned even if larger (KIP-74). Plans stay within one segment; the next fetch
    /// continues in the next one. `offset` equal to the log end gives an empty plan; outside
    /// `[log start, log end]` it is [`StorageError::OffsetOutOfRange`].
    pub fn read_plan(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset_exclusive: i64,
        min_one_batch: bool,
    ) -> Result<ReadPlan> {
        let log_end = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: log_end,
            });
        }
        let active = self.active();
        let empty = ReadPlan {
            file: Arc::clone(active.log_file()),
            position: active.size(),
            length: 0,
        };
        if offset == log_end || offset >= max_offset_exclusive {
            return Ok(empty);
        }
        let first = self.segment_index_for(offset);
        for segment in &self.segments[first..] {
            let Some(batch) = segment.find_batch(offset)? else {
                continue;
            };
            if batch.last_offset >= max_offset_exclusive {
                return Ok(empty);
            }
            let mut length = batch.size as usize;
            if length > max_bytes && !min_one_batch {
                return Ok(empty);
            }
            segment.scan_headers(batch.position + u64::from(batch.size), |next| {
                let fits = length + next.size as usize <= max_bytes;
                if next.last_offset >= max_offset_exclusive || !fits {
                    return false;
                }
                length += next.size as usize;
                true
            })?;
            return Ok(ReadPlan {
                file: Arc::clone(segment.log_file()),
                position: batch.position,
                length,
            });
        }
        Ok(empty)
    }
}
