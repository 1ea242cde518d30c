//! Record-level validation of a RecordBatch v2, as Kafka's record iterator and LogValidator
//! check it: the declared record count matches the records present, offset deltas run
//! 0..n-1, every length and varint is consistent and stays inside its record, nothing follows
//! the last record, and a compressed batch decompresses: as a stream, within a byte budget,
//! so a compression bomb costs bounded memory and time. Produce adds the checks that depend
//! on topic configs (keys, timestamps) through the per-record callback; crash recovery runs
//! the structural checks alone.

mod source;
mod walk;

use source::{SliceSource, SourceError, StreamSource};
use walk::{walk, Declared, WalkError};

use kafka_protocol::records::Compression;

use super::batch::{BatchError, BatchView, HEADER_LEN};
use crate::codec::{from_attributes, stream::decoder};

/// What validation learns of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    /// Position in the batch, from 0 (KIP-467's `batch_index`).
    pub index: i32,
    /// The record's timestamp: the batch's base timestamp plus its delta.
    pub timestamp: i64,
    /// Whether the record has a key (compacted topics refuse records without one).
    pub has_key: bool,
    /// Where the key's bytes are in the records section (decompressed), if it has any.
    pub key: Option<Span>,
    /// Where the value's bytes are in the records section, if not null.
    pub value: Option<Span>,
}

/// A field's bytes within a batch's records section (after decompression), so a caller
/// holding that section can look at a key or value without decoding the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Span {
    /// The span as a range of `usize`, for slicing a buffer that holds the records section.
    pub fn range(&self) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.start).ok()?;
        Some(start..start.checked_add(usize::try_from(self.len).ok()?)?)
    }
}

/// How the records' offset deltas must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetDeltas {
    /// 0, 1, ..., n-1: a batch as a producer writes it.
    Contiguous,
    /// Strictly increasing up to the header's lastOffsetDelta: a stored batch, from which
    /// compaction may have removed records (keeping the others' offsets).
    Increasing,
}

/// Checks the records of `view` (a batch whose header and CRC already passed), calling
/// `visit` for each valid record in order. `max_uncompressed` bounds what a compressed batch
/// may expand to. Control batches are checked the same way.
pub fn check_records(
    view: &BatchView<'_>,
    deltas: OffsetDeltas,
    max_uncompressed: u64,
    visit: impl FnMut(&RecordInfo),
) -> Result<(), BatchError> {
    let declared = declared(view, deltas);
    let body = view.as_bytes().get(HEADER_LEN..).unwrap_or_default();
    let codec = from_attributes(view.attributes()).ok_or(BatchError::UnknownCompression {
        codec: (view.attributes() & 0x7) as u8,
    })?;
    let walked = match codec {
        Compression::None => walk(&mut SliceSource::new(body), declared, visit),
        codec => {
            let reader =
                decoder(codec, body, max_uncompressed).map_err(|e| BatchError::Decompression {
                    reason: e.to_string(),
                })?;
            let mut source = StreamSource::new(reader, max_uncompressed);
            walk(&mut source, declared, visit)
        }
    };
    walked.map_err(|error| batch_error(error, max_uncompressed))
}

/// [`check_records`] over records the caller has already decompressed (`raw`), so a batch
/// that is recompressed anyway is decompressed once.
pub fn check_decompressed(
    view: &BatchView<'_>,
    deltas: OffsetDeltas,
    raw: &[u8],
    visit: impl FnMut(&RecordInfo),
) -> Result<(), BatchError> {
    walk(&mut SliceSource::new(raw), declared(view, deltas), visit)
        .map_err(|error| batch_error(error, raw.len() as u64))
}

fn declared(view: &BatchView<'_>, deltas: OffsetDeltas) -> Declared {
    Declared {
        count: view.record_count(),
        base_timestamp: view.base_timestamp(),
        last_offset_delta: view.last_offset_delta(),
        deltas,
    }
}

fn batch_error(error: WalkError, max_uncompressed: u64) -> BatchError {
    match error {
        WalkError::Source {
            error: SourceError::OverBudget,
            ..
        } => BatchError::UncompressedTooLarge {
            limit: max_uncompressed,
        },
        WalkError::Source {
            error: SourceError::Corrupt(reason),
            ..
        } => BatchError::Decompression { reason },
        WalkError::Source {
            index,
            error: SourceError::Eof,
        } => BatchError::InvalidRecord {
            index,
            reason: format!("record {index} runs past the end of the batch"),
        },
        WalkError::Malformed { index, reason } => BatchError::InvalidRecord {
            index,
            reason: format!("record {index}: {reason}"),
        },
        WalkError::TooFew { declared, found } => BatchError::InvalidRecord {
            index: found,
            reason: format!("the batch declares {declared} records but holds {found}"),
        },
        WalkError::TooMany { declared } => BatchError::InvalidRecord {
            index: declared,
            reason: format!("bytes remain after the {declared} records the batch declares"),
        },
    }
}

#[cfg(test)]
mod tests;
