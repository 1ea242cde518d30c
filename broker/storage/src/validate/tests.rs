use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::*;
use crate::test_util::{batch, encode, record, BatchSpec, ALL_CODECS};

const LIMIT: u64 = 1 << 20;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const RECORD_COUNT: usize = 57;

/// Records of `buf` as `check_records` reports them.
fn check(buf: &[u8]) -> Result<Vec<RecordInfo>, BatchError> {
    let view = BatchView::parse(buf).expect("header and CRC are valid");
    let mut seen = Vec::new();
    check_records(&view, OffsetDeltas::Contiguous, LIMIT, |r| seen.push(*r))?;
    Ok(seen)
}

/// Rewrites the batch length and CRC after a mutation, as a hostile client would.
fn resign(buf: &mut [u8]) {
    let len = (buf.len() - 12) as i32;
    buf[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
    buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

fn set_i32(buf: &mut [u8], at: usize, value: i32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// A batch of `count` declared records whose records section is `body`, uncompressed.
fn with_body(body: &[u8], count: i32) -> Vec<u8> {
    let mut buf = simple_header();
    buf.truncate(HEADER_LEN);
    buf.extend_from_slice(body);
    set_i32(&mut buf, RECORD_COUNT, count);
    set_i32(&mut buf, LAST_OFFSET_DELTA, count - 1);
    resign(&mut buf);
    buf
}

fn simple_header() -> Vec<u8> {
    batch(&BatchSpec::default()).to_vec()
}

fn zigzag(v: i64) -> Vec<u8> {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        if raw < 0x80 {
            out.push(raw as u8);
            return out;
        }
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
}

/// One record in the v2 format, with its length computed unless `length` overrides it.
fn raw_record(offset_delta: i64, key_len: i64, value: &[u8], length: Option<i64>) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend(zigzag(5));
    body.extend(zigzag(offset_delta));
    body.extend(zigzag(key_len));
    if key_len > 0 {
        body.extend(std::iter::repeat_n(b'k', key_len as usize));
    }
    body.extend(zigzag(value.len() as i64));
    body.extend_from_slice(value);
    body.extend(zigzag(0));
    let mut out = zigzag(length.unwrap_or(body.len() as i64));
    out.extend(body);
    out
}

/// A record whose key length (300) runs far past the record's own length.
fn key_longer_than_its_record() -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend(zigzag(0));
    body.extend(zigzag(0));
    body.extend(zigzag(300));
    body.extend_from_slice(b"abc");
    body.extend(zigzag(-1));
    body.extend(zigzag(0));
    let mut out = zigzag(body.len() as i64);
    out.extend(body);
    out
}

#[test]
fn valid_batches_pass_in_every_codec_with_every_record_seen() {
    for codec in ALL_CODECS {
        let records: Vec<_> = (0..5)
            .map(|i| record(i, (i % 2 == 0).then_some("key"), Some("value")))
            .collect();
        let buf = encode(&records, codec);
        let seen = check(&buf).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        assert_eq!(seen.len(), 5, "{codec:?}");
        for (i, info) in seen.iter().enumerate() {
            assert_eq!(info.index, i as i32);
            assert_eq!(info.timestamp, 1_000 + i as i64);
            assert_eq!(info.has_key, i % 2 == 0);
        }
    }
}

#[test]
fn a_count_larger_than_the_records_present_is_an_invalid_record() {
    // The fuzz reproducer: one record declared as 2,147,483,647.
    let mut buf = simple_header();
    set_i32(&mut buf, RECORD_COUNT, i32::MAX);
    set_i32(&mut buf, LAST_OFFSET_DELTA, i32::MAX - 1);
    resign(&mut buf);
    let err = check(&buf).expect_err("count lies");
    assert!(
        matches!(err, BatchError::InvalidRecord { index: 1, .. }),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("declares 2147483647 records but holds 1"));
}

#[test]
fn bytes_after_the_declared_records_are_refused() {
    let two = [raw_record(0, -1, b"a", None), raw_record(1, -1, b"b", None)].concat();
    assert!(check(&with_body(&two, 2)).is_ok());
    let err = check(&with_body(&two, 1)).expect_err("one record too many");
    assert!(
        matches!(err, BatchError::InvalidRecord { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn offset_deltas_must_run_from_zero_in_order() {
    let body = [raw_record(0, -1, b"a", None), raw_record(2, -1, b"b", None)].concat();
    let err = check(&with_body(&body, 2)).expect_err("delta 2 at index 1");
    assert!(
        matches!(err, BatchError::InvalidRecord { index: 1, .. }),
        "{err}"
    );
    let err = check(&with_body(&raw_record(1, -1, b"a", None), 1)).expect_err("starts at 1");
    assert!(
        matches!(err, BatchError::InvalidRecord { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn lengths_that_disagree_with_the_fields_are_refused() {
    let exact = raw_record(0, 3, b"value", None);
    let declared = exact.len() as i64 - 1;
    for (what, body) in [
        ("too long", raw_record(0, 3, b"value", Some(declared + 4))),
        ("too short", raw_record(0, 3, b"value", Some(declared - 2))),
        ("negative", raw_record(0, 3, b"value", Some(-7))),
        ("key length below -1", raw_record(0, -2, b"value", None)),
        ("key past the record", key_longer_than_its_record()),
    ] {
        let err = check(&with_body(&body, 1)).expect_err(what);
        assert!(
            matches!(err, BatchError::InvalidRecord { index: 0, .. }),
            "{what}: {err}"
        );
    }
    let mut header_key_null = raw_record(0, -1, b"v", None);
    let last = header_key_null.len() - 1;
    header_key_null[last] = zigzag(1)[0];
    header_key_null.extend(zigzag(-1));
    header_key_null.extend(zigzag(-1));
    header_key_null[0] = zigzag(header_key_null.len() as i64 - 1)[0];
    let err = check(&with_body(&header_key_null, 1)).expect_err("null header key");
    assert!(err.to_string().contains("header key"), "{err}");
}

#[test]
fn overlong_varints_are_refused() {
    let mut body = vec![0xff; 6];
    body.push(0);
    let err = check(&with_body(&body, 1)).expect_err("six-byte varint");
    assert!(
        matches!(err, BatchError::InvalidRecord { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn garbage_in_a_compressed_batch_is_a_decompression_error() {
    // The fuzz reproducer: gzip-flagged, 16 garbage bytes, valid CRC.
    for codec in [1i16, 2, 3, 4] {
        let mut buf = simple_header();
        buf.truncate(HEADER_LEN);
        buf[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&codec.to_be_bytes());
        buf.extend((1u8..=16).collect::<Vec<_>>());
        resign(&mut buf);
        let err = check(&buf).expect_err("garbage");
        assert!(
            matches!(
                err,
                BatchError::Decompression { .. } | BatchError::InvalidRecord { .. }
            ),
            "codec {codec}: {err}"
        );
    }
}

#[test]
fn a_truncated_compressed_payload_is_refused() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let records: Vec<_> = (0..20)
            .map(|i| record(i, Some("k"), Some("some value")))
            .collect();
        let mut buf = encode(&records, codec).to_vec();
        buf.truncate(buf.len() - 5);
        resign(&mut buf);
        assert!(check(&buf).is_err(), "{codec:?}");
    }
}

#[test]
fn a_compression_bomb_stops_at_the_limit() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut big = record(0, Some("k"), None);
        big.value = Some(Bytes::from(vec![0u8; 4 << 20]));
        let buf = encode(&[big], codec);
        assert!(buf.len() < (LIMIT as usize), "{codec:?} compresses zeros");
        let err = check(&buf).expect_err("expands past the limit");
        assert_eq!(
            err,
            BatchError::UncompressedTooLarge { limit: LIMIT },
            "{codec:?}"
        );
    }
}

#[test]
fn stored_batches_may_skip_offsets_compaction_removed() {
    // Records at deltas 0 and 2 of a batch whose last offset delta is 3.
    let body = [raw_record(0, -1, b"a", None), raw_record(2, -1, b"b", None)].concat();
    let mut buf = with_body(&body, 2);
    set_i32(&mut buf, LAST_OFFSET_DELTA, 3);
    resign(&mut buf);
    let view = BatchView::parse(&buf).expect("valid header");
    assert!(check_records(&view, OffsetDeltas::Increasing, LIMIT, |_| {}).is_ok());
    assert!(check_records(&view, OffsetDeltas::Contiguous, LIMIT, |_| {}).is_err());
    // Out of order, or past the last offset delta: refused either way.
    for deltas in [[2, 1], [0, 4]] {
        let body = [
            raw_record(deltas[0], -1, b"a", None),
            raw_record(deltas[1], -1, b"b", None),
        ]
        .concat();
        let mut buf = with_body(&body, 2);
        set_i32(&mut buf, LAST_OFFSET_DELTA, 3);
        resign(&mut buf);
        let view = BatchView::parse(&buf).expect("valid header");
        assert!(
            check_records(&view, OffsetDeltas::Increasing, LIMIT, |_| {}).is_err(),
            "{deltas:?}"
        );
    }
}

#[test]
fn hostile_batches_are_errors_never_panics() {
    use crate::batch::split_batches;
    use crate::hostile::{never_panics, seal_batch};
    use crate::records::{marker_is_commit, records_of};
    use crate::test_util::sample_batches;

    never_panics(sample_batches(), seal_batch, |bytes| {
        let _ = BatchView::header(bytes);
        split_batches(bytes).for_each(drop);
        let Ok(view) = BatchView::parse(bytes) else {
            return;
        };
        let _ = (view.last_offset(), view.next_offset(), view.records_room());
        for deltas in [OffsetDeltas::Contiguous, OffsetDeltas::Increasing] {
            let _ = check_records(&view, deltas, LIMIT, |_| {});
        }
        let _ = records_of(&view);
        let _ = marker_is_commit(&view);
    });
}
