use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::*;
use tributary_storage::test_util::{batch, encode, record, BatchSpec};

const NOW: i64 = 1_700_000_000_000;

/// [`super::check`] of a copy of `records`, as a request would carry them.
fn check(
    records: &[u8],
    rules: &ClientBatchRules,
    now_ms: i64,
) -> Result<CheckedBatch, AppendError> {
    super::check(&Bytes::copy_from_slice(records), rules, now_ms)
}

/// The batch `checked` will store, whole.
fn stored(checked: &CheckedBatch) -> Vec<u8> {
    checked.batch.parts().concat()
}

fn rules() -> ClientBatchRules {
    ClientBatchRules::default()
}

fn resign(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn set_attributes(buf: &mut [u8], bits: i16) {
    let attributes = i16::from_be_bytes([buf[21], buf[22]]) | bits;
    buf[21..23].copy_from_slice(&attributes.to_be_bytes());
    resign(buf);
}

fn invalid_batch(err: AppendError) -> BatchError {
    match err {
        AppendError::Storage(StorageError::InvalidBatch { source, .. }) => source,
        other => panic!("expected an invalid batch, got {other:?}"),
    }
}

#[test]
fn a_valid_batch_passes_unchanged_with_its_identity() {
    let buf = batch(&BatchSpec {
        records: 3,
        producer_id: 7,
        base_sequence: 4,
        ..BatchSpec::default()
    });
    let checked = check(&buf, &rules(), NOW).expect("valid");
    assert_eq!(stored(&checked), buf.to_vec());
    assert_eq!(checked.identity.producer_id, 7);
    assert_eq!(checked.identity.base_sequence, 4);
    assert_eq!(checked.identity.last_offset_delta, 2);
    assert!(!checked.transactional);
}

#[test]
fn more_than_one_batch_per_partition_is_refused() {
    let mut two = simple(1).to_vec();
    two.extend_from_slice(&simple(1));
    let err = check(&two, &rules(), NOW).expect_err("two batches");
    assert!(matches!(err, AppendError::InvalidRecord(_)), "{err}");
}

fn simple(records: usize) -> bytes::BytesMut {
    batch(&BatchSpec {
        records,
        ..BatchSpec::default()
    })
}

#[test]
fn control_batches_and_negative_sequences_are_refused() {
    let mut control = simple(1).to_vec();
    set_attributes(&mut control, 1 << 5);
    assert!(matches!(
        check(&control, &rules(), NOW),
        Err(AppendError::InvalidRecord(_))
    ));
    let idempotent_without_sequence = batch(&BatchSpec {
        producer_id: 9,
        base_sequence: -1,
        ..BatchSpec::default()
    });
    let err = check(&idempotent_without_sequence, &rules(), NOW).expect_err("sequence -1");
    assert!(
        err.to_string().contains("invalid sequence number -1"),
        "{err}"
    );
}

#[test]
fn a_header_whose_count_disagrees_with_its_offsets_is_refused() {
    let mut buf = simple(2).to_vec();
    buf[57..61].copy_from_slice(&3i32.to_be_bytes());
    resign(&mut buf);
    assert!(matches!(
        check(&buf, &rules(), NOW),
        Err(AppendError::InvalidRecord(_))
    ));
}

#[test]
fn log_append_time_set_by_a_producer_is_an_invalid_timestamp_per_record() {
    let mut buf = simple(3).to_vec();
    set_attributes(&mut buf, 1 << 3);
    match check(&buf, &rules(), NOW) {
        Err(AppendError::InvalidTimestamp { records }) => {
            assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
        }
        other => panic!("expected InvalidTimestamp, got {other:?}"),
    }
}

#[test]
fn timestamps_outside_the_topic_bounds_name_their_records() {
    let rules = ClientBatchRules {
        timestamp_before_max_ms: 60_000,
        timestamp_after_max_ms: 1_000,
        ..rules()
    };
    let buf = batch(&BatchSpec {
        timestamps: vec![NOW, NOW - 120_000, NOW + 500, NOW + 5_000, -1],
        ..BatchSpec::default()
    });
    match check(&buf, &rules, NOW) {
        Err(AppendError::InvalidTimestamp { records }) => {
            assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 3]);
            assert!(records[0].1.contains("out of range"), "{}", records[0].1);
        }
        other => panic!("expected InvalidTimestamp, got {other:?}"),
    }
    let log_append = ClientBatchRules {
        timestamp_type: TimestampType::LogAppendTime,
        ..rules
    };
    assert!(
        check(&buf, &log_append, NOW).is_ok(),
        "LogAppendTime ignores the bounds"
    );
}

#[test]
fn compacted_topics_refuse_keyless_records_by_index() {
    let records: Vec<_> = (0..4)
        .map(|i| record(i, (i != 2).then_some("k"), Some("v")))
        .collect();
    let buf = encode(&records, Compression::Lz4);
    let rules = ClientBatchRules {
        keys_required: true,
        ..rules()
    };
    match check(&buf, &rules, NOW) {
        Err(AppendError::KeylessRecords { records }) => assert_eq!(records, [2]),
        other => panic!("expected KeylessRecords, got {other:?}"),
    }
}

#[test]
fn a_wrong_max_timestamp_is_corrected_as_kafka_does() {
    let mut buf = batch(&BatchSpec {
        timestamps: vec![NOW - 5, NOW - 1, NOW - 3],
        ..BatchSpec::default()
    })
    .to_vec();
    buf[35..43].copy_from_slice(&(NOW + 1_000_000).to_be_bytes());
    resign(&mut buf);
    let checked = check(&buf, &rules(), NOW).expect("valid records");
    let stored = stored(&checked);
    let view = BatchView::parse(&stored).expect("CRC recomputed");
    assert_eq!(view.max_timestamp(), NOW - 1);
    assert_eq!(checked.identity.max_timestamp, NOW - 1);
}

#[test]
fn a_forced_codec_recompresses_after_validating_once() {
    let records: Vec<_> = (0..10)
        .map(|i| record(i, Some("k"), Some("value")))
        .collect();
    let buf = encode(&records, Compression::Gzip);
    let rules = ClientBatchRules {
        compression: CompressionPolicy::Force(Compression::Zstd),
        ..rules()
    };
    let checked = check(&buf, &rules, NOW).expect("recompressed");
    let stored = stored(&checked);
    let view = BatchView::parse(&stored).expect("valid batch");
    assert_eq!(
        codec::from_attributes(view.attributes()),
        Some(Compression::Zstd)
    );
    let mut seen = 0;
    check_records(&view, OffsetDeltas::Contiguous, 1 << 20, |_| seen += 1).expect("records intact");
    assert_eq!(seen, 10);
}

#[test]
fn compression_bombs_are_refused_whether_or_not_the_topic_recompresses() {
    let mut big = record(0, Some("k"), None);
    big.value = Some(Bytes::from(vec![0u8; 4 << 20]));
    let bomb = encode(&[big], Compression::Zstd);
    let small = ClientBatchRules {
        max_uncompressed_bytes: 1 << 20,
        ..rules()
    };
    for rules in [
        small,
        ClientBatchRules {
            compression: CompressionPolicy::Force(Compression::Lz4),
            ..small
        },
    ] {
        let err = invalid_batch(check(&bomb, &rules, NOW).expect_err("a bomb"));
        assert_eq!(err, BatchError::UncompressedTooLarge { limit: 1 << 20 });
    }
}

#[test]
fn batches_over_max_message_bytes_are_refused_before_anything_is_read() {
    let buf = simple(50);
    let rules = ClientBatchRules {
        max_message_bytes: 100,
        ..rules()
    };
    let err = invalid_batch(check(&buf, &rules, NOW).expect_err("too large"));
    assert!(matches!(err, BatchError::BatchTooLarge { max: 100, .. }));
}

#[test]
fn hostile_produced_batches_are_refused_never_panics() {
    use tributary_storage::codec::CompressionPolicy;
    use tributary_storage::hostile::{never_panics, seal_batch};
    use tributary_storage::test_util::sample_batches;

    let strict = ClientBatchRules {
        compression: CompressionPolicy::Force(Compression::Zstd),
        keys_required: true,
        timestamp_before_max_ms: 1_000,
        timestamp_after_max_ms: 1_000,
        ..rules()
    };
    let log_append = ClientBatchRules {
        timestamp_type: TimestampType::LogAppendTime,
        ..rules()
    };
    never_panics(sample_batches(), seal_batch, |bytes| {
        for rules in [&rules(), &strict, &log_append] {
            let _ = check(bytes, rules, NOW);
        }
    });
}

/// The class of the one-frame crash: a header claiming far more records than its bytes hold
/// (2^31-1 over one record), combined with every attribute bit (codecs, LogAppendTime,
/// transactional, control, delete horizon, unused bits), CRC valid. Each is refused; none
/// may size anything by the claim (the crash allocated 64 GiB of per-record errors).
#[test]
fn claimed_counts_with_every_attribute_bit_are_refused() {
    use tributary_storage::hostile::seal_batch;
    use tributary_storage::test_util::sample_batches;

    let claims = [
        (i32::MAX, i32::MAX - 1),
        (i32::MAX, 0),
        (1, i32::MAX - 1),
        (0x0100_0000, 0x00ff_ffff),
        (0, -1),
        (-1, -2),
    ];
    for sample in sample_batches() {
        for attributes in (0..0x80u16).chain([0x0100, 0x4000, 0x8000, 0xffff]) {
            for (count, delta) in claims {
                let mut bytes = sample.clone();
                bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
                bytes[23..27].copy_from_slice(&delta.to_be_bytes());
                bytes[57..61].copy_from_slice(&count.to_be_bytes());
                seal_batch(&mut bytes);
                let refused = check(&bytes, &rules(), NOW);
                assert!(refused.is_err(), "{attributes:#06x} {count} {delta}");
                if let Err(AppendError::InvalidTimestamp { records }) = refused {
                    assert!(records.len() <= bytes.len(), "errors bounded by bytes");
                }
            }
        }
    }
}
