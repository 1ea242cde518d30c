//! Test helpers: real RecordBatch v2 bytes built with kafka-protocol's encoder.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Every codec, uncompressed first.
pub const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// What to put in a test batch.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    /// Number of records.
    pub records: usize,
    /// Timestamp of the first record; each following record is 1 ms later.
    pub timestamp: i64,
    /// Explicit per-record timestamps, overriding `timestamp` when non-empty.
    pub timestamps: Vec<i64>,
    /// Value bytes per record.
    pub value_len: usize,
    /// Codec.
    pub compression: Compression,
    /// Producer id, -1 for a plain producer.
    pub producer_id: i64,
    /// Sequence of the first record, -1 for a plain producer.
    pub base_sequence: i32,
}

impl Default for BatchSpec {
    fn default() -> Self {
        Self {
            records: 1,
            timestamp: 1_000,
            timestamps: Vec::new(),
            value_len: 10,
            compression: Compression::None,
            producer_id: -1,
            base_sequence: -1,
        }
    }
}

/// Encodes one batch with base offset 0, as a producer would send it.
pub fn batch(spec: &BatchSpec) -> BytesMut {
    let n = if spec.timestamps.is_empty() {
        spec.records
    } else {
        spec.timestamps.len()
    };
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: spec.producer_id,
            producer_epoch: if spec.producer_id < 0 { -1 } else { 0 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch only while offset - sequence is constant.
            sequence: spec.base_sequence.wrapping_add(i as i32),
            timestamp: spec
                .timestamps
                .get(i)
                .copied()
                .unwrap_or(spec.timestamp + i as i64),
            key: None,
            value: Some(Bytes::from(vec![b'v'; spec.value_len])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: spec.compression,
        },
    )
    .expect("encode test batch");
    buf
}

/// One uncompressed batch of `records` records, first timestamp `ts`.
pub fn simple(records: usize, ts: i64) -> BytesMut {
    batch(&BatchSpec {
        records,
        timestamp: ts,
        ..BatchSpec::default()
    })
}

use std::path::Path;

use super::batch::split_batches;
use super::{AppendInfo, LogConfig, PartitionLog};

/// Wall clock used by tests unless they need another.
pub const NOW: i64 = 1_700_000_000_000;

/// Opens a log, failing the test on error.
pub fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).expect("open log")
}

/// Appends one request's bytes with leader epoch 0 at [`NOW`].
pub fn append(log: &mut PartitionLog, mut bytes: BytesMut) -> AppendInfo {
    log.append(&mut bytes, 0, NOW).expect("append")
}

/// (base offset, last offset) of every batch from `from` to the log end, fetching the way a
/// consumer does (one segment per call).
pub fn read_all(log: &PartitionLog, from: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let plan = log
            .read_plan(offset, usize::MAX, i64::MAX, true)
            .expect("plan");
        let bytes = plan.load().expect("load");
        assert!(!bytes.is_empty(), "no progress at offset {offset}");
        for batch in split_batches(&bytes) {
            let batch = batch.expect("stored batch is valid");
            out.push((batch.base_offset(), batch.last_offset()));
            offset = batch.next_offset();
        }
    }
    out
}

/// Small segments and a dense index, so a few batches exercise rolls and index lookups.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

/// A plain producer's record at `offset` of its batch (the sequence keeps offset - sequence
/// constant, so the encoder keeps consecutive records in one batch).
pub fn record(offset: i32, key: Option<&str>, value: Option<&str>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i64::from(offset),
        sequence: offset - 1,
        timestamp: 1_000 + i64::from(offset),
        key: key.map(|k| Bytes::from(k.to_string())),
        value: value.map(|v| Bytes::from(v.to_string())),
        headers: Default::default(),
    }
}

/// `records` encoded as RecordBatch v2.
pub fn encode(records: &[Record], compression: Compression) -> BytesMut {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).expect("encodable records");
    buf
}

/// Batches of every codec and shape the decoders meet (keyed and keyless records with
/// headers, a transactional batch, a transaction marker), as seeds of the property tests.
pub fn sample_batches() -> Vec<Vec<u8>> {
    let with_headers = |offset: i32, key: Option<&str>| {
        let mut r = record(offset, key, Some("value"));
        r.headers.insert(
            kafka_protocol::protocol::StrBytes::from_static_str("h"),
            Some(Bytes::from_static(b"header value")),
        );
        r
    };
    let mut out: Vec<Vec<u8>> = ALL_CODECS
        .iter()
        .map(|&codec| {
            let records = [
                with_headers(0, Some("k")),
                with_headers(1, None),
                record(2, None, None),
            ];
            encode(&records, codec).to_vec()
        })
        .collect();
    let mut transactional = record(0, Some("k"), Some("v"));
    transactional.transactional = true;
    transactional.producer_id = 7;
    transactional.producer_epoch = 1;
    transactional.sequence = 0;
    out.push(encode(&[transactional], Compression::None).to_vec());
    if let Some(marker) = super::records::marker_batch(7, 1, true, 3, 1_000) {
        out.push(marker.to_vec());
    }
    out
}
