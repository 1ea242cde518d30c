//! Small text checkpoint files written atomically: write a temporary file, fsync it, rename
//! it over the old one, fsync the directory. A crash leaves either the old or the new file.
//! [`replace_lines`] skips the fsyncs, for checkpoints the log's loading repairs.
//!
//! Format, as Kafka's checkpoint files: a version line `0`, a count line, then one entry per
//! line. Offset checkpoints hold one entry (the offset).

use std::fs::{self, File};
use std::io;
use std::path::Path;
use tracing::warn;

use super::error::{Result, StorageError};
use crate::durable_file::{replace_atomic, write_atomic};

const VERSION: &str = "0";

/// High watermark checkpoint file name.
pub(crate) const HIGH_WATERMARK_FILE: &str = "high-watermark";
/// Recovery point checkpoint file name.
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Log start offset checkpoint file name (advanced by retention and DeleteRecords).
pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset";
/// Compaction progress: the offset cleaned up to and when kept tombstones fall due.
pub(crate) const CLEANER_FILE: &str = "cleaner-checkpoint";
/// Leader epoch checkpoint file name (Kafka's name and format).
pub(crate) const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// Writes `lines` under the version and count header, atomically and durably.
pub(crate) fn write_lines(dir: &Path, name: &str, lines: &[String]) -> Result<()> {
    write_text(dir, name, lines, write_atomic)
}

/// [`write_lines`] without waiting for the device: for a checkpoint whose loss the log's
/// loading repairs (see [`replace_atomic`]).
pub(crate) fn replace_lines(dir: &Path, name: &str, lines: &[String]) -> Result<()> {
    write_text(dir, name, lines, replace_atomic)
}

fn write_text(
    dir: &Path,
    name: &str,
    lines: &[String],
    write: fn(&Path, &[u8]) -> io::Result<()>,
) -> Result<()> {
    let path = dir.join(name);
    let mut text = String::with_capacity(16 + lines.len() * 16);
    text.push_str(VERSION);
    text.push('\n');
    text.push_str(&lines.len().to_string());
    text.push('\n');
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    write(&path, text.as_bytes()).map_err(|source| StorageError::Checkpoint {
        path: path.clone(),
        source,
    })
}

/// Fsyncs a directory so renames, creations and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the entry lines of a checkpoint; `None` when the file does not exist or is
/// unreadable as a checkpoint (logged: the caller falls back to a safe default).
pub(crate) fn read_lines(dir: &Path, name: &str) -> Result<Option<Vec<String>>> {
    let path = dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            warn!(path = %path.display(), "checkpoint is not text; ignoring it");
            return Ok(None);
        }
        Err(source) => return Err(StorageError::Checkpoint { path, source }),
    };
    let mut lines = text.lines();
    let version = lines.next();
    let count = lines.next().and_then(|c| c.trim().parse::<usize>().ok());
    let entries: Vec<String> = lines
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    match (version, count) {
        (Some(v), Some(n)) if v.trim() == VERSION && n == entries.len() => Ok(Some(entries)),
        _ => {
            warn!(path = %path.display(), "malformed checkpoint; ignoring it");
            Ok(None)
        }
    }
}

/// Writes a single-offset checkpoint.
pub(crate) fn write_offset(dir: &Path, name: &str, offset: i64) -> Result<()> {
    write_lines(dir, name, &[offset.to_string()])
}

/// Reads a single-offset checkpoint; `None` when missing or malformed.
pub(crate) fn read_offset(dir: &Path, name: &str) -> Result<Option<i64>> {
    let Some(lines) = read_lines(dir, name)? else {
        return Ok(None);
    };
    match lines.as_slice() {
        [one] => match one.parse::<i64>() {
            Ok(offset) => Ok(Some(offset)),
            Err(_) => {
                warn!(
                    file = name,
                    "checkpoint offset is not a number; ignoring it"
                );
                Ok(None)
            }
        },
        _ => {
            warn!(
                file = name,
                "offset checkpoint must hold one entry; ignoring it"
            );
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_of_one_checkpoint_at_once_each_land_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let writers: Vec<_> = (0..2_i64)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        write_offset(&path, RECOVERY_POINT_FILE, w * 1_000 + i)
                            .expect("every write lands");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer");
        }
        let last = read_offset(&path, RECOVERY_POINT_FILE).expect("read");
        assert!(matches!(last, Some(199 | 1_199)), "{last:?}");
        let leftovers: Vec<_> = fs::read_dir(&path)
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn offset_checkpoint_round_trips_and_garbage_reads_as_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_offset(dir.path(), "hw").expect("read"), None);
        write_offset(dir.path(), "hw", 1234).expect("write");
        assert_eq!(read_offset(dir.path(), "hw").expect("read"), Some(1234));
        assert_eq!(
            fs::read_to_string(dir.path().join("hw")).expect("raw"),
            "0\n1\n1234\n"
        );
        fs::write(dir.path().join("hw"), "0\n2\n5\n").expect("raw write");
        assert_eq!(read_offset(dir.path(), "hw").expect("read"), None);
    }
}
