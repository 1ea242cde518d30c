//! Appends of batches a follower copied from its leader: offsets, leader epochs and timestamps
//! stay exactly as the leader wrote them (Kafka's `appendAsFollower`), so every replica holds
//! the same bytes at the same offsets.

use super::batch::{split_batches, BatchError, BatchView};
use super::error::{Result, StorageError};
use super::log::PartitionLog;
use super::segment::AppendedBatch;

/// What a replicated append added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicated {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Log end offset after the append.
    pub end_offset: i64,
}

impl PartitionLog {
    /// Appends whole batches fetched from the leader, CRC-checked but otherwise untouched.
    /// Batches ending below the log end are skipped (already held); the rest must continue
    /// the log without a gap. A torn batch at the end of the data (a fetch cut at its byte
    /// limit) is left for the next fetch. Returns `None` when nothing was new.
    pub fn append_replicated(&mut self, records: &[u8], now_ms: i64) -> Result<Option<Replicated>> {
        let mut base_offset = None;
        let mut position = 0;
        for (index, batch) in split_batches(records).enumerate() {
            let view = match batch {
                Ok(view) => view,
                Err(BatchError::Truncated { .. }) if index > 0 || position == 0 => break,
                Err(source) => return Err(StorageError::InvalidBatch { index, source }),
            };
            position += view.size();
            let expected = self.log_end_offset();
            if view.last_offset() < expected {
                continue;
            }
            if view.base_offset() != expected {
                return Err(StorageError::NotContiguous {
                    expected,
                    found: view.base_offset(),
                });
            }
            self.append_one_replicated(&view, now_ms)?;
            base_offset.get_or_insert(expected);
        }
        Ok(base_offset.map(|base_offset| Replicated {
            base_offset,
            end_offset: self.log_end_offset(),
        }))
    }

    fn append_one_replicated(&mut self, view: &BatchView<'_>, now_ms: i64) -> Result<()> {
        let size = view.size();
        let offsets = view.last_offset() - view.base_offset() + 1;
        self.maybe_roll(size as u64, offsets, now_ms)?;
        let meta = AppendedBatch {
            base_offset: view.base_offset(),
            size: u32::try_from(size).map_err(|_| StorageError::OffsetOverflow { offsets })?,
            last_offset: view.last_offset(),
            max_timestamp: view.max_timestamp(),
        };
        self.epochs
            .assign(view.partition_leader_epoch(), view.base_offset())?;
        let interval = self.config.index_interval_bytes;
        self.active_mut()
            .append(view.as_bytes(), &[meta], interval, now_ms)
    }

    /// Records that a new leader epoch starts at the log end even before anything is written
    /// in it (KIP-101): a follower asking for the previous epoch's end then learns where it
    /// ended on this replica.
    pub fn start_epoch(&mut self, epoch: i32) -> Result<()> {
        if self
            .epochs
            .latest_epoch()
            .is_some_and(|latest| latest >= epoch)
        {
            return Ok(());
        }
        let end = self.log_end_offset();
        self.epochs.assign(epoch, end)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{open, simple, small_config, NOW};

    /// Batches as a leader stores them: `count` two-record batches at `epoch`.
    fn leader_batches(epoch: i32, count: usize, from: i64) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut leader = open(dir.path(), small_config());
        if from > 0 {
            leader.truncate_fully_and_start_at(from).expect("start");
        }
        let mut out = Vec::new();
        for _ in 0..count {
            let mut bytes = simple(2, 1_000).to_vec();
            leader.append(&mut bytes, epoch, NOW).expect("append");
            out.extend_from_slice(&bytes);
        }
        out
    }

    #[test]
    fn a_follower_keeps_the_leaders_offsets_and_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut follower = open(dir.path(), small_config());
        let fetched = leader_batches(4, 3, 0);
        let appended = follower
            .append_replicated(&fetched, NOW)
            .expect("append")
            .expect("new");
        assert_eq!((appended.base_offset, appended.end_offset), (0, 6));
        assert_eq!(follower.latest_epoch(), Some(4));
        // Fetching the same data again adds nothing.
        assert_eq!(
            follower.append_replicated(&fetched, NOW).expect("again"),
            None
        );
        assert_eq!(follower.log_end_offset(), 6);
    }

    #[test]
    fn a_gap_is_refused_and_a_torn_tail_is_left_for_the_next_fetch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut follower = open(dir.path(), small_config());
        let later = leader_batches(1, 1, 10);
        assert!(follower.append_replicated(&later, NOW).is_err());
        let mut fetched = leader_batches(1, 2, 0);
        let whole = fetched.len();
        fetched.extend_from_slice(&leader_batches(1, 1, 4)[..20]);
        let appended = follower.append_replicated(&fetched, NOW).expect("append");
        assert_eq!(appended.map(|a| a.end_offset), Some(4));
        assert_eq!(follower.size_bytes(), whole as u64);
    }

    #[test]
    fn a_new_epoch_is_recorded_at_the_log_end_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        let mut bytes = simple(2, 1_000).to_vec();
        log.append(&mut bytes, 1, NOW).expect("append");
        log.start_epoch(3).expect("epoch");
        assert_eq!(log.end_offset_for_epoch(1), (1, 2));
        assert_eq!(log.end_offset_for_epoch(2), (1, 2));
        assert_eq!(log.latest_epoch(), Some(3));
    }
}
