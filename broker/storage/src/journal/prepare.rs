//! Making the commit journal ready at start-up: sized to the space there is ([`size_for`]),
//! zero-filled under a temporary name and renamed into place, and never leaving that
//! temporary file behind to fill the disk, whether the zero fill failed or the broker died
//! during it.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::record;
use super::space::{size_for, FreeSpace, Sizing, FREE_SPACE_SHARE, MIN_JOURNAL_BYTES};
use super::writer::Journal;
use crate::sync_dir;

/// Why the commit journal could not be made ready; fsynced appends fsync their segments
/// instead.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The free space of the data directory's file system could not be read.
    #[error("cannot read the free space of {dir}: {source}")]
    FreeSpace {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// An old journal or a leftover of an earlier preparation could not be removed.
    #[error("cannot remove {path}: {source}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// Writing the zero-filled journal failed; what was written is removed again.
    #[error("cannot create the commit journal {path} ({bytes} bytes): {source}")]
    Create {
        /// The journal file.
        path: PathBuf,
        /// The size it was to have.
        bytes: u64,
        /// What failed (no space left on the device, say).
        #[source]
        source: io::Error,
    },
    /// The journal file could not be opened.
    #[error("cannot open the commit journal {path}: {source}")]
    Open {
        /// The journal file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

impl Journal {
    /// Makes the journal at `path` ready for rounds numbered after `last_seq`: `wanted` bytes
    /// (the configured size) if the file system has room, else about a quarter of its free
    /// space as `space` reports it ([`size_for`]), or none at all below a floor (`None`, and
    /// the file there is removed); the figures are logged. A leftover of an earlier
    /// preparation that crashed is removed first, and so is what a failed one wrote. Call only
    /// once every record in the journal there has been replayed and made durable: they are
    /// overwritten or removed.
    pub fn prepare(
        path: &Path,
        wanted: u64,
        last_seq: u64,
        space: &dyn FreeSpace,
    ) -> Result<Option<Journal>, JournalError> {
        remove_leftover(path)?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let free = space
            .free_bytes(dir)
            .map_err(|source| JournalError::FreeSpace {
                dir: dir.to_path_buf(),
                source,
            })?;
        let existing = match std::fs::metadata(path) {
            Ok(metadata) => Some(metadata.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(JournalError::Open {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let bytes = match size_for(wanted, existing, free) {
            Sizing::Keep(bytes) => bytes,
            Sizing::Create(bytes) => {
                // The old records are durable: its space counts as free, and goes first.
                remove_file_if_present(path)?;
                create_zero_filled(path, bytes).map_err(|source| JournalError::Create {
                    path: path.to_path_buf(),
                    bytes,
                    source,
                })?;
                bytes
            }
            Sizing::Off => {
                tracing::warn!(
                    path = %path.display(),
                    configured_bytes = wanted,
                    free_bytes = free,
                    "commit journal off: 1/{FREE_SPACE_SHARE} of the free space is below its \
                     {MIN_JOURNAL_BYTES}-byte minimum; fsynced produce requests fsync their \
                     segments"
                );
                remove_file_if_present(path)?;
                return Ok(None);
            }
        };
        if bytes < record::padded(wanted) {
            tracing::info!(
                path = %path.display(),
                bytes,
                configured_bytes = wanted,
                free_bytes = free,
                "commit journal sized to the free space: smaller than configured (a new one \
                 takes at most 1/{FREE_SPACE_SHARE} of it)"
            );
        }
        Journal::open(path, bytes, last_seq)
            .map(Some)
            .map_err(|source| JournalError::Open {
                path: path.to_path_buf(),
                source,
            })
    }
}

/// The name a journal is written under until it is complete (`commit.tmp`).
fn temporary_path(path: &Path) -> PathBuf {
    path.with_extension("tmp")
}

/// Removes what a preparation of the journal at `path` that crashed left behind: a partly
/// written file that only takes space.
pub fn remove_leftover(path: &Path) -> Result<(), JournalError> {
    remove_file_if_present(&temporary_path(path))
}

fn remove_file_if_present(path: &Path) -> Result<(), JournalError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(JournalError::Remove {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes a zero-filled file of `size` bytes under a temporary name, makes it durable and
/// renames it over `path`, so a crash never leaves a short journal behind. On failure (a full
/// disk, say) the temporary file is removed: it would only take the space the logs need.
pub(super) fn create_zero_filled(path: &Path, size: u64) -> io::Result<()> {
    let temporary = temporary_path(path);
    if let Err(error) = write_zeros(&temporary, size) {
        if let Err(remove) = std::fs::remove_file(&temporary) {
            tracing::warn!(
                path = %temporary.display(),
                error = %remove,
                "cannot remove the unfinished commit journal; the next start removes it"
            );
        }
        return Err(error);
    }
    std::fs::rename(&temporary, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Writes `size` zero bytes to a new file at `path` and makes them durable.
fn write_zeros(path: &Path, size: u64) -> io::Result<()> {
    let mut file = File::create(path)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let chunk = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..chunk])?;
        left -= chunk as u64;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{create_zero_filled, Journal, JournalError};
    use crate::journal::record::BLOCK;
    use crate::journal::FreeSpace;

    /// A file system reporting a fixed free space (or failing to), so preparation can be
    /// tried on a "small disk" without one.
    #[derive(Debug)]
    struct Free(Option<u64>);

    impl FreeSpace for Free {
        fn free_bytes(&self, _dir: &Path) -> std::io::Result<u64> {
            self.0
                .ok_or_else(|| std::io::Error::other("statvfs refused"))
        }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_small_disk_gets_a_journal_of_a_quarter_of_its_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commit.journal");
        // A crashed preparation left a partly written file.
        std::fs::write(path.with_extension("tmp"), vec![0u8; 4096]).unwrap();
        let journal = Journal::prepare(&path, 128 * MIB, 7, &Free(Some(10 * MIB)))
            .unwrap()
            .expect("a journal");
        assert_eq!(journal.size(), 10 * MIB / 4 / BLOCK * BLOCK);
        assert_eq!(journal.last_seq(), 7);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), journal.size());
        assert!(!path.with_extension("tmp").exists(), "the leftover is gone");
        drop(journal);
        // The next start keeps it; a roomy disk gets the configured size.
        let kept = Journal::prepare(&path, 128 * MIB, 7, &Free(Some(8 * MIB))).unwrap();
        assert_eq!(kept.map(|j| j.size()), Some(10 * MIB / 4 / BLOCK * BLOCK));
        let roomy = Journal::prepare(&path, 3 * MIB, 7, &Free(Some(1 << 40))).unwrap();
        assert_eq!(roomy.map(|j| j.size()), Some(3 * MIB));
    }

    #[test]
    fn too_little_space_turns_the_journal_off_and_removes_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commit.journal");
        Journal::prepare(&path, 2 * MIB, 0, &Free(Some(1 << 40)))
            .unwrap()
            .expect("a journal");
        // 2 MiB free plus the old journal's 2 MiB: a quarter is below the 1 MiB floor.
        let off = Journal::prepare(&path, 2 * MIB, 0, &Free(Some(2 * MIB - 1))).unwrap();
        assert!(off.is_none());
        assert!(!path.exists());
        let failed = Journal::prepare(&path, 2 * MIB, 0, &Free(None));
        assert!(
            matches!(failed, Err(JournalError::FreeSpace { .. })),
            "{failed:?}"
        );
    }

    /// The first start on a small disk filled it with `commit.tmp` and left it there.
    #[test]
    fn a_failed_creation_removes_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commit.journal");
        // A device that is always full: every write of the zero fill fails with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", path.with_extension("tmp")).unwrap();
        let failed = create_zero_filled(&path, 4 * BLOCK).unwrap_err();
        assert_eq!(failed.kind(), std::io::ErrorKind::StorageFull, "{failed}");
        assert!(
            std::fs::symlink_metadata(path.with_extension("tmp")).is_err(),
            "the temporary file is removed"
        );
        assert!(!path.exists());
    }
}
