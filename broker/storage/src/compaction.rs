//! Log compaction for `cleanup.policy=compact`: closed segments keep only the latest record
//! of each key; tombstones (null values) stay long enough for consumers to see them
//! (`delete.retention.ms`, counted from the tombstone batch's newest timestamp) and then go.
//! Records keep their offsets, so readers see gaps, never renumbering; the active segment is
//! never touched, nor are segments holding records younger than `min.compaction.lag.ms`
//! (`max.compaction.lag.ms` rolls the active segment). Transactions are respected as in
//! Kafka: segments reaching past the first open transaction are left for later, and records
//! of aborted transactions neither count as the latest value of their key nor survive the
//! pass (their markers stay).
//!
//! A pass has three steps, like checkpoints: [`PartitionLog::compaction_job`] snapshots the
//! closed segments under the partition lock, [`CompactionJob::run`] reads them (one at a
//! time, twice: the latest offset of every key, then the cleaned copies), writes the copies to
//! temporary files and builds their indexes without the lock, and
//! [`PartitionLog::install_compaction`] swaps them in under the lock (renames and directory
//! syncs only: appends and reads of the partition wait for no segment's read), unless the
//! segments changed meanwhile. As in Kafka, runs of small
//! consecutive segments that fit one segment together are merged into one copy, so a long-lived
//! compacted topic does not pile up tiny segments. A copy first becomes a `.swap` file naming
//! the offsets it stands for, then the old files go, then it takes the first one's name; a
//! crash anywhere is finished or undone on open, and indexes a crash lost are rebuilt from
//! the new file.
//! Progress (cleaned up to, tombstones due) is kept in `cleaner-checkpoint`, so a restart does
//! not count the whole log as dirty.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions};
use tracing::{info, warn};

use super::batch::{split_batches, BatchView};
use super::checkpoint::CLEANER_FILE;
use super::error::{Result, StorageError};
use super::log::PartitionLog;
use super::records::records_of;
use super::recovery::recover_segment;
use super::segment::{file_name, Segment, LOG_SUFFIX, STAGED_SUFFIX};

/// What the cleaner remembers between passes, to skip passes with nothing to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CleanerState {
    /// End offset of the closed segments at the last pass.
    cleaned_end: i64,
    /// Earliest wall time at which a kept tombstone may go.
    tombstone_due: Option<i64>,
}

impl CleanerState {
    /// The state saved in `dir` by the last complete pass, so a restart does not count the
    /// whole log as dirty; none when the log was never compacted (or the file is unreadable).
    pub(crate) fn load(dir: &Path, log_end: i64) -> Result<CleanerState> {
        let lines = super::checkpoint::read_lines(dir, CLEANER_FILE)?.unwrap_or_default();
        let number = |i: usize| lines.get(i).and_then(|l| l.parse::<i64>().ok());
        Ok(CleanerState {
            cleaned_end: number(0).unwrap_or(0).clamp(0, log_end.max(0)),
            tombstone_due: number(1).filter(|&t| t >= 0),
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let lines = [
            self.cleaned_end.to_string(),
            self.tombstone_due.unwrap_or(-1).to_string(),
        ];
        super::checkpoint::write_lines(dir, CLEANER_FILE, &lines)
    }
}

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Segments replaced by cleaned copies.
    pub segments_rewritten: usize,
    /// Records removed (older values and expired tombstones).
    pub records_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// The records of an aborted transaction: its producer, from its first record to its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedRange {
    /// Producer id.
    pub producer_id: i64,
    /// Offset of the transaction's first record.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
}

/// What the cleaner must know of the partition's transactions.
#[derive(Debug, Clone, Default)]
pub struct CleanerTxns {
    /// First offset of the oldest open transaction; nothing from there on is cleaned.
    pub first_unstable_offset: Option<i64>,
    /// Aborted transactions whose records are dropped.
    pub aborted: Vec<AbortedRange>,
}

impl CleanerTxns {
    /// Whether `view` holds records of an aborted transaction.
    fn is_aborted(&self, view: &BatchView<'_>) -> bool {
        view.is_transactional()
            && !view.is_control()
            && self.aborted.iter().any(|a| {
                a.producer_id == view.producer_id()
                    && (a.first_offset..=a.last_offset).contains(&view.base_offset())
            })
    }
}

/// One closed segment as it was when the pass started.
#[derive(Debug)]
struct SnapshotSegment {
    base_offset: i64,
    next_offset: i64,
    file: Arc<File>,
    size: u64,
}

/// The closed segments of a partition to compact, snapshot under the partition lock.
#[derive(Debug)]
pub struct CompactionJob {
    dir: PathBuf,
    segments: Vec<SnapshotSegment>,
    /// Runs of consecutive segments written back as one (Kafka merges small segments).
    groups: Vec<Range<usize>>,
    /// Tombstones whose batch is older than this (wall ms) are removed.
    tombstones_before: i64,
    delete_retention_ms: i64,
    closed_end: i64,
    txns: CleanerTxns,
    index_interval_bytes: u32,
}

/// A cleaned copy waiting to replace a run of segments.
#[derive(Debug)]
struct Rewritten {
    /// (base offset, size) of each replaced segment, as snapshotted.
    members: Vec<(i64, u64)>,
    /// Next offset after the last member: the range the copy stands for ends here.
    end: i64,
    new_size: u64,
    /// The copy, its files still staged, with its indexes built.
    copy: Segment,
    removed: u64,
}

/// The result of [`CompactionJob::run`], to hand to [`PartitionLog::install_compaction`].
#[derive(Debug)]
pub struct CompactedSegments {
    rewritten: Vec<Rewritten>,
    closed_end: i64,
    tombstone_due: Option<i64>,
}

impl PartitionLog {
    /// A compaction pass to run, if the log is compacted and has closed segments that
    /// changed since the last pass or tombstones that are due.
    pub fn compaction_job(&self, now_ms: i64, txns: CleanerTxns) -> Option<CompactionJob> {
        if !self.config.compact || self.segments.len() < 2 {
            return None;
        }
        // Like Kafka's first uncleanable offset: an open transaction, or a segment holding
        // records younger than min.compaction.lag.ms, ends what this pass may clean.
        let limit = txns.first_unstable_offset.unwrap_or(i64::MAX);
        let young = now_ms.saturating_sub(self.config.min_compaction_lag_ms);
        let cleanable = self.segments[..self.segments.len() - 1]
            .iter()
            .take_while(|s| {
                // A segment emptied by an earlier pass has no records to be young.
                let old_enough = s.is_empty() || s.largest_timestamp_for_retention() <= young;
                s.next_offset() <= limit && old_enough
            })
            .count();
        let closed = &self.segments[..cleanable];
        if closed.is_empty() {
            return None;
        }
        let closed_end = closed.last().map_or(0, Segment::next_offset);
        let tombstones_due = self.cleaner.tombstone_due.is_some_and(|t| now_ms >= t);
        if closed_end == self.cleaner.cleaned_end && !tombstones_due {
            return None;
        }
        if !tombstones_due && !self.dirty_enough(closed, now_ms) {
            return None;
        }
        let segments: Vec<SnapshotSegment> = closed
            .iter()
            .map(|s| SnapshotSegment {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                file: Arc::clone(s.log_file()),
                size: s.size(),
            })
            .collect();
        let groups = group_by_size(&segments, self.config.effective_segment_bytes());
        Some(CompactionJob {
            dir: self.dir.clone(),
            segments,
            groups,
            tombstones_before: now_ms.saturating_sub(self.config.delete_retention_ms),
            delete_retention_ms: self.config.delete_retention_ms,
            closed_end,
            txns,
            index_interval_bytes: self.config.index_interval_bytes,
        })
    }

    /// Whether the segments not cleaned yet make up `min.cleanable.dirty.ratio` of `closed`,
    /// or one of them has waited `max.compaction.lag.ms`, as Kafka's cleaner decides.
    fn dirty_enough(&self, closed: &[Segment], now_ms: i64) -> bool {
        let cleaned = self.cleaner.cleaned_end;
        let (mut clean, mut dirty) = (0u64, 0u64);
        let mut overdue = false;
        for s in closed {
            if s.next_offset() <= cleaned {
                clean += s.size();
            } else {
                dirty += s.size();
                let first = s.rolling_base_ms().unwrap_or(now_ms);
                overdue |= now_ms.saturating_sub(first) >= self.config.max_compaction_lag_ms;
            }
        }
        let total = clean + dirty;
        overdue
            || (total > 0 && dirty as f64 / total as f64 >= self.config.min_cleanable_dirty_ratio)
    }

    /// Swaps cleaned copies in for segments that did not change since the snapshot (a
    /// truncation or retention may have replaced or removed them meanwhile).
    pub fn install_compaction(
        &mut self,
        compacted: CompactedSegments,
    ) -> Result<CompactionOutcome> {
        let mut outcome = CompactionOutcome::default();
        let mut complete = true;
        for r in compacted.rewritten {
            let last = self.segments.len() - 1;
            let first = r.members.first().map_or(-1, |m| m.0);
            let start = self.segments[..last]
                .iter()
                .position(|s| s.base_offset() == first)
                .filter(|&i| {
                    i + r.members.len() <= last
                        && self.segments[i..i + r.members.len()]
                            .iter()
                            .zip(&r.members)
                            .all(|(s, &(base, size))| s.base_offset() == base && s.size() == size)
                });
            let Some(i) = start else {
                complete = false;
                let _ = r.copy.delete_files();
                continue;
            };
            self.replace_segments(i, r.members.len(), r.copy, r.end)?;
            let old_size: u64 = r.members.iter().map(|m| m.1).sum();
            outcome.segments_rewritten += r.members.len();
            outcome.records_removed += r.removed;
            outcome.bytes_freed += old_size.saturating_sub(r.new_size);
        }
        if complete {
            self.cleaner = CleanerState {
                cleaned_end: compacted.closed_end,
                tombstone_due: compacted.tombstone_due,
            };
            self.cleaner.save(&self.dir)?;
        }
        if outcome.segments_rewritten > 0 {
            info!(
                dir = %self.dir.display(),
                segments = outcome.segments_rewritten,
                records_removed = outcome.records_removed,
                bytes_freed = outcome.bytes_freed,
                "compacted log"
            );
        }
        Ok(outcome)
    }

    /// Replaces the `count` segments from `i` on by `copy`, which holds their cleaned
    /// records up to `end` and whose indexes were built off the lock. Crash-safe like Kafka's
    /// swap: the copy becomes a `.swap` file naming its range before the old files go, and
    /// opening the log finishes an interrupted swap ([`complete_swaps`]).
    fn replace_segments(
        &mut self,
        i: usize,
        count: usize,
        mut copy: Segment,
        end: i64,
    ) -> Result<()> {
        copy.rename_log(&self.dir.join(swap_file_name(copy.base_offset(), end)))?;
        // From here the swap must finish: memory and disk would disagree otherwise, and a later
        // pass could leave a second swap for the same base. On failure halt, as on a failed
        // fsync; opening the log finishes the swap.
        match self.finish_swap(i, count, copy) {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::error!(dir = %self.dir.display(), %error, "compaction swap failed; halting the broker");
                std::process::exit(crate::FSYNC_FAILURE_EXIT_CODE);
            }
        }
    }

    fn finish_swap(&mut self, i: usize, count: usize, mut copy: Segment) -> Result<()> {
        sync_dir(&self.dir)?;
        for old in &self.segments[i..i + count] {
            old.delete_files()?;
        }
        copy.rename_log(&self.dir.join(file_name(copy.base_offset(), LOG_SUFFIX)))?;
        sync_dir(&self.dir)?;
        // The old indexes are gone for good; a crash that loses these renames leaves the
        // segment without indexes, which opening the log rebuilds.
        copy.unstage_indexes(&self.dir)?;
        self.segments.splice(i..i + count, [copy]);
        Ok(())
    }
}

/// `<base>.log.<end>.swap`: a cleaned copy standing for the segments in `[base, end)`.
fn swap_file_name(base: i64, end: i64) -> String {
    format!("{}.{end:020}.swap", file_name(base, LOG_SUFFIX))
}

/// The `[base, end)` range a swap file name stands for.
fn parse_swap_file_name(name: &str) -> Option<(i64, i64)> {
    let rest = name.strip_suffix(".swap")?;
    let (log, end) = rest.rsplit_once('.')?;
    let base = super::segment::parse_log_file_name(log)?;
    let end = end.parse().ok().filter(|_| end.len() == 20)?;
    Some((base, end))
}

/// Finishes swaps a crash interrupted: the segment files in a swap file's range go and the
/// swap file becomes the segment. Runs before the segments are listed.
pub(crate) fn complete_swaps(dir: &Path) -> Result<()> {
    let dir_error = |source| StorageError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    let names: Vec<String> = fs::read_dir(dir)
        .map_err(dir_error)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    // Passes only grow a base's range, so of two swaps for one base the wider is the newer.
    let mut swaps: Vec<(i64, i64)> = names
        .iter()
        .filter_map(|n| parse_swap_file_name(n))
        .collect();
    swaps.sort_unstable_by_key(|&(base, end)| (base, std::cmp::Reverse(end)));
    let mut finished = std::collections::BTreeSet::new();
    for (base, end) in swaps {
        if !finished.insert(base) {
            remove_if_present(&dir.join(swap_file_name(base, end)))?;
            continue;
        }
        info!(dir = %dir.display(), base, end, "finishing an interrupted compaction swap");
        for old in names
            .iter()
            .filter_map(|n| super::segment::parse_log_file_name(n))
        {
            if (base..end).contains(&old) {
                for suffix in [
                    LOG_SUFFIX,
                    super::segment::INDEX_SUFFIX,
                    super::segment::TIME_INDEX_SUFFIX,
                ] {
                    remove_if_present(&dir.join(file_name(old, suffix)))?;
                }
            }
        }
        let log_path = dir.join(file_name(base, LOG_SUFFIX));
        fs::rename(dir.join(swap_file_name(base, end)), &log_path).map_err(|source| {
            StorageError::SegmentWrite {
                path: log_path,
                source,
            }
        })?;
    }
    sync_dir(dir)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StorageError::Delete {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Splits `segments` into runs of consecutive segments that fit one segment of `max_bytes`
/// together and whose offsets fit one segment's 32-bit relative offsets, as Kafka's cleaner
/// groups them.
fn group_by_size(segments: &[SnapshotSegment], max_bytes: u64) -> Vec<Range<usize>> {
    let mut groups: Vec<Range<usize>> = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        if let Some(group) = groups.last_mut() {
            let first = &segments[group.start];
            let bytes: u64 = segments[group.clone()].iter().map(|m| m.size).sum();
            let span = s.next_offset - 1 - first.base_offset;
            if bytes + s.size <= max_bytes && span <= i64::from(i32::MAX) {
                group.end = i + 1;
                continue;
            }
        }
        groups.push(i..i + 1);
    }
    groups
}

impl CompactionJob {
    /// Reads the snapshot, works out the latest offset of every key and writes cleaned
    /// copies of the segments that lose records. Blocking file I/O: run it off the partition
    /// lock, on a blocking thread.
    pub fn run(self) -> Result<CompactedSegments> {
        remove_stale_temporaries(&self.dir);
        // Two passes, one segment in memory at a time: the latest offset of every key, then
        // the cleaned copies.
        let mut latest = HashMap::new();
        for s in &self.segments {
            add_latest_offsets(&mut latest, &self.read(s)?, &self.txns);
        }
        let mut rewritten = Vec::new();
        let mut tombstone_due: Option<i64> = None;
        for group in &self.groups {
            let members = &self.segments[group.clone()];
            let (Some(first), Some(last)) = (members.first(), members.last()) else {
                continue;
            };
            let tmp = self.dir.join(format!(
                "{}{STAGED_SUFFIX}",
                file_name(first.base_offset, LOG_SUFFIX)
            ));
            let io = |source| StorageError::SegmentWrite {
                path: tmp.clone(),
                source,
            };
            // The copy is written as it is made; a lone segment that loses nothing has none.
            let mut copy: Option<File> = None;
            let (mut removed, mut new_size) = (0, 0u64);
            for s in members {
                let data = self.read(s)?;
                let filtered = filter_segment(&data, &latest, self.tombstones_before, &self.txns);
                if let Some(t) = filtered.newest_kept_tombstone {
                    let due = t.saturating_add(self.delete_retention_ms).saturating_add(1);
                    tombstone_due = Some(tombstone_due.map_or(due, |d| d.min(due)));
                }
                removed += filtered.removed;
                if copy.is_none() && (members.len() > 1 || filtered.removed > 0) {
                    copy = Some(File::create(&tmp).map_err(io)?);
                }
                if let Some(file) = copy.as_mut() {
                    file.write_all(&filtered.bytes).map_err(io)?;
                    new_size += filtered.bytes.len() as u64;
                }
            }
            let Some(file) = copy else {
                continue;
            };
            file.sync_all().map_err(io)?;
            drop(file);
            rewritten.push(Rewritten {
                members: members.iter().map(|m| (m.base_offset, m.size)).collect(),
                end: last.next_offset,
                new_size,
                copy: self.indexed_copy(first.base_offset)?,
                removed,
            });
        }
        Ok(CompactedSegments {
            rewritten,
            closed_end: self.closed_end,
            tombstone_due,
        })
    }

    /// The staged copy at `base` with its indexes built (and its batches checked), so that
    /// installing it under the partition lock reads none of it.
    fn indexed_copy(&self, base: i64) -> Result<Segment> {
        let mut copy = Segment::open_staged(&self.dir, base)?;
        if !recover_segment(&mut copy, None, self.index_interval_bytes)? {
            warn!(segment = %copy.log_path().display(), "compacted segment failed validation and was cut");
        }
        drop(copy.take_index_handles());
        Ok(copy)
    }

    fn read(&self, s: &SnapshotSegment) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; usize::try_from(s.size).unwrap_or(0)];
        s.file
            .read_exact_at(&mut buf, 0)
            .map_err(|source| StorageError::SegmentRead {
                path: self.dir.join(file_name(s.base_offset, LOG_SUFFIX)),
                source,
            })?;
        Ok(buf)
    }
}

/// Removes cleaned copies a crash left behind (the open path removes them too).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(STAGED_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Directory {
            path: dir.to_path_buf(),
            source,
        })
}

/// Notes the offset of every key in a segment's `data` as its latest, aborted records aside;
/// fed the segments in order, `latest` ends with each key's last offset.
fn add_latest_offsets(latest: &mut HashMap<Bytes, i64>, data: &[u8], txns: &CleanerTxns) {
    for view in split_batches(data).map_while(std::result::Result::ok) {
        if txns.is_aborted(&view) {
            continue;
        }
        for record in records_of(&view).unwrap_or_default() {
            if let Some(key) = record.key {
                match latest.get_mut(&key) {
                    Some(offset) => *offset = record.offset,
                    // An owned copy: the key would otherwise keep its whole batch in memory.
                    None => {
                        latest.insert(Bytes::copy_from_slice(&key), record.offset);
                    }
                }
            }
        }
    }
}

/// A segment's bytes after compaction.
#[derive(Debug, Default)]
struct Filtered {
    bytes: Vec<u8>,
    removed: u64,
    /// Newest batch timestamp among the tombstones kept, to know when they fall due.
    newest_kept_tombstone: Option<i64>,
}

/// Keeps each batch's records that are the latest of their key (and unkeyed ones), minus
/// tombstones whose batch is older than `tombstones_before` and aborted batches. Untouched batches are copied
/// byte for byte; partly kept ones are re-encoded with their codec, offsets and timestamps.
fn filter_segment(
    data: &[u8],
    latest: &HashMap<Bytes, i64>,
    tombstones_before: i64,
    txns: &CleanerTxns,
) -> Filtered {
    let mut out = Filtered {
        bytes: Vec::with_capacity(data.len()),
        ..Filtered::default()
    };
    for view in split_batches(data).map_while(std::result::Result::ok) {
        if txns.is_aborted(&view) {
            out.removed += u64::try_from(view.record_count()).unwrap_or(0);
            continue;
        }
        let Some(records) = records_of(&view) else {
            out.bytes.extend_from_slice(view.as_bytes());
            continue;
        };
        let total = records.len();
        let batch_time = view.max_timestamp();
        let kept: Vec<Record> = records
            .into_iter()
            .filter(|r| {
                let Some(key) = &r.key else {
                    return true;
                };
                let newest = latest.get(key).is_none_or(|&o| o == r.offset);
                newest && !(r.value.is_none() && batch_time < tombstones_before)
            })
            .collect();
        if kept.iter().any(|r| r.value.is_none()) {
            out.newest_kept_tombstone = Some(
                out.newest_kept_tombstone
                    .map_or(batch_time, |t| t.max(batch_time)),
            );
        }
        out.removed += (total - kept.len()) as u64;
        if kept.len() == total {
            out.bytes.extend_from_slice(view.as_bytes());
        } else if !kept.is_empty() {
            match encode(&kept, &view) {
                Some(bytes) => out.bytes.extend_from_slice(&bytes),
                None => {
                    // Cannot re-encode: keep the batch whole rather than lose records.
                    out.removed -= (total - kept.len()) as u64;
                    out.bytes.extend_from_slice(view.as_bytes());
                }
            }
        }
    }
    out
}

/// Encodes the kept records of `original` as one batch with its codec.
fn encode(records: &[Record], original: &BatchView<'_>) -> Option<BytesMut> {
    let compression = crate::codec::from_attributes(original.attributes())?;
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .ok()?;
    // One batch, or the encoder split it (records of a producer whose sequence no longer
    // matches their offsets); both are valid logs.
    Some(buf)
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    use super::records_of;
    use crate::test_util::{open, read_all, NOW};
    use crate::{LogConfig, PartitionLog};

    const DAY: i64 = 86_400_000;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 400,
            index_interval_bytes: 100,
            compact: true,
            delete: false,
            delete_retention_ms: DAY,
            min_cleanable_dirty_ratio: 0.0,
            ..LogConfig::default()
        }
    }

    /// One batch of (key, value) records at `ts`.
    fn keyed(entries: &[(&str, Option<&str>)], ts: i64, compression: Compression) -> BytesMut {
        let records: Vec<Record> = entries
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: ts,
                key: Some(Bytes::copy_from_slice(k.as_bytes())),
                value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf
    }

    /// One batch of a transactional producer's (key, value) records.
    fn transactional(entries: &[(&str, Option<&str>)], producer_id: i64) -> BytesMut {
        let mut batch = keyed(entries, NOW, Compression::None);
        let records: Vec<Record> = RecordBatchDecoder::decode_all(&mut batch.clone().freeze())
            .unwrap()
            .remove(0)
            .records
            .into_iter()
            .map(|r| Record {
                transactional: true,
                producer_id,
                producer_epoch: 0,
                sequence: i32::try_from(r.offset).unwrap(),
                ..r
            })
            .collect();
        batch.clear();
        RecordBatchEncoder::encode(
            &mut batch,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        batch
    }

    /// Every (offset, key, value) a consumer reading from the start would see.
    fn contents(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let bytes = log
                .read_plan(offset, usize::MAX, i64::MAX, true)
                .unwrap()
                .load()
                .unwrap();
            assert!(!bytes.is_empty(), "no progress at {offset}");
            let mut buf = bytes.clone();
            for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
                for r in set.records {
                    out.push((
                        r.offset,
                        String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                        r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                    ));
                    offset = r.offset + 1;
                }
            }
            for b in crate::batch::split_batches(&bytes) {
                offset = offset.max(b.unwrap().next_offset());
            }
        }
        out
    }

    fn compact(log: &mut PartitionLog, now: i64) -> super::CompactionOutcome {
        match log.compaction_job(now, super::CleanerTxns::default()) {
            None => super::CompactionOutcome::default(),
            Some(job) => {
                let done = job.run().unwrap();
                log.install_compaction(done).unwrap()
            }
        }
    }

    fn append(log: &mut PartitionLog, mut batch: BytesMut) {
        log.append(&mut batch, 0, NOW).unwrap();
    }

    /// Fills several segments: k0..k4 written three times (v1, v2, v3), then a tombstone for
    /// k1, then one more record to hold the active segment.
    fn filled(dir: &std::path::Path, compression: Compression) -> PartitionLog {
        let mut log = open(dir, config());
        for round in 1..=3 {
            for k in 0..5 {
                let key = format!("k{k}");
                let value = format!("v{round}");
                append(&mut log, keyed(&[(&key, Some(&value))], NOW, compression));
            }
        }
        append(
            &mut log,
            keyed(&[("k1", None), ("k2", Some("v4"))], NOW, compression),
        );
        append(&mut log, keyed(&[("k9", Some("active"))], NOW, compression));
        assert!(log.segment_count() >= 3, "the test needs closed segments");
        log
    }

    #[test]
    fn keeps_the_latest_value_per_key_with_its_original_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = filled(dir.path(), Compression::None);
        let before = contents(&log);
        let active_base = log.segments.last().unwrap().base_offset();
        let outcome = compact(&mut log, NOW);
        assert!(outcome.segments_rewritten > 0 && outcome.records_removed > 0);
        let after = contents(&log);
        // Below the active segment: one record per key, the last one written.
        let closed: Vec<_> = after
            .iter()
            .filter(|(o, _, _)| *o < active_base)
            .cloned()
            .collect();
        let mut keys: Vec<_> = closed.iter().map(|(_, k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), closed.len(), "one record per key: {closed:?}");
        for (offset, key, value) in &closed {
            let last = before
                .iter()
                .filter(|(o, k, _)| k == key && *o < active_base)
                .max_by_key(|(o, _, _)| *o)
                .unwrap();
            assert_eq!((offset, value), (&last.0, &last.2), "{key}");
        }
        // The tombstone for k1 stays within delete.retention.ms; the active segment is intact.
        assert!(closed.iter().any(|(_, k, v)| k == "k1" && v.is_none()) || active_base <= 15);
        let active_before: Vec<_> = before
            .iter()
            .filter(|(o, _, _)| *o >= active_base)
            .collect();
        let active_after: Vec<_> = after.iter().filter(|(o, _, _)| *o >= active_base).collect();
        assert_eq!(active_before, active_after);
        // Offsets only grow, with gaps where records went.
        assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(log.log_end_offset(), before.last().unwrap().0 + 1);
        // Nothing changed: the next pass is skipped.
        assert_eq!(
            log.compaction_job(NOW, super::CleanerTxns::default())
                .map(|_| ()),
            None
        );
    }

    type Contents = [(i64, String, Option<String>)];

    /// Every record in `before` but not `after` has a later record of its key.
    fn only_superseded_went(before: &Contents, after: &Contents) {
        for (offset, key, _) in before.iter().filter(|r| !after.contains(r)) {
            assert!(
                before.iter().any(|(o, k, _)| k == key && o > offset),
                "only superseded records went: {key} at {offset}"
            );
        }
    }

    /// A compacted log whose closed segments shrank, plus new ones: the next pass merges.
    fn shrunk(dir: &std::path::Path) -> PartitionLog {
        let mut log = filled(dir, Compression::None);
        compact(&mut log, NOW);
        for k in 0..8 {
            let key = format!("k{k}");
            append(
                &mut log,
                keyed(&[(&key, Some("v5"))], NOW, Compression::None),
            );
        }
        log
    }

    #[test]
    fn small_segments_are_merged_and_the_merge_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = shrunk(dir.path());
        let closed_before = log.segment_count() - 1;
        let before = contents(&log);
        compact(&mut log, NOW);
        let closed_after = log.segment_count() - 1;
        assert!(
            closed_after < closed_before,
            "{closed_before} closed segments before, {closed_after} after"
        );
        let merged = contents(&log);
        only_superseded_went(&before, &merged);
        let count = log.segment_count();
        drop(log);
        let log = open(dir.path(), config());
        assert_eq!((log.segment_count(), contents(&log)), (count, merged));
    }

    #[test]
    fn an_interrupted_swap_is_finished_when_the_log_opens() {
        let dir = tempfile::tempdir().unwrap();
        let log = shrunk(dir.path());
        let job = log
            .compaction_job(NOW, super::CleanerTxns::default())
            .unwrap();
        let done = job.run().unwrap();
        let merge = done
            .rewritten
            .iter()
            .find(|r| r.members.len() > 1)
            .expect("a group of segments to merge");
        // The crash came after the copy became a swap file and one old segment went.
        let (base, end) = (merge.members[0].0, merge.end);
        let swap = dir.path().join(super::swap_file_name(base, end));
        std::fs::rename(merge.copy.log_path(), &swap).unwrap();
        std::fs::remove_file(dir.path().join(super::file_name(base, "log"))).unwrap();
        let before = contents(&log);
        let segments_before = log.segment_count();
        drop(log);
        let log = open(dir.path(), config());
        assert!(!swap.exists());
        assert_eq!(
            log.segment_count(),
            segments_before + 1 - merge.members.len()
        );
        let after = contents(&log);
        only_superseded_went(&before, &after);
        assert!(after.windows(2).all(|w| w[0].0 < w[1].0), "no offset twice");
        assert_eq!(after.last(), before.last());
    }

    #[test]
    fn a_copy_is_indexed_during_the_pass_and_installed_with_those_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = shrunk(dir.path());
        let done = log
            .compaction_job(NOW, super::CleanerTxns::default())
            .unwrap()
            .run()
            .unwrap();
        // Built off the partition lock, beside the segments they will replace.
        let staged: Vec<(i64, Vec<u8>, Vec<u8>)> = done
            .rewritten
            .iter()
            .map(|r| {
                let index = std::fs::read(r.copy.index.path()).unwrap();
                let time_index = std::fs::read(r.copy.time_index.path()).unwrap();
                (r.copy.base_offset(), index, time_index)
            })
            .collect();
        assert!(
            staged.iter().any(|(_, index, _)| !index.is_empty()),
            "a copy's offset index was built during the pass"
        );
        let before = contents(&log);
        assert!(log.install_compaction(done).unwrap().segments_rewritten > 0);
        for (base, index, time_index) in &staged {
            let read =
                |kind| std::fs::read(dir.path().join(super::file_name(*base, kind))).unwrap();
            assert_eq!((&read("index"), &read("timeindex")), (index, time_index));
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
        let after = contents(&log);
        only_superseded_went(&before, &after);
        // Reads from every offset find their batch through those indexes, before and after a reopen.
        let from_each = |log: &PartitionLog| -> Vec<i64> {
            after
                .iter()
                .map(|(offset, _, _)| {
                    let bytes = log
                        .read_plan(*offset, 1, i64::MAX, true)
                        .unwrap()
                        .load()
                        .unwrap();
                    let mut buf = bytes.clone();
                    let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
                    sets.iter()
                        .flat_map(|s| &s.records)
                        .map(|r| r.offset)
                        .find(|o| o >= offset)
                        .unwrap()
                })
                .collect()
        };
        let offsets: Vec<i64> = after.iter().map(|r| r.0).collect();
        assert_eq!(from_each(&log), offsets);
        drop(log);
        let log = open(dir.path(), config());
        assert_eq!(contents(&log), after);
        assert_eq!(from_each(&log), offsets);
    }

    #[test]
    fn of_two_swaps_for_one_base_the_wider_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: String| dir.path().join(name);
        std::fs::write(path(super::file_name(0, "log")), "old").unwrap();
        std::fs::write(path(super::file_name(5, "log")), "old").unwrap();
        std::fs::write(path(super::swap_file_name(0, 5)), "narrow").unwrap();
        std::fs::write(path(super::swap_file_name(0, 9)), "wide").unwrap();
        super::complete_swaps(dir.path()).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [super::file_name(0, "log")]);
        let merged = std::fs::read_to_string(path(super::file_name(0, "log"))).unwrap();
        assert_eq!(merged, "wide");
    }

    #[test]
    fn segments_are_grouped_while_they_fit_one_segment() {
        let segment = |base: i64, next: i64, size: u64| super::SnapshotSegment {
            base_offset: base,
            next_offset: next,
            file: std::sync::Arc::new(tempfile::tempfile().unwrap()),
            size,
        };
        let segments = [
            segment(0, 10, 100),
            segment(10, 20, 100),
            segment(20, 30, 300),
            segment(30, 40, 50),
            segment(40, 1 << 32, 10),
        ];
        let groups = super::group_by_size(&segments, 250);
        assert_eq!(groups, [0..2, 2..3, 3..4, 4..5]);
    }

    #[test]
    fn a_pass_waits_for_min_cleanable_dirty_ratio_unless_max_compaction_lag_passed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = filled(dir.path(), Compression::None);
        compact(&mut log, NOW);
        // One more small closed segment is dirty, but far below 90% of the log.
        for k in 0..6 {
            let key = format!("k{k}");
            append(
                &mut log,
                keyed(&[(&key, Some("v6"))], NOW, Compression::None),
            );
        }
        log.config.min_cleanable_dirty_ratio = 0.9;
        let txns = super::CleanerTxns::default;
        assert!(
            log.compaction_job(NOW, txns()).is_none(),
            "not dirty enough"
        );
        log.config.min_cleanable_dirty_ratio = 0.1;
        assert!(log.compaction_job(NOW, txns()).is_some(), "dirty enough");
        log.config.min_cleanable_dirty_ratio = 0.9;
        log.config.max_compaction_lag_ms = 1_000;
        let later = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 1_000;
        assert!(log.compaction_job(later, txns()).is_some(), "overdue");
    }

    #[test]
    fn a_reopened_log_remembers_what_was_cleaned_and_when_tombstones_fall_due() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = filled(dir.path(), Compression::None);
        append(
            &mut log,
            keyed(&[("pad", Some(&"x".repeat(400)))], NOW, Compression::None),
        );
        compact(&mut log, NOW);
        drop(log);
        let log = open(dir.path(), config());
        let txns = super::CleanerTxns::default;
        assert!(
            log.compaction_job(NOW, txns()).is_none(),
            "nothing dirty after a reopen"
        );
        assert!(
            log.compaction_job(NOW + DAY + 1, txns()).is_some(),
            "tombstones fall due"
        );
    }

    #[test]
    fn records_younger_than_min_compaction_lag_are_kept() {
        const HOUR: i64 = 3_600_000;
        let dir = tempfile::tempdir().unwrap();
        let mut log = filled(dir.path(), Compression::None);
        log.config.min_compaction_lag_ms = HOUR;
        let before = contents(&log);
        assert!(log
            .compaction_job(NOW + HOUR - 1, super::CleanerTxns::default())
            .is_none());
        assert_eq!(contents(&log), before);
        let outcome = compact(&mut log, NOW + HOUR);
        assert!(outcome.records_removed > 0, "compacted once the lag passed");
    }

    #[test]
    fn a_compacted_log_rolls_at_max_compaction_lag() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(
            dir.path(),
            LogConfig {
                max_compaction_lag_ms: 1_000,
                ..config()
            },
        );
        append(&mut log, keyed(&[("k", Some("v"))], NOW, Compression::None));
        assert!(!log.enforce_retention(NOW + 999).unwrap().rolled);
        assert!(log.enforce_retention(NOW + 1_000).unwrap().rolled);
    }

    #[test]
    fn tombstones_go_after_delete_retention_and_everything_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = filled(dir.path(), Compression::Lz4);
        // Roll so the tombstone batch is closed too.
        append(
            &mut log,
            keyed(&[("pad", Some(&"x".repeat(400)))], NOW, Compression::Lz4),
        );
        compact(&mut log, NOW);
        assert!(contents(&log)
            .iter()
            .any(|(_, k, v)| k == "k1" && v.is_none()));
        assert!(
            log.compaction_job(NOW + DAY - 1, super::CleanerTxns::default())
                .is_none(),
            "not due yet"
        );
        let outcome = compact(&mut log, NOW + DAY + 1);
        assert!(outcome.records_removed >= 1);
        let after = contents(&log);
        assert!(
            !after.iter().any(|(_, k, _)| k == "k1"),
            "tombstone and its key are gone: {after:?}"
        );
        assert!(after
            .iter()
            .any(|(_, k, v)| k == "k2" && v.as_deref() == Some("v4")));
        // Reopen: indexes rebuilt from the compacted files, same data.
        drop(log);
        let log = open(dir.path(), config());
        assert_eq!(contents(&log), after);
        assert!(!read_all(&log, 0).is_empty());
    }

    #[test]
    fn fetching_a_removed_offset_returns_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = filled(dir.path(), Compression::None);
        compact(&mut log, NOW);
        // Offset 0 held k0=v1, superseded by k0=v3.
        let bytes = log
            .read_plan(0, usize::MAX, i64::MAX, true)
            .unwrap()
            .load()
            .unwrap();
        let mut buf = bytes.clone();
        let first = RecordBatchDecoder::decode_all(&mut buf).unwrap()[0].records[0].offset;
        assert!(first > 0);
    }

    #[test]
    fn logs_that_are_not_compacted_and_active_segments_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(
            dir.path(),
            LogConfig {
                compact: false,
                ..config()
            },
        );
        append(
            &mut log,
            keyed(
                &[("k", Some("1")), ("k", Some("2"))],
                NOW,
                Compression::None,
            ),
        );
        assert!(log
            .compaction_job(NOW, super::CleanerTxns::default())
            .is_none());
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        append(
            &mut log,
            keyed(
                &[("k", Some("1")), ("k", Some("2"))],
                NOW,
                Compression::None,
            ),
        );
        assert!(
            log.compaction_job(NOW, super::CleanerTxns::default())
                .is_none(),
            "only an active segment"
        );
    }

    #[test]
    fn a_segment_changed_during_the_pass_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = filled(dir.path(), Compression::None);
        let job = log
            .compaction_job(NOW, super::CleanerTxns::default())
            .unwrap();
        let done = job.run().unwrap();
        log.truncate_to(3).unwrap();
        let outcome = log.install_compaction(done).unwrap();
        assert_eq!(outcome.segments_rewritten, 0);
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
    }

    #[test]
    fn implausible_record_counts_are_left_alone() {
        let mut batch = keyed(&[("k", Some("v"))], NOW, Compression::None);
        // Claim two billion records; fix the CRC so the batch still validates.
        batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        let view = crate::batch::BatchView::parse(&batch).unwrap();
        assert!(records_of(&view).is_none());
    }

    #[test]
    fn aborted_records_are_dropped_and_open_transactions_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        append(
            &mut log,
            keyed(&[("k", Some("committed"))], NOW, Compression::None),
        );
        append(&mut log, transactional(&[("k", Some("aborted"))], 9));
        let marker = crate::marker_batch(9, 0, false, 0, NOW).unwrap();
        append(&mut log, marker);
        for i in 0..12 {
            let key = format!("pad{i}");
            append(
                &mut log,
                keyed(&[(&key, Some("x"))], NOW, Compression::None),
            );
        }
        assert!(log.segment_count() >= 3, "the test needs closed segments");

        let open_at_start = super::CleanerTxns {
            first_unstable_offset: Some(0),
            aborted: Vec::new(),
        };
        assert!(log.compaction_job(NOW, open_at_start).is_none());

        let txns = super::CleanerTxns {
            first_unstable_offset: None,
            aborted: vec![super::AbortedRange {
                producer_id: 9,
                first_offset: 1,
                last_offset: 2,
            }],
        };
        let job = log.compaction_job(NOW, txns).unwrap();
        let outcome = log.install_compaction(job.run().unwrap()).unwrap();
        assert_eq!(outcome.records_removed, 1);
        let after = contents(&log);
        let values: Vec<_> = after
            .iter()
            .filter(|(_, k, _)| k == "k")
            .map(|(o, _, v)| (*o, v.clone()))
            .collect();
        assert_eq!(values, vec![(0, Some("committed".to_string()))]);
    }
}
