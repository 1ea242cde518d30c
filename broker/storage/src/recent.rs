//! Positions of a segment's most recent batches, kept in memory so that fetches near the
//! log end (followers, caught-up consumers: nearly all fetches) are planned without reading
//! the file while the partition lock is held. Older positions come from the offset index and
//! a header scan.

use std::collections::VecDeque;

/// Batches remembered per segment: 12 bytes each, so at most 6 KiB per partition.
const CAPACITY: usize = 512;

/// Where one batch is, relative to the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Last offset minus the segment base offset.
    last: u32,
    position: u32,
    size: u32,
}

/// A contiguous run of batches ending at the segment's last batch.
#[derive(Debug)]
pub(crate) struct RecentBatches {
    segment_base: i64,
    /// Base offset of the oldest remembered batch: any batch holding an offset at or after it
    /// is remembered.
    covers_from: i64,
    entries: VecDeque<Entry>,
}

/// A remembered batch: (last offset, file position, size).
pub(crate) type BatchSpan = (i64, u64, u32);

impl RecentBatches {
    /// Empty cache for the segment starting at `segment_base`.
    pub(crate) fn new(segment_base: i64) -> Self {
        Self {
            segment_base,
            covers_from: i64::MAX,
            entries: VecDeque::new(),
        }
    }

    /// Remembers the batch appended after all remembered ones.
    pub(crate) fn push(&mut self, base_offset: i64, last_offset: i64, position: u64, size: u32) {
        let (Ok(last), Ok(position)) = (
            u32::try_from(last_offset - self.segment_base),
            u32::try_from(position),
        ) else {
            self.clear();
            return;
        };
        if self.entries.is_empty() {
            self.covers_from = base_offset;
        }
        if self.entries.len() == CAPACITY {
            if let Some(oldest) = self.entries.pop_front() {
                self.covers_from = self.segment_base + i64::from(oldest.last) + 1;
            }
        }
        self.entries.push_back(Entry {
            last,
            position,
            size,
        });
    }

    /// Forgets everything and frees the memory (segment rolled or rebuilt).
    pub(crate) fn clear(&mut self) {
        self.entries = VecDeque::new();
        self.covers_from = i64::MAX;
    }

    /// The remembered batches from the first one whose last offset is >= `offset`, or `None`
    /// when `offset` is older than what is remembered. An empty iterator means no batch of
    /// the segment reaches `offset`.
    pub(crate) fn starting_at(&self, offset: i64) -> Option<impl Iterator<Item = BatchSpan> + '_> {
        if offset < self.covers_from {
            return None;
        }
        let rel = offset - self.segment_base;
        let first = self.entries.partition_point(|e| i64::from(e.last) < rel);
        Some(self.entries.range(first..).map(|e| {
            (
                self.segment_base + i64::from(e.last),
                u64::from(e.position),
                e.size,
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_bounded_suffix_and_answers_only_inside_it() {
        let mut recent = RecentBatches::new(100);
        assert!(recent.starting_at(100).is_none());
        let mut position = 0;
        for i in 0..(CAPACITY as i64 + 10) {
            let base = 100 + 2 * i;
            recent.push(base, base + 1, position, 50);
            position += 50;
        }
        assert!(recent.starting_at(100).is_none(), "oldest forgotten");
        let first_kept = 100 + 2 * 10;
        let found: Vec<_> = recent
            .starting_at(first_kept + 1)
            .expect("covered")
            .take(2)
            .collect();
        assert_eq!(found[0], (first_kept + 1, 500, 50));
        assert_eq!(found[1].0, first_kept + 3);
        let past_end = 100 + 2 * (CAPACITY as i64 + 10);
        assert_eq!(recent.starting_at(past_end).expect("covered").count(), 0);
    }
}
