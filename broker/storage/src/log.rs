//! `PartitionLog`: the segmented log of one partition.
//!
//! The broker keeps each log behind a mutex. Hot paths do no fsync and no payload reads under
//! it: appends are one `pwrite`, fetches get a [`super::ReadPlan`] whose bytes are read after
//! the lock is released, and durability is a [`super::PendingSync`] run outside the lock.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::batch::{split_batches, split_verified_batches, BatchError, BatchViewMut};
use super::checkpoint::{self, HIGH_WATERMARK_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use super::compaction::CleanerState;
use super::config::{LogConfig, TimestampType};
use super::epoch::LeaderEpochCache;
use super::error::{Result, StorageError};
use super::recovery::load_segments;
use super::segment::{AppendedBatch, Segment};
use super::split_batch::SplitBatch;
use super::sync::SyncState;
use super::writeback::WritebackMark;

/// What an append assigned, for the produce response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Broker timestamp applied, or -1 for CreateTime topics.
    pub log_append_time: i64,
    /// Log start offset after the append (reported in produce responses).
    pub log_start_offset: i64,
}

/// Where [`PartitionLog::place`] put an append.
#[derive(Debug, Clone, Copy)]
struct Placed {
    base_offset: i64,
    last_offset: i64,
    /// The topic stamps batches with the broker's clock.
    log_append: bool,
}

/// The log of one partition; see the module docs for the locking model.
#[derive(Debug)]
pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    /// Sorted by base offset; never empty; the last one is active.
    pub(super) segments: Vec<Segment>,
    pub(super) log_start_offset: i64,
    pub(super) high_watermark: i64,
    pub(super) recovery_point: i64,
    pub(super) epochs: LeaderEpochCache,
    pub(super) sync: SyncState,
    /// Checkpointed values, to skip rewriting unchanged files.
    pub(super) persisted: Option<(i64, i64, i64)>,
    /// Reused per append to avoid an allocation per request.
    scratch: Vec<AppendedBatch>,
    /// Where compaction got to.
    pub(super) cleaner: CleanerState,
    /// Offset after the last record the bucket holds (tiered logs): local retention deletes
    /// nothing above it. 0 until the tiered-storage task says otherwise, so a restart never
    /// frees an unuploaded segment.
    pub(super) remote_copied_end: i64,
    /// Files of removed segments, renamed and waiting to be deleted outside the lock.
    pub(super) retired: Vec<PathBuf>,
    /// How far writeback of the active segment was started.
    pub(super) writeback: WritebackMark,
}

/// Bytes and offsets bound for the active segment but not yet written to it (a follower's
/// batches written together), which a roll decision counts as held.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pending {
    /// Their size.
    pub(super) bytes: u64,
    /// How many offsets they hold.
    pub(super) offsets: i64,
}

impl PartitionLog {
    /// Opens (creating if needed) the partition directory and recovers it: unflushed segments
    /// are validated batch by batch and cut at the first torn or corrupt batch.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|source| StorageError::Directory {
            path: dir.clone(),
            source,
        })?;
        let recovery_point = checkpoint::read_offset(&dir, RECOVERY_POINT_FILE)?.unwrap_or(0);
        let start_checkpoint = checkpoint::read_offset(&dir, LOG_START_OFFSET_FILE)?;
        let mut segments = load_segments(&dir, recovery_point, config.index_interval_bytes)?;
        if segments.is_empty() {
            let base = start_checkpoint.unwrap_or(0).max(0);
            segments.push(Segment::create(&dir, base)?);
        }
        let first_base = segments.first().map_or(0, Segment::base_offset);
        let log_end = segments.last().map_or(0, Segment::next_offset);
        let log_start_offset = start_checkpoint
            .unwrap_or(first_base)
            .clamp(first_base, log_end.max(first_base));
        let high_watermark = checkpoint::read_offset(&dir, HIGH_WATERMARK_FILE)?
            .unwrap_or(log_start_offset)
            .clamp(log_start_offset, log_end);
        let recovery_point = recovery_point.clamp(0, log_end);
        let (epochs, epochs_sane) = LeaderEpochCache::load(&dir)?;
        let cleaner = CleanerState::load(&dir, log_end)?;
        let mut log = Self {
            dir,
            config,
            segments,
            log_start_offset,
            high_watermark,
            recovery_point,
            epochs,
            sync: SyncState::new(recovery_point),
            persisted: None,
            scratch: Vec::new(),
            cleaner,
            remote_copied_end: 0,
            retired: Vec::new(),
            writeback: WritebackMark::default(),
        };
        // Closed segments rebuilt by recovery still hold their indexes open: sync and release
        // them with the next group commit.
        let closed = log.segments.len() - 1;
        for i in 0..closed {
            if log.segments[i].index_files_open() {
                let base = log.segments[i].base_offset();
                log.sync.segment_rolled(base);
            }
        }
        if !epochs_sane && log.size_bytes() > 0 {
            log.rebuild_epoch_cache()?;
        }
        log.epochs.truncate_from_end(log_end)?;
        log.epochs.truncate_from_start(log_start_offset)?;
        info!(
            dir = %log.dir.display(),
            log_start_offset,
            log_end_offset = log_end,
            segments = log.segments.len(),
            "opened partition log"
        );
        Ok(log)
    }

    /// Rebuilds the leader epoch cache from batch headers when its checkpoint is missing or
    /// damaged, so OffsetsForLeaderEpoch never answers from a wrong cache.
    fn rebuild_epoch_cache(&mut self) -> Result<()> {
        warn!(dir = %self.dir.display(), "leader epoch checkpoint missing or damaged; rebuilding from batch headers");
        let mut assigned = Vec::new();
        let mut latest = -1;
        for segment in &self.segments {
            segment.scan_headers(0, |h| {
                if h.partition_leader_epoch > latest {
                    latest = h.partition_leader_epoch;
                    assigned.push((h.partition_leader_epoch, h.base_offset));
                }
                true
            })?;
        }
        self.epochs.clear()?;
        for (epoch, offset) in assigned {
            self.epochs.assign_in_memory(epoch, offset);
        }
        self.epochs.persist()
    }

    /// Appends the batches of one produce request (all or nothing): validates every batch
    /// (header, CRC, size limit), assigns offsets from the log end, stamps the leader epoch
    /// (and LogAppendTime if configured) in place, rolls the segment if due, and writes the
    /// bytes with one write. Does not fsync; see [`PartitionLog::pending_sync`].
    pub fn append(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_checking(batches, leader_epoch, now_ms, true)
    }

    /// [`PartitionLog::append`] of batches whose CRCs the caller verified (the partition
    /// checks every batch before it takes its lock): headers are checked, CRCs not again.
    pub fn append_verified(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_checking(batches, leader_epoch, now_ms, false)
    }

    fn append_checking(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
        check_crc: bool,
    ) -> Result<AppendInfo> {
        let mut metas = std::mem::take(&mut self.scratch);
        metas.clear();
        let result = self.append_with(batches, leader_epoch, now_ms, check_crc, &mut metas);
        self.scratch = metas;
        result
    }

    fn append_with(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
        check_crc: bool,
        metas: &mut Vec<AppendedBatch>,
    ) -> Result<AppendInfo> {
        let max = self.config.max_message_bytes;
        let split = if check_crc {
            split_batches(batches)
        } else {
            split_verified_batches(batches)
        };
        for (index, batch) in split.enumerate() {
            let view = batch.map_err(|source| StorageError::InvalidBatch { index, source })?;
            let size = view.size();
            if size > max as usize {
                return Err(StorageError::InvalidBatch {
                    index,
                    source: BatchError::BatchTooLarge { size, max },
                });
            }
            metas.push(AppendedBatch::unplaced(size as u32, &view));
        }
        let placed = self.place(metas, batches.len() as u64, now_ms)?;
        let mut position = 0usize;
        for meta in metas.iter() {
            let end = position + meta.size as usize;
            let mut batch = BatchViewMut::new_unchecked(&mut batches[position..end]);
            batch.set_base_offset(meta.base_offset);
            batch.set_partition_leader_epoch(leader_epoch);
            if placed.log_append {
                batch.set_log_append_time(now_ms);
            }
            position = end;
        }
        self.write(&[batches], metas, leader_epoch, placed, now_ms)
    }

    /// Appends one client batch the partition checked whole (header, CRC, records, size)
    /// while its records stay the request's bytes: as [`PartitionLog::append_verified`],
    /// with the header rewritten apart and both parts written with one vectored write.
    pub fn append_split(
        &mut self,
        batch: &mut SplitBatch,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let (size, max) = (batch.len(), self.config.max_message_bytes);
        if size > max as usize {
            return Err(StorageError::InvalidBatch {
                index: 0,
                source: BatchError::BatchTooLarge { size, max },
            });
        }
        let mut metas = [AppendedBatch::unplaced(size as u32, &batch.view())];
        let placed = self.place(&mut metas, size as u64, now_ms)?;
        batch.set_base_offset(placed.base_offset);
        batch.set_partition_leader_epoch(leader_epoch);
        if placed.log_append {
            batch.set_log_append_time(now_ms);
        }
        self.write(&batch.parts(), &metas, leader_epoch, placed, now_ms)
    }

    /// Gives `metas` (each batch's size, and its last offset delta in `last_offset`) their
    /// offsets from the log end, rolling first if due; the caller then stamps its bytes.
    fn place(&mut self, metas: &mut [AppendedBatch], bytes: u64, now_ms: i64) -> Result<Placed> {
        if metas.is_empty() {
            return Err(StorageError::EmptyAppend);
        }
        let offsets: i64 = metas.iter().map(|m| m.last_offset + 1).sum();
        if offsets > i64::from(i32::MAX) {
            return Err(StorageError::OffsetOverflow { offsets });
        }
        self.maybe_roll(bytes, offsets, now_ms)?;
        let base_offset = self.log_end_offset();
        let log_append = self.config.timestamp_type == TimestampType::LogAppendTime;
        let mut offset = base_offset;
        for meta in metas.iter_mut() {
            if log_append {
                meta.max_timestamp = now_ms;
            }
            // `last_offset` held the delta until now.
            meta.base_offset = offset;
            meta.last_offset += offset;
            offset = meta.last_offset + 1;
        }
        Ok(Placed {
            base_offset,
            last_offset: offset - 1,
            log_append,
        })
    }

    /// Writes the stamped batches `parts` (in order) that `metas` describe.
    fn write(
        &mut self,
        parts: &[&[u8]],
        metas: &[AppendedBatch],
        leader_epoch: i32,
        placed: Placed,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.epochs.assign(leader_epoch, placed.base_offset)?;
        let interval = self.config.index_interval_bytes;
        let preallocate = self.config.preallocated_bytes();
        self.active_mut()
            .append(parts, metas, interval, now_ms, preallocate)?;
        Ok(AppendInfo {
            base_offset: placed.base_offset,
            last_offset: placed.last_offset,
            log_append_time: if placed.log_append { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
        })
    }

    /// Rolls before an append of `bytes` bytes and `offsets` offsets when the active segment
    /// is non-empty and would grow past `segment.bytes`, is older than `segment.ms`, or could
    /// not address the new offsets with 32-bit relative offsets.
    pub(super) fn maybe_roll(&mut self, bytes: u64, offsets: i64, now_ms: i64) -> Result<()> {
        if self.needs_roll(Pending::default(), bytes, offsets, now_ms) {
            self.roll()?;
        }
        Ok(())
    }

    /// Whether `bytes` holding `offsets` offsets, appended to the active segment after what it
    /// holds and what is `pending` for it, need a new segment: the segment would be full
    /// (`segment.bytes`), is old (`segment.ms`), or its relative offsets would overflow. An
    /// empty segment takes anything.
    pub(super) fn needs_roll(
        &self,
        pending: Pending,
        bytes: u64,
        offsets: i64,
        now_ms: i64,
    ) -> bool {
        let active = self.active();
        if active.is_empty() && pending.bytes == 0 {
            return false;
        }
        let too_big = active.size() + pending.bytes + bytes > self.config.effective_segment_bytes();
        // A segment starts ageing at its first write.
        let too_old = active
            .rolling_base_ms()
            .or((pending.bytes > 0).then_some(now_ms))
            .is_some_and(|t| now_ms - t >= self.config.roll_ms());
        let next_offset = active.next_offset() + pending.offsets;
        let overflow = next_offset + offsets - 1 - active.base_offset() > i64::from(i32::MAX);
        too_big || too_old || overflow
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub(super) fn roll(&mut self) -> Result<()> {
        let next = self.log_end_offset();
        self.active_mut().on_roll()?;
        let rolled = self.active().base_offset();
        self.sync.segment_rolled(rolled);
        let segment = Segment::create(&self.dir, next)?;
        self.segments.push(segment);
        self.sync.segment_created();
        Ok(())
    }

    pub(super) fn active(&self) -> &Segment {
        // `segments` is never empty: open creates one and nothing removes the last.
        &self.segments[self.segments.len() - 1]
    }

    pub(super) fn active_mut(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Index of the segment that holds `offset` (the last with base <= offset), or 0.
    pub(super) fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// First offset still readable.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record will get (LEO).
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Offset up to which records are committed (replicated); consumers read below it.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Sets the high watermark (clamped to the log); persisted by [`PartitionLog::checkpoint`].
    pub fn set_high_watermark(&mut self, offset: i64) {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset());
    }

    /// Offset up to which data is known to be fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Total bytes of all segments (the log size metric, retention.bytes).
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Current configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Applies new topic settings; they take effect from the next append or retention pass.
    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Latest leader epoch with data in this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// OffsetsForLeaderEpoch answer, as Kafka's `LeaderEpochFileCache.endOffsetFor`:
    /// (largest known epoch <= `epoch`, its end offset); the latest epoch ends at the log
    /// end; (-1, -1) when `epoch` is newer than any known epoch or no epoch is known.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader epoch `offset` was written in, as far as the epoch cache reaches: what
    /// ListOffsets answers for a found offset (Kafka's `epochForOffset`).
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epochs.epoch_for_offset(offset)
    }

    /// The leader epoch cache entries, oldest first.
    pub fn epoch_entries(&self) -> &[super::epoch::EpochEntry] {
        self.epochs.entries()
    }

    /// Removes every record at or after `offset` (follower truncation, KIP-101); a batch
    /// straddling `offset` is removed whole. Epochs starting at or after the new end go too,
    /// even when no record does: a former leader records its epoch on election and may have
    /// appended nothing before the next one, and that entry must go or the follower keeps
    /// reporting an epoch its leader never had (Kafka's `UnifiedLog.truncateTo`).
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.log_end_offset() {
            return self.epochs.truncate_from_end(self.log_end_offset());
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        while self.segments.len() > 1 && self.active().base_offset() >= offset {
            if let Some(segment) = self.segments.pop() {
                segment.delete_files()?;
            }
        }
        let end = self.active_mut().truncate_to(offset)?;
        self.after_truncation(end)?;
        // Persist the lowered recovery point now, as Kafka does: segments past it will be
        // rewritten, and a restart must not trust them on the strength of an old checkpoint.
        self.checkpoint()
    }

    /// Deletes all data and restarts the log empty at `offset` (a follower far behind the
    /// leader's log start).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        // Create first so the log always has an active segment, even if a delete fails.
        // A segment already based at `offset` has its files truncated and reused: reads
        // planned on it must not send what the reused file holds next.
        for reused in self.segments.iter().filter(|s| s.base_offset() == offset) {
            reused.cuts().cut(0);
        }
        let fresh = Segment::create(&self.dir, offset)?;
        let old = std::mem::replace(&mut self.segments, vec![fresh]);
        self.sync.segment_created();
        self.log_start_offset = offset;
        self.high_watermark = offset;
        self.recovery_point = offset;
        self.sync.truncated(offset);
        self.writeback_cut();
        let deleted = old
            .iter()
            .filter(|s| s.base_offset() != offset)
            .try_for_each(Segment::delete_files);
        self.epochs.clear()?;
        deleted?;
        self.checkpoint()
    }

    /// Gives a log just restarted at its log start the leader-epoch entries a remote
    /// segment's checkpoint holds below it (KIP-405's follower rebuild): each is assigned in
    /// order, then the one in force at the log start is moved to start there.
    pub fn restore_epochs(&mut self, epochs: &[(i32, i64)]) -> Result<()> {
        for &(epoch, start) in epochs {
            self.epochs.assign(epoch, start)?;
        }
        self.epochs.truncate_from_start(self.log_start_offset)
    }

    fn after_truncation(&mut self, end: i64) -> Result<()> {
        self.epochs.truncate_from_end(end)?;
        self.high_watermark = self.high_watermark.min(end);
        self.recovery_point = self.recovery_point.min(end);
        self.sync.truncated(end);
        self.writeback_cut();
        Ok(())
    }

    /// Removes the partition directory and everything in it (topic deletion).
    pub fn delete(self) -> Result<()> {
        fs::remove_dir_all(&self.dir).map_err(|source| StorageError::Delete {
            path: self.dir.clone(),
            source,
        })
    }

    /// Calls `f` with the header of every batch whose last offset is >= `from_offset`, in
    /// order, without reading payloads (producer-state rebuild after restart).
    pub fn scan_batch_headers(
        &self,
        from_offset: i64,
        mut f: impl FnMut(&super::batch::BatchHeaderInfo),
    ) -> Result<()> {
        let first = self.segment_index_for(from_offset);
        for segment in &self.segments[first..] {
            let start = u64::from(segment.index.lookup(from_offset));
            segment.scan_headers(start, |h| {
                if h.last_offset >= from_offset {
                    f(h);
                }
                true
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{split_batches, BatchView};
    use crate::test_util::{append, open, read_all, simple, small_config, NOW};

    #[test]
    fn logs_and_read_plans_can_cross_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<PartitionLog>();
        shareable::<crate::ReadPlan>();
        shareable::<crate::PendingSync>();
    }

    #[test]
    fn appends_get_consecutive_offsets_and_read_back_intact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        let a = append(&mut log, simple(1, 1_000));
        let b = append(&mut log, simple(5, 2_000));
        assert_eq!((a.base_offset, a.last_offset), (0, 0));
        assert_eq!((b.base_offset, b.last_offset), (1, 5));
        assert_eq!(b.log_append_time, -1);
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(read_all(&log, 0), vec![(0, 0), (1, 5)]);
        let bytes = log
            .read_plan(1, usize::MAX, i64::MAX, true)
            .expect("plan")
            .load()
            .expect("load");
        let view = BatchView::parse(&bytes).expect("crc still valid");
        assert_eq!(view.partition_leader_epoch(), 0);
        assert_eq!(view.record_count(), 5);
    }

    #[test]
    fn one_request_with_several_batches_is_one_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        let mut request = simple(2, 1_000);
        request.extend_from_slice(&simple(3, 1_000));
        let info = append(&mut log, request);
        assert_eq!((info.base_offset, info.last_offset), (0, 4));
        assert_eq!(read_all(&log, 0), vec![(0, 1), (2, 4)]);
    }

    #[test]
    fn verified_appends_check_headers_and_lengths_but_do_not_recompute_crcs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        let mut flipped = simple(1, 1_000);
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        // The caller vouches for the CRC (it computed it); the log does not pay for it again.
        assert!(log.append_verified(&mut flipped.clone(), 0, NOW).is_ok());
        assert!(log.append(&mut flipped, 0, NOW).is_err());
        let mut torn = simple(1, 1_000);
        torn.truncate(torn.len() - 3);
        assert!(matches!(
            log.append_verified(&mut torn, 0, NOW),
            Err(StorageError::InvalidBatch {
                source: BatchError::Truncated { .. },
                ..
            })
        ));
    }

    #[test]
    fn a_bad_batch_rejects_the_whole_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        let mut bad = simple(1, 1_000);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let mut request = simple(1, 1_000);
        request.extend_from_slice(&bad);
        let err = log.append(&mut request, 0, NOW).expect_err("corrupt");
        assert!(matches!(
            err,
            StorageError::InvalidBatch {
                index: 1,
                source: BatchError::CrcMismatch { .. }
            }
        ));
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(log.size_bytes(), 0);
        assert!(matches!(
            log.append(&mut [], 0, NOW),
            Err(StorageError::EmptyAppend)
        ));
    }

    #[test]
    fn batches_over_max_message_bytes_are_too_large() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            max_message_bytes: 100,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        let mut big = simple(10, 1_000);
        let err = log.append(&mut big, 0, NOW).expect_err("too large");
        assert!(matches!(
            err,
            StorageError::InvalidBatch {
                source: BatchError::BatchTooLarge { max: 100, .. },
                ..
            }
        ));
    }

    #[test]
    fn log_append_time_topics_stamp_the_broker_clock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        let info = append(&mut log, simple(3, 5));
        assert_eq!(info.log_append_time, NOW);
        let bytes = log
            .read_plan(0, usize::MAX, i64::MAX, true)
            .expect("plan")
            .load()
            .expect("load");
        let view = BatchView::parse(&bytes).expect("crc recomputed");
        assert!(view.is_log_append_time());
        assert_eq!(view.max_timestamp(), NOW);
    }

    #[test]
    fn a_split_batch_is_stored_as_the_same_batch_appended_whole() {
        for timestamp_type in [TimestampType::CreateTime, TimestampType::LogAppendTime] {
            let config = LogConfig {
                timestamp_type,
                ..LogConfig::default()
            };
            let (whole_dir, split_dir) =
                (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let mut whole = open(whole_dir.path(), config.clone());
            let mut split = open(split_dir.path(), config);
            for records in [3, 1, 4] {
                let mut bytes = simple(records, 5);
                let mut parts = SplitBatch::new(bytes.clone().freeze()).unwrap();
                let expected = whole.append_verified(&mut bytes, 2, NOW).unwrap();
                assert_eq!(split.append_split(&mut parts, 2, NOW).unwrap(), expected);
            }
            let stored = |log: &PartitionLog| {
                let plan = log.read_plan(0, usize::MAX, i64::MAX, true).unwrap();
                plan.load().unwrap()
            };
            assert_eq!(stored(&split), stored(&whole), "{timestamp_type:?}");
            assert_eq!(read_all(&split, 0), vec![(0, 2), (3, 3), (4, 7)]);
        }
    }

    #[test]
    fn a_split_batch_over_max_message_bytes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            max_message_bytes: 100,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        let mut batch = SplitBatch::new(simple(10, 5).freeze()).unwrap();
        let refused = log.append_split(&mut batch, 0, NOW).unwrap_err();
        assert!(matches!(
            refused,
            StorageError::InvalidBatch {
                source: BatchError::BatchTooLarge { max: 100, .. },
                ..
            }
        ));
        assert_eq!(log.log_end_offset(), 0);
    }

    #[test]
    fn segments_roll_by_size_and_reads_cross_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..50 {
            append(&mut log, simple(2, 1_000));
        }
        assert!(log.segment_count() > 3, "{} segments", log.segment_count());
        let all = read_all(&log, 0);
        assert_eq!(all.len(), 50);
        assert!(all.windows(2).all(|w| w[1].0 == w[0].1 + 1));
        assert_eq!(read_all(&log, 25).first(), Some(&(24, 25)));
        for segment in &log.segments {
            assert!(segment.size() <= 1024);
        }
    }

    #[test]
    fn only_the_active_segment_holds_blocks_past_its_data() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..50 {
            append(&mut log, simple(2, 1_000));
        }
        let on_disk = |s: &Segment| {
            let meta = s.log_file().metadata().unwrap();
            (meta.len(), meta.blocks() * 512)
        };
        let (active, closed) = log.segments.split_last().unwrap();
        assert!(closed.len() >= 3, "{} closed segments", closed.len());
        for segment in closed {
            let (len, allocated) = on_disk(segment);
            assert_eq!(len, segment.size());
            assert!(
                allocated <= len.next_multiple_of(4096),
                "{allocated} for {len}"
            );
        }
        let (len, allocated) = on_disk(active);
        assert_eq!(len, active.size());
        assert!(
            allocated >= len + crate::reservation::WINDOW,
            "{allocated} for {len}"
        );
        let before = read_all(&log, 0);
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(read_all(&log, 0), before, "the reserved blocks are no data");
    }

    #[test]
    fn preallocate_reserves_the_whole_segment_at_its_first_append() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let segment_bytes = 8 << 20;
        let config = LogConfig {
            segment_bytes,
            preallocate: true,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        append(&mut log, simple(2, 1_000));
        let meta = log.segments[0].log_file().metadata().unwrap();
        assert_eq!(meta.len(), log.segments[0].size());
        assert!(
            meta.blocks() * 512 >= segment_bytes,
            "{}",
            meta.blocks() * 512
        );
    }

    #[test]
    fn segments_roll_by_age_of_the_first_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_ms: 1_000,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        log.append(&mut simple(1, 0), 0, NOW).expect("append");
        log.append(&mut simple(1, 0), 0, NOW + 999).expect("append");
        assert_eq!(log.segment_count(), 1);
        log.append(&mut simple(1, 0), 0, NOW + 1_000)
            .expect("append");
        assert_eq!(log.segment_count(), 2);
        assert_eq!(log.active().base_offset(), 2);
        assert_eq!(read_all(&log, 0), vec![(0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn index_lookups_work_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            index_interval_bytes: 150,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config.clone());
        for i in 0..50 {
            append(&mut log, simple(3, i));
        }
        log.flush().expect("flush");
        drop(log);
        let log = open(dir.path(), config);
        assert_eq!(log.log_end_offset(), 150);
        assert!(log.active().index.last().is_some());
        for offset in [0, 1, 77, 100, 149] {
            let bytes = log
                .read_plan(offset, 1, i64::MAX, true)
                .expect("plan")
                .load()
                .expect("load");
            let batch = split_batches(&bytes).next().expect("one").expect("valid");
            assert!(batch.base_offset() <= offset && offset <= batch.last_offset());
        }
    }

    #[test]
    fn leader_epochs_are_cached_and_answer_end_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        for epoch in [0, 0, 2, 2, 5] {
            log.append(&mut simple(2, 1_000), epoch, NOW)
                .expect("append");
        }
        assert_eq!(log.latest_epoch(), Some(5));
        assert_eq!(log.end_offset_for_epoch(0), (0, 4));
        assert_eq!(log.end_offset_for_epoch(1), (0, 4));
        assert_eq!(log.end_offset_for_epoch(2), (2, 8));
        assert_eq!(log.end_offset_for_epoch(5), (5, 10));
        assert_eq!(log.end_offset_for_epoch(6), (-1, -1));
        drop(log);
        let log = open(dir.path(), LogConfig::default());
        assert_eq!(log.end_offset_for_epoch(2), (2, 8));
    }

    #[test]
    fn truncate_to_removes_data_and_epochs_and_appends_continue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for i in 0..20 {
            log.append(&mut simple(2, 1_000), i / 5, NOW)
                .expect("append");
        }
        log.set_high_watermark(40);
        let segments_before = log.segment_count();
        log.truncate_to(13).expect("truncate mid-batch");
        // The batch [12, 13] straddles 13 and goes whole.
        assert_eq!(log.log_end_offset(), 12);
        assert_eq!(log.high_watermark(), 12);
        assert!(log.segment_count() < segments_before);
        assert_eq!(log.latest_epoch(), Some(1));
        assert_eq!(log.end_offset_for_epoch(1), (1, 12));
        let info = log.append(&mut simple(1, 1_000), 7, NOW).expect("append");
        assert_eq!(info.base_offset, 12);
        assert_eq!(log.end_offset_for_epoch(1), (1, 12));
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(log.log_end_offset(), 13);
        assert_eq!(read_all(&log, 0).last(), Some(&(12, 12)));
    }

    #[test]
    fn truncating_at_the_end_drops_an_epoch_started_without_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        log.append(&mut simple(3, 1_000), 0, NOW).expect("append");
        log.start_epoch(1).expect("lead at epoch 1");
        assert_eq!(log.latest_epoch(), Some(1));
        log.truncate_to(3).expect("truncate at the end");
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.latest_epoch(), Some(0));
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(log.latest_epoch(), Some(0), "the removal is durable");
    }

    #[test]
    fn truncate_fully_restarts_the_log_at_an_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..10 {
            append(&mut log, simple(2, 1_000));
        }
        log.truncate_fully_and_start_at(500).expect("truncate");
        assert_eq!(log.log_start_offset(), 500);
        assert_eq!(log.log_end_offset(), 500);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.latest_epoch(), None);
        append(&mut log, simple(1, 1_000));
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(log.log_start_offset(), 500);
        assert_eq!(read_all(&log, 500), vec![(500, 500)]);
        assert!(matches!(
            log.read_plan(10, 100, i64::MAX, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn scan_batch_headers_reports_producer_fields_from_an_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..10 {
            append(&mut log, simple(3, 1_000));
        }
        let mut seen = Vec::new();
        log.scan_batch_headers(7, |h| {
            seen.push((h.base_offset, h.last_offset, h.producer_id))
        })
        .expect("scan");
        assert_eq!(seen.first(), Some(&(6, 8, -1)));
        assert_eq!(seen.len(), 8);
    }
}
