//! The grammar of one v2 record, walked without copying keys, values or headers:
//! `length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
//! keyLength varint | key | valueLength varint | value | headerCount varint |
//! (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*`.

use super::source::{Source, SourceError};
use super::{OffsetDeltas, RecordInfo, Span};

/// Why the records section is not what its batch header declares.
#[derive(Debug)]
pub(super) enum WalkError {
    /// Reading failed inside record `index` (its bytes ran out, or the stream failed).
    Source { index: i32, error: SourceError },
    /// Record `index` breaks the grammar.
    Malformed { index: i32, reason: String },
    /// Fewer records than the header declares.
    TooFew { declared: i32, found: i32 },
    /// Bytes remain after the declared number of records.
    TooMany { declared: i32 },
}

/// Smallest body of a record: attributes, timestamp delta, offset delta, key length, value
/// length and header count, one byte each.
const MIN_BODY: i64 = 6;

/// What the batch header says the records section holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Declared {
    /// Number of records.
    pub(super) count: i32,
    /// Timestamp the records' deltas are relative to.
    pub(super) base_timestamp: i64,
    /// Offset delta of the last record the batch had when written.
    pub(super) last_offset_delta: i32,
    /// How the records' offset deltas must run.
    pub(super) deltas: OffsetDeltas,
}

/// Walks the declared records from `source`, calling `visit` for each, and checks nothing
/// follows.
pub(super) fn walk<S: Source>(
    source: &mut S,
    declared: Declared,
    mut visit: impl FnMut(&RecordInfo),
) -> Result<(), WalkError> {
    let count = declared.count;
    let mut previous_delta = -1;
    for index in 0..count {
        let at_end = source
            .at_end()
            .map_err(|error| WalkError::Source { index, error })?;
        if at_end {
            return Err(WalkError::TooFew {
                declared: count,
                found: index,
            });
        }
        let (info, delta) = record(source, index, declared.base_timestamp)?;
        let in_order = match declared.deltas {
            OffsetDeltas::Contiguous => delta == index,
            OffsetDeltas::Increasing => {
                delta > previous_delta && delta <= declared.last_offset_delta
            }
        };
        if !in_order {
            return Err(WalkError::Malformed {
                index,
                reason: format!(
                    "offset delta {delta} after {previous_delta} (lastOffsetDelta {})",
                    declared.last_offset_delta
                ),
            });
        }
        previous_delta = delta;
        visit(&info);
    }
    let at_end = source.at_end().map_err(|error| WalkError::Source {
        index: count,
        error,
    })?;
    if at_end {
        Ok(())
    } else {
        Err(WalkError::TooMany { declared: count })
    }
}

/// Reads one record, checking its parts add up to its declared length; returns it with its
/// offset delta.
fn record<S: Source>(
    source: &mut S,
    index: i32,
    base_timestamp: i64,
) -> Result<(RecordInfo, i32), WalkError> {
    let mut r = RecordReader { source, index };
    let length = i64::from(r.varint()?);
    if length < MIN_BODY {
        return Err(r.malformed(format!(
            "record length {length} is below the minimum of {MIN_BODY}"
        )));
    }
    let start = r.source.consumed();
    let end = start + length as u64;
    r.source.read_u8().map_err(|e| r.source_error(e))?; // attributes: unused in v2
    let timestamp_delta = r.varlong()?;
    let offset_delta = r.varint()?;
    let key = r.bytes_field("key", end, true)?;
    let value = r.bytes_field("value", end, true)?;
    let headers = r.varint()?;
    if headers < 0 {
        return Err(r.malformed(format!("negative header count {headers}")));
    }
    for _ in 0..headers {
        r.bytes_field("header key", end, false)?;
        r.bytes_field("header value", end, true)?;
    }
    let read = r.source.consumed() - start;
    if read != length as u64 {
        return Err(r.malformed(format!(
            "record length says {length} bytes but its fields take {read}"
        )));
    }
    let timestamp = base_timestamp.checked_add(timestamp_delta).ok_or_else(|| {
        r.malformed(format!(
            "timestamp delta {timestamp_delta} overflows the base timestamp {base_timestamp}"
        ))
    })?;
    let info = RecordInfo {
        index,
        timestamp,
        has_key: key.is_some(),
        key,
        value,
    };
    Ok((info, offset_delta))
}

/// One record's fields, read from a source with the record's index for error reports.
struct RecordReader<'s, S> {
    source: &'s mut S,
    index: i32,
}

impl<S: Source> RecordReader<'_, S> {
    fn malformed(&self, reason: String) -> WalkError {
        WalkError::Malformed {
            index: self.index,
            reason,
        }
    }

    fn source_error(&self, error: SourceError) -> WalkError {
        WalkError::Source {
            index: self.index,
            error,
        }
    }

    /// A zig-zag varint of at most 5 bytes.
    fn varint(&mut self) -> Result<i32, WalkError> {
        let raw = self.unsigned(5)?;
        let raw =
            u32::try_from(raw).map_err(|_| self.malformed("varint overflows 32 bits".into()))?;
        Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    /// A zig-zag varlong of at most 10 bytes.
    fn varlong(&mut self) -> Result<i64, WalkError> {
        let raw = self.unsigned(10)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    fn unsigned(&mut self, max_bytes: u32) -> Result<u64, WalkError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = self.source.read_u8().map_err(|e| self.source_error(e))?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(self.malformed("varint overflows 64 bits".into()));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed(format!("varint longer than {max_bytes} bytes")))
    }

    /// A length-prefixed byte field (-1 means null where `nullable`), skipped; where its
    /// bytes are when present. The field must end within the record (`end`, in source
    /// positions).
    fn bytes_field(
        &mut self,
        what: &str,
        end: u64,
        nullable: bool,
    ) -> Result<Option<Span>, WalkError> {
        let len = self.varint()?;
        if len == -1 && nullable {
            return Ok(None);
        }
        if len < 0 {
            return Err(self.malformed(format!("invalid {what} length {len}")));
        }
        let len = len as u64;
        if self.source.consumed() + len > end {
            return Err(self.malformed(format!("{what} of {len} bytes runs past the record's end")));
        }
        let start = self.source.consumed();
        self.source.skip(len).map_err(|e| self.source_error(e))?;
        Ok(Some(Span { start, len }))
    }
}
