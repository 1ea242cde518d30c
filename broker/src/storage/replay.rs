//! Re-appending batches the commit journal (see `crate::journal`) holds for a partition whose
//! segments lost them in a crash.

use tracing::{info, warn};

use super::batch::BatchView;
use super::config::TimestampType;
use super::error::Result;
use super::log::PartitionLog;
use crate::journal::JournaledBatches;

impl PartitionLog {
    /// Appends the journaled `(base offset, batches)` that continue the log, in order, exactly
    /// as they were first written (offsets, leader epochs and log-append times included):
    /// entries below the log end are already in the segments, and one beyond it cannot follow
    /// (the journal only holds gapless runs), so replay stops there. Returns how many entries
    /// were appended; the caller fsyncs them.
    pub fn replay_journaled(&mut self, entries: JournaledBatches, now_ms: i64) -> Result<usize> {
        let mut appended = 0;
        for (base_offset, mut batches) in entries {
            let end = self.log_end_offset();
            if base_offset < end {
                continue;
            }
            let header = BatchView::header(&batches).ok();
            let Some(header) = header.filter(|_| base_offset == end) else {
                warn!(
                    dir = %self.dir.display(),
                    base_offset,
                    log_end_offset = end,
                    "journaled batches do not continue the log; replay of this partition stops"
                );
                break;
            };
            let epoch = header.partition_leader_epoch();
            let now = if self.config.timestamp_type == TimestampType::LogAppendTime {
                header.max_timestamp()
            } else {
                now_ms
            };
            // Accepted once already: a max.message.bytes lowered since must not drop them.
            let max = std::mem::replace(&mut self.config.max_message_bytes, u32::MAX);
            let result = self.append(&mut batches, epoch, now);
            self.config.max_message_bytes = max;
            result?;
            appended += 1;
        }
        if appended > 0 {
            info!(
                dir = %self.dir.display(),
                entries = appended,
                log_end_offset = self.log_end_offset(),
                "replayed journaled batches"
            );
        }
        Ok(appended)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use crate::storage::test_util::{open, read_all, simple, small_config, NOW};
    use crate::storage::{LogConfig, TimestampType};

    /// Appends `count` two-record batches at leader epoch 3, returning each as stored.
    fn journaled_appends(
        log: &mut crate::storage::PartitionLog,
        count: usize,
    ) -> Vec<(i64, Vec<u8>)> {
        (0..count)
            .map(|_| {
                let mut bytes = simple(2, 1_000).to_vec();
                let info = log.append(&mut bytes, 3, NOW).expect("append");
                (info.base_offset, bytes)
            })
            .collect()
    }

    /// Cuts every segment of `dir` after `keep` bytes of the first, as a crash that lost
    /// unsynced page cache would.
    fn lose_tail(dir: &std::path::Path, keep: u64) {
        for entry in std::fs::read_dir(dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "log") {
                let first = path
                    .file_name()
                    .is_some_and(|n| n == "00000000000000000000.log");
                let file = OpenOptions::new().write(true).open(&path).expect("segment");
                file.set_len(if first { keep } else { 0 }).expect("cut");
            }
        }
    }

    #[test]
    fn batches_lost_from_the_segments_come_back_from_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        let entries = journaled_appends(&mut log, 30);
        let before = read_all(&log, 0);
        assert!(log.segment_count() > 1, "the lost batches span segments");
        drop(log);
        let first_len = entries[0].1.len() as u64;
        lose_tail(dir.path(), first_len + 10);

        let mut log = open(dir.path(), small_config());
        assert_eq!(log.log_end_offset(), 2, "recovery cut the torn tail");
        assert_eq!(log.replay_journaled(entries, NOW).expect("replay"), 29);
        assert_eq!(log.log_end_offset(), 60);
        assert_eq!(read_all(&log, 0), before);
        assert_eq!(log.latest_epoch(), Some(3), "stored leader epochs kept");
    }

    #[test]
    fn entries_already_in_the_log_are_skipped_and_a_gap_stops_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        let mut entries = journaled_appends(&mut log, 3);
        assert_eq!(
            log.replay_journaled(entries.clone(), NOW).expect("replay"),
            0
        );
        assert_eq!(log.log_end_offset(), 6);
        entries[2].0 = 8;
        let mut gap = entries.clone();
        gap.truncate(1);
        gap.push(entries[2].clone());
        assert_eq!(log.replay_journaled(gap, NOW).expect("replay"), 0);
        assert_eq!(log.log_end_offset(), 6);
    }

    #[test]
    fn log_append_times_survive_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config.clone());
        let entries = journaled_appends(&mut log, 2);
        drop(log);
        lose_tail(dir.path(), 0);
        let mut log = open(dir.path(), config);
        assert_eq!(
            log.replay_journaled(entries.clone(), NOW + 5_000)
                .expect("replay"),
            2
        );
        let plan = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        let stored = plan.load().expect("load");
        let expected: Vec<u8> = entries.into_iter().flat_map(|(_, b)| b).collect();
        assert_eq!(&stored[..], &expected[..], "byte for byte as first written");
    }
}
