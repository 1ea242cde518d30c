//! Sparse offset index: maps a batch's last offset to its file position, one entry per
//! `index.interval.bytes` of log, as Kafka's `.index` files (relative offset u32 BE,
//! position u32 BE).

use std::ops::{Deref, DerefMut};
use std::path::Path;

use super::error::Result;
use super::index_file::{IndexEntry, SparseIndex};

/// (offset relative to the segment base, file position).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OffsetEntry(u32, u32);

impl IndexEntry for OffsetEntry {
    const LEN: usize = 8;

    fn decode(b: &[u8]) -> Self {
        OffsetEntry(
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        )
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
        out.extend_from_slice(&self.1.to_be_bytes());
    }

    fn follows(&self, previous: &Self) -> bool {
        self.0 > previous.0 && self.1 > previous.1
    }
}

/// Offset index of one segment, searched in memory.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    index: SparseIndex<OffsetEntry>,
}

impl Deref for OffsetIndex {
    type Target = SparseIndex<OffsetEntry>;
    fn deref(&self) -> &Self::Target {
        &self.index
    }
}

impl DerefMut for OffsetIndex {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.index
    }
}

impl OffsetIndex {
    /// Loads the index; entries that break monotonicity or point at or past `log_size` are a
    /// sign of damage, reported by returning `false` so the caller rebuilds it.
    pub(crate) fn open(path: &Path, base_offset: i64, log_size: u64) -> Result<(Self, bool)> {
        let (index, sane) = SparseIndex::open(path, |e: &OffsetEntry| u64::from(e.1) < log_size)?;
        Ok((Self { base_offset, index }, sane))
    }

    /// Position of the last indexed batch whose last offset is <= `offset` (0 if none):
    /// scanning batch headers from there finds the batch containing `offset`.
    pub(crate) fn lookup(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return 0;
        }
        let rel = u32::try_from(rel).unwrap_or(u32::MAX);
        let idx = self.entries.partition_point(|e| e.0 <= rel);
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
            .map(|e| (self.base_offset + i64::from(e.0), e.1))
    }

    /// Records that the batch at `position` ends at `last_offset`; written to disk by
    /// [`SparseIndex::persist`].
    pub(crate) fn push(&mut self, last_offset: i64, position: u32) {
        let rel = (last_offset - self.base_offset) as u32;
        self.index.push(OffsetEntry(rel, position));
    }

    /// Drops entries for batches at or past `position`.
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> Result<()> {
        let keep = self.entries.partition_point(|e| u64::from(e.1) < position);
        self.index.truncate(keep)
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
