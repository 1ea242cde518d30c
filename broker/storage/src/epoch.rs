//! Leader epoch cache (KIP-101/279): the first offset written in each leader epoch, used to
//! answer OffsetsForLeaderEpoch so followers truncate exactly where their log diverges.
//! Mirrors Kafka's `LeaderEpochFileCache` and its `leader-epoch-checkpoint` file.

use std::path::{Path, PathBuf};

use tracing::warn;

use super::checkpoint::{self, LEADER_EPOCH_FILE};
use super::error::Result;

/// Epoch or offset meaning "unknown" in OffsetsForLeaderEpoch answers (Kafka's -1).
pub(crate) const UNDEFINED: i64 = -1;

/// One epoch and the first offset its leader wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// Leader epoch.
    pub epoch: i32,
    /// First offset appended in that epoch.
    pub start_offset: i64,
}

/// Ordered epochs of a partition, persisted on every change (changes happen only on
/// leadership changes and truncation, so the fsync is rare).
#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    dir: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint; `None` entries mean the file was missing or malformed.
    pub(crate) fn load(dir: &Path) -> Result<(Self, bool)> {
        let lines = checkpoint::read_lines(dir, LEADER_EPOCH_FILE)?;
        let found = lines.is_some();
        let mut entries: Vec<EpochEntry> = Vec::new();
        let mut sane = true;
        for line in lines.unwrap_or_default() {
            let mut parts = line.split_whitespace();
            let parsed = match (parts.next(), parts.next(), parts.next()) {
                (Some(e), Some(o), None) => e.parse::<i32>().ok().zip(o.parse::<i64>().ok()),
                _ => None,
            };
            match parsed {
                Some((epoch, start_offset))
                    if entries
                        .last()
                        .is_none_or(|l| epoch > l.epoch && start_offset >= l.start_offset) =>
                {
                    entries.push(EpochEntry {
                        epoch,
                        start_offset,
                    })
                }
                _ => {
                    warn!(line = %line, "malformed leader-epoch-checkpoint entry");
                    sane = false;
                    break;
                }
            }
        }
        if !sane {
            entries.clear();
        }
        Ok((
            Self {
                dir: dir.to_path_buf(),
                entries,
            },
            found && sane,
        ))
    }

    /// All entries, oldest first.
    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// Latest epoch, if any.
    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The epoch `offset` was written in (Kafka's `epochForOffset`): that of the latest entry
    /// starting at or before it; `None` before the first entry.
    pub(crate) fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let after = self.entries.partition_point(|e| e.start_offset <= offset);
        after.checked_sub(1).map(|i| self.entries[i].epoch)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's `assign`): a no-op for the
    /// current epoch, otherwise drops entries that conflict with it. Returns whether anything
    /// changed so the caller knows to persist.
    pub(crate) fn assign_in_memory(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && last.start_offset <= start_offset {
                return false;
            }
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// [`Self::assign_in_memory`], made durable before it takes effect: if the checkpoint
    /// cannot be written the cache is unchanged, so it never claims an epoch a restart would
    /// forget.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        let before = self.entries.clone();
        if self.assign_in_memory(epoch, start_offset) {
            if let Err(e) = self.persist() {
                self.entries = before;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Kafka's `endOffsetFor`: (largest epoch <= `requested`, first offset of the next larger
    /// epoch), or (`requested`, `log_end_offset`) for the latest epoch, or (-1, -1) when the
    /// epoch is unknown or newer than any.
    pub(crate) fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        let undefined = (UNDEFINED as i32, UNDEFINED);
        if requested < 0 {
            return undefined;
        }
        match self.entries.last() {
            None => return undefined,
            Some(last) if last.epoch == requested => return (requested, log_end_offset),
            Some(_) => {}
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let Some(higher_entry) = self.entries.get(higher) else {
            return undefined;
        };
        if higher == 0 {
            (requested, higher_entry.start_offset)
        } else {
            (self.entries[higher - 1].epoch, higher_entry.start_offset)
        }
    }

    /// Removes epochs starting at or after `end_offset` (log truncated to `end_offset`).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Drops epochs entirely before `start_offset` and moves the one spanning it to start
    /// there (log start advanced). The checkpoint is replaced without an fsync, as Kafka's
    /// truncations are (KAFKA-15046): retention and DeleteRecords call this under the
    /// partition lock, and a lost write is harmless, since loading the log truncates the
    /// epochs to its log start again and rebuilds a damaged checkpoint from batch headers.
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let first_kept = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if first_kept == 0 {
            return Ok(());
        }
        let floor = first_kept - 1;
        if floor == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..floor);
        self.entries[0].start_offset = start_offset;
        checkpoint::replace_lines(&self.dir, LEADER_EPOCH_FILE, &self.lines())
    }

    /// Forgets every epoch.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.persist()
    }

    /// Writes the checkpoint atomically.
    pub(crate) fn persist(&self) -> Result<()> {
        checkpoint::write_lines(&self.dir, LEADER_EPOCH_FILE, &self.lines())
    }

    fn lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_checkpoint_files_read_as_missing_never_panics() {
        use crate::checkpoint::{read_offset, write_lines, HIGH_WATERMARK_FILE};
        use crate::hostile::{never_panics, unsealed};

        let dir = tempfile::tempdir().expect("tempdir");
        let (_keep, epochs) = cache(&[(1, 0), (3, 100), (7, 2_000)]);
        epochs.persist().expect("persist");
        let sample = |name: &str| std::fs::read(epochs.dir.join(name)).expect("checkpoint");
        write_lines(dir.path(), HIGH_WATERMARK_FILE, &["123456789".into()]).expect("write");
        let samples = vec![
            sample(LEADER_EPOCH_FILE),
            std::fs::read(dir.path().join(HIGH_WATERMARK_FILE)).expect("hw"),
        ];
        never_panics(samples, unsealed, |bytes| {
            for name in [LEADER_EPOCH_FILE, HIGH_WATERMARK_FILE] {
                std::fs::write(dir.path().join(name), bytes).expect("write");
            }
            let _ = read_offset(dir.path(), HIGH_WATERMARK_FILE);
            if let Ok((loaded, _)) = LeaderEpochCache::load(dir.path()) {
                let _ = loaded.end_offset_for(5, 10_000);
            }
        });
    }

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut c, _) = LeaderEpochCache::load(dir.path()).expect("load");
        for &(e, o) in entries {
            c.assign(e, o).expect("assign");
        }
        (dir, c)
    }

    #[test]
    fn epoch_for_offset_matches_kafka() {
        let (_d, c) = cache(&[(1, 5), (3, 10), (5, 20)]);
        assert_eq!(c.epoch_for_offset(4), None, "before the first epoch");
        assert_eq!(c.epoch_for_offset(5), Some(1), "an epoch's first offset");
        assert_eq!(c.epoch_for_offset(19), Some(3));
        assert_eq!(c.epoch_for_offset(20), Some(5));
        assert_eq!(
            c.epoch_for_offset(1_000),
            Some(5),
            "past the last start: the latest"
        );
        let (_e, empty) = cache(&[]);
        assert_eq!(empty.epoch_for_offset(0), None);
    }

    #[test]
    fn end_offset_for_matches_kafka() {
        let (_d, c) = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert_eq!(c.end_offset_for(5, 30), (5, 30), "latest epoch: LEO");
        assert_eq!(c.end_offset_for(3, 30), (3, 20));
        assert_eq!(c.end_offset_for(4, 30), (3, 20), "gap: floor epoch");
        assert_eq!(c.end_offset_for(0, 30), (0, 0), "older than all");
        assert_eq!(c.end_offset_for(6, 30), (-1, -1), "newer than all");
        assert_eq!(c.end_offset_for(-1, 30), (-1, -1));
    }

    #[test]
    fn truncation_from_both_ends_and_reload() {
        let (dir, mut c) = cache(&[(1, 0), (3, 10), (5, 20)]);
        c.truncate_from_end(20).expect("truncate end");
        assert_eq!(c.latest_epoch(), Some(3));
        c.truncate_from_start(15).expect("truncate start");
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 3,
                start_offset: 15
            }]
        );
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_FILE)).expect("file");
        assert_eq!(text, "0\n1\n3 15\n");
        let (reloaded, sane) = LeaderEpochCache::load(dir.path()).expect("load");
        assert!(sane);
        assert_eq!(reloaded.entries(), c.entries());
    }

    #[test]
    fn assigning_an_older_epoch_replaces_conflicting_entries() {
        let (_d, mut c) = cache(&[(1, 0), (3, 10)]);
        c.assign(3, 12).expect("same epoch later offset");
        assert_eq!(c.entries().len(), 2);
        c.assign(2, 5).expect("older epoch");
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 1,
                    start_offset: 0
                },
                EpochEntry {
                    epoch: 2,
                    start_offset: 5
                }
            ]
        );
    }
}
