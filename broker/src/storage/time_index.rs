//! Sparse time index: (max timestamp so far, offset where it was reached), appended only when
//! the segment's max timestamp grows, as Kafka's `.timeindex` (i64 BE, relative offset u32 BE).

use std::path::Path;

use super::error::Result;
use super::index_file::IndexFile;

const ENTRY_LEN: usize = 12;

/// Time index of one segment, searched in memory.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    /// (timestamp, offset relative to the segment base), both strictly increasing.
    entries: Vec<(i64, u32)>,
    persisted: usize,
    file: IndexFile,
}

impl TimeIndex {
    /// Loads the index; returns `false` with it when the file looks damaged (non-monotonic or
    /// pointing past `next_offset`) so the caller rebuilds it.
    pub(crate) fn open(path: &Path, base_offset: i64, next_offset: i64) -> Result<(Self, bool)> {
        let (file, bytes) = IndexFile::open(path)?;
        let existed = bytes.is_some();
        let bytes = bytes.unwrap_or_default();
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_LEN);
        let mut sane = existed && bytes.len() % ENTRY_LEN == 0;
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            let ordered = entries
                .last()
                .is_none_or(|&(t, r): &(i64, u32)| ts > t && rel >= r);
            if !ordered || base_offset + i64::from(rel) >= next_offset {
                sane = false;
                break;
            }
            entries.push((ts, rel));
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

    /// Latest entry whose timestamp is <= `ts`, as (timestamp, absolute offset): no record
    /// before that offset has a timestamp >= the entry's, so a search for `ts` can start at
    /// the batch holding it.
    pub(crate) fn lookup(&self, ts: i64) -> Option<(i64, i64)> {
        let idx = self.entries.partition_point(|&(t, _)| t <= ts);
        (idx > 0).then(|| {
            let (t, r) = self.entries[idx - 1];
            (t, self.base_offset + i64::from(r))
        })
    }

    /// Last entry as (timestamp, absolute offset).
    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(t, r)| (t, self.base_offset + i64::from(r)))
    }

    /// Adds an entry if `ts` is larger than the last one.
    pub(crate) fn maybe_push(&mut self, ts: i64, offset: i64) {
        let rel = (offset - self.base_offset) as u32;
        if self.entries.last().is_none_or(|&(t, r)| ts > t && rel >= r) {
            self.entries.push((ts, rel));
        }
    }

    /// Writes entries added since the last persist with one write.
    pub(crate) fn persist(&mut self) -> Result<()> {
        if self.persisted >= self.entries.len() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity((self.entries.len() - self.persisted) * ENTRY_LEN);
        for &(t, r) in &self.entries[self.persisted..] {
            bytes.extend_from_slice(&t.to_be_bytes());
            bytes.extend_from_slice(&r.to_be_bytes());
        }
        self.file.append(&bytes)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// Drops entries at or past `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) -> Result<()> {
        let keep = self
            .entries
            .partition_point(|&(_, r)| self.base_offset + i64::from(r) < offset);
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
    fn lookup_finds_latest_entry_not_after_the_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.timeindex");
        let (mut idx, _) = TimeIndex::open(&path, 10, 10).expect("open");
        idx.maybe_push(100, 12);
        idx.maybe_push(90, 13); // not larger: ignored
        idx.maybe_push(200, 20);
        idx.persist().expect("persist");
        assert_eq!(idx.lookup(50), None);
        assert_eq!(idx.lookup(150), Some((100, 12)));
        assert_eq!(idx.lookup(200), Some((200, 20)));
        let (idx, sane) = TimeIndex::open(&path, 10, 21).expect("reopen");
        assert!(sane);
        assert_eq!(idx.last(), Some((200, 20)));
    }
}
