//! Decoding the records inside a batch, for the few places that look past batch headers:
//! compaction (keys and values), produce validation of compacted topics (keys), and
//! transaction markers (written by the broker, read back when rebuilding state).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::batch::{BatchView, HEADER_LEN, MIN_RECORD_BYTES};

/// The decoded records of a batch, or `None` for control batches and anything that does not
/// decode or claims more records than it can hold.
pub(crate) fn records_of(view: &BatchView<'_>) -> Option<Vec<Record>> {
    if view.is_control() {
        return None;
    }
    decode(view)
}

/// The keys and values of every data record in a produce request's `buf` (one or more
/// batches), in order; `None` when a batch does not parse (bad CRC, truncated) or decode.
/// Control batches hold no data records and are skipped.
pub fn data_records_of(mut buf: &[u8]) -> Option<Vec<Record>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let view = BatchView::parse(buf).ok()?;
        if !view.is_control() {
            out.extend(decode(&view)?);
        }
        buf = buf.get(view.size()..)?;
    }
    Some(out)
}

/// Whether a control batch is a COMMIT marker (`Some(false)`: ABORT); `None` when it is not
/// a transaction marker.
pub fn marker_is_commit(view: &BatchView<'_>) -> Option<bool> {
    if !view.is_control() {
        return None;
    }
    let records = decode(view)?;
    let key = records.first()?.key.as_ref()?;
    match key.get(2..4)? {
        [0, 0] => Some(false),
        [0, 1] => Some(true),
        _ => None,
    }
}

/// A control batch marking the end of a producer's transaction: one record whose key is
/// (version 0, type ABORT=0 or COMMIT=1) and whose value is (version 0, coordinator epoch).
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Option<BytesMut> {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(i16::from(commit));
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, std::iter::once(&record), &options).ok()?;
    Some(buf)
}

fn decode(view: &BatchView<'_>) -> Option<Vec<Record>> {
    let count = usize::try_from(view.record_count()).ok()?;
    let body = view.as_bytes().get(HEADER_LEN..)?;
    let raw: Bytes = match crate::codec::from_attributes(view.attributes())? {
        Compression::None => Bytes::copy_from_slice(body),
        codec => {
            crate::codec::decompress(codec, body, crate::codec::UNCOMPRESSED_BATCH_CEILING).ok()?
        }
    };
    if count > raw.len() / MIN_RECORD_BYTES + 1 {
        return None;
    }
    let mut bytes = Bytes::copy_from_slice(view.as_bytes());
    let set = RecordBatchDecoder::decode_with_custom_compression(
        &mut bytes,
        Some(|_: &mut Bytes, _: Compression| Ok(raw.clone())),
    )
    .ok()?;
    Some(set.records)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::records::Compression;

    use crate::test_util::{encode, record};
    use crate::BatchView;

    fn batch(keys: &[Option<&'static str>], compression: Compression) -> BytesMut {
        let records: Vec<_> = (0..)
            .zip(keys)
            .map(|(i, k)| record(i, *k, Some("value")))
            .collect();
        encode(&records, compression)
    }

    #[test]
    fn markers_round_trip_their_type() {
        for commit in [true, false] {
            let buf = super::marker_batch(7, 3, commit, 0, 1_000).unwrap();
            let view = BatchView::parse(&buf).unwrap();
            assert!(view.is_control() && view.is_transactional());
            assert_eq!((view.producer_id(), view.producer_epoch()), (7, 3));
            assert_eq!(super::marker_is_commit(&view), Some(commit));
            assert_eq!(super::records_of(&view), None);
        }
        let buf = batch(&[Some("a")], Compression::None);
        assert_eq!(
            super::marker_is_commit(&BatchView::parse(&buf).unwrap()),
            None
        );
    }
}
