//! Rebuilding groups from a `__consumer_offsets` partition (Kafka's `doLoadGroupsAndOffsets`):
//! replay every record in order, the latest per key winning and tombstones removing, then
//! build one group per group id that has metadata or offsets left. Consumer group records
//! (types 3 to 8, KIP-848) go to the consumer groups' own replay, share group records (types
//! 10 to 15, KIP-932) to the share groups'. Offsets written in a
//! transaction count from the COMMIT marker that follows them ([`PendingTxnOffsets`]).

use std::collections::HashMap;

use super::classic::Group;
use super::consumer::records::Record as ConsumerRecord;
use super::consumer::ConsumerGroups;
use super::effects::Now;
use super::offsets::{Committed, TopicPartition};
use super::records::{decode_key, GroupValue, OffsetValue, RecordKey};
use super::txn_offsets::PendingTxnOffsets;
use crate::log::{LogRecord, RecordTxn};
use crate::share::group_records::{is_share_key, ShareRecord, ShareReplay};

/// What the records of one group add up to.
#[derive(Debug, Default)]
struct Replayed {
    metadata: Option<GroupValue>,
    offsets: HashMap<TopicPartition, Committed>,
}

/// Replays records in offset order.
#[derive(Debug, Default)]
pub struct Replay {
    groups: HashMap<String, Replayed>,
    /// The consumer groups (KIP-848) the partition's records build.
    consumer: ConsumerGroups,
    /// The share groups (KIP-932) they build.
    share: ShareReplay,
    /// Offsets of transactions without a marker so far.
    txn_offsets: PendingTxnOffsets,
    skipped: usize,
}

impl Replay {
    /// Applies one record.
    pub fn apply(&mut self, record: &LogRecord) {
        match record.txn {
            RecordTxn::None => self.apply_plain(record),
            RecordTxn::Data { producer_id } => self.apply_transactional(producer_id, record),
            RecordTxn::Marker {
                producer_id,
                commit,
            } => {
                for (group, tp, committed) in self.txn_offsets.end(producer_id, commit) {
                    let offsets = &mut self.groups.entry(group).or_default().offsets;
                    if offsets
                        .get(&tp)
                        .is_none_or(|c| c.record_offset < committed.record_offset)
                    {
                        offsets.insert(tp, committed);
                    }
                }
            }
        }
    }

    /// An offset a transaction wrote: pending until its marker (only offsets are written in
    /// transactions).
    fn apply_transactional(&mut self, producer_id: i64, record: &LogRecord) {
        let key = record.key.as_deref().map(decode_key);
        let value = record.value.as_deref().map(OffsetValue::decode);
        match (key, value) {
            (
                Some(Ok(RecordKey::Offset {
                    group,
                    topic,
                    partition,
                })),
                Some(Ok(value)),
            ) => {
                let committed = Committed {
                    value,
                    record_offset: record.offset,
                };
                self.txn_offsets
                    .add(producer_id, group, (topic, partition), committed);
            }
            _ => {
                tracing::warn!(
                    offset = record.offset,
                    producer_id,
                    "skipping a transactional record that is not an offset commit"
                );
                self.skipped += 1;
            }
        }
    }

    fn apply_plain(&mut self, record: &LogRecord) {
        let Some(key) = record.key.as_ref() else {
            self.skipped += 1;
            return;
        };
        match decode_key(key) {
            Ok(RecordKey::Offset {
                group,
                topic,
                partition,
            }) => {
                let entry = self.groups.entry(group).or_default();
                let tp = (topic, partition);
                match record.value.as_deref().map(OffsetValue::decode) {
                    None => {
                        entry.offsets.remove(&tp);
                    }
                    Some(Ok(value)) => {
                        entry.offsets.insert(
                            tp,
                            Committed {
                                value,
                                record_offset: record.offset,
                            },
                        );
                    }
                    Some(Err(error)) => {
                        tracing::warn!(offset = record.offset, %error, "skipping undecodable offset commit");
                        self.skipped += 1;
                    }
                }
            }
            Ok(RecordKey::Group { group }) => {
                let entry = self.groups.entry(group).or_default();
                match record.value.as_deref().map(GroupValue::decode) {
                    None => entry.metadata = None,
                    Some(Ok(value)) => entry.metadata = Some(value),
                    Some(Err(error)) => {
                        tracing::warn!(offset = record.offset, %error, "skipping undecodable group metadata");
                        self.skipped += 1;
                    }
                }
            }
            Ok(RecordKey::Other { .. }) if is_share_key(key) => {
                match ShareRecord::decode(key, record.value.as_deref()) {
                    Ok(Some(r)) => self.share.apply(r),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(offset = record.offset, %error, "skipping undecodable share group record");
                        self.skipped += 1;
                    }
                }
            }
            Ok(RecordKey::Other { .. }) => {
                match ConsumerRecord::decode(key, record.value.as_deref()) {
                    Ok(Some(r)) => self.consumer.replay(&r),
                    Ok(None) => self.skipped += 1,
                    Err(error) => {
                        tracing::warn!(offset = record.offset, %error, "skipping undecodable consumer group record");
                        self.skipped += 1;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(offset = record.offset, %error, "skipping undecodable key");
                self.skipped += 1;
            }
        }
    }

    /// Records that were not understood.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Takes the offsets of the transactions still open at the end of the log.
    pub fn take_txn_offsets(&mut self) -> PendingTxnOffsets {
        std::mem::take(&mut self.txn_offsets)
    }

    /// Takes the consumer groups replayed (what is left is the classic groups and offsets).
    pub fn take_consumer_groups(&mut self) -> ConsumerGroups {
        std::mem::take(&mut self.consumer)
    }

    /// Takes the share groups replayed.
    pub fn take_share_groups(&mut self) -> ShareReplay {
        std::mem::take(&mut self.share)
    }

    /// The groups left standing: with metadata (Stable or Empty), or offsets only (Empty).
    pub fn into_groups(self, now: Now, initial_delay_ms: i64) -> Vec<Group> {
        self.groups
            .into_iter()
            .filter(|(_, r)| r.metadata.is_some() || !r.offsets.is_empty())
            .map(|(id, r)| {
                let mut group = match r.metadata {
                    Some(value) => Group::from_value(&id, value, now, initial_delay_ms),
                    None => Group::new(&id, now, initial_delay_ms),
                };
                for (tp, committed) in r.offsets {
                    group.offsets.apply(tp, committed);
                }
                group
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::group::records::{group_key, offset_key};
    use crate::group::state::GroupState;

    fn offset_record(at: i64, group: &str, p: i32, offset: Option<i64>) -> LogRecord {
        LogRecord {
            offset: at,
            key: Some(offset_key(group, "t", p)),
            txn: RecordTxn::None,
            value: offset.map(|o| {
                OffsetValue {
                    offset: o,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp: 1,
                    expire_timestamp: None,
                }
                .encode()
            }),
        }
    }

    fn group_record(at: i64, group: &str, value: Option<GroupValue>) -> LogRecord {
        LogRecord {
            offset: at,
            key: Some(group_key(group)),
            value: value.map(|v| v.encode()),
            txn: RecordTxn::None,
        }
    }

    fn empty_value(generation: i32) -> GroupValue {
        GroupValue {
            protocol_type: "consumer".into(),
            generation,
            protocol: None,
            leader: None,
            current_state_timestamp: 7,
            members: vec![],
        }
    }

    const NOW: Now = Now { mono: 0, wall: 0 };

    #[test]
    fn latest_record_per_key_wins_and_tombstones_remove() {
        let mut replay = Replay::default();
        for r in [
            offset_record(0, "g", 0, Some(5)),
            offset_record(1, "g", 0, Some(9)),
            offset_record(2, "g", 1, Some(3)),
            offset_record(3, "g", 1, None),
            group_record(4, "g", Some(empty_value(4))),
        ] {
            replay.apply(&r);
        }
        let groups = replay.into_groups(NOW, 0);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.state(), GroupState::Empty);
        assert_eq!(g.generation(), 4);
        assert_eq!(g.protocol_type(), Some("consumer"));
        assert_eq!(g.offsets.get("t", 0).map(|v| v.offset), Some(9));
        assert_eq!(g.offsets.get("t", 1), None);
    }

    fn in_txn(mut record: LogRecord, producer_id: i64) -> LogRecord {
        record.txn = RecordTxn::Data { producer_id };
        record
    }

    fn marker(at: i64, producer_id: i64, commit: bool) -> LogRecord {
        LogRecord {
            offset: at,
            key: None,
            value: None,
            txn: RecordTxn::Marker {
                producer_id,
                commit,
            },
        }
    }

    #[test]
    fn transactional_offsets_count_from_their_commit_marker_and_an_abort_drops_them() {
        let mut replay = Replay::default();
        for r in [
            offset_record(0, "g", 0, Some(1)),
            in_txn(offset_record(1, "g", 0, Some(10)), 7),
            in_txn(offset_record(2, "g", 1, Some(20)), 8),
            in_txn(offset_record(3, "g", 2, Some(30)), 9),
            // A plain commit after the transactional one wins over it at the marker.
            offset_record(4, "g", 1, Some(21)),
            marker(5, 7, true),
            marker(6, 8, true),
            marker(7, 10, true),
        ] {
            replay.apply(&r);
        }
        assert_eq!(replay.skipped(), 0);
        let pending = replay.take_txn_offsets();
        assert!(pending.holds("g", "t", 2), "producer 9 has no marker yet");
        assert!(!pending.holds("g", "t", 0) && !pending.holds("g", "t", 1));
        let groups = replay.into_groups(NOW, 0);
        let g = &groups[0];
        assert_eq!(g.offsets.get("t", 0).map(|v| v.offset), Some(10));
        assert_eq!(g.offsets.get("t", 1).map(|v| v.offset), Some(21));
        assert_eq!(g.offsets.get("t", 2), None);

        let mut aborted = Replay::default();
        for r in [
            offset_record(0, "g", 0, Some(1)),
            in_txn(offset_record(1, "g", 0, Some(10)), 7),
            marker(2, 7, false),
        ] {
            aborted.apply(&r);
        }
        assert!(aborted.take_txn_offsets().is_empty());
        let groups = aborted.into_groups(NOW, 0);
        assert_eq!(groups[0].offsets.get("t", 0).map(|v| v.offset), Some(1));
    }

    #[test]
    fn deleted_groups_disappear_and_offset_only_groups_stay() {
        let mut replay = Replay::default();
        for r in [
            group_record(0, "deleted", Some(empty_value(1))),
            offset_record(1, "deleted", 0, Some(1)),
            offset_record(2, "deleted", 0, None),
            group_record(3, "deleted", None),
            offset_record(4, "simple", 0, Some(42)),
        ] {
            replay.apply(&r);
        }
        let groups = replay.into_groups(NOW, 0);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].id(), "simple");
        assert_eq!(groups[0].protocol_type(), None);
        assert_eq!(groups[0].generation(), 0);
    }

    #[test]
    fn a_group_with_members_loads_stable_and_garbage_is_skipped() {
        let mut value = empty_value(3);
        value.protocol = Some("range".into());
        value.leader = Some("m".into());
        value.members = vec![crate::group::records::MemberValue {
            member_id: "m".into(),
            instance_id: Some("i".into()),
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 500,
            subscription: Bytes::new(),
            assignment: Bytes::from_static(b"a"),
        }];
        let mut replay = Replay::default();
        replay.apply(&group_record(0, "g", Some(value)));
        replay.apply(&LogRecord {
            offset: 1,
            key: Some(Bytes::from_static(b"\x00")),
            value: None,
            txn: RecordTxn::None,
        });
        assert_eq!(replay.skipped(), 1);
        let groups = replay.into_groups(Now { mono: 100, wall: 0 }, 0);
        let g = &groups[0];
        assert_eq!(g.state(), GroupState::Stable);
        assert_eq!(g.leader(), Some("m"));
        assert_eq!(g.static_member_id("i"), Some("m"));
        let m = g.member("m").unwrap();
        assert_eq!(m.heartbeat_deadline, 600);
        assert_eq!(&m.assignment[..], b"a");
    }
}
