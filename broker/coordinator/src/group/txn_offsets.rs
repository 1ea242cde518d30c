//! Offsets of open transactions (TxnOffsetCommit, KIP-98): written to `__consumer_offsets` as
//! transactional records, they count only once the transaction coordinator's COMMIT marker
//! follows them there, and an ABORT marker drops them (Kafka's pending transactional offset
//! commits). Kept per producer, for one partition of the offsets topic; the same rules serve
//! replay and the live coordinator, so a coordinator that takes over mid-transaction holds
//! exactly what the old one held.

use std::collections::HashMap;

use super::offsets::{Committed, TopicPartition};

/// One pending offset: its group, partition and committed value.
pub type PendingOffset = (String, TopicPartition, Committed);

/// The offsets producers' open transactions wrote to one `__consumer_offsets` partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PendingTxnOffsets {
    by_producer: HashMap<i64, HashMap<(String, TopicPartition), Committed>>,
}

impl PendingTxnOffsets {
    /// Holds `committed` for `group`'s partition until `producer_id`'s transaction ends; a
    /// later offset of the same transaction for the same partition replaces an earlier one.
    pub fn add(
        &mut self,
        producer_id: i64,
        group: String,
        tp: TopicPartition,
        committed: Committed,
    ) {
        self.by_producer
            .entry(producer_id)
            .or_default()
            .insert((group, tp), committed);
    }

    /// Ends `producer_id`'s transaction: the offsets to apply on COMMIT (each applied only
    /// if no later record committed the partition meanwhile, see
    /// [`super::offsets::OffsetStore::apply`]), nothing on ABORT.
    pub fn end(&mut self, producer_id: i64, commit: bool) -> Vec<PendingOffset> {
        let Some(held) = self.by_producer.remove(&producer_id) else {
            return Vec::new();
        };
        if !commit {
            return Vec::new();
        }
        let mut ended: Vec<PendingOffset> = held
            .into_iter()
            .map(|((group, tp), committed)| (group, tp, committed))
            .collect();
        ended.sort_by_key(|(_, _, c)| c.record_offset);
        ended
    }

    /// Whether an open transaction holds an offset for `group`'s partition (OffsetFetch with
    /// `require_stable` answers UNSTABLE_OFFSET_COMMIT then, KIP-447).
    pub fn holds(&self, group: &str, topic: &str, partition: i32) -> bool {
        let key = (group.to_string(), (topic.to_string(), partition));
        self.by_producer
            .values()
            .any(|held| held.contains_key(&key))
    }

    /// Whether no transaction holds an offset.
    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::OffsetValue;

    fn committed(offset: i64, record_offset: i64) -> Committed {
        Committed {
            value: OffsetValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 0,
                expire_timestamp: None,
            },
            record_offset,
        }
    }

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    #[test]
    fn a_commit_releases_the_latest_offset_per_partition_and_an_abort_nothing() {
        let mut pending = PendingTxnOffsets::default();
        pending.add(7, "g".into(), tp(0), committed(10, 1));
        pending.add(7, "g".into(), tp(0), committed(20, 2));
        pending.add(7, "g".into(), tp(1), committed(5, 3));
        pending.add(8, "g".into(), tp(0), committed(99, 4));
        assert!(pending.holds("g", "t", 0) && pending.holds("g", "t", 1));
        assert!(!pending.holds("g", "t", 2) && !pending.holds("h", "t", 0));

        assert_eq!(pending.end(8, false), vec![]);
        let ended = pending.end(7, true);
        assert_eq!(
            ended,
            vec![
                ("g".to_string(), tp(0), committed(20, 2)),
                ("g".to_string(), tp(1), committed(5, 3)),
            ]
        );
        assert!(pending.is_empty());
        assert_eq!(
            pending.end(7, true),
            vec![],
            "a second marker finds nothing"
        );
    }
}
