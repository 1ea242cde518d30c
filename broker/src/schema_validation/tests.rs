use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cache::FactsCache;
use super::*;

fn facts(subjects: &[&str], record_name: Option<&str>) -> SchemaFacts {
    SchemaFacts {
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        names: record_name.map_or(RecordNames::None, |n| RecordNames::One(n.to_owned())),
    }
}

/// A payload in the wire format with schema id `id` and `tail` after it.
fn payload(id: i32, tail: &[u8]) -> Vec<u8> {
    [&[0u8][..], &id.to_be_bytes(), tail].concat()
}

#[test]
fn the_wire_format_is_magic_zero_and_a_big_endian_id() {
    assert_eq!(schema_id(&[0, 0, 0, 1, 2, 9, 9], Side::Value), Ok(258));
    for bad in [
        &[][..],
        &[0, 0, 0, 1][..],
        &[1, 0, 0, 0, 1][..],
        b"{\"a\":1}",
    ] {
        assert_eq!(
            schema_id(bad, Side::Key),
            Err(Refusal::NoWireFormat { side: "key" })
        );
    }
}

#[test]
fn each_strategy_names_its_subject() {
    assert_eq!(
        subject(Strategy::TopicName, "t", Side::Key, Some("a.R")),
        Some("t-key".into())
    );
    assert_eq!(
        subject(Strategy::RecordName, "t", Side::Value, Some("a.R")),
        Some("a.R".into())
    );
    assert_eq!(
        subject(Strategy::TopicRecordName, "t", Side::Value, Some("a.R")),
        Some("t-a.R".into())
    );
    assert_eq!(subject(Strategy::RecordName, "t", Side::Value, None), None);
}

#[test]
fn strategies_parse_by_short_or_class_name() {
    for (value, strategy) in [
        ("TopicNameStrategy", Strategy::TopicName),
        (
            "io.confluent.kafka.serializers.subject.RecordNameStrategy",
            Strategy::RecordName,
        ),
        ("TopicRecordNameStrategy", Strategy::TopicRecordName),
    ] {
        assert_eq!(Strategy::parse(value), Some(strategy));
    }
    assert_eq!(Strategy::parse("Other"), None);
}

#[test]
fn an_id_passes_only_under_the_subject_its_strategy_names() {
    let f = facts(&["t-value", "other-value"], Some("a.R"));
    assert_eq!(
        check_id(
            Strategy::TopicName,
            "t",
            Side::Value,
            (1, &payload(1, &[])),
            Some(&f)
        ),
        Ok(())
    );
    assert_eq!(
        check_id(
            Strategy::TopicName,
            "t",
            Side::Key,
            (1, &payload(1, &[])),
            Some(&f)
        ),
        Err(Refusal::WrongSubject {
            side: "key",
            id: 1,
            subject: "t-key".into()
        })
    );
    assert!(check_id(
        Strategy::RecordName,
        "t",
        Side::Value,
        (1, &payload(1, &[])),
        Some(&f)
    )
    .is_err());
    let by_record = facts(&["a.R", "t-a.R"], Some("a.R"));
    assert_eq!(
        check_id(
            Strategy::RecordName,
            "t",
            Side::Value,
            (1, &payload(1, &[])),
            Some(&by_record)
        ),
        Ok(())
    );
    assert_eq!(
        check_id(
            Strategy::TopicRecordName,
            "t",
            Side::Value,
            (1, &payload(1, &[])),
            Some(&by_record)
        ),
        Ok(())
    );
    assert_eq!(
        check_id(
            Strategy::TopicName,
            "t",
            Side::Value,
            (7, &payload(7, &[])),
            None
        ),
        Err(Refusal::UnknownId {
            side: "value",
            id: 7
        })
    );
    let nameless = facts(&["x"], None);
    assert_eq!(
        check_id(
            Strategy::RecordName,
            "t",
            Side::Value,
            (3, &payload(3, &[])),
            Some(&nameless)
        ),
        Err(Refusal::NoRecordName {
            side: "value",
            id: 3
        })
    );
}

#[test]
fn record_names_come_from_the_registered_schema() {
    let avro = r#"{"type":"record","name":"User","namespace":"com.acme","fields":[]}"#;
    assert_eq!(
        record_names("AVRO", avro),
        RecordNames::One("com.acme.User".into())
    );
    let dotted = r#"{"type":"record","name":"x.y.User","namespace":"ignored","fields":[]}"#;
    assert_eq!(
        record_names("AVRO", dotted),
        RecordNames::One("x.y.User".into())
    );
    assert_eq!(record_names("AVRO", r#""string""#), RecordNames::None);
    assert_eq!(
        record_names("JSON", r#"{"title":"Order","type":"object"}"#),
        RecordNames::One("Order".into())
    );
    let proto = "syntax = \"proto3\";\npackage shop.v1;\nmessage Order { message Line { int32 n = 1; } }\nmessage Other {}";
    assert!(matches!(
        record_names("PROTOBUF", proto),
        RecordNames::Protobuf(_)
    ));
    assert_eq!(
        record_names("PROTOBUF", "syntax = \"proto3\";"),
        RecordNames::None
    );
}

#[test]
fn a_protobuf_payload_is_checked_under_the_message_its_indexes_name() {
    let proto = "syntax = \"proto3\";\npackage shop.v1;\nmessage Order { message Line { int32 n = 1; } }\nmessage Other {}";
    let f = SchemaFacts {
        subjects: vec!["t-shop.v1.Order.Line".into(), "shop.v1.Other".into()],
        names: record_names("PROTOBUF", proto),
    };
    let check = |strategy, tail: &[u8]| {
        check_id(strategy, "t", Side::Value, (9, &payload(9, tail)), Some(&f))
    };
    // [0, 0] (count 2, zigzag 4): Order.Line; [1] (count 1, zigzag 2): Other.
    assert_eq!(check(Strategy::TopicRecordName, &[4, 0, 0]), Ok(()));
    assert_eq!(check(Strategy::RecordName, &[2, 2]), Ok(()));
    // No indexes written (count 0): the first message, Order, registered under neither.
    assert_eq!(
        check(Strategy::RecordName, &[0]),
        Err(Refusal::WrongSubject {
            side: "value",
            id: 9,
            subject: "shop.v1.Order".into()
        })
    );
    let unknown = Err(Refusal::UnknownMessage {
        side: "value",
        id: 9,
    });
    assert_eq!(
        check(Strategy::RecordName, &[2, 4]),
        unknown,
        "[2]: no third message"
    );
    assert_eq!(check(Strategy::RecordName, &[4, 0]), unknown, "cut short");
    assert_eq!(
        check(Strategy::RecordName, &[]),
        unknown,
        "no indexes at all"
    );
    // The topic name strategy looks at the id alone, as Confluent Server does.
    let by_topic = SchemaFacts {
        subjects: vec!["t-value".into()],
        ..f.clone()
    };
    assert_eq!(
        check_id(
            Strategy::TopicName,
            "t",
            Side::Value,
            (9, &payload(9, &[])),
            Some(&by_topic)
        ),
        Ok(())
    );
}

#[test]
fn topic_rules_read_the_confluent_keys() {
    let configs: BTreeMap<String, String> = [
        ("confluent.value.schema.validation", "true"),
        (
            "confluent.value.subject.name.strategy",
            "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
        ),
        ("confluent.key.subject.name.strategy", "RecordNameStrategy"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let rules = TopicRules::of(&configs);
    assert_eq!(
        rules.key, None,
        "the key strategy alone does not turn validation on"
    );
    assert_eq!(rules.value, Some(Strategy::TopicRecordName));
    assert!(!TopicRules::of(&BTreeMap::new()).any());
}

#[test]
fn the_cache_expires_and_stays_bounded() {
    let cache = FactsCache::new(2, Duration::from_secs(10));
    let t0 = Instant::now();
    let f = Arc::new(facts(&["t-value"], None));
    cache.insert(1, f.clone(), t0);
    assert!(cache.get(1, t0 + Duration::from_secs(9)).is_some());
    assert!(
        cache.get(1, t0 + Duration::from_secs(10)).is_none(),
        "expired"
    );
    cache.insert(1, f.clone(), t0);
    cache.insert(2, f.clone(), t0 + Duration::from_secs(1));
    cache.insert(3, f.clone(), t0 + Duration::from_secs(2));
    assert_eq!(cache.len(), 2);
    let now = t0 + Duration::from_secs(3);
    assert!(cache.get(1, now).is_none(), "the oldest went");
    assert!(cache.get(2, now).is_some() && cache.get(3, now).is_some());
}
