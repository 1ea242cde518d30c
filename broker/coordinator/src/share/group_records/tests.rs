//! Share group records: Kafka's bytes, the difference a change writes, and a replay that
//! gives the group back.

use uuid::Uuid;

use super::*;
use crate::share::group::{Heartbeat, ShareGroupConfig, TopicsView, JOIN_EPOCH, LEAVE_EPOCH};

const T: Uuid = Uuid::from_u128(7);

fn view() -> TopicsView {
    [("t".to_string(), (T, vec![0, 1, 2]))]
        .into_iter()
        .collect()
}

fn config() -> ShareGroupConfig {
    ShareGroupConfig {
        assignment_interval_ms: 0,
        ..ShareGroupConfig::default()
    }
}

fn heartbeat(member: &str, epoch: i32) -> Heartbeat {
    Heartbeat {
        member_id: member.into(),
        member_epoch: epoch,
        topics: (epoch == JOIN_EPOCH).then(|| vec!["t".to_string()]),
        client: MemberClient {
            client_id: format!("client-{member}"),
            client_host: "/10.0.0.1".into(),
            rack_id: (member == "a").then(|| "rack-1".to_string()),
        },
    }
}

/// Applies `hb` to `group`, returning the records the change writes.
fn beat(group: &mut Option<ShareGroup>, hb: &Heartbeat, now: i64) -> Vec<ShareRecord> {
    let before = group.clone();
    let g = group.get_or_insert_with(ShareGroup::default);
    g.heartbeat(hb, &view(), &config(), now).expect("heartbeat");
    changes("g", before.as_ref(), group.as_ref())
}

/// Replays `records` through their log bytes, as a load does.
fn replay(records: &[ShareRecord]) -> Vec<(String, ShareGroup)> {
    let mut replay = ShareReplay::default();
    for record in records {
        let (key, value) = record.entry();
        assert!(is_share_key(&key));
        let decoded = ShareRecord::decode(&key, value.as_deref())
            .expect("decodes")
            .expect("a share record");
        assert_eq!(&decoded, record);
        replay.apply(decoded);
    }
    replay.into_groups(1_000, 45_000)
}

#[test]
fn member_metadata_has_kafkas_layout() {
    let record = ShareRecord {
        key: ShareKey::MemberMetadata {
            group: "g".into(),
            member: "m".into(),
        },
        value: Some(ShareValue::MemberMetadata {
            client: MemberClient {
                client_id: "c".into(),
                client_host: "h".into(),
                rack_id: None,
            },
            topics: ["t".to_string()].into_iter().collect(),
        }),
    };
    let (key, value) = record.entry();
    // Key: type 10 as the version, then classic strings.
    assert_eq!(&key[..], &[0, 10, 0, 1, b'g', 0, 1, b'm']);
    // Value: version 0, then compact fields: null rack, "c", "h", ["t"], no tagged fields.
    let value = value.expect("a value");
    assert_eq!(&value[..], &[0, 0, 0, 2, b'c', 2, b'h', 2, 2, b't', 0]);
}

#[test]
fn group_and_assignment_values_have_kafkas_layout() {
    let epoch = ShareValue::GroupMetadata {
        epoch: 3,
        metadata_hash: 0,
    }
    .encode();
    // Version 0, epoch, metadata hash 0, no tagged fields.
    assert_eq!(&epoch[..], &[0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let current = ShareValue::CurrentAssignment {
        epoch: 2,
        previous_epoch: 1,
        partitions: [(T, 1)].into_iter().collect(),
    }
    .encode();
    let mut expected = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2];
    expected.extend_from_slice(T.as_bytes());
    expected.extend_from_slice(&[2, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&current[..], &expected[..]);
}

#[test]
fn other_record_types_are_not_share_records() {
    for record_type in [0_i16, 2, 3, 8, 16] {
        let mut key = record_type.to_be_bytes().to_vec();
        key.extend_from_slice(&[0, 1, b'g']);
        assert_eq!(
            ShareRecord::decode(&key, None),
            Ok(None),
            "type {record_type}"
        );
    }
    // Type 15 (initialized share-partitions) is routed here and skipped.
    let key = [0, 15, 0, 1, b'g'];
    assert!(is_share_key(&key));
    assert_eq!(ShareRecord::decode(&key, None), Ok(None));
}

#[test]
fn a_replayed_group_is_the_group_that_wrote_its_records() {
    let mut group = None;
    let mut log = beat(&mut group, &heartbeat("a", JOIN_EPOCH), 0);
    log.extend(beat(&mut group, &heartbeat("b", JOIN_EPOCH), 10));
    let epoch_a = group.as_ref().expect("group").members()["a"].epoch;
    log.extend(beat(&mut group, &heartbeat("a", epoch_a), 20));
    let written = group.expect("group");
    let loaded = replay(&log);
    assert_eq!(loaded.len(), 1);
    let (id, loaded) = &loaded[0];
    assert_eq!(id, "g");
    assert_eq!(loaded.group_epoch(), written.group_epoch());
    assert_eq!(loaded.assignment_epoch(), written.assignment_epoch());
    assert_eq!(loaded.target(), written.target());
    assert_eq!(loaded.members().len(), 2);
    for (member, was) in written.members() {
        let now = &loaded.members()[member];
        assert_eq!(
            (
                now.epoch,
                now.previous_epoch,
                &now.assignment,
                &now.topics,
                &now.client
            ),
            (
                was.epoch,
                was.previous_epoch,
                &was.assignment,
                &was.topics,
                &was.client
            ),
            "member {member}"
        );
        // Sessions start again at the load.
        assert_eq!(now.deadline_ms, 46_000);
    }
}

#[test]
fn a_heartbeat_that_changes_nothing_writes_nothing() {
    let mut group = None;
    beat(&mut group, &heartbeat("a", JOIN_EPOCH), 0);
    let epoch = group.as_ref().expect("group").members()["a"].epoch;
    assert_eq!(beat(&mut group, &heartbeat("a", epoch), 5_000), vec![]);
}

#[test]
fn a_member_leaving_is_tombstoned_and_stays_gone_after_a_load() {
    let mut group = None;
    let mut log = beat(&mut group, &heartbeat("a", JOIN_EPOCH), 0);
    log.extend(beat(&mut group, &heartbeat("b", JOIN_EPOCH), 10));
    let left = beat(&mut group, &heartbeat("b", LEAVE_EPOCH), 20);
    let gone: Vec<&ShareKey> = left
        .iter()
        .filter(|r| r.value.is_none())
        .map(|r| &r.key)
        .collect();
    let member = |key: &ShareKey| key.member() == Some("b");
    assert_eq!(gone.len(), 3, "{left:?}");
    assert!(gone.iter().all(|k| member(k)), "{left:?}");
    log.extend(left);
    let loaded = replay(&log);
    let members: Vec<&String> = loaded[0].1.members().keys().collect();
    assert_eq!(members, ["a"]);
    assert!(!loaded[0].1.target().contains_key("b"));
}

#[test]
fn a_deleted_group_leaves_nothing_to_load() {
    let mut group = None;
    let mut log = beat(&mut group, &heartbeat("a", JOIN_EPOCH), 0);
    log.extend(beat(&mut group, &heartbeat("a", LEAVE_EPOCH), 10));
    let deleted = changes("g", group.as_ref(), None);
    assert_eq!(
        deleted.last().map(|r| (&r.key, r.value.is_none())),
        Some((&ShareKey::GroupMetadata { group: "g".into() }, true))
    );
    log.extend(deleted);
    assert!(replay(&log).is_empty());
}

#[test]
fn a_member_of_a_loaded_group_goes_on_at_its_epoch() {
    let mut group = None;
    let log = beat(&mut group, &heartbeat("a", JOIN_EPOCH), 0);
    let epoch = group.as_ref().expect("group").members()["a"].epoch;
    let (_, mut loaded) = replay(&log).pop().expect("loaded");
    let answer = loaded
        .heartbeat(&heartbeat("a", epoch), &view(), &config(), 2_000)
        .expect("the member is known after the load");
    // The topics hash as they did when written: nothing changed.
    assert_eq!((answer.member_epoch, answer.assignment), (epoch, None));
    assert_eq!(loaded.group_epoch(), group.expect("group").group_epoch());
}

#[test]
fn topics_that_changed_while_the_group_was_away_start_a_new_epoch() {
    let mut group = None;
    let log = beat(&mut group, &heartbeat("a", JOIN_EPOCH), 0);
    let epoch = group.as_ref().expect("group").members()["a"].epoch;
    let (_, mut loaded) = replay(&log).pop().expect("loaded");
    let grown: TopicsView = [("t".to_string(), (T, vec![0, 1, 2, 3]))]
        .into_iter()
        .collect();
    let answer = loaded
        .heartbeat(&heartbeat("a", epoch), &grown, &config(), 2_000)
        .expect("heartbeat");
    let partitions: BTreeSet<TopicPartition> = (0..4).map(|p| (T, p)).collect();
    assert_eq!(answer.member_epoch, epoch + 1);
    assert_eq!(answer.assignment, Some(partitions));
}
