//! Re-appending batches the commit journal (see `crate::journal`) holds for a partition whose
//! segments lost them in a crash.

use tracing::{info, warn};

use super::batch::BatchView;
use super::config::TimestampType;
use super::error::Result;
use super::log::PartitionLog;
use crate::journal::JournaledBatches;

/// What [`PartitionLog::replay_journaled`] did.
#[derive(Debug, Default)]
pub struct JournalReplay {
    /// Entries (whole, or their batches from the log end on) appended.
    pub appended: usize,
    /// The entries from the first that does not continue the log on, as they were: a tiered
    /// log restarted after its remote log may continue with them later.
    pub rest: JournaledBatches,
}

/// Where one journal entry stands against the log end.
enum Fit<'a> {
    /// Every batch of it is in the log already.
    Present,
    /// Its batches from the log end on, which continue the log.
    Continues(&'a [u8]),
    /// It does not continue the log: a gap before it, or batches cut differently.
    Gap,
}

/// Where the entry of `batches` journaled at `base_offset` stands against log end `end`. An
/// entry holds every batch one journal round took, so a log end inside it (a torn tail cut at
/// a batch boundary, or a log restarted at its remote end) continues with its batches from
/// there.
fn fit(base_offset: i64, batches: &[u8], end: i64) -> Fit<'_> {
    if base_offset > end {
        return Fit::Gap;
    }
    let mut pos = 0;
    while let Some(view) = batches.get(pos..).and_then(|b| BatchView::header(b).ok()) {
        if view.base_offset() >= end {
            return if view.base_offset() == end {
                Fit::Continues(&batches[pos..])
            } else {
                Fit::Gap
            };
        }
        pos += view.size();
    }
    if pos >= batches.len() {
        Fit::Present
    } else {
        Fit::Gap
    }
}

impl PartitionLog {
    /// Appends the journaled `(base offset, batches)` that continue the log, in order, exactly
    /// as they were first written (offsets, leader epochs and log-append times included):
    /// batches below the log end are already in the segments, and an entry beyond it cannot
    /// follow (the journal only holds gapless runs), so replay stops there and returns the
    /// entries left. The caller fsyncs what was appended.
    pub fn replay_journaled(
        &mut self,
        entries: JournaledBatches,
        now_ms: i64,
    ) -> Result<JournalReplay> {
        let mut appended = 0;
        let mut entries = entries.into_iter();
        let mut rest = Vec::new();
        while let Some((base_offset, batches)) = entries.next() {
            let end = self.log_end_offset();
            let tail = match fit(base_offset, &batches, end) {
                Fit::Present => continue,
                Fit::Continues(tail) => tail,
                Fit::Gap => {
                    warn!(
                        dir = %self.dir.display(),
                        base_offset,
                        log_end_offset = end,
                        "journaled batches do not continue the log; replay of this partition stops"
                    );
                    rest.push((base_offset, batches));
                    rest.extend(entries);
                    break;
                }
            };
            self.append_journaled(tail.to_vec(), now_ms)?;
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
        Ok(JournalReplay { appended, rest })
    }

    /// Appends journaled batches that continue the log, with the leader epoch they were
    /// stored with (and their log-append time).
    fn append_journaled(&mut self, mut batches: Vec<u8>, now_ms: i64) -> Result<()> {
        let Ok(header) = BatchView::header(&batches) else {
            return Ok(());
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
        result.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use crate::test_util::{open, read_all, simple, small_config, NOW};
    use crate::{LogConfig, TimestampType};

    /// Appends `count` two-record batches at leader epoch 3, returning each as stored.
    fn journaled_appends(log: &mut crate::PartitionLog, count: usize) -> Vec<(i64, Vec<u8>)> {
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
        assert_eq!(
            log.replay_journaled(entries, NOW).expect("replay").appended,
            29
        );
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
            log.replay_journaled(entries.clone(), NOW)
                .expect("replay")
                .appended,
            0
        );
        assert_eq!(log.log_end_offset(), 6);
        entries[2].0 = 8;
        let mut gap = entries.clone();
        gap.truncate(1);
        gap.push(entries[2].clone());
        let replayed = log.replay_journaled(gap, NOW).expect("replay");
        assert_eq!(replayed.appended, 0);
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(
            replayed.rest,
            vec![entries[2].clone()],
            "what does not continue the log is handed back"
        );
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
                .expect("replay")
                .appended,
            2
        );
        let plan = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        let stored = plan.load().expect("load");
        let expected: Vec<u8> = entries.into_iter().flat_map(|(_, b)| b).collect();
        assert_eq!(&stored[..], &expected[..], "byte for byte as first written");
    }

    #[test]
    fn an_entry_holding_the_log_end_continues_the_log_from_its_batch_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        let appended = journaled_appends(&mut log, 4);
        let before = read_all(&log, 0);
        drop(log);
        // One journal round took the last three batches (offsets 2..8); the crash kept only
        // the first two batches in the segment (offsets 0..4).
        let round: Vec<u8> = appended[1..].iter().flat_map(|(_, b)| b.clone()).collect();
        lose_tail(
            dir.path(),
            (appended[0].1.len() + appended[1].1.len()) as u64,
        );
        let mut log = open(dir.path(), LogConfig::default());
        assert_eq!(log.log_end_offset(), 4);
        let replayed = log.replay_journaled(vec![(2, round)], NOW).expect("replay");
        assert_eq!(replayed.appended, 1);
        assert!(replayed.rest.is_empty());
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(
            read_all(&log, 0),
            before,
            "the batches past the log end, as written"
        );
    }
}
