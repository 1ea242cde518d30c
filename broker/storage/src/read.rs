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
            if let Some((position, length)) =
                segment.plan_read(offset, max_bytes, max_offset_exclusive, min_one_batch)?
            {
                return Ok(ReadPlan {
                    file: Arc::clone(segment.log_file()),
                    position,
                    length,
                });
            }
        }
        Ok(empty)
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::split_batches;
    use crate::test_util::{append, open, simple};
    use crate::{LogConfig, StorageError};

    fn batches_in(plan_bytes: &[u8]) -> Vec<(i64, i64)> {
        split_batches(plan_bytes)
            .map(|b| {
                let b = b.expect("valid");
                (b.base_offset(), b.last_offset())
            })
            .collect()
    }

    fn log_with_batches_of(sizes: &[usize]) -> (tempfile::TempDir, crate::PartitionLog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        for &n in sizes {
            append(&mut log, simple(n, 1_000));
        }
        (dir, log)
    }

    #[test]
    fn fetch_from_the_middle_of_a_batch_returns_the_whole_batch() {
        let (_dir, log) = log_with_batches_of(&[5, 5, 5]);
        let plan = log.read_plan(7, usize::MAX, i64::MAX, false).expect("plan");
        let bytes = plan.load().expect("load");
        assert_eq!(batches_in(&bytes), vec![(5, 9), (10, 14)]);
    }

    #[test]
    fn max_bytes_cuts_at_batch_boundaries_and_min_one_batch_overrides_it() {
        let (_dir, log) = log_with_batches_of(&[5, 5, 5]);
        let one = log.read_plan(0, 1, i64::MAX, true).expect("plan");
        let first_size = one.length;
        assert_eq!(batches_in(&one.load().expect("load")), vec![(0, 4)]);
        let none = log
            .read_plan(0, first_size - 1, i64::MAX, false)
            .expect("plan");
        assert!(none.is_empty());
        let two = log
            .read_plan(0, first_size * 2 + 10, i64::MAX, false)
            .expect("plan");
        assert_eq!(batches_in(&two.load().expect("load")).len(), 2);
    }

    #[test]
    fn reads_stop_before_the_high_watermark() {
        let (_dir, log) = log_with_batches_of(&[5, 5, 5]);
        let plan = log.read_plan(0, usize::MAX, 10, true).expect("plan");
        assert_eq!(
            batches_in(&plan.load().expect("load")),
            vec![(0, 4), (5, 9)]
        );
        assert!(log
            .read_plan(10, usize::MAX, 10, true)
            .expect("plan")
            .is_empty());
        // A batch that straddles the bound is not committed yet.
        assert!(log
            .read_plan(10, usize::MAX, 12, true)
            .expect("plan")
            .is_empty());
    }

    #[test]
    fn plans_agree_whether_positions_come_from_memory_or_from_the_file() {
        // More batches than the in-memory tail remembers, so early offsets use the index.
        let (_dir, log) = log_with_batches_of(&[1; 700]);
        let batch_len = simple(1, 1_000).len();
        for offset in [0, 100, 187, 188, 189, 650, 697, 699] {
            let plan = log
                .read_plan(offset, batch_len * 3, 699, false)
                .expect("plan");
            let got = batches_in(&plan.load().expect("load"));
            let expected: Vec<_> = (offset..(offset + 3).min(699)).map(|o| (o, o)).collect();
            assert_eq!(got, expected, "from offset {offset}");
        }
    }

    #[test]
    fn offsets_outside_the_log_are_out_of_range_and_the_end_is_empty() {
        let (_dir, log) = log_with_batches_of(&[5]);
        assert!(log
            .read_plan(5, 100, i64::MAX, true)
            .expect("plan")
            .is_empty());
        assert!(matches!(
            log.read_plan(6, 100, i64::MAX, true),
            Err(StorageError::OffsetOutOfRange {
                offset: 6,
                log_start_offset: 0,
                log_end_offset: 5
            })
        ));
        assert!(matches!(
            log.read_plan(-1, 100, i64::MAX, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
    }
}
