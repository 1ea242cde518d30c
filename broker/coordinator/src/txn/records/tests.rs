//! The record codec against bytes laid out by hand from Kafka's `TransactionLogKey.json` and
//! `TransactionLogValue.json`, and round trips of everything the coordinator keeps.

use super::*;

fn ongoing() -> TxnMetadata {
    let mut txn = TxnMetadata::new(1000, 60_000, 5000);
    txn.producer_epoch = 2;
    txn.state = TxnState::Ongoing;
    txn.started_ms = 4000;
    txn.partitions.insert(("t".into(), 0));
    txn.partitions.insert(("t".into(), 1));
    txn
}

#[test]
fn key_is_version_0_and_the_transactional_id() {
    assert_eq!(&txn_key("tx")[..], [0, 0, 0, 2, b't', b'x']);
    assert_eq!(decode_key(&txn_key("tx")), Ok("tx".to_string()));
    assert!(matches!(
        decode_key(&[0, 1, 0, 0]),
        Err(RecordError::UnknownVersion { version: 1, .. })
    ));
}

/// TransactionLogValue v0: producer id, epoch, timeout, status, partitions (i32 count, i16
/// topic string, i32 count of i32 ids), last update and start timestamps.
#[test]
fn a_plain_transaction_is_written_as_kafka_writes_version_0() {
    let mut expected = vec![0, 0]; // version
    expected.extend(1000i64.to_be_bytes()); // producer id
    expected.extend(2i16.to_be_bytes()); // producer epoch
    expected.extend(60_000i32.to_be_bytes()); // timeout
    expected.push(1); // Ongoing
    expected.extend(1i32.to_be_bytes()); // one topic
    expected.extend([0, 1, b't']);
    expected.extend(2i32.to_be_bytes());
    expected.extend(0i32.to_be_bytes());
    expected.extend(1i32.to_be_bytes());
    expected.extend(5000i64.to_be_bytes()); // last update
    expected.extend(4000i64.to_be_bytes()); // start
    let txn = ongoing();
    assert_eq!(value_version(&txn), 0);
    assert_eq!(&encode_value(&txn)[..], &expected[..]);
    assert_eq!(decode_value(&expected), Ok(txn));
}

#[test]
fn an_empty_transaction_has_a_null_partition_list() {
    let txn = TxnMetadata::new(7, 1000, 9);
    let bytes = encode_value(&txn);
    assert_eq!(&bytes[17..21], (-1i32).to_be_bytes(), "null array");
    assert_eq!(bytes.len(), 2 + 8 + 2 + 4 + 1 + 4 + 8 + 8);
    assert_eq!(decode_value(&bytes), Ok(txn));
}

/// Version 1 as Kafka writes it with transaction version 2: compact arrays and strings,
/// tagged fields PreviousProducerId (0) and ClientTransactionVersion (2), which transactions
/// v2 reads (and writes back the same way).
#[test]
fn kafka_version_1_values_with_kafka_tags_decode() {
    let mut bytes = vec![0, 1];
    bytes.extend(1000i64.to_be_bytes());
    bytes.extend(2i16.to_be_bytes());
    bytes.extend(60_000i32.to_be_bytes());
    bytes.push(1);
    bytes.push(2); // one topic (n + 1)
    bytes.extend([2, b't']); // compact string
    bytes.push(3); // two partitions
    bytes.extend(0i32.to_be_bytes());
    bytes.extend(1i32.to_be_bytes());
    bytes.push(0); // the topic's tagged fields
    bytes.extend(5000i64.to_be_bytes());
    bytes.extend(4000i64.to_be_bytes());
    bytes.extend([2, 0, 8]); // two tags; tag 0, 8 bytes
    bytes.extend(999i64.to_be_bytes());
    bytes.extend([2, 2, 0, 2]); // tag 2, 2 bytes: transaction version 2
    let mut txn = ongoing();
    txn.previous_producer_id = 999;
    txn.transaction_version = 2;
    assert_eq!(decode_value(&bytes), Ok(txn.clone()));
    assert_eq!(
        &encode_value(&txn)[..],
        &bytes[..],
        "written as Kafka writes it"
    );
}

#[test]
fn tributary_state_travels_in_its_tagged_field_of_version_1() {
    let mut txn = ongoing();
    txn.last_producer_epoch = 1;
    txn.markers_written = true;
    txn.state = TxnState::PrepareCommit;
    txn.groups.insert("g".into());
    txn.pending_offsets.push(PendingOffset {
        group: "g".into(),
        topic: "in".into(),
        partition: 3,
        offset: 42,
        leader_epoch: 7,
        metadata: Some("m".into()),
    });
    txn.pending_offsets.push(PendingOffset {
        metadata: None,
        partition: 4,
        ..txn.pending_offsets[0].clone()
    });
    assert_eq!(value_version(&txn), 1);
    let bytes = encode_value(&txn);
    assert_eq!(&bytes[..2], [0, 1]);
    assert_eq!(decode_value(&bytes), Ok(txn.clone()));
    // Kafka's reader sees the same transaction, the extension being an unknown tag.
    let mut plain = txn;
    plain.last_producer_epoch = -1;
    plain.markers_written = false;
    plain.groups.clear();
    plain.pending_offsets.clear();
    let unknown_tag_skipped = {
        let mut r = Reader::new(&bytes[2..], true);
        r.take(8 + 2 + 4 + 1).expect("fixed fields");
        for _ in 0..r.array_len().expect("topics").unwrap_or(0) {
            r.string().expect("topic");
            let n = r.array_len().expect("ids").unwrap_or(0);
            r.take(4 * n).expect("ids");
            r.skip_tagged_fields().expect("topic tags");
        }
        r.take(16).expect("timestamps");
        let tags = r.tagged_fields().expect("tags");
        tags.len() == 1 && tags[0].0 == u64::from(TRIBUTARY_TAG) && r.buf.is_empty()
    };
    assert!(unknown_tag_skipped);
}

#[test]
fn every_state_round_trips_and_unknown_ones_are_refused() {
    for state in [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        let mut txn = ongoing();
        txn.state = state;
        if state == TxnState::Empty {
            txn.partitions.clear();
        }
        assert_eq!(decode_value(&encode_value(&txn)), Ok(txn), "{state:?}");
    }
    let mut bytes = encode_value(&ongoing()).to_vec();
    bytes[16] = 9;
    assert_eq!(decode_value(&bytes), Err(RecordError::UnknownState(9)));
    assert!(matches!(
        decode_value(&bytes[..10]),
        Err(RecordError::Truncated { .. })
    ));
    assert!(matches!(
        decode_value(&[0, 2]),
        Err(RecordError::UnknownVersion { version: 2, .. })
    ));
}

#[test]
fn hostile_keys_and_values_are_errors_never_panics() {
    use tributary_storage::hostile::{never_panics, unsealed};

    let mut extended = ongoing();
    extended.state = TxnState::PrepareCommit;
    extended.last_producer_epoch = 1;
    extended.groups.insert("g".into());
    extended.pending_offsets.push(PendingOffset {
        group: "g".into(),
        topic: "in".into(),
        partition: 3,
        offset: 42,
        leader_epoch: 7,
        metadata: Some("m".into()),
    });
    let samples = vec![
        txn_key("tx").to_vec(),
        encode_value(&ongoing()).to_vec(),
        encode_value(&extended).to_vec(),
    ];
    never_panics(samples, unsealed, |bytes| {
        let _ = decode_key(bytes);
        let _ = decode_value(bytes);
    });
}
