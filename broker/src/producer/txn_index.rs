//! Per-partition transaction bookkeeping (Kafka's ongoing transactions of the producer state
//! and the `.txnindex` of aborted ones): where each open transaction started, which bounds the
//! last stable offset, and the offset ranges of aborted transactions that READ_COMMITTED
//! fetches report so consumers drop those records.

use std::collections::HashMap;

use crate::storage::AbortedRange;

/// Open and aborted transactions of one partition.
#[derive(Debug, Default)]
pub struct TxnIndex {
    /// Producer id → offset of the first record of its open transaction.
    ongoing: HashMap<i64, i64>,
    /// Aborted transactions in marker order.
    aborted: Vec<AbortedRange>,
}

impl TxnIndex {
    /// Notes a transactional batch at `base_offset`; the first one opens the transaction.
    pub fn on_data(&mut self, producer_id: i64, base_offset: i64) {
        self.ongoing.entry(producer_id).or_insert(base_offset);
    }

    /// Closes the producer's transaction with a marker at `marker_offset`; an abort is
    /// remembered for READ_COMMITTED readers. A marker without an open transaction (a retried
    /// commit, or a transaction with no records here) changes nothing.
    pub fn on_marker(&mut self, producer_id: i64, marker_offset: i64, commit: bool) {
        if let Some(first_offset) = self.ongoing.remove(&producer_id) {
            if !commit {
                self.aborted.push(AbortedRange {
                    producer_id,
                    first_offset,
                    last_offset: marker_offset,
                });
            }
        }
    }

    /// First offset of the oldest open transaction; the last stable offset cannot pass it.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.values().copied().min()
    }

    /// Where the producer's open transaction started here, if one is open.
    pub fn open_since(&self, producer_id: i64) -> Option<i64> {
        self.ongoing.get(&producer_id).copied()
    }

    /// Aborted transactions overlapping offsets `[from, to)`, for a fetch returning them.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedRange> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    /// Forgets aborted transactions wholly below the log start (removed by retention).
    pub fn drop_before(&mut self, log_start_offset: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start_offset);
    }

    /// Forgets everything (the log was truncated or deleted).
    pub fn clear(&mut self) {
        self.ongoing.clear();
        self.aborted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_transactions_bound_the_stable_offset_until_their_marker() {
        let mut index = TxnIndex::default();
        assert_eq!(index.first_unstable_offset(), None);
        index.on_data(1, 10);
        index.on_data(1, 12);
        index.on_data(2, 11);
        assert_eq!(index.first_unstable_offset(), Some(10));
        index.on_marker(1, 13, true);
        assert_eq!(index.first_unstable_offset(), Some(11));
        index.on_marker(2, 14, false);
        assert_eq!(index.first_unstable_offset(), None);
        assert!(index
            .aborted_between(0, 100)
            .iter()
            .all(|a| a.producer_id == 2));
    }

    #[test]
    fn aborted_ranges_are_reported_where_they_overlap_the_fetch() {
        let mut index = TxnIndex::default();
        index.on_data(5, 0);
        index.on_marker(5, 4, false);
        index.on_data(6, 10);
        index.on_marker(6, 12, false);
        index.on_marker(7, 20, false);
        let ids = |v: Vec<AbortedRange>| v.iter().map(|a| a.producer_id).collect::<Vec<_>>();
        assert_eq!(ids(index.aborted_between(0, 5)), vec![5]);
        assert_eq!(ids(index.aborted_between(5, 10)), Vec::<i64>::new());
        assert_eq!(ids(index.aborted_between(3, 11)), vec![5, 6]);
        index.drop_before(5);
        assert_eq!(ids(index.aborted_between(0, 100)), vec![6]);
    }
}
