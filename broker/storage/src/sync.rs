//! Durability: group commit with the fsync outside the partition lock, and checkpoints.
//!
//! The broker calls [`PartitionLog::pending_sync`] under the lock, runs the returned
//! [`PendingSync`] without it (one fsync covers every batch appended meanwhile), then reports
//! success with [`PartitionLog::mark_synced`]. Keep at most one sync in flight per partition.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::checkpoint::{self, HIGH_WATERMARK_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use super::error::{Result, StorageError};
use super::log::PartitionLog;

/// Bookkeeping of what has been handed out for syncing.
#[derive(Debug)]
pub(crate) struct SyncState {
    /// Log end offset covered by the last [`PendingSync`] handed out.
    requested: i64,
    /// A segment file was created since then, so the directory needs an fsync too.
    dir_dirty: bool,
    /// Lowest truncation point since the last sync was handed out: a sync started before a
    /// truncation must not vouch for data written after it.
    truncated_to: Option<i64>,
    /// Base offsets of segments rolled since then, whose indexes are final and need an fsync.
    rolled: Vec<i64>,
}

impl SyncState {
    /// Nothing pending beyond `synced`.
    pub(crate) fn new(synced: i64) -> Self {
        Self {
            requested: synced,
            dir_dirty: false,
            truncated_to: None,
            rolled: Vec::new(),
        }
    }

    /// Notes a new segment file.
    pub(crate) fn segment_created(&mut self) {
        self.dir_dirty = true;
    }

    /// Notes that the segment at `base_offset` stopped being active.
    pub(crate) fn segment_rolled(&mut self, base_offset: i64) {
        self.rolled.push(base_offset);
    }

    /// Notes a truncation to `end`.
    pub(crate) fn truncated(&mut self, end: i64) {
        self.requested = self.requested.min(end);
        self.truncated_to = Some(self.truncated_to.map_or(end, |t| t.min(end)));
        self.dir_dirty = true;
    }
}

/// When writes that no producer waits on should be fsynced (Kafka's `flush.messages` and
/// `flush.ms`; a rolled segment is always flushed, so recovery only rescans the active one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDue {
    /// Start an fsync now.
    Now,
    /// Start one within this many milliseconds.
    Within(u64),
    /// Leave it to the OS, the next roll or shutdown.
    Later,
}

/// Files to fsync, taken under the lock and run outside it.
#[derive(Debug)]
pub struct PendingSync {
    files: Vec<Arc<File>>,
    dir: Option<PathBuf>,
    offset: i64,
}

impl PendingSync {
    /// Log end offset that is durable once this sync succeeds.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Fsyncs the files (and the directory if segments were created) and returns the offset
    /// to pass to [`PartitionLog::mark_synced`].
    pub fn run(self) -> io::Result<i64> {
        for file in &self.files {
            file.sync_data()?;
        }
        if let Some(dir) = &self.dir {
            match checkpoint::sync_dir(dir) {
                // The partition was deleted meanwhile (DeleteTopics): nothing left to make
                // durable, and nobody can read it any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        Ok(self.offset)
    }
}

impl PartitionLog {
    /// Handles to fsync everything written since the last call, or `None` when nothing is.
    pub fn pending_sync(&mut self) -> Option<PendingSync> {
        let end = self.log_end_offset();
        if end <= self.sync.requested && !self.sync.dir_dirty && self.sync.rolled.is_empty() {
            return None;
        }
        let mut files = self.log_files_from(self.sync.requested);
        let active = self.segments.len() - 1;
        for segment in &mut self.segments[..active] {
            if self.sync.rolled.contains(&segment.base_offset()) {
                files.extend(segment.take_index_handles());
            }
        }
        self.sync.rolled.clear();
        let dir = self.sync.dir_dirty.then(|| self.dir.clone());
        self.sync.requested = end;
        self.sync.dir_dirty = false;
        self.sync.truncated_to = None;
        Some(PendingSync {
            files,
            dir,
            offset: end,
        })
    }

    /// Handles to fsync every segment written after the recovery point, and the directory
    /// (segments may have been created since), leaving the group-commit bookkeeping alone so
    /// the sync may run beside a [`PendingSync`] of the group commit. Its offset does not
    /// advance the recovery point: that takes the rolled segments' indexes too.
    pub fn sync_since_recovery_point(&self) -> PendingSync {
        PendingSync {
            files: self.log_files_from(self.recovery_point),
            dir: Some(self.dir.clone()),
            offset: self.log_end_offset(),
        }
    }

    /// The log files that may hold writes at or after offset `from`.
    fn log_files_from(&self, from: i64) -> Vec<Arc<File>> {
        let active = self.segments.len() - 1;
        self.segments
            .iter()
            .enumerate()
            .filter(|(i, s)| s.next_offset() > from || (*i == active && s.base_offset() >= from))
            .map(|(_, s)| Arc::clone(s.log_file()))
            .collect()
    }

    /// Whether unsynced writes call for an fsync, by the topic's flush settings.
    pub fn flush_due(&self) -> FlushDue {
        let unsynced = self.log_end_offset() - self.recovery_point;
        if !self.sync.rolled.is_empty() || (unsynced > 0 && unsynced >= self.config.flush_messages)
        {
            FlushDue::Now
        } else if unsynced > 0 && self.config.flush_ms != i64::MAX {
            FlushDue::Within(u64::try_from(self.config.flush_ms).unwrap_or(0))
        } else {
            FlushDue::Later
        }
    }

    /// Records that data up to `offset` is on disk, advancing the recovery point (written to
    /// disk lazily by [`PartitionLog::checkpoint`]).
    pub fn mark_synced(&mut self, offset: i64) {
        let mut offset = offset.min(self.log_end_offset());
        if let Some(cap) = self.sync.truncated_to {
            offset = offset.min(cap);
        }
        self.recovery_point = self.recovery_point.max(offset);
    }

    /// Fsyncs everything and writes all checkpoints, synchronously (shutdown, tests).
    pub fn flush(&mut self) -> Result<()> {
        if let Some(pending) = self.pending_sync() {
            let offset = pending.run().map_err(|source| StorageError::SegmentWrite {
                path: self.dir.clone(),
                source,
            })?;
            self.mark_synced(offset);
        }
        self.checkpoint()
    }

    /// Persists high watermark, recovery point and log start offset if they changed.
    pub fn checkpoint(&mut self) -> Result<()> {
        if let Some(plan) = self.checkpoint_plan() {
            plan.write()?;
            self.mark_checkpointed(&plan);
        }
        Ok(())
    }

    /// The checkpoint files that changed since the last write, to be written by
    /// [`CheckpointPlan::write`] outside the partition lock (each write fsyncs twice), then
    /// confirmed with [`PartitionLog::mark_checkpointed`]. Plans of one partition must be
    /// written one at a time, in the order they were taken.
    pub fn checkpoint_plan(&self) -> Option<CheckpointPlan> {
        let values = (
            self.high_watermark,
            self.recovery_point,
            self.log_start_offset,
        );
        let old = self.persisted;
        let changed = [
            old.map(|o| o.0) != Some(values.0),
            old.map(|o| o.1) != Some(values.1),
            old.map(|o| o.2) != Some(values.2),
        ];
        changed.contains(&true).then(|| CheckpointPlan {
            dir: self.dir.clone(),
            values,
            changed,
        })
    }

    /// Records that `plan` was written.
    pub fn mark_checkpointed(&mut self, plan: &CheckpointPlan) {
        self.persisted = Some(plan.values);
    }
}

/// Checkpoint values taken under the lock and written without it.
#[derive(Debug, Clone)]
pub struct CheckpointPlan {
    dir: std::path::PathBuf,
    values: (i64, i64, i64),
    changed: [bool; 3],
}

impl CheckpointPlan {
    /// Writes the changed checkpoint files atomically and durably.
    pub fn write(&self) -> Result<()> {
        let files = [
            HIGH_WATERMARK_FILE,
            RECOVERY_POINT_FILE,
            LOG_START_OFFSET_FILE,
        ];
        let values = [self.values.0, self.values.1, self.values.2];
        for ((file, value), changed) in files.iter().zip(values).zip(self.changed) {
            if changed {
                checkpoint::write_offset(&self.dir, file, value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{append, open, simple, small_config};
    use crate::{FlushDue, LogConfig};

    #[test]
    fn unsynced_writes_are_due_by_flush_messages_flush_ms_and_rolls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path().join("kafka").as_path(), LogConfig::default());
        append(&mut log, simple(3, 1_000));
        assert_eq!(
            log.flush_due(),
            FlushDue::Later,
            "Kafka's default: the OS decides"
        );

        let by_count = LogConfig {
            flush_messages: 4,
            ..LogConfig::default()
        };
        let mut log = open(dir.path().join("count").as_path(), by_count);
        assert_eq!(log.flush_due(), FlushDue::Later, "nothing unsynced");
        append(&mut log, simple(3, 1_000));
        assert_eq!(log.flush_due(), FlushDue::Later);
        append(&mut log, simple(1, 1_000));
        assert_eq!(log.flush_due(), FlushDue::Now);
        log.flush().expect("flush");
        assert_eq!(log.flush_due(), FlushDue::Later);

        let by_time = LogConfig {
            flush_ms: 250,
            ..LogConfig::default()
        };
        let mut log = open(dir.path().join("time").as_path(), by_time);
        assert_eq!(log.flush_due(), FlushDue::Later, "nothing unsynced");
        append(&mut log, simple(1, 1_000));
        assert_eq!(log.flush_due(), FlushDue::Within(250));

        let mut log = open(dir.path().join("roll").as_path(), small_config());
        while log.segment_count() < 2 {
            append(&mut log, simple(2, 1_000));
        }
        assert_eq!(
            log.flush_due(),
            FlushDue::Now,
            "a rolled segment is flushed"
        );
        log.flush().expect("flush");
        append(&mut log, simple(1, 1_000));
        assert_eq!(log.flush_due(), FlushDue::Later);
    }

    #[test]
    fn a_sync_of_a_deleted_partition_succeeds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = dir.path().join("deleted-0");
        let mut log = open(partition.as_path(), small_config());
        while log.segment_count() < 2 {
            append(&mut log, simple(2, 1_000));
        }
        let pending = log.pending_sync().expect("something to sync");
        assert!(
            pending.dir.is_some(),
            "a new segment makes the directory dirty"
        );
        std::fs::remove_dir_all(&partition).expect("delete the partition");
        assert!(pending.run().is_ok());
    }

    #[test]
    fn pending_sync_covers_new_writes_and_mark_synced_advances_the_recovery_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        assert!(log.pending_sync().is_none());
        append(&mut log, simple(3, 1_000));
        append(&mut log, simple(2, 1_000));
        let pending = log.pending_sync().expect("something to sync");
        assert_eq!(pending.offset(), 5);
        assert!(log.pending_sync().is_none(), "handed out once");
        append(&mut log, simple(1, 1_000));
        let synced = pending.run().expect("fsync");
        log.mark_synced(synced);
        assert_eq!(log.recovery_point(), 5);
        let next = log.pending_sync().expect("the later append");
        assert_eq!(next.offset(), 6);
        log.mark_synced(next.run().expect("fsync"));
        assert_eq!(log.recovery_point(), 6);
    }

    #[test]
    fn a_sync_started_before_a_truncation_does_not_vouch_for_later_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        for _ in 0..4 {
            append(&mut log, simple(5, 1_000));
        }
        let pending = log.pending_sync().expect("pending");
        log.truncate_to(10).expect("truncate");
        append(&mut log, simple(10, 1_000));
        log.mark_synced(pending.run().expect("fsync"));
        assert_eq!(log.recovery_point(), 10);
    }

    #[test]
    fn closed_segments_release_their_index_files_once_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..30 {
            append(&mut log, simple(2, 1_000));
        }
        assert!(log.segments.iter().all(|s| s.index_files_open()));
        log.flush().expect("flush");
        let (closed, active) = log.segments.split_at(log.segments.len() - 1);
        assert!(closed.iter().all(|s| !s.index_files_open()));
        assert!(active[0].index_files_open());
        // A truncation into a closed segment reopens its indexes for writing.
        log.truncate_to(3).expect("truncate");
        append(&mut log, simple(40, 1_000));
        for _ in 0..20 {
            append(&mut log, simple(2, 1_000));
        }
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(log.log_end_offset(), 82);
        assert!(log.segment_count() > 2);
        assert!(
            log.segments[..log.segments.len() - 1]
                .iter()
                .all(|s| s.index_files_open()),
            "recovered, not yet synced"
        );
    }

    #[test]
    fn checkpoints_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..30 {
            append(&mut log, simple(2, 1_000));
        }
        log.set_high_watermark(42);
        log.flush().expect("flush");
        assert_eq!(log.recovery_point(), 60);
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(log.high_watermark(), 42);
        assert_eq!(log.recovery_point(), 60);
        assert_eq!(log.log_end_offset(), 60);
        assert_eq!(log.latest_epoch(), Some(0));
    }
}
