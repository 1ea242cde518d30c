//! One segment: a `.log` file of batches plus its offset and time indexes.
//!
//! The log file is shared (`Arc<File>`) with read plans and sync handles so reads and fsyncs
//! happen outside the partition lock; writes use `pwrite` at the known end.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::batch::{BatchHeaderInfo, BatchView};
use super::error::{Result, StorageError};
use super::index::OffsetIndex;
use super::recent::{BatchSpan, RecentBatches};
use super::reservation::Reservation;
use super::scan::{HeaderScan, ScanError};
use super::time_index::TimeIndex;
use super::vectored;

/// Extension of segment data files.
pub(crate) const LOG_SUFFIX: &str = "log";
/// Extension of offset index files.
pub(crate) const INDEX_SUFFIX: &str = "index";
/// Extension of time index files.
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Appended to the names of a retired segment's files ([`Segment::retire`]).
pub(crate) const DELETED_SUFFIX: &str = ".deleted";
/// Appended to the file names of a cleaned copy until it replaces its segments (opening a
/// log removes such leftovers, as every `.tmp` file).
pub(crate) const STAGED_SUFFIX: &str = ".compact.tmp";

/// Whether `name` is a file of a retired segment, which a restart deletes.
pub(crate) fn is_retired(name: &str) -> bool {
    name.ends_with(DELETED_SUFFIX)
}

/// `<20-digit zero-padded base offset>.<suffix>`, Kafka's naming, so tools sort them.
pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}.{suffix}")
}

/// Base offset encoded in a segment file name, if it is one.
pub(crate) fn parse_log_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Per-batch facts the segment needs to index an append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendedBatch {
    /// First offset.
    pub(crate) base_offset: i64,
    /// Size on disk.
    pub(crate) size: u32,
    /// Last offset.
    pub(crate) last_offset: i64,
    /// Max timestamp after any LogAppendTime rewrite.
    pub(crate) max_timestamp: i64,
}

impl AppendedBatch {
    /// A batch of `size` bytes not yet given offsets: `last_offset` holds its last offset
    /// delta until the log places it.
    pub(crate) fn unplaced(size: u32, view: &BatchView<'_>) -> AppendedBatch {
        AppendedBatch {
            base_offset: 0,
            size,
            last_offset: i64::from(view.last_offset_delta()),
            max_timestamp: view.max_timestamp(),
        }
    }
}

/// The cuts of one segment file's bytes in place (a truncation, or the file reopened
/// truncated at the same base offset), for reads planned before one: appends only add bytes
/// past a planned range and a deleted or replaced file stays readable through its open handle,
/// so a cut is the one thing that can change the bytes a plan names. Each cut waits for the
/// reads of planned ranges under way ([`Cuts::while_uncut`]), then records where it cuts; a
/// read that finds a cut below the end of its range since its plan refuses instead of
/// returning other bytes. Cuts are rare (a follower's truncations), so all are kept.
#[derive(Debug, Default)]
pub(crate) struct Cuts(RwLock<Vec<u64>>);

/// The error of a read whose planned range was cut since it was planned.
pub(crate) const CUT_SINCE_PLANNED: &str =
    "the segment file was truncated into the range since the read was planned";

impl Cuts {
    /// Cuts so far.
    pub(crate) fn count(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Records a cut to `size` bytes about to happen, once no read of a planned range is
    /// under way.
    pub(crate) fn cut(&self, size: u64) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(size);
    }

    /// Runs `read` of a range ending at byte `end` with no cut under way, unless a cut since
    /// `planned_at` (the count when the range was planned) fell below `end`: then an error,
    /// and `read` does not run.
    pub(crate) fn while_uncut<T>(
        &self,
        planned_at: usize,
        end: u64,
        read: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let cuts = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if cuts
            .get(planned_at..)
            .unwrap_or_default()
            .iter()
            .any(|&at| at < end)
        {
            return Err(io::Error::other(CUT_SINCE_PLANNED));
        }
        read()
    }
}

/// A segment of the partition log.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<File>,
    /// In-place cuts of `log`, shared with the reads planned on it.
    cuts: Arc<Cuts>,
    /// Bytes of valid batches in the file.
    size: u64,
    /// Offset after the last batch (the base offset when empty).
    next_offset: i64,
    pub(crate) index: OffsetIndex,
    pub(crate) time_index: TimeIndex,
    bytes_since_index: u64,
    /// Largest batch max timestamp, -1 when none.
    max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    offset_of_max_timestamp: i64,
    /// Wall time of the first append (or first batch timestamp after reopen), for segment.ms.
    rolling_base_ms: Option<i64>,
    /// Positions of the latest batches, for planning tail reads without I/O.
    recent: RecentBatches,
    /// Blocks reserved ahead of the appends.
    reservation: Reservation,
}

fn open_log(path: &Path, truncate: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
        .map_err(|source| StorageError::SegmentOpen {
            path: path.to_path_buf(),
            source,
        })
}

impl Segment {
    /// Creates an empty segment, replacing any stale files with the same base offset.
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Self> {
        let mut segment = Self::open_files(dir, base_offset, true)?;
        segment.index.clear()?;
        segment.time_index.clear()?;
        Ok(segment)
    }

    /// Opens an existing segment's files without validating them; the caller recovers it
    /// ([`super::recovery`]) before use.
    pub(crate) fn open_unchecked(dir: &Path, base_offset: i64) -> Result<(Self, bool, bool)> {
        Self::open_unchecked_named(dir, base_offset, "")
    }

    /// Opens a cleaned copy written beside the segments it will replace, its files named
    /// as the segment's with [`STAGED_SUFFIX`], so its indexes can be built before it is
    /// swapped in; [`Self::rename_log`] and [`Self::unstage_indexes`] give it its names.
    pub(crate) fn open_staged(dir: &Path, base_offset: i64) -> Result<Self> {
        Ok(Self::open_unchecked_named(dir, base_offset, STAGED_SUFFIX)?.0)
    }

    fn open_unchecked_named(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
    ) -> Result<(Self, bool, bool)> {
        let path = |kind: &str| dir.join(format!("{}{suffix}", file_name(base_offset, kind)));
        let log_path = path(LOG_SUFFIX);
        let log = open_log(&log_path, false)?;
        let size = log
            .metadata()
            .map_err(|source| StorageError::SegmentRead {
                path: log_path.clone(),
                source,
            })?
            .len();
        let (index, index_sane) = OffsetIndex::open(&path(INDEX_SUFFIX), base_offset, size)?;
        let (time_index, time_sane) =
            TimeIndex::open(&path(TIME_INDEX_SUFFIX), base_offset, i64::MAX)?;
        Ok((
            Self {
                base_offset,
                log_path,
                log: Arc::new(log),
                cuts: Arc::default(),
                size,
                next_offset: base_offset,
                index,
                time_index,
                bytes_since_index: 0,
                max_timestamp: -1,
                offset_of_max_timestamp: -1,
                rolling_base_ms: None,
                recent: RecentBatches::new(base_offset),
                reservation: Reservation::new(size),
            },
            index_sane,
            time_sane,
        ))
    }

    fn open_files(dir: &Path, base_offset: i64, truncate: bool) -> Result<Self> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = open_log(&log_path, truncate)?;
        let (index, _) = OffsetIndex::open(
            &dir.join(file_name(base_offset, INDEX_SUFFIX)),
            base_offset,
            0,
        )?;
        let (time_index, _) = TimeIndex::open(
            &dir.join(file_name(base_offset, TIME_INDEX_SUFFIX)),
            base_offset,
            base_offset,
        )?;
        Ok(Self {
            base_offset,
            log_path,
            log: Arc::new(log),
            cuts: Arc::default(),
            size: 0,
            next_offset: base_offset,
            index,
            time_index,
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            rolling_base_ms: None,
            recent: RecentBatches::new(base_offset),
            reservation: Reservation::new(0),
        })
    }

    /// First offset this segment may hold.
    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Offset after the last batch.
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes of valid data.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// True when no batch has been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Shared handle of the log file for reads and fsyncs outside the lock.
    pub(crate) fn log_file(&self) -> &Arc<File> {
        &self.log
    }

    /// In-place cuts of the log file, for reads planned on it.
    pub(crate) fn cuts(&self) -> &Arc<Cuts> {
        &self.cuts
    }

    /// Path of the log file.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Gives the log file another name; readers holding it keep reading it.
    pub(crate) fn rename_log(&mut self, to: &Path) -> Result<()> {
        fs::rename(&self.log_path, to).map_err(|source| StorageError::SegmentWrite {
            path: to.to_path_buf(),
            source,
        })?;
        self.log_path = to.to_path_buf();
        Ok(())
    }

    /// Gives a staged copy's index files the segment's own names in `dir`.
    pub(crate) fn unstage_indexes(&mut self, dir: &Path) -> Result<()> {
        self.index
            .rename_to(&dir.join(file_name(self.base_offset, INDEX_SUFFIX)))?;
        self.time_index
            .rename_to(&dir.join(file_name(self.base_offset, TIME_INDEX_SUFFIX)))
    }

    /// Largest timestamp and the (last) offset of its batch; (-1, -1) when empty.
    pub(crate) fn max_timestamp(&self) -> (i64, i64) {
        (self.max_timestamp, self.offset_of_max_timestamp)
    }

    /// When the segment started being written, for `segment.ms`.
    pub(crate) fn rolling_base_ms(&self) -> Option<i64> {
        self.rolling_base_ms
    }

    /// Largest timestamp for retention; falls back to the file's mtime when no batch carries
    /// a timestamp, as Kafka does.
    pub(crate) fn largest_timestamp_for_retention(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Writes already-validated batches, whose bytes are `parts` in order, at the end of the
    /// file with one (vectored) `pwrite` and indexes them. On failure the file is cut back so
    /// no partial batch stays visible.
    pub(crate) fn append(
        &mut self,
        parts: &[&[u8]],
        batches: &[AppendedBatch],
        index_interval: u32,
        now_ms: i64,
        preallocate: Option<u64>,
    ) -> Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.reservation
            .cover(&self.log, self.size + len as u64, preallocate);
        if let Err(source) = vectored::write_all_vectored_at(&self.log, parts, self.size) {
            let _ = self.log.set_len(self.size);
            self.reservation.cut(self.size);
            return Err(StorageError::SegmentWrite {
                path: self.log_path.clone(),
                source,
            });
        }
        let mut position = self.size;
        for batch in batches {
            self.index_batch(position, batch, index_interval);
            position += u64::from(batch.size);
        }
        self.size = position;
        self.rolling_base_ms.get_or_insert(now_ms);
        // The index files are written when the segment closes, not here: recovery rebuilds
        // the active segment's indexes from its log anyway, and writing them on every append
        // would only add dirty pages and journal work to each group-commit fsync.
        Ok(())
    }

    /// Updates in-memory index state for a batch at `position` (append and rebuild share it).
    pub(crate) fn index_batch(&mut self, position: u64, batch: &AppendedBatch, interval: u32) {
        if batch.max_timestamp > self.max_timestamp {
            self.max_timestamp = batch.max_timestamp;
            self.offset_of_max_timestamp = batch.last_offset;
        }
        if self.bytes_since_index > u64::from(interval) {
            self.index.push(batch.last_offset, position as u32);
            self.time_index
                .maybe_push(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += u64::from(batch.size);
        self.next_offset = batch.last_offset + 1;
        self.recent
            .push(batch.base_offset, batch.last_offset, position, batch.size);
    }

    /// Forgets indexes and derived state before recovery re-reads the whole file.
    pub(crate) fn reset_for_rebuild(&mut self) -> Result<()> {
        self.index.clear()?;
        self.time_index.clear()?;
        self.next_offset = self.base_offset;
        self.bytes_since_index = 0;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        self.rolling_base_ms = None;
        self.recent.clear();
        Ok(())
    }

    /// Writes indexes rebuilt in memory.
    pub(crate) fn persist_indexes(&mut self) -> Result<()> {
        self.index.persist()?;
        self.time_index.persist()
    }

    /// Sets the state recovery established. The first-append time is lost on restart; the
    /// file's creation time approximates it (segments are created by the append that rolls),
    /// falling back to the first batch's timestamp where the filesystem lacks birth times.
    pub(crate) fn set_recovered(
        &mut self,
        size: u64,
        next_offset: i64,
        first_timestamp: Option<i64>,
    ) {
        self.size = size;
        self.next_offset = next_offset.max(self.base_offset);
        self.rolling_base_ms = if size == 0 {
            None
        } else {
            self.created_ms().or(first_timestamp)
        };
    }

    fn created_ms(&self) -> Option<i64> {
        let created = self.log.metadata().and_then(|m| m.created()).ok()?;
        let since_epoch = created.duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(since_epoch.as_millis()).ok()
    }

    /// Restores timestamp state after loading a trusted segment.
    pub(crate) fn set_max_timestamp(&mut self, ts: i64, offset: i64) {
        if ts > self.max_timestamp {
            self.max_timestamp = ts;
            self.offset_of_max_timestamp = offset;
        }
    }

    /// Called when the segment stops being active: records the final max timestamp in the
    /// time index so a restart knows it without scanning, and writes both index files (until
    /// now they lived in memory only).
    pub(crate) fn on_roll(&mut self) -> Result<()> {
        self.recent.clear();
        self.reservation.release(&self.log, self.size);
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_push(self.max_timestamp, self.offset_of_max_timestamp);
        }
        self.persist_indexes()
    }

    /// Cuts the file to `size` bytes (recovery of a torn tail, follower truncation).
    pub(crate) fn truncate_file(&mut self, size: u64) -> Result<()> {
        self.cuts.cut(size);
        self.log
            .set_len(size)
            .map_err(|source| StorageError::SegmentWrite {
                path: self.log_path.clone(),
                source,
            })?;
        self.reservation.cut(size);
        self.size = size;
        Ok(())
    }

    /// Removes every batch with offsets at or after `offset`; a batch straddling `offset` is
    /// removed whole. Returns the segment's new next offset.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<i64> {
        let Some(found) = self.find_batch(offset)? else {
            return Ok(self.next_offset);
        };
        self.truncate_file(found.position)?;
        self.index.truncate_to_position(found.position)?;
        self.time_index.truncate_to_offset(found.base_offset)?;
        self.rebuild_tail_state()?;
        Ok(self.next_offset)
    }

    /// Recomputes next offset, max timestamp and bytes since the last index entry after a
    /// truncation, from the time index and the headers after the last offset index entry.
    fn rebuild_tail_state(&mut self) -> Result<()> {
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        self.next_offset = self.base_offset;
        if let Some((ts, off)) = self.time_index.last() {
            self.set_max_timestamp(ts, off);
        }
        let start = self.index.last().map_or(0, |(_, pos)| u64::from(pos));
        let mut bytes_since = 0u64;
        self.recent.clear();
        let file = Arc::clone(&self.log);
        let mut scan = HeaderScan::new(&file, start, self.size);
        while let Some(h) = scan.next_header().map_err(|e| self.scan_error(e))? {
            self.set_max_timestamp(h.max_timestamp, h.last_offset);
            self.recent
                .push(h.base_offset, h.last_offset, h.position, h.size);
            self.next_offset = h.next_offset();
            // The indexed batch at `start` restarted the count, so it is the sum from there.
            bytes_since += u64::from(h.size);
        }
        self.bytes_since_index = bytes_since;
        if self.size == 0 {
            self.rolling_base_ms = None;
        }
        Ok(())
    }

    /// Loads a segment whose data is trusted (before the recovery point): checks that the
    /// last offset index entry points at a real batch and reads the headers after it.
    /// Returns `false` when the indexes do not match the log and must be rebuilt.
    pub(crate) fn load_trusted(&mut self) -> Result<bool> {
        if let Some((offset, pos)) = self.index.last() {
            let mut scan = HeaderScan::new(&self.log, u64::from(pos), self.size);
            match scan.next_header() {
                Ok(Some(h)) if h.last_offset == offset => {}
                Ok(_) | Err(ScanError::Invalid { .. }) => return Ok(false),
                Err(ScanError::Io(source)) => {
                    return Err(StorageError::SegmentRead {
                        path: self.log_path.clone(),
                        source,
                    })
                }
            }
        }
        match self.rebuild_tail_state() {
            Ok(()) => {}
            Err(StorageError::CorruptSegment { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        if self
            .time_index
            .last()
            .is_some_and(|(_, off)| off >= self.next_offset)
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// Header of the first batch whose last offset is >= `offset`, found through the offset
    /// index and a short header scan; `None` when every batch ends before `offset`.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<BatchHeaderInfo>> {
        let start = u64::from(self.index.lookup(offset));
        let mut scan = HeaderScan::new(&self.log, start, self.size);
        while let Some(h) = scan.next_header().map_err(|e| self.scan_error(e))? {
            if h.last_offset >= offset {
                return Ok(Some(h));
            }
        }
        Ok(None)
    }

    /// Plans a read of whole batches from the one holding `offset` (see
    /// [`super::PartitionLog::read_plan`]) as (position, length, last offset of the last batch
    /// taken, if any); `None` when no batch of this
    /// segment reaches `offset`. Recent batches are planned from memory, older ones through
    /// the offset index and a header scan.
    pub(crate) fn plan_read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset_exclusive: i64,
        min_one_batch: bool,
    ) -> Result<Option<(u64, usize, Option<i64>)>> {
        let mut plan = PlanBuilder {
            max_bytes,
            max_offset_exclusive,
            min_one_batch,
            position: None,
            length: 0,
            last_offset: None,
        };
        if let Some(recent) = self.recent.starting_at(offset) {
            for span in recent {
                if !plan.offer(span) {
                    break;
                }
            }
            return Ok(plan.finish());
        }
        let start = u64::from(self.index.lookup(offset));
        let mut scan = HeaderScan::new(&self.log, start, self.size);
        while let Some(h) = scan.next_header().map_err(|e| self.scan_error(e))? {
            if h.last_offset < offset {
                continue;
            }
            if !plan.offer((h.last_offset, h.position, h.size)) {
                break;
            }
        }
        Ok(plan.finish())
    }

    /// Calls `f` for each batch header from `position` until it returns `false`.
    pub(crate) fn scan_headers(
        &self,
        position: u64,
        mut f: impl FnMut(&BatchHeaderInfo) -> bool,
    ) -> Result<()> {
        let mut scan = HeaderScan::new(&self.log, position, self.size);
        while let Some(h) = scan.next_header().map_err(|e| self.scan_error(e))? {
            if !f(&h) {
                break;
            }
        }
        Ok(())
    }

    /// Reads `len` bytes at `position` (time lookups that decode records).
    pub(crate) fn read_at(&self, position: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.log
            .read_exact_at(&mut buf, position)
            .map_err(|source| StorageError::SegmentRead {
                path: self.log_path.clone(),
                source,
            })?;
        Ok(buf)
    }

    /// True while index files are held open (active, or closed but not yet synced).
    pub(crate) fn index_files_open(&self) -> bool {
        self.index.is_file_open() || self.time_index.is_file_open()
    }

    /// Gives up the index file handles of a closed segment: returned for a final fsync, and
    /// no longer held open by the segment.
    pub(crate) fn take_index_handles(&mut self) -> Vec<Arc<File>> {
        [
            self.index.take_file_handle(),
            self.time_index.take_file_handle(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Renames the segment's files to `<name>.deleted` and returns their new paths (Kafka's
    /// asynchronous segment deletion): a rename frees no blocks, so it is quick where the
    /// partition lock is held, and [`crate::RetiredFiles::delete`] frees the space after the
    /// lock is let go. Readers holding the files keep reading them; a restart deletes what
    /// is left ([`is_retired`]).
    pub(crate) fn retire(&self) -> Result<Vec<PathBuf>> {
        let mut retired = Vec::with_capacity(3);
        for path in [
            self.log_path.as_path(),
            self.index.path(),
            self.time_index.path(),
        ] {
            let mut name = path.as_os_str().to_owned();
            name.push(DELETED_SUFFIX);
            let to = PathBuf::from(name);
            match fs::rename(path, &to) {
                Ok(()) => retired.push(to),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StorageError::Delete {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        }
        Ok(retired)
    }

    /// Deletes the segment's files.
    pub(crate) fn delete_files(&self) -> Result<()> {
        for path in [
            self.log_path.as_path(),
            self.index.path(),
            self.time_index.path(),
        ] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StorageError::Delete {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn scan_error(&self, e: ScanError) -> StorageError {
        match e {
            ScanError::Io(source) => StorageError::SegmentRead {
                path: self.log_path.clone(),
                source,
            },
            ScanError::Invalid { position, error } => StorageError::CorruptSegment {
                path: self.log_path.clone(),
                position,
                source: error,
            },
        }
    }
}

/// Accumulates consecutive batches into a read plan under the fetch limits.
#[derive(Debug)]
struct PlanBuilder {
    max_bytes: usize,
    max_offset_exclusive: i64,
    min_one_batch: bool,
    position: Option<u64>,
    length: usize,
    /// Last offset of the last batch taken.
    last_offset: Option<i64>,
}

impl PlanBuilder {
    /// Takes the next batch if it fits; `false` when the plan is complete.
    fn offer(&mut self, (last_offset, position, size): BatchSpan) -> bool {
        let first = self.position.is_none();
        if first {
            self.position = Some(position);
        }
        let size = size as usize;
        if last_offset >= self.max_offset_exclusive {
            return false;
        }
        let fits = self.length + size <= self.max_bytes || (first && self.min_one_batch);
        if !fits {
            return false;
        }
        self.length += size;
        self.last_offset = Some(last_offset);
        true
    }

    fn finish(self) -> Option<(u64, usize, Option<i64>)> {
        self.position.map(|p| (p, self.length, self.last_offset))
    }
}
