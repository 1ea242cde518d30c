//! Writeback pacing for writes no fsync is coming for: a follower's appends, by default never
//! fsynced (Kafka leaves them to the page cache). Left alone, they pile up as dirty pages until
//! the kernel writes them back all at once, seconds later and hundreds of megabytes at a
//! time, and every fsync the broker needs meanwhile (the commit journal's rounds that acks=all
//! producers wait on) queues on the device behind that burst. Starting their writeback in
//! steps as they are written keeps the device streaming instead, with little dirty at any
//! time: the journal's fsyncs then wait behind at most a step.

use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::sync::Arc;

use rustix::fs::{fadvise, Advice};

use super::log::PartitionLog;

/// Bytes a log's active segment takes on before their writeback is started: large enough to
/// be written as few requests, small next to the device's write cache.
pub const WRITEBACK_STEP: u64 = 4 << 20;

/// Ranges handed to writeback end on a page boundary, so the page the next append writes into
/// is never in one.
const PAGE: u64 = 4096;

/// How far the active segment's writeback was started: the segment, by base offset, and the
/// byte position.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WritebackMark {
    segment: i64,
    position: u64,
}

/// A range of a segment file whose writeback should start, taken under the partition lock by
/// [`PartitionLog::writeback_due`] and started with [`Writeback::start`] off the request path
/// (starting it may wait for room in the device's queue).
#[derive(Debug)]
pub struct Writeback {
    file: Arc<File>,
    offset: u64,
    len: NonZeroU64,
}

impl Writeback {
    /// Bytes in the range.
    pub fn bytes(&self) -> u64 {
        self.len.get()
    }

    /// Starts writing the range's dirty pages back without waiting for them (Linux starts
    /// writeback of a range advised `DONTNEED`; it drops only pages already clean, so pages
    /// still being written stay cached, and later reads of dropped ones come from the disk).
    pub fn start(&self) -> io::Result<()> {
        fadvise(&*self.file, self.offset, Some(self.len), Advice::DontNeed)?;
        Ok(())
    }
}

impl PartitionLog {
    /// The range of the active segment written since the last call whose writeback should
    /// start now: `None` until it holds [`WRITEBACK_STEP`] bytes. A new segment starts its
    /// count at its beginning (the rolled one is fsynced whole).
    pub fn writeback_due(&mut self) -> Option<Writeback> {
        let (segment, size, marked) = self.writeback_mark();
        let to = size / PAGE * PAGE;
        let from = marked.min(to);
        let len = NonZeroU64::new(to - from).filter(|len| len.get() >= WRITEBACK_STEP);
        let position = if len.is_some() { to } else { from };
        self.writeback = WritebackMark { segment, position };
        let len = len?;
        Some(Writeback {
            file: Arc::clone(self.active().log_file()),
            offset: from,
            len,
        })
    }

    /// Takes the mark back to the end of the log after a truncation, so what is written
    /// over the cut is counted again.
    pub(super) fn writeback_cut(&mut self) {
        let (segment, size, marked) = self.writeback_mark();
        self.writeback = WritebackMark {
            segment,
            position: marked.min(size),
        };
    }

    /// The active segment's base offset and size, and the mark's position in it (its start
    /// when the mark is in an earlier segment).
    fn writeback_mark(&self) -> (i64, u64, u64) {
        let active = self.active();
        let segment = active.base_offset();
        let marked = if self.writeback.segment == segment {
            self.writeback.position
        } else {
            0
        };
        (segment, active.size(), marked)
    }
}

#[cfg(test)]
mod tests {
    use super::{PAGE, WRITEBACK_STEP};
    use crate::test_util::{append, batch, open, BatchSpec};
    use crate::LogConfig;

    /// Appends 64 KiB-valued batches until they add up to at least `bytes`.
    fn grow(log: &mut crate::PartitionLog, bytes: u64) {
        let mut grown = 0;
        while grown < bytes {
            let one = batch(&BatchSpec {
                records: 1,
                value_len: 64 << 10,
                ..BatchSpec::default()
            });
            grown += one.len() as u64;
            append(log, one);
        }
    }

    #[test]
    fn writeback_starts_a_step_at_a_time_in_contiguous_page_aligned_ranges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        grow(&mut log, WRITEBACK_STEP / 2);
        assert!(log.writeback_due().is_none(), "less than a step written");
        let mut next = 0;
        for _ in 0..3 {
            grow(&mut log, WRITEBACK_STEP);
            let range = log.writeback_due().expect("a step written");
            assert_eq!(range.offset, next, "ranges follow one another");
            assert!(range.bytes() >= WRITEBACK_STEP);
            let end = range.offset + range.bytes();
            assert_eq!(end % PAGE, 0, "ends on a page");
            assert!(end <= log.active().size() && log.active().size() - end < PAGE);
            range.start().expect("writeback started");
            assert!(log.writeback_due().is_none(), "nothing new since");
            next = end;
        }
        let read = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        assert_eq!(
            read.load().expect("load").len(),
            read.length,
            "still readable"
        );
    }

    #[test]
    fn a_roll_or_a_truncation_takes_the_mark_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 3 * WRITEBACK_STEP,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        grow(&mut log, 2 * WRITEBACK_STEP);
        let first = log.writeback_due().expect("due");
        assert_eq!(first.offset, 0);
        log.truncate_to(1).expect("truncate");
        grow(&mut log, WRITEBACK_STEP);
        let after_cut = log.writeback_due().expect("due after the cut");
        assert!(
            after_cut.offset < PAGE * 32,
            "restarts at the cut, not past it"
        );
        let segment = log.active().base_offset();
        while log.active().base_offset() == segment {
            grow(&mut log, PAGE);
        }
        assert!(
            log.writeback_due().is_none(),
            "the new segment holds little"
        );
        grow(&mut log, WRITEBACK_STEP);
        let rolled = log.writeback_due().expect("due in the new segment");
        assert_eq!(rolled.offset, 0, "a new segment counts from its start");
    }
}
