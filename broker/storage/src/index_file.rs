//! The parts the offset and time indexes share: an in-memory list of fixed-size entries, both
//! fields strictly ordered, mirrored to an append-only file.
//!
//! Indexes live in memory (binary-searched) and are mirrored to disk only so that a restart
//! does not need to rescan every segment; a damaged index file is rebuilt from the log.
//! Closed segments give their index file handles up once synced, so a partition holds about
//! one open file per segment, as with Kafka.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{Result, StorageError};

/// Disk mirror of an in-memory index.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    /// Open while the index is being written; reopened on demand after [`Self::take_handle`].
    file: Option<Arc<File>>,
    len: u64,
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StorageError::SegmentOpen {
            path: path.to_path_buf(),
            source,
        })
}

impl IndexFile {
    /// Opens (creating if needed) the file and returns it with its whole content, or `None`
    /// content when the file did not exist (so the caller rebuilds the index).
    pub(crate) fn open(path: &Path) -> Result<(Self, Option<Vec<u8>>)> {
        let existed = path.exists();
        let mut file = open_rw(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| StorageError::SegmentRead {
                path: path.to_path_buf(),
                source,
            })?;
        let len = bytes.len() as u64;
        Ok((
            Self {
                path: path.to_path_buf(),
                file: Some(Arc::new(file)),
                len,
            },
            existed.then_some(bytes),
        ))
    }

    fn file(&mut self) -> Result<&Arc<File>> {
        if self.file.is_none() {
            self.file = Some(Arc::new(open_rw(&self.path)?));
        }
        self.file.as_ref().ok_or_else(|| StorageError::SegmentOpen {
            path: self.path.clone(),
            source: std::io::Error::other("index file handle missing"),
        })
    }

    /// Appends raw entry bytes at the end.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let at = self.len;
        self.file()?
            .write_all_at(bytes, at)
            .map_err(|source| self.write_error(source))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Cuts the file to `len` bytes.
    pub(crate) fn truncate(&mut self, len: u64) -> Result<()> {
        if len == self.len {
            return Ok(());
        }
        self.file()?
            .set_len(len)
            .map_err(|source| self.write_error(source))?;
        self.len = len;
        Ok(())
    }

    /// Hands the open handle over (for an fsync outside the partition lock) and closes this
    /// side of it; later writes reopen the file.
    pub(crate) fn take_handle(&mut self) -> Option<Arc<File>> {
        self.file.take()
    }

    /// True while this index holds an open handle.
    pub(crate) fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the file another name; an open handle stays valid.
    pub(crate) fn rename_to(&mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).map_err(|source| StorageError::SegmentWrite {
            path: to.to_path_buf(),
            source,
        })?;
        self.path = to.to_path_buf();
        Ok(())
    }

    fn write_error(&self, source: std::io::Error) -> StorageError {
        StorageError::SegmentWrite {
            path: self.path.clone(),
            source,
        }
    }
}

/// One fixed-size entry of a sparse index.
pub(crate) trait IndexEntry: Copy {
    /// Encoded size in bytes.
    const LEN: usize;
    /// Decodes one entry from exactly [`Self::LEN`] bytes.
    fn decode(bytes: &[u8]) -> Self;
    /// Appends the big-endian encoding.
    fn encode(&self, out: &mut Vec<u8>);
    /// Whether the entry may follow `previous` (indexes only grow).
    fn follows(&self, previous: &Self) -> bool;
}

/// Entries in memory, mirrored to an [`IndexFile`] up to `persisted`.
#[derive(Debug)]
pub(crate) struct SparseIndex<E> {
    pub(crate) entries: Vec<E>,
    persisted: usize,
    file: IndexFile,
}

impl<E: IndexEntry> SparseIndex<E> {
    /// Loads the file; `false` with it when the file was missing or damaged (bad length,
    /// entries out of order or failing `valid`), so the caller rebuilds the index.
    pub(crate) fn open(path: &Path, valid: impl Fn(&E) -> bool) -> Result<(Self, bool)> {
        let (file, bytes) = IndexFile::open(path)?;
        let existed = bytes.is_some();
        let bytes = bytes.unwrap_or_default();
        let mut entries: Vec<E> = Vec::with_capacity(bytes.len() / E::LEN);
        let mut sane = existed && bytes.len() % E::LEN == 0;
        for chunk in bytes.chunks_exact(E::LEN) {
            let entry = E::decode(chunk);
            if !entries.last().is_none_or(|last| entry.follows(last)) || !valid(&entry) {
                sane = false;
                break;
            }
            entries.push(entry);
        }
        let persisted = entries.len();
        Ok((
            Self {
                entries,
                persisted,
                file,
            },
            sane,
        ))
    }

    /// Adds `entry` if it follows the last one; written to disk by [`Self::persist`].
    pub(crate) fn push(&mut self, entry: E) {
        if self.entries.last().is_none_or(|last| entry.follows(last)) {
            self.entries.push(entry);
        }
    }

    /// Writes entries added since the last persist with one write.
    pub(crate) fn persist(&mut self) -> Result<()> {
        if self.persisted >= self.entries.len() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity((self.entries.len() - self.persisted) * E::LEN);
        for entry in &self.entries[self.persisted..] {
            entry.encode(&mut bytes);
        }
        self.file.append(&bytes)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// Keeps the first `keep` entries.
    pub(crate) fn truncate(&mut self, keep: usize) -> Result<()> {
        self.entries.truncate(keep);
        self.persisted = self.persisted.min(keep);
        self.file.truncate((self.persisted * E::LEN) as u64)
    }

    /// Forgets everything (before a rebuild).
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.truncate(0)
    }

    /// True while the index file is held open.
    pub(crate) fn is_file_open(&self) -> bool {
        self.file.is_open()
    }

    /// Gives up the open file handle for an fsync outside the partition lock.
    pub(crate) fn take_file_handle(&mut self) -> Option<Arc<File>> {
        self.file.take_handle()
    }

    /// Path of the index file.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// Gives the mirror file another name.
    pub(crate) fn rename_to(&mut self, to: &Path) -> Result<()> {
        self.file.rename_to(to)
    }
}
