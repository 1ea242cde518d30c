//! The `__transaction_state` record schemas, encoded by hand because kafka-protocol does not
//! carry them: key `TransactionLogKey` (version 0: the transactional id) and value
//! `TransactionLogValue` (version 0, or the flexible version 1). A null value is a tombstone:
//! the id expired. The byte layout is Kafka's, so the topic stays readable by Kafka's tools.
//!
//! Kafka's value lacks some of what [`TxnMetadata`] holds. The groups and offsets of
//! AddOffsetsToTxn and TxnOffsetCommit live in Kafka's `__consumer_offsets` (as transactional
//! offset commits); here the transaction coordinator holds them until the transaction ends.
//! The epoch a timed-out producer may re-initialize with (KIP-360), which Kafka keeps only in
//! memory, and whether a prepared end's markers are already written, go with them. All of it
//! travels in one tagged field ([`TRIBUTARY_TAG`]) of version 1, which Kafka's readers skip as
//! an unknown tag; a value without any of it is written as version 0, byte for byte what
//! Kafka writes.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::metadata::{PendingOffset, TxnMetadata, TxnState};

/// Name of the internal topic holding the transaction coordinator's state.
pub const TRANSACTION_TOPIC: &str = "__transaction_state";

/// The tag of Tributary's own field in value version 1 (Kafka's tags start at 0; this one is
/// far from them).
pub const TRIBUTARY_TAG: u32 = 10_000;

const KEY_VERSION: i16 = 0;

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes end inside a field.
    #[error("record ends inside a field ({needed} more bytes needed)")]
    Truncated {
        /// Bytes missing.
        needed: usize,
    },
    /// A schema version this broker does not know.
    #[error("unknown {schema} version {version}")]
    UnknownVersion {
        /// Which schema.
        schema: &'static str,
        /// The version found.
        version: i16,
    },
    /// A transaction state id Kafka does not define.
    #[error("unknown transaction state {0}")]
    UnknownState(i8),
    /// A string that is not UTF-8.
    #[error("string field is not valid UTF-8")]
    InvalidUtf8,
    /// A negative length other than the null marker, or a null where none is allowed.
    #[error("invalid length {0}")]
    InvalidLength(i64),
}

/// Encodes the key of `transactional_id`.
pub fn txn_key(transactional_id: &str) -> Bytes {
    let mut w = Writer::new(false);
    w.i16(KEY_VERSION);
    w.string(transactional_id);
    w.finish()
}

/// Decodes a key into its transactional id.
pub fn decode_key(bytes: &[u8]) -> Result<String, RecordError> {
    let mut r = Reader::new(bytes, false);
    match r.i16()? {
        KEY_VERSION => r.string(),
        version => Err(RecordError::UnknownVersion {
            schema: "TransactionLogKey",
            version,
        }),
    }
}

/// The value version to write: 0 (Kafka's default) unless `txn` holds state only
/// Tributary's tagged field carries.
pub fn value_version(txn: &TxnMetadata) -> i16 {
    if extension_is_empty(txn) {
        0
    } else {
        1
    }
}

fn extension_is_empty(txn: &TxnMetadata) -> bool {
    txn.last_producer_epoch == -1
        && !txn.markers_written
        && txn.groups.is_empty()
        && txn.pending_offsets.is_empty()
}

/// Encodes `txn` as a TransactionLogValue of [`value_version`].
pub fn encode_value(txn: &TxnMetadata) -> Bytes {
    let version = value_version(txn);
    let mut w = Writer::new(version >= 1);
    w.i16(version);
    w.i64(txn.producer_id);
    w.i16(txn.producer_epoch);
    w.i32(txn.timeout_ms);
    w.i8(state_id(txn.state));
    if txn.state == TxnState::Empty {
        // Kafka writes no partition list for an Empty transaction.
        w.null_array();
    } else {
        let topics = by_topic(&txn.partitions);
        w.array_len(topics.len());
        for (topic, partitions) in topics {
            w.string(topic);
            w.array_len(partitions.len());
            for p in partitions {
                w.i32(p);
            }
            w.no_tagged_fields();
        }
    }
    w.i64(txn.updated_ms);
    w.i64(txn.started_ms);
    if w.1 {
        if extension_is_empty(txn) {
            w.no_tagged_fields();
        } else {
            let extension = encode_extension(txn);
            w.uvarint(1);
            w.uvarint(u64::from(TRIBUTARY_TAG));
            w.uvarint(extension.len() as u64);
            w.0.put_slice(&extension);
        }
    }
    w.finish()
}

/// Decodes a TransactionLogValue (version 0 or 1).
pub fn decode_value(bytes: &[u8]) -> Result<TxnMetadata, RecordError> {
    let mut r = Reader::new(bytes, false);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(RecordError::UnknownVersion {
            schema: "TransactionLogValue",
            version,
        });
    }
    r.flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = state_of(r.i8()?)?;
    let mut partitions = BTreeSet::new();
    if let Some(topics) = r.array_len()? {
        for _ in 0..topics {
            let topic = r.string()?;
            let count = r.array_len()?.unwrap_or(0);
            for _ in 0..count {
                partitions.insert((topic.clone(), r.i32()?));
            }
            r.skip_tagged_fields()?;
        }
    }
    if state == TxnState::Empty {
        // As Kafka reads it: an Empty transaction has no partitions.
        partitions.clear();
    }
    let updated_ms = r.i64()?;
    let started_ms = r.i64()?;
    let mut txn = TxnMetadata {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        groups: BTreeSet::new(),
        pending_offsets: Vec::new(),
        started_ms,
        updated_ms,
        last_producer_epoch: -1,
        markers_written: false,
    };
    if r.flexible {
        for (tag, data) in r.tagged_fields()? {
            if tag == u64::from(TRIBUTARY_TAG) {
                decode_extension(data, &mut txn)?;
            }
        }
    }
    Ok(txn)
}

/// Tributary's tagged field: the KIP-360 epoch, whether the markers are written, the groups
/// and the pending offsets, in the flexible encoding.
fn encode_extension(txn: &TxnMetadata) -> Bytes {
    let mut w = Writer::new(true);
    w.i16(txn.last_producer_epoch);
    w.i8(i8::from(txn.markers_written));
    w.array_len(txn.groups.len());
    for group in &txn.groups {
        w.string(group);
    }
    w.array_len(txn.pending_offsets.len());
    for o in &txn.pending_offsets {
        w.string(&o.group);
        w.string(&o.topic);
        w.i32(o.partition);
        w.i64(o.offset);
        w.i32(o.leader_epoch);
        w.nullable_string(o.metadata.as_deref());
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    w.finish()
}

fn decode_extension(data: &[u8], txn: &mut TxnMetadata) -> Result<(), RecordError> {
    let mut r = Reader::new(data, true);
    txn.last_producer_epoch = r.i16()?;
    txn.markers_written = r.i8()? != 0;
    for _ in 0..r.array_len()?.unwrap_or(0) {
        txn.groups.insert(r.string()?);
    }
    for _ in 0..r.array_len()?.unwrap_or(0) {
        txn.pending_offsets.push(PendingOffset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
            offset: r.i64()?,
            leader_epoch: r.i32()?,
            metadata: r.nullable_string()?,
        });
        r.skip_tagged_fields()?;
    }
    r.skip_tagged_fields()
}

/// Kafka's TransactionState ids.
fn state_id(state: TxnState) -> i8 {
    match state {
        TxnState::Empty => 0,
        TxnState::Ongoing => 1,
        TxnState::PrepareCommit => 2,
        TxnState::PrepareAbort => 3,
        TxnState::CompleteCommit => 4,
        TxnState::CompleteAbort => 5,
    }
}

fn state_of(id: i8) -> Result<TxnState, RecordError> {
    Ok(match id {
        0 => TxnState::Empty,
        1 => TxnState::Ongoing,
        2 => TxnState::PrepareCommit,
        // PrepareEpochFence (7) ends as an abort with the bumped epoch.
        3 | 7 => TxnState::PrepareAbort,
        4 => TxnState::CompleteCommit,
        5 => TxnState::CompleteAbort,
        other => return Err(RecordError::UnknownState(other)),
    })
}

/// The partitions grouped by topic, in order.
fn by_topic(partitions: &BTreeSet<(String, i32)>) -> Vec<(&str, Vec<i32>)> {
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in partitions {
        match out.last_mut() {
            Some((last, list)) if *last == topic.as_str() => list.push(*partition),
            _ => out.push((topic, vec![*partition])),
        }
    }
    out
}

/// Big-endian fields, with Kafka's compact lengths and tagged fields in flexible versions.
struct Writer(BytesMut, bool);

impl Writer {
    fn new(flexible: bool) -> Writer {
        Writer(BytesMut::new(), flexible)
    }
    fn i8(&mut self, v: i8) {
        self.0.put_i8(v);
    }
    fn i16(&mut self, v: i16) {
        self.0.put_i16(v);
    }
    fn i32(&mut self, v: i32) {
        self.0.put_i32(v);
    }
    fn i64(&mut self, v: i64) {
        self.0.put_i64(v);
    }
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.0.put_u8(v as u8);
    }
    /// A length: compact (n + 1, 0 for null) when flexible, `wide` picks i32 over i16
    /// otherwise.
    fn length(&mut self, len: Option<usize>, wide: bool) {
        match (self.1, len) {
            (true, Some(n)) => self.uvarint(n as u64 + 1),
            (true, None) => self.uvarint(0),
            (false, Some(n)) if wide => self.0.put_i32(i32::try_from(n).unwrap_or(i32::MAX)),
            (false, Some(n)) => self.0.put_i16(i16::try_from(n).unwrap_or(i16::MAX)),
            (false, None) if wide => self.0.put_i32(-1),
            (false, None) => self.0.put_i16(-1),
        }
    }
    fn string(&mut self, s: &str) {
        // Kafka strings are at most i16::MAX bytes; longer ones are cut at a char boundary.
        let mut end = s.len().min(i16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.length(Some(end), false);
        self.0.put_slice(&s.as_bytes()[..end]);
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.length(None, false),
        }
    }
    fn array_len(&mut self, n: usize) {
        self.length(Some(n), true);
    }
    fn null_array(&mut self) {
        self.length(None, true);
    }
    fn no_tagged_fields(&mut self) {
        if self.1 {
            self.uvarint(0);
        }
    }
    fn finish(self) -> Bytes {
        self.0.freeze()
    }
}

/// The reading side of [`Writer`].
struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Reader<'a> {
        Reader { buf, flexible }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Truncated {
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let [b] = self.array::<1>()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::InvalidLength(-1))
    }

    /// A length prefix; `None` is the null marker.
    fn length(&mut self, wide: bool) -> Result<Option<usize>, RecordError> {
        let len: i64 = if self.flexible {
            i64::try_from(self.uvarint()?).unwrap_or(i64::MAX) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match len {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| RecordError::InvalidLength(n)),
        }
    }

    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        match self.length(false)? {
            None => Ok(None),
            Some(n) => String::from_utf8(self.take(n)?.to_vec())
                .map(Some)
                .map_err(|_| RecordError::InvalidUtf8),
        }
    }

    fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?
            .ok_or(RecordError::InvalidLength(-1))
    }

    fn array_len(&mut self) -> Result<Option<usize>, RecordError> {
        self.length(true)
    }

    /// A tagged-field section: (tag, data) pairs (none before flexible versions).
    fn tagged_fields(&mut self) -> Result<Vec<(u64, &'a [u8])>, RecordError> {
        if !self.flexible {
            return Ok(Vec::new());
        }
        let count = self.uvarint()?;
        let mut out = Vec::new();
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size =
                usize::try_from(self.uvarint()?).map_err(|_| RecordError::InvalidLength(-1))?;
            out.push((tag, self.take(size)?));
        }
        Ok(out)
    }

    fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        self.tagged_fields().map(drop)
    }
}

#[cfg(test)]
mod tests;
