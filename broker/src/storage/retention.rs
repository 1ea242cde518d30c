//! Retention: deleting whole old segments by age, total size and log start offset, as
//! Kafka's `deleteOldSegments`. The active segment is never deleted.

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
                .is_some_and(|t| now_ms - t >= self.config.segment_ms)
        {
            self.roll()?;
            outcome.rolled = true;
        }
        let retention_ms = self.config.retention_ms;
        let retention_bytes = self.config.retention_bytes;
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

    /// Deletes the `count` oldest segments (never the active one) and moves the log start
    /// offset past them. Returns bytes freed and segments deleted.
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
            segment.delete_files()?;
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
