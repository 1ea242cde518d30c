//! A group's committed offsets: what OffsetFetch answers, what commits update (in log order,
//! so a slower durable wait cannot let an older commit win), and which offsets retention
//! expires.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::records::OffsetValue;

/// A topic name and partition index.
pub type TopicPartition = (String, i32);

/// A committed offset and where its record sits in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The committed value.
    pub value: OffsetValue,
    /// Offset of the record in the coordinator partition: a later record wins.
    pub record_offset: i64,
}

/// Which timestamp an offset's retention counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionBase {
    /// Since the group became empty (falling back to the commit when unknown).
    GroupEmptySince(i64),
    /// Since the offset was committed.
    CommitTime,
}

/// Offsets of one group.
#[derive(Debug, Default, Clone)]
pub struct OffsetStore {
    committed: BTreeMap<TopicPartition, Committed>,
    /// Commits appended but not yet durable, per partition; retention leaves them alone.
    pending: HashMap<TopicPartition, u32>,
}

impl OffsetStore {
    /// The committed offset of `topic`-`partition`.
    pub fn get(&self, topic: &str, partition: i32) -> Option<&OffsetValue> {
        self.committed
            .get(&(topic.to_string(), partition))
            .map(|c| &c.value)
    }

    /// Every committed offset, sorted by topic and partition.
    pub fn iter(&self) -> impl Iterator<Item = (&TopicPartition, &OffsetValue)> {
        self.committed.iter().map(|(tp, c)| (tp, &c.value))
    }

    /// Whether no offset is committed.
    pub fn is_empty(&self) -> bool {
        self.committed.is_empty()
    }

    /// Whether any committed offset is for `topic`.
    pub fn has_topic(&self, topic: &str) -> bool {
        self.committed.keys().any(|(t, _)| t == topic)
    }

    /// Marks commits to `partitions` in flight.
    pub fn begin(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            *self.pending.entry(tp.clone()).or_insert(0) += 1;
        }
    }

    /// Ends an in-flight commit; with `Some`, applies it unless a later record already did.
    pub fn finish(&mut self, tp: &TopicPartition, applied: Option<Committed>) {
        if let Some(n) = self.pending.get_mut(tp) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(tp);
            }
        }
        if let Some(committed) = applied {
            self.apply(tp.clone(), committed);
        }
    }

    /// Applies a commit (also used when replaying the log), keeping the later record.
    pub fn apply(&mut self, tp: TopicPartition, committed: Committed) {
        match self.committed.get(&tp) {
            Some(current) if current.record_offset > committed.record_offset => {}
            _ => {
                self.committed.insert(tp, committed);
            }
        }
    }

    /// Removes one offset.
    pub fn remove(&mut self, tp: &TopicPartition) -> Option<OffsetValue> {
        self.committed.remove(tp).map(|c| c.value)
    }

    /// Removes every offset, returning what was there.
    pub fn remove_all(&mut self) -> Vec<TopicPartition> {
        std::mem::take(&mut self.committed).into_keys().collect()
    }

    /// Offsets whose retention has passed at `now` (wall ms): counted from `base`, except
    /// offsets of old clients carrying their own expiry, in-flight ones, and those of
    /// `keep_topics` (topics the group still consumes).
    pub fn expired(
        &self,
        now: i64,
        retention_ms: i64,
        base: RetentionBase,
        keep_topics: &BTreeSet<String>,
    ) -> Vec<TopicPartition> {
        self.committed
            .iter()
            .filter(|(tp, _)| !keep_topics.contains(&tp.0) && !self.pending.contains_key(*tp))
            .filter(|(_, c)| match c.value.expire_timestamp {
                Some(expire) => now >= expire,
                None => {
                    let from = match base {
                        RetentionBase::GroupEmptySince(t) if t >= 0 => t,
                        _ => c.value.commit_timestamp,
                    };
                    now.saturating_sub(from) >= retention_ms
                }
            })
            .map(|(tp, _)| tp.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64, at: i64, record_offset: i64) -> Committed {
        Committed {
            value: OffsetValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: at,
                expire_timestamp: None,
            },
            record_offset,
        }
    }

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_string(), p)
    }

    #[test]
    fn later_record_wins_whatever_order_commits_finish_in() {
        let mut store = OffsetStore::default();
        store.begin(&[tp("t", 0), tp("t", 0)]);
        store.finish(&tp("t", 0), Some(committed(20, 0, 11)));
        store.finish(&tp("t", 0), Some(committed(10, 0, 10)));
        assert_eq!(store.get("t", 0).map(|v| v.offset), Some(20));
        assert!(store.pending.is_empty());
    }

    #[test]
    fn failed_commit_only_clears_pending() {
        let mut store = OffsetStore::default();
        store.begin(&[tp("t", 0)]);
        store.finish(&tp("t", 0), None);
        assert!(store.is_empty());
        assert!(store.pending.is_empty());
    }

    #[test]
    fn empty_group_offsets_expire_from_when_it_became_empty() {
        let mut store = OffsetStore::default();
        store.apply(tp("t", 0), committed(1, 100, 0));
        let none = BTreeSet::new();
        // Committed at 100, empty since 500, retention 1000.
        assert!(store
            .expired(1_400, 1_000, RetentionBase::GroupEmptySince(500), &none)
            .is_empty());
        assert_eq!(
            store.expired(1_500, 1_000, RetentionBase::GroupEmptySince(500), &none),
            vec![tp("t", 0)]
        );
        // Unknown empty-since time falls back to the commit time.
        assert_eq!(
            store.expired(1_100, 1_000, RetentionBase::GroupEmptySince(-1), &none),
            vec![tp("t", 0)]
        );
    }

    #[test]
    fn subscribed_topics_and_pending_commits_are_kept() {
        let mut store = OffsetStore::default();
        store.apply(tp("kept", 0), committed(1, 0, 0));
        store.apply(tp("gone", 0), committed(1, 0, 1));
        store.apply(tp("busy", 0), committed(1, 0, 2));
        store.begin(&[tp("busy", 0)]);
        let keep = BTreeSet::from(["kept".to_string()]);
        assert_eq!(
            store.expired(10_000, 1_000, RetentionBase::CommitTime, &keep),
            vec![tp("gone", 0)]
        );
    }

    #[test]
    fn explicit_expiry_of_old_clients_wins() {
        let mut store = OffsetStore::default();
        let mut c = committed(1, 0, 0);
        c.value.expire_timestamp = Some(50);
        store.apply(tp("t", 0), c);
        let none = BTreeSet::new();
        assert!(store
            .expired(49, 1_000_000, RetentionBase::CommitTime, &none)
            .is_empty());
        assert_eq!(
            store.expired(50, 1_000_000, RetentionBase::CommitTime, &none),
            vec![tp("t", 0)]
        );
    }
}
