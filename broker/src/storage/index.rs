//! Sparse offset index: maps a batch's last offset to its file position, one entry per
//! `index.interval.bytes` of log, as Kafka's `.index` files (relative offset u32 BE,
//! position u32 BE).

use std::path::Path;

use super::error::Result;
use super::index_file::IndexFile;

const ENTRY_LEN: usize = 8;

/// Offset index of one segment, searched in memory.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    /// (offset relative to the segment base, file position), both strictly increasing.
    entries: Vec<(u32, u32)>,
    persisted: usize,
    file: IndexFile,
}

impl OffsetIndex {
    /// Loads the index; entries that break monotonicity or point at or past `log_size` are a
    /// sign of damage, reported by returning `false` so the caller rebuilds it.
    pub(crate) fn open(path: &Path, base_offset: i64, log_size: u64) -> Result<(Self, bool)> {
        let (file, bytes) = IndexFile::open(path)?;
        let existed = bytes.is_some();
        let bytes = bytes.unwrap_or_default();
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_LEN);
        let mut sane = existed && bytes.len() % ENTRY_LEN == 0;
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            let ordered = entries
                .last()
                .is_none_or(|&(r, p): &(u32, u32)| rel > r && pos > p);
            if !ordered || u64::from(pos) >= log_size {
                sane = false;
                break;
            }
            entries.push((rel, pos));
        }
        let persisted = entries.len();
        Ok((
            Self {
                base_offset,
                entries,
                persisted,
                file,
            },
            sane,
        ))
    }

    /// Position of the last indexed batch whose last offset is <= `offset` (0 if none):
    /// scanning batch headers from there finds the batch containing `offset`.
    pub(crate) fn lookup(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return 0;
        }
        let rel = u32::try_from(rel).unwrap_or(u32::MAX);
        let idx = self.entries.partition_point(|&(r, _)| r <= rel);
        if idx == 0 {
            0
        } else {
            self.entries[idx - 1].1
        }
    }

    /// Last entry as (absolute offset, position).
    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        self.entries
            .last()
            .map(|&(r, p)| (self.base_offset + i64::from(r), p))
    }

    /// Records that the batch at `position` ends at `last_offset`; written to disk by
    /// [`OffsetIndex::persist`].
    pub(crate) fn push(&mut self, last_offset: i64, position: u32) {
        let rel = (last_offset - self.base_offset) as u32;
        if self
            .entries
            .last()
            .is_none_or(|&(r, p)| rel > r && position > p)
        {
            self.entries.push((rel, position));
        }
    }

    /// Writes entries added since the last persist with one write.
    pub(crate) fn persist(&mut self) -> Result<()> {
        if self.persisted >= self.entries.len() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity((self.entries.len() - self.persisted) * ENTRY_LEN);
        for &(r, p) in &self.entries[self.persisted..] {
            bytes.extend_from_slice(&r.to_be_bytes());
            bytes.extend_from_slice(&p.to_be_bytes());
        }
        self.file.append(&bytes)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// Drops entries for batches at or past `position`.
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> Result<()> {
        let keep = self
            .entries
            .partition_point(|&(_, p)| u64::from(p) < position);
        self.entries.truncate(keep);
        self.persisted = self.persisted.min(keep);
        self.file.truncate((self.persisted * ENTRY_LEN) as u64)
    }

    /// Forgets everything (before a rebuild).
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.persisted = 0;
        self.file.truncate(0)
    }

    /// True while the index file is held open.
    pub(crate) fn is_file_open(&self) -> bool {
        self.file.is_open()
    }

    /// Gives up the open file handle for an fsync outside the partition lock.
    pub(crate) fn take_file_handle(&mut self) -> Option<std::sync::Arc<std::fs::File>> {
        self.file.take_handle()
    }

    /// Path of the index file.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_returns_floor_position_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.index");
        let (mut idx, sane) = OffsetIndex::open(&path, 100, 0).expect("open");
        assert!(!sane, "a missing index must be rebuilt");
        idx.push(109, 4100);
        idx.push(130, 8300);
        idx.persist().expect("persist");
        assert_eq!(idx.lookup(100), 0);
        assert_eq!(idx.lookup(109), 4100);
        assert_eq!(idx.lookup(129), 4100);
        assert_eq!(idx.lookup(500), 8300);
        let (idx, sane) = OffsetIndex::open(&path, 100, 10_000).expect("reopen");
        assert!(sane);
        assert_eq!(idx.last(), Some((130, 8300)));
        let (_, sane) = OffsetIndex::open(&path, 100, 8000).expect("reopen");
        assert!(!sane, "entry past the log end means damage");
    }
}
