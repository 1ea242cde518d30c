//! Fetch path: locate whole batches under the lock, read their bytes outside it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use super::batch::{BatchView, HEADER_LEN};
use super::error::{Result, StorageError};
use super::log::PartitionLog;
use super::segment::{Cuts, Segment};

/// A byte range of one segment file holding whole batches, to be read with
/// [`ReadPlan::load`] after the partition lock is released, or sent from the file
/// ([`ReadPlan::while_unchanged`]) later still. Appends only add bytes past the range and a
/// deleted or replaced (compacted) segment stays readable through the open handle, so the
/// range stays valid; only a truncation in place (a follower catching up with a new leader)
/// can rewrite it, and a read after one fails rather than return other bytes.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// The segment file.
    pub file: Arc<File>,
    /// Byte position of the first batch.
    pub position: u64,
    /// Bytes to read; 0 for nothing to return.
    pub length: usize,
    /// Last offset of the last batch in the range; `None` when it is empty.
    pub last_offset: Option<i64>,
    /// The file's cuts in place, and how many there were when the range was planned.
    cuts: Arc<Cuts>,
    planned_at: usize,
}

/// Bytes [`ReadPlan::batch_headers`] reads at a time: dozens of small batches' headers.
const HEADER_WINDOW: usize = 4096;

/// A header at `position` that does not fit the planned range.
fn past_range(position: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the batch at {position} ends past the planned range"),
    )
}

impl ReadPlan {
    fn of(segment: &Segment, position: u64, length: usize, last_offset: Option<i64>) -> Self {
        let cuts = Arc::clone(segment.cuts());
        let planned_at = cuts.count();
        ReadPlan {
            file: Arc::clone(segment.log_file()),
            position,
            length,
            last_offset,
            cuts,
            planned_at,
        }
    }

    /// True when there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Reads the planned bytes with `pread`; call without holding the partition lock. Fails
    /// if the file was truncated in place since the plan.
    pub fn load(&self) -> io::Result<Bytes> {
        if self.length == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = vec![0u8; self.length];
        self.while_unchanged(|file| file.read_exact_at(&mut buf, self.position))?;
        Ok(Bytes::from(buf))
    }

    /// `each` of the headers of the planned batches: for a caller that must know the batches
    /// (their offsets, producers) but sends their bytes from the file. The headers are read
    /// through a window of [`HEADER_WINDOW`] bytes refilled at the first header it does not
    /// hold, so a range of small batches costs a read per window, not one per batch. Fails as
    /// [`Self::load`] does, or on a header that does not fit the range (the range holds whole
    /// batches, so only a damaged file has one).
    pub fn batch_headers<T>(&self, each: impl FnMut(&BatchView<'_>) -> T) -> io::Result<Vec<T>> {
        self.headers_through(HEADER_WINDOW, each)
            .map(|(out, _)| out)
    }

    /// [`Self::batch_headers`] through a window of `window` bytes (at least a header's);
    /// also answers how many reads it took.
    fn headers_through<T>(
        &self,
        window: usize,
        mut each: impl FnMut(&BatchView<'_>) -> T,
    ) -> io::Result<(Vec<T>, usize)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; window.max(HEADER_LEN).min(self.length)];
        // The window holds the range's bytes `held_from..held_from + held`.
        let (mut held_from, mut held, mut reads) = (0, 0, 0);
        let mut at = 0;
        while at < self.length {
            let position = self.position + at as u64;
            if at + HEADER_LEN > held_from + held {
                let len = buf.len().min(self.length - at);
                if len < HEADER_LEN {
                    return Err(past_range(position));
                }
                self.while_unchanged(|file| file.read_exact_at(&mut buf[..len], position))?;
                (held_from, held) = (at, len);
                reads += 1;
            }
            let view = BatchView::header(&buf[at - held_from..held])
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            if view.size() > self.length - at {
                return Err(past_range(position));
            }
            out.push(each(&view));
            at += view.size();
        }
        Ok((out, reads))
    }

    /// Runs `read` (a read of the planned range of `file`, such as a `sendfile` of part of it)
    /// while nothing can cut the file; fails without running it if the file was truncated in
    /// place since the plan, when the range may no longer hold the planned bytes. A truncation
    /// waits for `read`, so it should not block for long (a non-blocking socket's send).
    pub fn while_unchanged<T>(&self, read: impl FnOnce(&File) -> io::Result<T>) -> io::Result<T> {
        let end = self.position + self.length as u64;
        self.cuts
            .while_uncut(self.planned_at, end, || read(&self.file))
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
        let empty = ReadPlan::of(active, active.size(), 0, None);
        if offset == log_end || offset >= max_offset_exclusive {
            return Ok(empty);
        }
        let first = self.segment_index_for(offset);
        for segment in &self.segments[first..] {
            if let Some((position, length, last_offset)) =
                segment.plan_read(offset, max_bytes, max_offset_exclusive, min_one_batch)?
            {
                return Ok(ReadPlan::of(segment, position, length, last_offset));
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

    #[test]
    fn batch_headers_are_the_planned_batches() {
        let (_dir, log) = log_with_batches_of(&[3, 1, 4, 2]);
        for (from, budget) in [(0, usize::MAX), (3, usize::MAX), (4, 1), (5, 10_000)] {
            let plan = log.read_plan(from, budget, i64::MAX, true).expect("plan");
            let headers = plan
                .batch_headers(|v| (v.base_offset(), v.last_offset()))
                .expect("headers");
            assert_eq!(
                headers,
                batches_in(&plan.load().expect("load")),
                "from {from}"
            );
            assert!(!headers.is_empty());
        }
        let empty = log
            .read_plan(log.log_end_offset(), 100, i64::MAX, true)
            .expect("plan");
        assert_eq!(empty.batch_headers(|_| ()).expect("headers"), vec![]);
    }

    #[test]
    fn batch_headers_are_read_a_window_at_a_time_whatever_the_window() {
        let sizes: Vec<usize> = (0..200).map(|i| 1 + i % 7).collect();
        let (_dir, log) = log_with_batches_of(&sizes);
        let plan = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        let want = batches_in(&plan.load().expect("load"));
        assert_eq!(want.len(), 200);
        for window in [
            0,
            super::HEADER_LEN,
            100,
            1_000,
            super::HEADER_WINDOW,
            usize::MAX,
        ] {
            let (headers, reads) = plan
                .headers_through(window, |v| (v.base_offset(), v.last_offset()))
                .expect("headers");
            assert_eq!(headers, want, "window {window}");
            if window <= super::HEADER_LEN {
                assert_eq!(reads, 200, "a header-sized window reads each header");
            }
            if window >= super::HEADER_WINDOW {
                // Each read holds a whole window of the range less at most one batch (each
                // under a quarter of a window here).
                let least_advance = super::HEADER_WINDOW * 3 / 4;
                assert!(
                    reads <= plan.length.div_ceil(least_advance),
                    "{reads} reads of {} bytes through a {window}-byte window",
                    plan.length
                );
            }
        }
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
    fn a_plan_names_the_last_offset_of_its_last_batch() {
        let (_dir, log) = log_with_batches_of(&[5, 5, 5]);
        let batch_len = simple(5, 1_000).len();
        for (offset, max_bytes, bound, want) in [
            (0, usize::MAX, i64::MAX, Some(14)),
            (7, batch_len, i64::MAX, Some(9)),
            (0, usize::MAX, 10, Some(9)),
            (15, usize::MAX, i64::MAX, None),
            (0, 1, i64::MAX, Some(4)),
        ] {
            let plan = log.read_plan(offset, max_bytes, bound, true).expect("plan");
            let loaded = batches_in(&plan.load().expect("load"));
            assert_eq!(plan.last_offset, want, "from {offset}");
            assert_eq!(loaded.last().map(|b| b.1), want, "from {offset}");
        }
    }

    #[test]
    fn a_plan_outlives_its_segment_being_deleted_or_rolled_past() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), crate::test_util::small_config());
        for _ in 0..20 {
            append(&mut log, simple(3, 1_000));
        }
        log.set_high_watermark(log.log_end_offset());
        let plan = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        let before = plan.load().expect("load");
        let end = log.log_end_offset();
        log.delete_records(end).expect("delete records");
        for _ in 0..20 {
            append(&mut log, simple(3, 1_000));
        }
        assert!(log.log_start_offset() > 0, "the planned segment is gone");
        assert_eq!(plan.load().expect("load after delete"), before);
        let sent = plan
            .while_unchanged(|file| {
                let mut buf = vec![0; plan.length];
                std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, plan.position)?;
                Ok(buf)
            })
            .expect("read after delete");
        assert_eq!(sent, before);
    }

    #[test]
    fn a_plan_refuses_once_its_file_was_truncated_in_place() {
        let (_dir, mut log) = log_with_batches_of(&[5, 5, 5]);
        let plan = log.read_plan(5, usize::MAX, i64::MAX, true).expect("plan");
        let below = log.read_plan(0, 1, i64::MAX, true).expect("plan");
        let before = below.load().expect("load");
        log.truncate_to(5).expect("truncate");
        append(&mut log, simple(5, 2_000));
        let error = plan.load().expect_err("the range was rewritten");
        assert!(error.to_string().contains("truncated"), "{error}");
        assert!(plan.while_unchanged(|_| Ok(())).is_err());
        // A range wholly below the cut holds what it held.
        assert_eq!(below.load().expect("below the cut"), before);
        let fresh = log.read_plan(5, usize::MAX, i64::MAX, true).expect("plan");
        assert_eq!(batches_in(&fresh.load().expect("load")), vec![(5, 9)]);
    }

    #[test]
    fn a_plan_refuses_once_its_file_was_reused_at_the_same_base() {
        let (_dir, mut log) = log_with_batches_of(&[5, 5]);
        let plan = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        log.truncate_fully_and_start_at(0).expect("restart at 0");
        append(&mut log, simple(5, 2_000));
        assert!(plan.load().is_err());
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
