//! Kafka's compression codecs over raw bytes, and the topic-level `compression.type` policy:
//! when a topic names a codec, batches arriving in another one are recompressed before they are
//! stored, as Kafka does. Decompression always streams and is always bounded ([`stream`]).

mod snappy;
pub mod stream;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::Compression;

/// The most a stored batch may expand to, whatever `--max-uncompressed-batch-bytes` says:
/// the ceiling of that setting, used when reading back batches validated when written.
pub const UNCOMPRESSED_BATCH_CEILING: u64 = 1 << 30;

/// A codec failure; the produce handler answers CORRUPT_MESSAGE, or MESSAGE_TOO_LARGE when
/// the records expanded past their limit.
#[derive(Debug, thiserror::Error)]
#[error("{codec:?} {action} failed: {reason}")]
pub struct CodecError {
    codec: Compression,
    action: &'static str,
    reason: String,
    over_limit: bool,
}

impl CodecError {
    fn new(codec: Compression, action: &'static str, reason: impl Into<String>) -> Self {
        Self {
            codec,
            action,
            reason: reason.into(),
            over_limit: false,
        }
    }

    /// Whether decompression stopped because the records expanded past their limit (a
    /// compression bomb), rather than because they do not decode.
    pub fn is_over_limit(&self) -> bool {
        self.over_limit
    }
}

/// The codec of a batch from its attributes (bits 0-2), if valid.
pub fn from_attributes(attributes: i16) -> Option<Compression> {
    match attributes & 0x7 {
        0 => Some(Compression::None),
        1 => Some(Compression::Gzip),
        2 => Some(Compression::Snappy),
        3 => Some(Compression::Lz4),
        4 => Some(Compression::Zstd),
        _ => None,
    }
}

/// What a topic's `compression.type` asks of stored batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionPolicy {
    /// Keep whatever the producer sent (`producer`, the default).
    Producer,
    /// Store every batch with this codec (`none`/`uncompressed`, `gzip`, ...).
    Force(Compression),
}

impl CompressionPolicy {
    /// Parses a `compression.type` value; unknown values keep the producer's codec.
    pub fn parse(value: &str) -> CompressionPolicy {
        match value {
            "none" | "uncompressed" => CompressionPolicy::Force(Compression::None),
            "gzip" => CompressionPolicy::Force(Compression::Gzip),
            "snappy" => CompressionPolicy::Force(Compression::Snappy),
            "lz4" => CompressionPolicy::Force(Compression::Lz4),
            "zstd" => CompressionPolicy::Force(Compression::Zstd),
            _ => CompressionPolicy::Producer,
        }
    }
}

/// Decompresses `data` written with `codec`, refusing to expand past `limit` bytes.
pub fn decompress(codec: Compression, data: &[u8], limit: u64) -> Result<Bytes, CodecError> {
    stream::decompress_bounded(codec, data, limit).map(Bytes::from)
}

/// Compresses `data` with `codec`.
pub fn compress(codec: Compression, data: &[u8]) -> Result<BytesMut, CodecError> {
    let mut out = BytesMut::with_capacity(data.len() / 2 + 64);
    let fill = |buf: &mut BytesMut| {
        buf.extend_from_slice(data);
        Ok(())
    };
    let done = match codec {
        Compression::None => {
            out.extend_from_slice(data);
            Ok(())
        }
        Compression::Gzip => Gzip::compress(&mut out, fill),
        Compression::Snappy => Snappy::compress(&mut out, fill),
        Compression::Lz4 => Lz4::compress(&mut out, fill),
        Compression::Zstd => Zstd::compress(&mut out, fill),
    };
    done.map(|()| out)
        .map_err(|e| CodecError::new(codec, "compression", e.to_string()))
}

/// Size of the RecordBatch v2 header; the records section follows it.
const HEADER_LEN: usize = 61;
/// Offset of the attributes field, where the CRC-covered part of a batch begins.
const ATTRIBUTES: usize = 21;

/// Rewrites one whole, valid batch so its records are compressed with `target`; `None` when
/// it already is. Producer id, epoch, sequences, offsets and timestamps are unchanged; the
/// records may expand to at most `limit` bytes on the way.
pub fn recompress(
    batch: &[u8],
    target: Compression,
    limit: u64,
) -> Result<Option<Vec<u8>>, CodecError> {
    let header = batch
        .get(..HEADER_LEN)
        .ok_or_else(|| corrupt(target, "short batch"))?;
    let source =
        from_attributes(attributes_of(header)).ok_or_else(|| corrupt(target, "unknown codec"))?;
    if source == target {
        return Ok(None);
    }
    let raw = decompress(source, &batch[HEADER_LEN..], limit)?;
    repack(header, &raw, target).map(Some)
}

/// A batch with `header` (from a batch of the same records) and the uncompressed records
/// `raw` compressed with `target`: length, codec bits and CRC rewritten.
pub fn repack(header: &[u8], raw: &[u8], target: Compression) -> Result<Vec<u8>, CodecError> {
    let header = header
        .get(..HEADER_LEN)
        .ok_or_else(|| corrupt(target, "short batch"))?;
    let packed = compress(target, raw)?;
    let mut out = Vec::with_capacity(HEADER_LEN + packed.len());
    out.extend_from_slice(header);
    out.extend_from_slice(&packed);
    let length = i32::try_from(out.len() - 12).map_err(|_| corrupt(target, "batch too large"))?;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = (attributes_of(header) & !0x7) | target as i16;
    out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn attributes_of(header: &[u8]) -> i16 {
    i16::from_be_bytes([header[ATTRIBUTES], header[ATTRIBUTES + 1]])
}

fn corrupt(codec: Compression, reason: &str) -> CodecError {
    CodecError::new(codec, "recompression", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in crate::test_util::ALL_CODECS {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed, 1 << 20).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(
                decompress(codec, b"definitely not compressed", 1 << 20).is_err(),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn recompressed_batches_keep_their_records() {
        use kafka_protocol::records::{
            Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: 1_000 + i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; 100])),
                headers: Default::default(),
            })
            .collect();
        let mut lz4 = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::Lz4,
        };
        RecordBatchEncoder::encode(&mut lz4, &records, &options).unwrap();
        assert!(recompress(&lz4, Compression::Lz4, 1 << 20)
            .unwrap()
            .is_none());
        let zstd = recompress(&lz4, Compression::Zstd, 1 << 20)
            .unwrap()
            .unwrap();
        let crc = u32::from_be_bytes(zstd[17..21].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&zstd[21..]));
        let decoded = RecordBatchDecoder::decode(&mut Bytes::from(zstd)).unwrap();
        assert_eq!(decoded.compression, Compression::Zstd);
        assert_eq!(decoded.records, records);
    }

    #[test]
    fn policy_parses_kafka_values() {
        assert_eq!(
            CompressionPolicy::parse("producer"),
            CompressionPolicy::Producer
        );
        assert_eq!(
            CompressionPolicy::parse("uncompressed"),
            CompressionPolicy::Force(Compression::None)
        );
        assert_eq!(
            CompressionPolicy::parse("zstd"),
            CompressionPolicy::Force(Compression::Zstd)
        );
    }
}
