//! Appends of batches a follower copied from its leader: offsets, leader epochs and timestamps
//! stay exactly as the leader wrote them (Kafka's `appendAsFollower`), so every replica holds
//! the same bytes at the same offsets.

use super::batch::{split_batches, BatchError};
use super::error::{Result, StorageError};
use super::log::{PartitionLog, Pending};
use super::segment::AppendedBatch;

/// What a replicated append added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicated {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Log end offset after the append.
    pub end_offset: i64,
}

/// Consecutive batches of one fetch response bound for the active segment, not yet written.
#[derive(Default)]
struct Run {
    /// Where the first batch starts in the fetched bytes.
    start: usize,
    batches: Vec<AppendedBatch>,
    /// (leader epoch, base offset) of each batch.
    epochs: Vec<(i32, i64)>,
    /// The batches' size and offsets, kept as they are added.
    pending: Pending,
}

impl Run {
    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn push(&mut self, batch: AppendedBatch, epoch: i32) {
        self.pending.bytes += u64::from(batch.size);
        self.pending.offsets += batch.last_offset - batch.base_offset + 1;
        self.epochs.push((epoch, batch.base_offset));
        self.batches.push(batch);
    }

    /// The log end once the run is written.
    fn end_offset(&self) -> Option<i64> {
        self.batches.last().map(|b| b.last_offset + 1)
    }
}

impl PartitionLog {
    /// Appends whole batches fetched from the leader, CRC-checked but otherwise untouched.
    /// Batches ending below the log end are skipped (already held); the rest must continue
    /// the log without a gap. A torn batch at the end of the data (a fetch cut at its byte
    /// limit) is left for the next fetch. Returns `None` when nothing was new.
    ///
    /// Consecutive batches that fit the active segment are written with one write and one
    /// index update (a fetch response is typically many producer batches); segments roll
    /// exactly where appending the batches one by one would roll them.
    pub fn append_replicated(&mut self, records: &[u8], now_ms: i64) -> Result<Option<Replicated>> {
        let mut base_offset = None;
        let mut position = 0;
        let mut run = Run::default();
        for (index, batch) in split_batches(records).enumerate() {
            let view = match batch {
                Ok(view) => view,
                Err(BatchError::Truncated { .. }) if index > 0 || position == 0 => break,
                Err(source) => {
                    self.write_run(records, &mut run, now_ms)?;
                    return Err(StorageError::InvalidBatch { index, source });
                }
            };
            let start = position;
            position += view.size();
            let expected = run.end_offset().unwrap_or_else(|| self.log_end_offset());
            if view.last_offset() < expected {
                // Already held: what follows is no longer contiguous with the run's bytes.
                self.write_run(records, &mut run, now_ms)?;
                continue;
            }
            if view.base_offset() != expected {
                self.write_run(records, &mut run, now_ms)?;
                return Err(StorageError::NotContiguous {
                    expected,
                    found: view.base_offset(),
                });
            }
            let size = view.size();
            let offsets = view.last_offset() - view.base_offset() + 1;
            if !run.is_empty() && self.needs_roll(run.pending, size as u64, offsets, now_ms) {
                self.write_run(records, &mut run, now_ms)?;
            }
            if run.is_empty() {
                self.maybe_roll(size as u64, offsets, now_ms)?;
                run.start = start;
            }
            let batch = AppendedBatch {
                base_offset: view.base_offset(),
                size: u32::try_from(size).map_err(|_| StorageError::OffsetOverflow { offsets })?,
                last_offset: view.last_offset(),
                max_timestamp: view.max_timestamp(),
            };
            run.push(batch, view.partition_leader_epoch());
            base_offset.get_or_insert(expected);
        }
        self.write_run(records, &mut run, now_ms)?;
        Ok(base_offset.map(|base_offset| Replicated {
            base_offset,
            end_offset: self.log_end_offset(),
        }))
    }

    /// Writes the run's batches to the active segment at once (their leader epochs first, as
    /// a single batch's append records its epoch before its bytes), and empties it.
    fn write_run(&mut self, records: &[u8], run: &mut Run, now_ms: i64) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        for &(epoch, base_offset) in &run.epochs {
            self.epochs.assign(epoch, base_offset)?;
        }
        let end = usize::try_from(run.pending.bytes)
            .ok()
            .and_then(|n| run.start.checked_add(n))
            .unwrap_or(usize::MAX);
        let Some(bytes) = records.get(run.start..end) else {
            // Unreachable: the run's batches were split from these very bytes.
            return Err(StorageError::NotContiguous {
                expected: self.log_end_offset(),
                found: run.batches.first().map_or(-1, |b| b.base_offset),
            });
        };
        let interval = self.config.index_interval_bytes;
        let preallocate = self.config.preallocated_bytes();
        let appended =
            self.active_mut()
                .append(&[bytes], &run.batches, interval, now_ms, preallocate);
        *run = Run::default();
        appended
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
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use crate::batch::split_batches;
    use crate::config::LogConfig;
    use crate::log::PartitionLog;
    use crate::test_util::{batch, open, simple, small_config, BatchSpec, NOW};

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

    /// The batches of each segment, in order, read the way a consumer reads (one segment
    /// per read), with the epoch of each batch's first offset.
    fn segments(log: &PartitionLog) -> Vec<Vec<(i64, i64, i32)>> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let plan = log
                .read_plan(offset, usize::MAX, i64::MAX, true)
                .expect("plan");
            let bytes = plan.load().expect("load");
            let mut segment = Vec::new();
            for batch in split_batches(&bytes) {
                let batch = batch.expect("stored batch is valid");
                segment.push((
                    batch.base_offset(),
                    batch.last_offset(),
                    batch.partition_leader_epoch(),
                ));
                offset = batch.next_offset();
            }
            assert!(!segment.is_empty(), "no progress at offset {offset}");
            out.push(segment);
        }
        out
    }

    /// A leader's batches of (records, value bytes, epoch) each, as one fetched blob.
    fn leader_blob(specs: &[(usize, usize, i32)]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut leader = open(dir.path(), LogConfig::default());
        let mut out = Vec::new();
        for &(records, value_len, epoch) in specs {
            let mut bytes = batch(&BatchSpec {
                records,
                value_len,
                timestamp: 1_000,
                ..BatchSpec::default()
            });
            leader.append(&mut bytes, epoch, NOW).expect("append");
            out.extend_from_slice(&bytes);
        }
        out
    }

    #[test]
    fn batches_written_together_land_as_if_appended_one_by_one() {
        // Segment sizes from smaller than one batch to many batches; epochs that change
        // inside a fetch; deterministic cases, the same on every machine.
        let specs = prop::collection::vec((1usize..5, 0usize..300, 0i32..2), 1..24);
        let cases = (specs, 100u64..4_000, 0usize..4);
        let config = Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&cases, |(specs, segment_bytes, held)| {
            let mut epoch = 0;
            let specs: Vec<(usize, usize, i32)> = specs
                .into_iter()
                .map(|(records, value_len, bump)| {
                    epoch += bump;
                    (records, value_len, epoch)
                })
                .collect();
            let blob = leader_blob(&specs);
            let config = LogConfig {
                segment_bytes,
                index_interval_bytes: 100,
                ..LogConfig::default()
            };
            let (one_dir, each_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
            let mut together = open(one_dir.path(), config.clone());
            let mut one_by_one = open(each_dir.path(), config);
            // Some batches already held by both, as after an earlier fetch.
            let batches: Vec<&[u8]> = split_batches(&blob)
                .map(|b| b.expect("valid").as_bytes())
                .collect();
            for bytes in batches.iter().take(held) {
                together.append_replicated(bytes, NOW).expect("held");
            }
            let appended = together.append_replicated(&blob, NOW).expect("together");
            for bytes in &batches {
                one_by_one.append_replicated(bytes, NOW).expect("one");
            }
            prop_assert_eq!(segments(&together), segments(&one_by_one));
            prop_assert_eq!(together.log_end_offset(), one_by_one.log_end_offset());
            prop_assert_eq!(together.size_bytes(), one_by_one.size_bytes());
            prop_assert_eq!(together.segment_count(), one_by_one.segment_count());
            prop_assert_eq!(together.latest_epoch(), one_by_one.latest_epoch());
            for e in 0..=epoch + 1 {
                prop_assert_eq!(
                    together.end_offset_for_epoch(e),
                    one_by_one.end_offset_for_epoch(e)
                );
            }
            let held_end = batches[..held.min(batches.len())].last().map_or(0, |b| {
                split_batches(b)
                    .next()
                    .expect("one")
                    .expect("valid")
                    .next_offset()
            });
            prop_assert_eq!(
                appended.map(|a| (a.base_offset, a.end_offset)),
                (held < batches.len()).then(|| (held_end, one_by_one.log_end_offset()))
            );
            Ok(())
        });
        if let Err(failure) = result {
            panic!("bulk and one-by-one appends differ: {failure}");
        }
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
