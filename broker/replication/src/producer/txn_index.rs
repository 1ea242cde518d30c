//! Per-partition transaction bookkeeping (Kafka's ongoing transactions of the producer state
//! and the `.txnindex` of aborted ones): where each open transaction started, which bounds the
//! last stable offset, and the offset ranges of aborted transactions that READ_COMMITTED
//! fetches report so consumers drop those records.

use std::collections::HashMap;

use tributary_storage::AbortedRange;

/// A producer's pending transaction verification on one partition (Kafka's
/// `VerificationGuard`, KIP-890): set before the leader asks the transaction coordinator
/// whether the partition is in the producer's transaction, and cleared by any marker of that
/// producer. A batch verified under a guard is appended only while the guard is still the
/// current one, so an abort written while the coordinator was being asked refuses the late
/// batch instead of letting it open a transaction nobody will ever end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationGuard(u64);

/// Open and aborted transactions of one partition.
#[derive(Debug, Default)]
pub struct TxnIndex {
    /// Producer id → offset of the first record of its open transaction.
    ongoing: HashMap<i64, i64>,
    /// Aborted transactions in marker order.
    aborted: Vec<AbortedRange>,
    /// Producer id → its pending verification (producers without an open transaction here).
    guards: HashMap<i64, VerificationGuard>,
    /// The next guard's number; never reused, even across [`TxnIndex::clear`].
    next_guard: u64,
}

impl TxnIndex {
    /// Notes a transactional batch at `base_offset`; the first one opens the transaction
    /// (which, as long as it is open, is what admits the producer's further batches: its
    /// verification guard is done with).
    pub fn on_data(&mut self, producer_id: i64, base_offset: i64) {
        self.ongoing.entry(producer_id).or_insert(base_offset);
        self.guards.remove(&producer_id);
    }

    /// Starts verifying `producer_id`'s transaction here: `None` when its transaction is
    /// already open on this partition (nothing to ask), else the guard its batches must
    /// present. Verifications in flight together share one guard, as in Kafka.
    pub fn start_verification(&mut self, producer_id: i64) -> Option<VerificationGuard> {
        if self.ongoing.contains_key(&producer_id) {
            return None;
        }
        let next = &mut self.next_guard;
        Some(*self.guards.entry(producer_id).or_insert_with(|| {
            *next += 1;
            VerificationGuard(*next)
        }))
    }

    /// Whether a transactional batch of `producer_id` may be appended now: its transaction is
    /// open here, or `guard` (from a verification the coordinator passed) is still current,
    /// i.e. no marker of the producer was written since the verification started.
    pub fn admits(&self, producer_id: i64, guard: Option<VerificationGuard>) -> bool {
        self.ongoing.contains_key(&producer_id)
            || guard.is_some_and(|g| self.guards.get(&producer_id) == Some(&g))
    }

    /// Closes the producer's transaction with a marker at `marker_offset`; an abort is
    /// remembered for READ_COMMITTED readers. A marker without an open transaction (a retried
    /// commit, or a transaction with no records here) changes nothing.
    pub fn on_marker(&mut self, producer_id: i64, marker_offset: i64, commit: bool) {
        // Whatever was verified before this marker belongs to the transaction it ended.
        self.guards.remove(&producer_id);
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

    /// Every open transaction: (producer id, offset of its first record).
    pub fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(&id, &first)| (id, first))
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
        self.guards.clear();
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
    fn a_verification_guard_admits_until_a_marker_of_its_producer() {
        let mut index = TxnIndex::default();
        assert!(!index.admits(1, None), "no transaction, no verification");
        let guard = index.start_verification(1).expect("nothing open: verify");
        assert_eq!(
            index.start_verification(1),
            Some(guard),
            "in flight together: shared"
        );
        assert!(index.admits(1, Some(guard)));
        assert!(!index.admits(2, Some(guard)), "another producer's guard");
        index.on_marker(1, 5, false);
        assert!(
            !index.admits(1, Some(guard)),
            "an abort in between refuses the late batch"
        );
        let again = index.start_verification(1).expect("a new verification");
        assert_ne!(again, guard, "a cleared guard is never issued again");
        assert!(!index.admits(1, Some(guard)));
        assert!(index.admits(1, Some(again)));
    }

    #[test]
    fn an_open_transaction_needs_no_verification() {
        let mut index = TxnIndex::default();
        let guard = index.start_verification(3);
        index.on_data(3, 0);
        assert_eq!(index.start_verification(3), None);
        assert!(index.admits(3, None));
        assert!(index.admits(3, guard), "its own data opened it");
        index.on_marker(3, 1, true);
        assert!(
            !index.admits(3, None),
            "ended: a new transaction verifies again"
        );
        assert!(!index.admits(3, guard));
        index.start_verification(4);
        index.clear();
        assert!(!index.admits(4, None));
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
