//! Loading a partition directory after a restart or crash.
//!
//! Segments wholly before the recovery point were fsynced and are trusted: only their index
//! tails are checked. Every later segment (at least the active one) is read batch by batch,
//! checking headers, CRCs and offset order; the first torn or invalid batch ends the log: the
//! segment is cut there and later segments are deleted, as Kafka does.

use std::fs;
use std::path::Path;

use tracing::{info, warn};

use super::error::{Result, StorageError};
use super::scan::{BatchScan, ScanError};
use super::segment::{
    parse_log_file_name, AppendedBatch, Segment, INDEX_SUFFIX, TIME_INDEX_SUFFIX,
};

/// Opens every segment in `dir`, recovering those at or after `recovery_point`. The result is
/// sorted by base offset and may be empty.
pub(crate) fn load_segments(
    dir: &Path,
    recovery_point: i64,
    index_interval: u32,
) -> Result<Vec<Segment>> {
    let bases = list_segments(dir)?;
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        let (mut segment, index_sane, time_sane) = Segment::open_unchecked(dir, base)?;
        let next_base = bases.get(i + 1).copied();
        let trusted = next_base.is_some_and(|next| next <= recovery_point);
        let loaded = trusted && index_sane && time_sane && segment.load_trusted()?;
        if loaded {
            // Closed and durable: nothing will write its indexes, so do not hold them open.
            drop(segment.take_index_handles());
        }
        if !loaded {
            if trusted {
                warn!(segment = %segment.log_path().display(), "index does not match the log; rebuilding it");
            }
            let previous_end = segments.last().map(Segment::next_offset);
            let clean = recover_segment(&mut segment, previous_end, index_interval)?;
            if !clean {
                segments.push(segment);
                for &later in &bases[i + 1..] {
                    warn!(
                        base_offset = later,
                        "deleting segment after a corrupt batch"
                    );
                    let (later, _, _) = Segment::open_unchecked(dir, later)?;
                    later.delete_files()?;
                }
                return Ok(segments);
            }
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// Base offsets of the `.log` files in `dir`, sorted; removes leftovers of interrupted
/// writes (temporary checkpoints), retired segments' files and index files without a log.
fn list_segments(dir: &Path) -> Result<Vec<i64>> {
    super::compaction::complete_swaps(dir)?;
    let dir_error = |source| StorageError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_log_file_name(name) {
            bases.push(base);
        } else if name.ends_with(".tmp") || super::segment::is_retired(name) {
            remove_leftover(&entry.path())?;
        } else if let Some(stem) = name
            .strip_suffix(TIME_INDEX_SUFFIX)
            .or_else(|| name.strip_suffix(INDEX_SUFFIX))
            .and_then(|s| s.strip_suffix('.'))
        {
            indexes.push((stem.to_string(), entry.path()));
        }
    }
    bases.sort_unstable();
    for (stem, path) in indexes {
        let has_log = stem
            .parse::<i64>()
            .is_ok_and(|b| bases.binary_search(&b).is_ok());
        if !has_log {
            remove_leftover(&path)?;
        }
    }
    Ok(bases)
}

fn remove_leftover(path: &Path) -> Result<()> {
    info!(path = %path.display(), "removing leftover file");
    fs::remove_file(path).map_err(|source| StorageError::Delete {
        path: path.to_path_buf(),
        source,
    })
}

/// Re-reads a whole segment, rebuilding its indexes; cuts it at the first invalid batch.
/// Returns `false` when something was cut.
pub(crate) fn recover_segment(
    segment: &mut Segment,
    previous_end: Option<i64>,
    index_interval: u32,
) -> Result<bool> {
    segment.reset_for_rebuild()?;
    let base = segment.base_offset();
    let file_size = segment.size();
    let file = std::sync::Arc::clone(segment.log_file());
    let mut scan = BatchScan::new(&file, 0, file_size);
    let mut expected = previous_end.unwrap_or(base).max(base);
    let mut valid = 0u64;
    let mut first_timestamp = None;
    let mut stop = None;
    loop {
        let (position, view) = match scan.next_batch() {
            Ok(Some(found)) => found,
            Ok(None) => break,
            Err(ScanError::Io(source)) => {
                return Err(StorageError::SegmentRead {
                    path: segment.log_path().to_path_buf(),
                    source,
                })
            }
            Err(ScanError::Invalid { position, error }) => {
                stop = Some((position, error.to_string()));
                break;
            }
        };
        let relative_end = view.last_offset() - base;
        if view.base_offset() < expected || relative_end > i64::from(i32::MAX) {
            stop = Some((
                position,
                format!("batch offset {} out of order", view.base_offset()),
            ));
            break;
        }
        let batch = AppendedBatch {
            base_offset: view.base_offset(),
            size: view.size() as u32,
            last_offset: view.last_offset(),
            max_timestamp: view.max_timestamp(),
        };
        first_timestamp.get_or_insert(view.max_timestamp());
        expected = view.next_offset();
        segment.index_batch(position, &batch, index_interval);
        valid = position + u64::from(batch.size);
    }
    let next_offset = segment.next_offset();
    segment.set_recovered(valid, next_offset, first_timestamp);
    let clean = stop.is_none();
    if let Some((position, reason)) = stop {
        warn!(
            segment = %segment.log_path().display(),
            position,
            discarded_bytes = file_size - position,
            %reason,
            "truncating log at the first invalid batch"
        );
        segment.truncate_file(position)?;
    }
    segment.persist_indexes()?;
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    use crate::segment::{file_name, INDEX_SUFFIX, LOG_SUFFIX};
    use crate::test_util::{append, open, read_all, simple, small_config};
    use crate::LogConfig;

    fn segment_path(dir: &std::path::Path, base: i64) -> std::path::PathBuf {
        dir.join(file_name(base, LOG_SUFFIX))
    }

    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_whole_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        for _ in 0..3 {
            append(&mut log, simple(4, 1_000));
        }
        let size = log.size_bytes();
        drop(log);
        let file = OpenOptions::new()
            .write(true)
            .open(segment_path(dir.path(), 0))
            .expect("segment");
        file.set_len(size - 10).expect("tear");
        drop(file);
        let mut log = open(dir.path(), LogConfig::default());
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(read_all(&log, 0), vec![(0, 3), (4, 7)]);
        assert_eq!(append(&mut log, simple(1, 1_000)).base_offset, 8);
    }

    #[test]
    fn trailing_garbage_is_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        append(&mut log, simple(2, 1_000));
        let size = log.size_bytes();
        drop(log);
        let mut file = OpenOptions::new()
            .append(true)
            .open(segment_path(dir.path(), 0))
            .expect("segment");
        file.write_all(&[0xab; 100]).expect("garbage");
        drop(file);
        let log = open(dir.path(), LogConfig::default());
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(log.size_bytes(), size);
    }

    #[test]
    fn a_crc_corrupted_batch_ends_the_log_and_later_segments_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..40 {
            append(&mut log, simple(2, 1_000));
        }
        assert!(log.segment_count() > 2);
        let second = log.segments[0].size();
        let first_batch_len = simple(2, 1_000).len() as u64;
        drop(log);
        // Flip a payload byte of the second batch of the first segment.
        let path = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&path).expect("read");
        let at = (first_batch_len * 2 - 1) as usize;
        assert!(at < second as usize);
        bytes[at] ^= 0xff;
        fs::write(&path, bytes).expect("write");
        let log = open(dir.path(), small_config());
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(read_all(&log, 0), vec![(0, 1)]);
    }

    #[test]
    fn a_batch_whose_records_disagree_with_its_header_ends_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        append(&mut log, simple(2, 1_000));
        append(&mut log, simple(3, 1_000));
        let good = log.size_bytes() as usize;
        drop(log);
        // A third batch with a valid CRC whose header claims one more record than it holds,
        // as a broker without record validation would have stored it.
        let mut lying = simple(1, 1_000).to_vec();
        lying[0..8].copy_from_slice(&5i64.to_be_bytes());
        lying[23..27].copy_from_slice(&1i32.to_be_bytes());
        lying[57..61].copy_from_slice(&2i32.to_be_bytes());
        let crc = crc32c::crc32c(&lying[21..]);
        lying[17..21].copy_from_slice(&crc.to_be_bytes());
        let path = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&path).expect("read");
        assert_eq!(bytes.len(), good);
        bytes.extend_from_slice(&lying);
        bytes.extend_from_slice(&simple(1, 1_000));
        fs::write(&path, bytes).expect("write");
        let log = open(dir.path(), LogConfig::default());
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(read_all(&log, 0), vec![(0, 1), (2, 4)]);
        assert_eq!(log.size_bytes() as usize, good);
    }

    #[test]
    fn indexes_of_flushed_segments_are_reused_on_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..40 {
            append(&mut log, simple(2, 1_000));
        }
        log.flush().expect("flush");
        let entries = log.segments[0].index.last();
        let time_entries = log.segments[0].time_index.last();
        assert!(entries.is_some() && time_entries.is_some());
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(log.segments[0].index.last(), entries);
        assert_eq!(log.segments[0].time_index.last(), time_entries);
        assert_eq!(log.segments[0].max_timestamp().0, 1_001);
    }

    #[test]
    fn data_rewritten_after_a_truncation_is_not_trusted_blindly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..40 {
            append(&mut log, simple(2, 1_000));
        }
        log.flush().expect("flush");
        log.truncate_to(4).expect("truncate");
        for _ in 0..40 {
            append(&mut log, simple(2, 2_000));
        }
        assert!(log.segment_count() > 2);
        drop(log);
        // Corrupt the last batch of the first segment, rewritten after the truncation.
        let path = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).expect("write");
        let log = open(dir.path(), small_config());
        assert_eq!(log.segment_count(), 1);
        assert!(log.log_end_offset() < 20, "cut at the corrupt batch");
    }

    #[test]
    fn missing_or_damaged_indexes_are_rebuilt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for _ in 0..40 {
            append(&mut log, simple(2, 1_000));
        }
        log.flush().expect("flush");
        let expected = read_all(&log, 0);
        drop(log);
        fs::remove_file(dir.path().join(file_name(0, INDEX_SUFFIX))).expect("remove index");
        fs::write(dir.path().join(file_name(0, "timeindex")), [7u8; 13]).expect("garbage");
        fs::write(dir.path().join(file_name(8, INDEX_SUFFIX)), [0xffu8; 16]).expect("garbage");
        let log = open(dir.path(), small_config());
        assert_eq!(read_all(&log, 0), expected);
        assert!(log.segments[1].index.last().is_some());
        assert!(
            log.segments[0].index.last().is_some(),
            "{:?}",
            log.segments[0]
        );
        assert_eq!(log.segments[0].max_timestamp().0, 1_001);
    }

    #[test]
    fn leftover_temporary_and_orphan_index_files_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("high-watermark.tmp"), "x").expect("tmp");
        fs::write(dir.path().join(file_name(99, INDEX_SUFFIX)), [0u8; 8]).expect("orphan");
        fs::write(dir.path().join(file_name(99, "timeindex")), [0u8; 12]).expect("orphan");
        let log = open(dir.path(), LogConfig::default());
        assert_eq!(log.log_end_offset(), 0);
        assert!(!dir.path().join("high-watermark.tmp").exists());
        assert!(!dir.path().join(file_name(99, INDEX_SUFFIX)).exists());
        assert!(!dir.path().join(file_name(99, "timeindex")).exists());
    }

    #[test]
    fn index_files_are_written_when_a_segment_closes_and_trusted_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        let file_len = |base: i64, suffix: &str| {
            fs::metadata(dir.path().join(file_name(base, suffix)))
                .expect("index file")
                .len()
        };
        for _ in 0..3 {
            append(&mut log, simple(2, 1_000));
        }
        assert_eq!(log.segment_count(), 1);
        assert!(log.segments[0].index.last().is_some(), "indexed in memory");
        assert_eq!(file_len(0, INDEX_SUFFIX), 0, "not written while active");
        assert_eq!(file_len(0, "timeindex"), 0);
        while log.segment_count() < 2 {
            append(&mut log, simple(2, 1_000));
        }
        let closed = &log.segments[0];
        assert_eq!(
            file_len(0, INDEX_SUFFIX),
            closed.index.entries.len() as u64 * 8,
            "every entry written at the roll"
        );
        assert_eq!(
            file_len(0, "timeindex"),
            closed.time_index.entries.len() as u64 * 12
        );
        let entries = closed.index.entries.len();
        log.flush().expect("flush");
        drop(log);
        let log = open(dir.path(), small_config());
        assert_eq!(log.segments[0].index.entries.len(), entries);
        assert!(
            !log.segments[0].index_files_open(),
            "the closed segment was loaded as trusted, not rebuilt"
        );
    }
}
