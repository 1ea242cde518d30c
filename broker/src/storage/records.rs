//! Decoding the records inside a batch, for the few places that look past batch headers:
//! compaction (keys and values) and produce validation of compacted topics (keys).

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use super::batch::{BatchView, HEADER_LEN};

/// Smallest encoding of a record (length, attributes, timestamp and offset deltas, key and
/// value lengths, header count: one byte each), to reject implausible record counts before
/// the decoder allocates for them.
const MIN_RECORD_BYTES: usize = 7;

/// The decoded records of a batch, or `None` for control batches and anything that does not
/// decode or claims more records than it can hold.
pub(crate) fn records_of(view: &BatchView<'_>) -> Option<Vec<Record>> {
    if view.is_control() {
        return None;
    }
    let count = usize::try_from(view.record_count()).ok()?;
    let body = view.as_bytes().get(HEADER_LEN..)?;
    let raw: Bytes = match crate::codec::from_attributes(view.attributes())? {
        Compression::None => Bytes::copy_from_slice(body),
        codec => crate::codec::decompress(codec, body).ok()?,
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

/// Indexes (within the batch) of the records without a key, which a compacted topic refuses;
/// `None` when the records do not decode.
pub(crate) fn keyless_records(view: &BatchView<'_>) -> Option<Vec<i32>> {
    let records = records_of(view)?;
    Some(
        (0..)
            .zip(records.iter())
            .filter(|(_, record)| record.key.is_none())
            .map(|(index, _)| index)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::keyless_records;
    use crate::storage::BatchView;

    fn batch(keys: &[Option<&'static str>], compression: Compression) -> BytesMut {
        let records: Vec<Record> = (0..)
            .zip(keys)
            .map(|(i, key)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                // The encoder keeps records in one batch while offset - sequence holds.
                sequence: i32::try_from(i).unwrap() - 1,
                timestamp: 1_000 + i,
                key: key.map(|k| Bytes::from_static(k.as_bytes())),
                value: Some(Bytes::from_static(b"value")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf
    }

    #[test]
    fn keyless_records_are_found_by_index_in_any_codec() {
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let buf = batch(&[Some("a"), None, Some("c"), None], codec);
            let view = BatchView::parse(&buf).unwrap();
            assert_eq!(keyless_records(&view), Some(vec![1, 3]), "{codec:?}");
            let buf = batch(&[Some("a")], codec);
            let view = BatchView::parse(&buf).unwrap();
            assert_eq!(keyless_records(&view), Some(vec![]), "{codec:?}");
        }
    }
}
