//! Retention: deleting whole old segments by age, total size and log start offset, as
//! Kafka's `deleteOldSegments`, for `cleanup.policy=delete` logs and the local part of tiered
//! ones. The active segment is never deleted.

use std::fs;
use std::path::PathBuf;

use tracing::info;

use super::error::{Result, StorageError};
use super::log::PartitionLog;

/// What a retention pass did (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes freed.
    pub deleted_bytes: u64,
    /// Log start offset after the pass.
    pub log_start_offset: i64,
    /// Whether the active segment was rolled because `segment.ms` elapsed.
    pub rolled: bool,
}

/// Files of segments removed from a log, renamed (`.deleted`) and not yet deleted: deleting
/// a large file takes the file system a while, which no request waiting for the partition
/// lock should wait for (Kafka deletes segments asynchronously too).
#[derive(Debug, Default)]
#[must_use = "retired files are only deleted by `delete`"]
pub struct RetiredFiles(Vec<PathBuf>);

impl RetiredFiles {
    /// Deletes the files; one that is already gone is not an error. The rest are still
    /// deleted when one fails; a restart deletes what is left.
    pub fn delete(self) -> Result<()> {
        let mut first_error = None;
        for path in self.0 {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    first_error.get_or_insert(StorageError::Delete { path, source });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// True when there is nothing to delete.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How many of the oldest segments (given by their end offsets, oldest first) lie wholly
/// below `copied_end`, the end of what the bucket holds: on a tiered log only those may be
/// deleted locally.
pub(crate) fn uploaded_prefix(end_offsets: impl Iterator<Item = i64>, copied_end: i64) -> usize {
    end_offsets.take_while(|&end| end <= copied_end).count()
}

impl PartitionLog {
    /// Rolls the active segment if `segment.ms` elapsed (so idle partitions age out too),
    /// then deletes the oldest non-active segments while their newest timestamp is older than
    /// `retention.ms`, the log exceeds `retention.bytes`, or they lie wholly below the log
    /// start offset; advances the log start offset accordingly.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome> {
        let mut outcome = RetentionOutcome::default();
        let active = self.active();
        if !active.is_empty()
            && active
                .rolling_base_ms()
                .is_some_and(|t| now_ms - t >= self.config.roll_ms())
        {
            self.roll()?;
            outcome.rolled = true;
        }
        let (retention_ms, retention_bytes) = self.config.retention_limits();
        let mut excess = if retention_bytes >= 0 {
            self.size_bytes() as i64 - retention_bytes
        } else {
            0
        };
        let mut count = 0;
        while count + 1 < self.segments.len() {
            let segment = &self.segments[count];
            let below_start = self.segments[count + 1].base_offset() <= self.log_start_offset;
            let expired = retention_ms >= 0
                && now_ms - segment.largest_timestamp_for_retention() > retention_ms;
            let oversize = retention_bytes >= 0 && excess >= segment.size() as i64;
            if !(below_start || expired || oversize) {
                break;
            }
            excess -= segment.size() as i64;
            count += 1;
        }
        if self.config.remote_storage {
            // Never lose a segment the bucket does not hold yet (KIP-405).
            count = count.min(uploaded_prefix(
                self.segments.iter().map(|s| s.next_offset()),
                self.remote_copied_end,
            ));
        }
        let (deleted_bytes, _) = self.delete_oldest_segments(count)?;
        outcome.deleted_segments = count;
        outcome.deleted_bytes = deleted_bytes;
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }

    /// Advances the log start offset to `before_offset` (DeleteRecords) and deletes segments
    /// wholly below it. Offsets past the high watermark cannot be deleted. Returns the new log
    /// start offset.
    pub fn delete_records(&mut self, before_offset: i64) -> Result<i64> {
        if before_offset > self.high_watermark || before_offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                offset: before_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        if before_offset > self.log_start_offset {
            self.log_start_offset = before_offset;
            self.epochs.truncate_from_start(before_offset)?;
        }
        let count = self
            .segments
            .windows(2)
            .take_while(|pair| pair[1].base_offset() <= self.log_start_offset)
            .count();
        self.delete_oldest_segments(count)?;
        Ok(self.log_start_offset)
    }

    /// The files of the segments retention and DeleteRecords removed, to delete once the
    /// partition lock is let go ([`RetiredFiles::delete`]).
    pub fn take_retired(&mut self) -> RetiredFiles {
        RetiredFiles(std::mem::take(&mut self.retired))
    }

    /// Removes the `count` oldest segments (never the active one), their files retired for
    /// [`Self::take_retired`], and moves the log start offset past them. Returns bytes freed
    /// and segments removed.
    fn delete_oldest_segments(&mut self, count: usize) -> Result<(u64, usize)> {
        let count = count.min(self.segments.len().saturating_sub(1));
        if count == 0 {
            return Ok((0, 0));
        }
        let mut freed = 0;
        for segment in self.segments.drain(..count) {
            freed += segment.size();
            info!(
                segment = %segment.log_path().display(),
                bytes = segment.size(),
                "deleting segment by retention"
            );
            self.retired.extend(segment.retire()?);
        }
        self.sync.segment_created();
        let first_base = self.segments[0].base_offset();
        if first_base > self.log_start_offset {
            self.log_start_offset = first_base;
            self.epochs.truncate_from_start(first_base)?;
        }
        self.high_watermark = self.high_watermark.max(self.log_start_offset);
        self.recovery_point = self.recovery_point.max(self.log_start_offset);
        Ok((freed, count))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{append, open, read_all, simple, small_config, NOW};
    use crate::{LogConfig, StorageError};

    /// A log with `retention.ms` 10 s and small segments: 60 records a minute old, then 60
    /// written now.
    fn old_then_recent(dir: &std::path::Path) -> crate::PartitionLog {
        let config = LogConfig {
            retention_ms: 10_000,
            ..small_config()
        };
        let mut log = open(dir, config);
        for _ in 0..30 {
            append(&mut log, simple(2, NOW - 60_000));
        }
        for _ in 0..30 {
            append(&mut log, simple(2, NOW));
        }
        log
    }

    #[test]
    fn old_segments_are_deleted_by_time_but_never_the_active_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = old_then_recent(dir.path());
        let segments = log.segment_count();
        let outcome = log.enforce_retention(NOW).expect("retention");
        assert!(outcome.deleted_segments > 0);
        assert_eq!(log.segment_count(), segments - outcome.deleted_segments);
        assert_eq!(outcome.log_start_offset, log.log_start_offset());
        assert_eq!(log.log_start_offset(), log.segments[0].base_offset());
        assert!(log.log_start_offset() <= 60, "recent data kept");
        // Everything old enough goes at a later time, but the active segment stays.
        let outcome = log.enforce_retention(NOW + 1_000_000).expect("retention");
        assert!(outcome.deleted_segments > 0);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_end_offset(), 120);
        assert!(matches!(
            log.read_plan(0, 10, i64::MAX, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
    }

    /// Files with the `.deleted` suffix in `dir`.
    fn retired_in(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".deleted"))
            .collect();
        names.sort();
        names
    }

    /// Retention only renames what it removes; the files are deleted when the caller lets the
    /// partition lock go, a read planned before still reads them, and a restart deletes
    /// retired files nobody deleted.
    #[test]
    fn removed_segments_are_renamed_then_deleted_outside_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = old_then_recent(dir.path());
        log.set_high_watermark(log.log_end_offset());
        let first = log.segments[0].log_path().to_path_buf();
        let planned = log.read_plan(0, 1 << 20, i64::MAX, true).expect("plan");
        let expected = planned.load().expect("load before");

        let outcome = log.enforce_retention(NOW).expect("retention");
        assert!(outcome.deleted_segments > 0);
        assert!(!first.exists(), "no longer under its name");
        let retired = retired_in(dir.path());
        assert_eq!(retired.len(), 3 * outcome.deleted_segments, "{retired:?}");
        assert_eq!(planned.load().expect("load after"), expected);

        let files = log.take_retired();
        assert!(!files.is_empty());
        assert!(log.take_retired().is_empty(), "taken once");
        files.delete().expect("delete");
        assert!(retired_in(dir.path()).is_empty());
        assert_eq!(planned.load().expect("load after delete"), expected);

        // Retired and never deleted (a crash in between): the next open deletes them.
        let end = log.log_end_offset();
        let start = log.log_start_offset();
        log.delete_records(end - 1).expect("delete records");
        assert!(!retired_in(dir.path()).is_empty());
        drop(log);
        let log = open(dir.path(), LogConfig::default());
        assert!(retired_in(dir.path()).is_empty());
        assert_eq!(log.log_end_offset(), end);
        assert!(log.log_start_offset() > start);
    }

    #[test]
    fn oldest_segments_are_deleted_while_the_log_exceeds_retention_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            retention_ms: -1,
            retention_bytes: 2_500,
            ..small_config()
        };
        let mut log = open(dir.path(), config);
        for _ in 0..60 {
            append(&mut log, simple(2, 1_000));
        }
        assert!(log.size_bytes() > 5_000);
        let outcome = log.enforce_retention(NOW).expect("retention");
        assert!(outcome.deleted_bytes > 0);
        // Kafka never goes below retention.bytes: it keeps the segment that would.
        assert!(log.size_bytes() >= 2_500);
        assert!(log.size_bytes() < 2_500 + 1_024, "deletes all it may");
        let start = log.log_start_offset();
        assert_eq!(read_all(&log, start).first().map(|b| b.0), Some(start));
        drop(log);
        let log = open(dir.path(), LogConfig::default());
        assert_eq!(log.log_start_offset(), start);
    }

    /// With `cleanup.policy=delete`, and with an empty one (KIP-1161), which keeps the whole
    /// log in the bucket but still only the local part on disk.
    #[test]
    fn a_tiered_log_deletes_by_local_retention_only_what_the_bucket_holds() {
        for delete in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = LogConfig {
                delete,
                retention_ms: -1,
                retention_bytes: -1,
                remote_storage: true,
                local_retention_ms: -2,
                local_retention_bytes: 1,
                ..small_config()
            };
            let mut log = open(dir.path(), config);
            for _ in 0..60 {
                append(&mut log, simple(2, 1_000));
            }
            let segments = log.segment_count();
            assert!(segments > 3);
            // Nothing uploaded: nothing deleted, whatever local.retention.bytes says.
            let outcome = log.enforce_retention(NOW).expect("retention");
            assert_eq!(outcome.deleted_segments, 0);
            assert_eq!(log.log_start_offset(), 0);
            // Uploaded up to the end of the second segment: exactly those two go.
            let second_end = log.segments[1].next_offset();
            log.set_remote_copied_end(second_end);
            let outcome = log.enforce_retention(NOW).expect("retention");
            assert_eq!(outcome.deleted_segments, 2, "delete={delete}");
            assert_eq!(log.log_start_offset(), second_end);
            // An upload end inside a segment does not free it.
            log.set_remote_copied_end(log.segments[0].next_offset() - 1);
            assert_eq!(
                log.enforce_retention(NOW)
                    .expect("retention")
                    .deleted_segments,
                0
            );
        }
    }

    #[test]
    fn uploaded_prefix_counts_segments_wholly_below_the_copied_end() {
        use super::uploaded_prefix;
        assert_eq!(uploaded_prefix([10, 20, 30].into_iter(), 0), 0);
        assert_eq!(uploaded_prefix([10, 20, 30].into_iter(), 19), 1);
        assert_eq!(uploaded_prefix([10, 20, 30].into_iter(), 20), 2);
        assert_eq!(uploaded_prefix([10, 20, 30].into_iter(), 99), 3);
    }

    /// Retention of 100 ms and 1000 bytes, locally 10 ms when tiered.
    fn local_and_total_retention() -> LogConfig {
        LogConfig {
            retention_ms: 100,
            retention_bytes: 1_000,
            local_retention_ms: 10,
            local_retention_bytes: -2,
            ..LogConfig::default()
        }
    }

    #[test]
    fn local_retention_falls_back_to_the_total_and_applies_only_to_tiered_logs() {
        let config = local_and_total_retention();
        assert_eq!(config.local_retention(), (100, 1_000), "not tiered");
        let tiered = LogConfig {
            remote_storage: true,
            ..config
        };
        assert_eq!(tiered.local_retention(), (10, 1_000));
    }

    /// Kafka 4's empty `cleanup.policy` (KIP-1161) deletes by neither age nor size and
    /// compacts nothing; a tiered log still keeps only its local part.
    #[test]
    fn retention_limits_follow_the_cleanup_policy() {
        let with = |delete, compact, remote_storage| LogConfig {
            delete,
            compact,
            remote_storage,
            ..local_and_total_retention()
        };
        assert_eq!(with(true, false, false).retention_limits(), (100, 1_000));
        assert_eq!(with(true, true, false).retention_limits(), (100, 1_000));
        assert_eq!(with(false, true, false).retention_limits(), (-1, -1));
        assert_eq!(with(false, false, false).retention_limits(), (-1, -1));
        assert_eq!(with(true, false, true).retention_limits(), (10, 1_000));
        assert_eq!(with(false, false, true).retention_limits(), (10, 1_000));
    }

    #[test]
    fn an_empty_cleanup_policy_keeps_segments_past_retention_and_compacts_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            delete: false,
            compact: false,
            retention_ms: 10_000,
            retention_bytes: 100,
            min_cleanable_dirty_ratio: 0.0,
            ..small_config()
        };
        let mut log = open(dir.path(), config);
        for _ in 0..60 {
            append(&mut log, simple(2, NOW - 60_000));
        }
        let segments = log.segment_count();
        assert!(segments > 3);
        let outcome = log.enforce_retention(NOW + 1_000_000).expect("retention");
        assert_eq!(outcome.deleted_segments, 0);
        assert_eq!((log.log_start_offset(), log.segment_count()), (0, segments));
        assert!(log
            .compaction_job(NOW + 1_000_000, crate::CleanerTxns::default())
            .is_none());
    }

    #[test]
    fn an_idle_active_segment_is_rolled_after_segment_ms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_ms: 1_000,
            retention_ms: 5_000,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        log.append(&mut simple(1, NOW), 0, NOW).expect("append");
        let outcome = log.enforce_retention(NOW + 500).expect("retention");
        assert!(!outcome.rolled);
        let outcome = log.enforce_retention(NOW + 10_000).expect("retention");
        assert!(outcome.rolled);
        assert_eq!(outcome.deleted_segments, 1);
        assert_eq!(log.log_start_offset(), 1);
        assert_eq!(log.log_end_offset(), 1);
    }

    #[test]
    fn delete_records_advances_the_log_start_up_to_the_high_watermark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..40 {
            append(&mut log, simple(2, 1_000));
        }
        log.set_high_watermark(50);
        assert!(matches!(
            log.delete_records(51),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        let segments = log.segment_count();
        assert_eq!(log.delete_records(45).expect("delete"), 45);
        assert_eq!(log.log_start_offset(), 45);
        assert!(log.segment_count() < segments);
        assert!(log.segments[0].base_offset() <= 45);
        // The batch holding the new start is still served whole.
        assert_eq!(read_all(&log, 45).first(), Some(&(44, 45)));
        log.checkpoint().expect("checkpoint");
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(log.log_start_offset(), 45);
    }

    /// DeleteRecords moves the first leader epoch to the new log start without waiting for
    /// the device: whether a crash keeps that write, loses it (the older checkpoint) or
    /// damages the file, the log opens with epochs that start at its log start.
    #[test]
    fn a_lost_or_damaged_epoch_truncation_is_repaired_when_the_log_opens() {
        let epoch_file = |dir: &std::path::Path| dir.join("leader-epoch-checkpoint");
        for crash_leaves in ["the new file", "the old file", "a damaged file"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut log = open(dir.path(), small_config());
            for i in 0..40 {
                let epoch = if i < 20 { 1 } else { 3 };
                log.append(&mut simple(2, 1_000), epoch, NOW)
                    .expect("append");
            }
            log.set_high_watermark(80);
            let before = std::fs::read(epoch_file(dir.path())).expect("checkpoint");
            assert_eq!(log.delete_records(45).expect("delete"), 45);
            let expected = [(3, 45)];
            let entries = |log: &crate::PartitionLog| -> Vec<(i32, i64)> {
                log.epoch_entries()
                    .iter()
                    .map(|e| (e.epoch, e.start_offset))
                    .collect()
            };
            assert_eq!(entries(&log), expected);
            log.checkpoint().expect("checkpoint");
            drop(log);
            match crash_leaves {
                "the old file" => std::fs::write(epoch_file(dir.path()), &before),
                "a damaged file" => std::fs::write(epoch_file(dir.path()), b""),
                _ => Ok(()),
            }
            .expect("crash");
            let log = open(dir.path(), small_config());
            assert_eq!(log.log_start_offset(), 45, "{crash_leaves}");
            assert_eq!(entries(&log), expected, "{crash_leaves}");
            assert_eq!(log.epoch_for_offset(45), Some(3), "{crash_leaves}");
        }
    }
}
