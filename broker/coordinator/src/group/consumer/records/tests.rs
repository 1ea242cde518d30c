//! Round trips and Kafka's byte layout of the consumer group records.

use bytes::Bytes;
use uuid::Uuid;

use super::*;

fn topic(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn member() -> Member {
    let mut m = Member::new("m-1");
    m.instance_id = Some("i-1".into());
    m.rack_id = Some("rack-a".into());
    m.client_id = "client".into();
    m.client_host = "/10.0.0.1".into();
    m.subscribed_topic_names = ["a".to_string(), "b".to_string()].into();
    m.subscribed_topic_regex = Some("c.*".into());
    m.rebalance_timeout_ms = 30_000;
    m.server_assignor = Some("uniform".into());
    m.member_epoch = 7;
    m.previous_member_epoch = 6;
    m.state = MemberState::UnrevokedPartitions;
    m.assigned = Assignment::from_topics([(topic(1), vec![0, 2]), (topic(2), vec![1])]);
    m.pending_revocation = Assignment::from_topics([(topic(1), vec![1])]);
    m
}

fn samples() -> Vec<Record> {
    let mut classic = member();
    classic.classic = Some(ClassicMemberMetadata {
        session_timeout_ms: 45_000,
        supported_protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
    });
    vec![
        Record::group_epoch("g", 5),
        Record::partition_metadata(
            "g",
            vec![TopicMetadata {
                id: topic(1),
                name: "a".into(),
                partitions: 3,
            }],
        ),
        Record::member_metadata("g", &member()),
        Record::member_metadata("g", &classic),
        Record::member_metadata("g", &Member::new("bare")),
        Record::target_epoch("g", 5),
        Record::target_member("g", "m-1", member().assigned),
        Record::target_member("g", "m-1", Assignment::new()),
        Record::current_assignment("g", &member()),
    ]
}

#[test]
fn every_record_round_trips_with_its_tombstone() {
    for record in samples() {
        let (key, value) = record.encode();
        let value = value.expect("not a tombstone");
        assert_eq!(
            Record::decode(&key, Some(&value[..])),
            Ok(Some(record.clone())),
            "{record:?}"
        );
        let tombstone = Record::tombstone(record.key.clone());
        let (key, value) = tombstone.encode();
        assert_eq!(value, None);
        assert_eq!(Record::decode(&key, None), Ok(Some(tombstone)));
    }
}

#[test]
fn keys_carry_the_record_type_as_version_in_the_classic_layout() {
    let (key, _) = Record::group_epoch("g", 1).encode();
    assert_eq!(&key[..], &[0, 3, 0, 1, b'g']);
    let (key, _) = Record::current_assignment("g", &Member::new("m")).encode();
    assert_eq!(&key[..], &[0, 8, 0, 1, b'g', 0, 1, b'm']);
    for (record, record_type) in samples().iter().zip([3, 4, 5, 5, 5, 6, 7, 7, 8]) {
        assert_eq!(&record.encode().0[..2], &i16::to_be_bytes(record_type));
    }
}

#[test]
fn keys_of_other_coordinator_records_are_not_ours() {
    let offset_key = crate::group::records::offset_key("g", "t", 0);
    assert_eq!(Record::decode(&offset_key, Some(&b"x"[..])), Ok(None));
    let group_key = crate::group::records::group_key("g");
    assert_eq!(RecordKey::decode(&group_key), Ok(None));
    assert_eq!(RecordKey::decode(&[0, 9, 0, 1, b'g']), Ok(None));
}

#[test]
fn values_are_version_zero_of_a_flexible_schema() {
    let (_, value) = Record::group_epoch("g", 5).encode();
    assert_eq!(
        &value.unwrap()[..],
        &[0, 0, 0, 0, 0, 5, 0],
        "version, epoch, no tagged fields"
    );
    let m = Member {
        member_epoch: 3,
        previous_member_epoch: 2,
        assigned: Assignment::from_topics([(topic(1), vec![4])]),
        ..Member::new("m")
    };
    let (_, value) = Record::current_assignment("g", &m).encode();
    let mut expected = vec![0, 0, 0, 0, 0, 3, 0, 0, 0, 2, 0];
    expected.push(2); // one topic (compact length)
    expected.extend_from_slice(topic(1).as_bytes());
    expected.extend_from_slice(&[2, 0, 0, 0, 4, 0]); // one partition, no tags
    expected.extend_from_slice(&[1, 0]); // no partitions pending revocation, no tags
    assert_eq!(&value.unwrap()[..], &expected[..]);
}

#[test]
fn member_metadata_layout_and_classic_tag() {
    let bare = Member {
        client_id: "c".into(),
        client_host: "h".into(),
        ..Member::new("m")
    };
    let (_, value) = Record::member_metadata("g", &bare).encode();
    assert_eq!(
        &value.unwrap()[..],
        &[0, 0, 0, 0, 2, b'c', 2, b'h', 1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
        "null instance and rack, strings, empty topics, null regex, -1, null assignor, no tags"
    );
    let classic = Member {
        classic: Some(ClassicMemberMetadata {
            session_timeout_ms: 1,
            supported_protocols: vec![],
        }),
        ..bare
    };
    let (_, value) = Record::member_metadata("g", &classic).encode();
    let value = value.unwrap();
    assert_eq!(
        &value[value.len() - 9..],
        &[1, 0, 6, 0, 0, 0, 1, 1, 0],
        "one tagged field: tag 0, six bytes of session timeout, empty protocols, no tags"
    );
}

#[test]
fn unknown_tagged_fields_are_skipped_and_unknown_states_read_as_unknown() {
    let mut value = vec![0, 0, 0, 0, 0, 9];
    value.extend_from_slice(&[1, 5, 2, 0xaa, 0xbb]); // tag 5, two bytes
    assert_eq!(
        RecordValue::decode(GROUP_METADATA, &value),
        Ok(RecordValue::GroupMetadata { epoch: 9 })
    );
    let (_, value) = Record::current_assignment("g", &Member::new("m")).encode();
    let mut value = value.unwrap().to_vec();
    value[10] = 42;
    match RecordValue::decode(CURRENT_ASSIGNMENT, &value) {
        Ok(RecordValue::CurrentAssignment(c)) => assert_eq!(c.state, MemberState::Unknown),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_value_versions_are_errors() {
    assert!(matches!(
        RecordValue::decode(GROUP_METADATA, &[0, 1, 0, 0, 0, 1, 0]),
        Err(RecordError::UnknownVersion { version: 1, .. })
    ));
}

#[test]
fn truncated_and_hostile_bytes_are_errors_never_panics() {
    use tributary_storage::hostile::{never_panics, unsealed};

    for record in samples() {
        let (key, value) = record.encode();
        let value = value.unwrap();
        for cut in 0..value.len() {
            assert!(
                RecordValue::decode(record.key.record_type(), &value[..cut]).is_err(),
                "{record:?} cut at {cut}"
            );
        }
        for cut in 2..key.len() {
            assert!(RecordKey::decode(&key[..cut]).is_err());
        }
    }
    let mut bytes = Vec::new();
    for record in samples() {
        let (key, value) = record.encode();
        bytes.push(key.to_vec());
        bytes.extend(value.map(|v| v.to_vec()));
    }
    never_panics(bytes, unsealed, |b| {
        let _ = RecordKey::decode(b);
        for t in GROUP_METADATA..=CURRENT_ASSIGNMENT {
            let _ = RecordValue::decode(t, b);
        }
    });
}
