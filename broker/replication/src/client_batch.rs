//! The checks Kafka applies to a record batch a client produces (its LogValidator with origin
//! CLIENT), outside the partition lock: one batch per partition, a CRC that holds, a header
//! that agrees with the records (count, offset deltas, lengths), no control batches, sane
//! producer sequences, every record decodable (compressed ones streamed within a byte
//! budget), keys on compacted topics and timestamps within `message.timestamp.before.max.ms`
//! / `after.max.ms`. Nothing that fails here reaches a log.

use bytes::Bytes;
use kafka_protocol::records::Compression;

use crate::append_error::AppendError;
use crate::producer::BatchIdentity;
use tributary_storage::codec::{self, CompressionPolicy};
use tributary_storage::{
    check_decompressed, check_records, BatchError, BatchView, OffsetDeltas, RecordInfo, SplitBatch,
    StorageError, TimestampType,
};

/// Why a batch with the LogAppendTime timestamp type is refused.
const LOG_APPEND_TIME_REFUSED: &str = "producers may not set the LogAppendTime timestamp type";

/// A record without a timestamp; Kafka checks no bounds on it.
const NO_TIMESTAMP: i64 = -1;

/// Offset of the records section in a v2 batch.
const HEADER_LEN: usize = tributary_storage::batch::HEADER_LEN;

/// The topic settings the checks depend on; a partition keeps a copy and replaces it when the
/// topic's configs change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientBatchRules {
    /// The topic's `compression.type`.
    pub compression: CompressionPolicy,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub keys_required: bool,
    /// `message.timestamp.type`: CreateTime timestamps are checked against the bounds below.
    pub timestamp_type: TimestampType,
    /// How far in the past a CreateTime timestamp may be (`message.timestamp.before.max.ms`).
    pub timestamp_before_max_ms: i64,
    /// How far in the future it may be (`message.timestamp.after.max.ms`).
    pub timestamp_after_max_ms: i64,
    /// The largest batch accepted, header included (`max.message.bytes`).
    pub max_message_bytes: u32,
    /// What a compressed batch may expand to (`max.uncompressed.batch.bytes`).
    pub max_uncompressed_bytes: u64,
}

impl Default for ClientBatchRules {
    fn default() -> Self {
        Self {
            compression: CompressionPolicy::Producer,
            keys_required: false,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            max_uncompressed_bytes: 128 << 20,
        }
    }
}

/// A client batch that passed, ready to append: what idempotence needs, and the batch to
/// store (recompressed or with a corrected max timestamp when Kafka would have rewritten it),
/// its records still the request's bytes unless recompressed.
#[derive(Debug)]
pub struct CheckedBatch {
    /// Producer id, epoch and sequences of the batch.
    pub identity: BatchIdentity,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// The batch as it will be stored.
    pub batch: SplitBatch,
}

impl CheckedBatch {
    /// The checked `batch`, its header final but for what the append stamps.
    pub(crate) fn new(batch: SplitBatch) -> CheckedBatch {
        let view = batch.view();
        CheckedBatch {
            identity: BatchIdentity::of(&view),
            transactional: view.is_transactional(),
            batch,
        }
    }
}

/// Splits one whole batch that [`BatchView::parse`] accepted into header and records.
pub(crate) fn split(batch: Bytes) -> Result<SplitBatch, AppendError> {
    let available = batch.len();
    SplitBatch::new(batch).ok_or(AppendError::Storage(StorageError::InvalidBatch {
        index: 0,
        source: BatchError::Truncated {
            needed: HEADER_LEN,
            available,
        },
    }))
}

/// Checks the records of one partition's produce data.
pub fn check(
    records: &Bytes,
    rules: &ClientBatchRules,
    now_ms: i64,
) -> Result<CheckedBatch, AppendError> {
    let invalid = |source| AppendError::Storage(StorageError::InvalidBatch { index: 0, source });
    let header = BatchView::header(records).map_err(invalid)?;
    if header.size() > rules.max_message_bytes as usize {
        return Err(invalid(BatchError::BatchTooLarge {
            size: header.size(),
            max: rules.max_message_bytes,
        }));
    }
    let view = BatchView::parse(records).map_err(invalid)?;
    if records.len() > view.size() {
        return Err(AppendError::InvalidRecord(format!(
            "a produce request carries one record batch per partition; {} bytes follow the first",
            records.len() - view.size()
        )));
    }
    check_header(&view)?;
    let mut findings = Findings::new(rules, now_ms);
    let source = codec::from_attributes(view.attributes()).unwrap_or(Compression::None);
    let repacked = match rules.compression {
        CompressionPolicy::Force(target) if target != source => {
            let body = &records[HEADER_LEN..];
            let raw = codec::stream::decompress_bounded(source, body, rules.max_uncompressed_bytes)
                .map_err(|e| invalid(decompression_error(&e, rules)))?;
            check_decompressed(&view, OffsetDeltas::Contiguous, &raw, |r| findings.visit(r))
                .map_err(invalid)?;
            findings.verdict()?;
            Some(Bytes::from(codec::repack(records, &raw, target)?))
        }
        _ => {
            let limit = rules.max_uncompressed_bytes;
            check_records(&view, OffsetDeltas::Contiguous, limit, |r| {
                findings.visit(r)
            })
            .map_err(invalid)?;
            findings.verdict()?;
            None
        }
    };
    let mut batch = split(repacked.unwrap_or_else(|| records.clone()))?;
    if rules.timestamp_type == TimestampType::CreateTime {
        if let Some(max) = findings.max_timestamp {
            batch.set_max_timestamp(max);
        }
    }
    Ok(CheckedBatch::new(batch))
}

/// Kafka's batch-level rules for client writes (`validateBatch`).
fn check_header(view: &BatchView<'_>) -> Result<(), AppendError> {
    let count = view.record_count();
    if count <= 0 || i64::from(count) != i64::from(view.last_offset_delta()) + 1 {
        return Err(AppendError::InvalidRecord(format!(
            "inconsistent batch: {count} records but lastOffsetDelta {}",
            view.last_offset_delta()
        )));
    }
    if view.is_control() {
        return Err(AppendError::InvalidRecord(
            "clients may not write control batches".into(),
        ));
    }
    if view.producer_id() >= 0 && view.base_sequence() < 0 {
        return Err(AppendError::InvalidRecord(format!(
            "invalid sequence number {} in a batch of producer {}",
            view.base_sequence(),
            view.producer_id()
        )));
    }
    if view.is_log_append_time() {
        // One error per record, as Kafka reports them, but never more than the batch's bytes
        // can hold: the count is the client's claim, and may be 2^31-1 over one record.
        let listed = count.min(
            i32::try_from(view.records_room())
                .unwrap_or(i32::MAX)
                .max(1),
        );
        let records = (0..listed)
            .map(|i| (i, LOG_APPEND_TIME_REFUSED.to_string()))
            .collect();
        return Err(AppendError::InvalidTimestamp { records });
    }
    Ok(())
}

/// A decompression failure, told apart from the budget running out.
fn decompression_error(error: &codec::CodecError, rules: &ClientBatchRules) -> BatchError {
    if error.is_over_limit() {
        BatchError::UncompressedTooLarge {
            limit: rules.max_uncompressed_bytes,
        }
    } else {
        BatchError::Decompression {
            reason: error.to_string(),
        }
    }
}

/// What the per-record rules found while the records were walked.
struct Findings<'r> {
    rules: &'r ClientBatchRules,
    now_ms: i64,
    keyless: Vec<i32>,
    timestamps: Vec<(i32, String)>,
    max_timestamp: Option<i64>,
}

impl<'r> Findings<'r> {
    fn new(rules: &'r ClientBatchRules, now_ms: i64) -> Self {
        Self {
            rules,
            now_ms,
            keyless: Vec::new(),
            timestamps: Vec::new(),
            max_timestamp: None,
        }
    }

    fn visit(&mut self, record: &RecordInfo) {
        if self.rules.keys_required && !record.has_key {
            self.keyless.push(record.index);
        }
        let ts = record.timestamp;
        self.max_timestamp = Some(self.max_timestamp.map_or(ts, |m| m.max(ts)));
        if self.rules.timestamp_type == TimestampType::CreateTime && ts != NO_TIMESTAMP {
            let (before, after) = (
                self.rules.timestamp_before_max_ms,
                self.rules.timestamp_after_max_ms,
            );
            if self.now_ms.saturating_sub(ts) > before || ts.saturating_sub(self.now_ms) > after {
                self.timestamps.push((
                    record.index,
                    format!(
                        "timestamp {ts} of record {} is out of range: it must be within [{}, {}]",
                        record.index,
                        self.now_ms.saturating_sub(before),
                        self.now_ms.saturating_add(after)
                    ),
                ));
            }
        }
    }

    /// Kafka's order: any bad timestamp makes the batch INVALID_TIMESTAMP, else missing keys
    /// make it INVALID_RECORD.
    fn verdict(&mut self) -> Result<(), AppendError> {
        if !self.timestamps.is_empty() {
            return Err(AppendError::InvalidTimestamp {
                records: std::mem::take(&mut self.timestamps),
            });
        }
        if !self.keyless.is_empty() {
            return Err(AppendError::KeylessRecords {
                records: std::mem::take(&mut self.keyless),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
