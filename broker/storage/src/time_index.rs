//! Sparse time index: (max timestamp so far, offset where it was reached), appended only when
//! the segment's max timestamp grows, as Kafka's `.timeindex` (i64 BE, relative offset u32 BE).

use std::ops::{Deref, DerefMut};
use std::path::Path;

use super::error::Result;
use super::index_file::{IndexEntry, SparseIndex};

/// (timestamp, offset relative to the segment base).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeEntry(i64, u32);

impl IndexEntry for TimeEntry {
    const LEN: usize = 12;

    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry(
            i64::from_be_bytes(ts),
            u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        )
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
        out.extend_from_slice(&self.1.to_be_bytes());
    }

    fn follows(&self, previous: &Self) -> bool {
        self.0 > previous.0 && self.1 >= previous.1
    }
}

/// Time index of one segment, searched in memory.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    index: SparseIndex<TimeEntry>,
}

impl Deref for TimeIndex {
    type Target = SparseIndex<TimeEntry>;
    fn deref(&self) -> &Self::Target {
        &self.index
    }
}

impl DerefMut for TimeIndex {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.index
    }
}

impl TimeIndex {
    /// Loads the index; returns `false` with it when the file looks damaged (non-monotonic or
    /// pointing past `next_offset`) so the caller rebuilds it.
    pub(crate) fn open(path: &Path, base_offset: i64, next_offset: i64) -> Result<(Self, bool)> {
        let (index, sane) = SparseIndex::open(path, |e: &TimeEntry| {
            base_offset + i64::from(e.1) < next_offset
        })?;
        Ok((Self { base_offset, index }, sane))
    }

    /// Latest entry whose timestamp is <= `ts`, as (timestamp, absolute offset): no record
    /// before that offset has a timestamp >= the entry's, so a search for `ts` can start at
    /// the batch holding it.
    pub(crate) fn lookup(&self, ts: i64) -> Option<(i64, i64)> {
        let idx = self.entries.partition_point(|e| e.0 <= ts);
        (idx > 0).then(|| {
            let e = self.entries[idx - 1];
            (e.0, self.base_offset + i64::from(e.1))
        })
    }

    /// Last entry as (timestamp, absolute offset).
    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|e| (e.0, self.base_offset + i64::from(e.1)))
    }

    /// Adds an entry if `ts` is larger than the last one.
    pub(crate) fn maybe_push(&mut self, ts: i64, offset: i64) {
        let rel = (offset - self.base_offset) as u32;
        self.index.push(TimeEntry(ts, rel));
    }

    /// Drops entries at or past `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) -> Result<()> {
        let base = self.base_offset;
        let keep = self
            .entries
            .partition_point(|e| base + i64::from(e.1) < offset);
        self.index.truncate(keep)
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
