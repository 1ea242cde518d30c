//! Decoding the records inside a batch, for the few places that look past batch headers:
//! compaction (keys and values), schema validation (keys and values, located by the record
//! walk rather than decoded), and transaction markers (written by the broker, read back when
//! rebuilding state).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::batch::{BatchView, HEADER_LEN, MIN_RECORD_BYTES};
use super::validate::{check_decompressed, OffsetDeltas, Span};

/// The decoded records of a batch, or `None` for control batches and anything that does not
/// decode or claims more records than it can hold.
pub(crate) fn records_of(view: &BatchView<'_>) -> Option<Vec<Record>> {
    if view.is_control() {
        return None;
    }
    decode(view)
}

/// The data records of one batch as where their keys and values are in its records section
/// (the request's own bytes when uncompressed, else the decompressed records).
#[derive(Debug, Clone)]
pub struct DataRecords {
    raw: Bytes,
    fields: Vec<(Option<Span>, Option<Span>)>,
}

impl DataRecords {
    /// Each record's key and value (`None` when null), in order.
    pub fn iter(&self) -> impl Iterator<Item = (Option<&[u8]>, Option<&[u8]>)> + '_ {
        let part = |span: &Option<Span>| self.raw.get(span.as_ref()?.range()?);
        self.fields
            .iter()
            .map(move |(key, value)| (part(key), part(value)))
    }
}

/// The data records of every batch in a produce request's `buf`, in order, located by the
/// record walk rather than decoded: nothing is copied from an uncompressed batch, a
/// compressed one is decompressed once. `None` when a batch does not parse (bad CRC,
/// truncated), decompress or walk, which its append would refuse too. Control batches hold
/// no data records and are skipped.
pub fn data_keys_values(buf: &Bytes) -> Option<Vec<DataRecords>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        let view = BatchView::parse(buf.get(at..)?).ok()?;
        let end = at
            .checked_add(view.size())
            .filter(|end| *end <= buf.len())?;
        if !view.is_control() {
            let body = at.checked_add(HEADER_LEN).filter(|start| *start <= end)?;
            let raw = match crate::codec::from_attributes(view.attributes())? {
                Compression::None => buf.slice(body..end),
                codec => crate::codec::decompress(
                    codec,
                    &buf[body..end],
                    crate::codec::UNCOMPRESSED_BATCH_CEILING,
                )
                .ok()?,
            };
            let mut fields = Vec::with_capacity(usize::try_from(view.record_count()).unwrap_or(0));
            check_decompressed(&view, OffsetDeltas::Contiguous, &raw, |info| {
                fields.push((info.key, info.value));
            })
            .ok()?;
            out.push(DataRecords { raw, fields });
        }
        at = end;
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
    fn keys_and_values_are_read_from_every_data_batch_without_decoding() {
        let mut buf = batch(&[Some("a"), None], Compression::None);
        buf.extend_from_slice(&super::marker_batch(7, 3, true, 0, 1_000).unwrap());
        buf.extend_from_slice(&batch(&[Some("c")], Compression::Lz4));
        let buf = buf.freeze();
        let read = super::data_keys_values(&buf).expect("decoded");
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let pairs: Vec<_> = read
            .iter()
            .flat_map(|batch| batch.iter())
            .map(|(key, value)| (text(key), text(value)))
            .collect();
        let value = Some("value".to_owned());
        assert_eq!(
            pairs,
            [
                (Some("a".to_owned()), value.clone()),
                (None, value.clone()),
                (Some("c".to_owned()), value)
            ]
        );
        // An uncompressed batch's fields are the request's own bytes.
        let (key, _) = read[0].iter().next().expect("a record");
        let inside = buf.as_ptr_range();
        assert!(inside.contains(&key.expect("key").as_ptr()), "not copied");
        // A corrupted batch (its CRC no longer matches) or a cut one gives nothing.
        let mut bad = buf.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(super::data_keys_values(&bad.into()).is_none());
        assert!(super::data_keys_values(&buf.slice(..buf.len() - 3)).is_none());
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
