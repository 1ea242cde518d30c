//! Append-only file of fixed-size entries shared by the offset and time indexes.
//!
//! Indexes live in memory (binary-searched) and are mirrored to disk only so that a restart
//! does not need to rescan every segment; a damaged index file is rebuilt from the log.

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
    file: Arc<File>,
    len: u64,
}

impl IndexFile {
    /// Opens (creating if needed) the file and returns it with its whole content, or `None`
    /// content when the file did not exist (so the caller rebuilds the index).
    pub(crate) fn open(path: &Path) -> Result<(Self, Option<Vec<u8>>)> {
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| StorageError::SegmentOpen {
                path: path.to_path_buf(),
                source,
            })?;
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
                file: Arc::new(file),
                len,
            },
            existed.then_some(bytes),
        ))
    }

    /// Appends raw entry bytes at the end.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(bytes, self.len)
            .map_err(|source| self.write_error(source))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Cuts the file to `len` bytes.
    pub(crate) fn truncate(&mut self, len: u64) -> Result<()> {
        if len == self.len {
            return Ok(());
        }
        self.file
            .set_len(len)
            .map_err(|source| self.write_error(source))?;
        self.len = len;
        Ok(())
    }

    /// Shared handle for an fsync outside the partition lock.
    pub(crate) fn handle(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn write_error(&self, source: std::io::Error) -> StorageError {
        StorageError::SegmentWrite {
            path: self.path.clone(),
            source,
        }
    }
}
