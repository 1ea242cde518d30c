//! The `__transaction_state` record schemas, encoded by hand (with the coordinators' shared
//! [`codec`](crate::codec) helpers) because kafka-protocol does not carry them:
//! key `TransactionLogKey` (version 0: the transactional id) and value `TransactionLogValue`
//! (version 0, or the flexible version 1). A null value is a tombstone: the id expired. The
//! byte layout is Kafka's, so the topic stays readable by Kafka's tools.
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

use bytes::Bytes;

use super::metadata::{PendingOffset, TxnMetadata, TxnState};
pub use crate::codec::RecordError;
use crate::codec::{Reader, Writer};

/// Name of the internal topic holding the transaction coordinator's state.
pub const TRANSACTION_TOPIC: &str = "__transaction_state";

/// The tag of Tributary's own field in value version 1 (Kafka's tags start at 0; this one is
/// far from them).
pub const TRIBUTARY_TAG: u32 = 10_000;

const KEY_VERSION: i16 = 0;

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

/// Kafka's own tagged fields of value version 1 (transactions v2): the previous and next
/// producer ids and the client's transaction version.
const PREVIOUS_PRODUCER_ID_TAG: u32 = 0;
const NEXT_PRODUCER_ID_TAG: u32 = 1;
const CLIENT_TRANSACTION_VERSION_TAG: u32 = 2;

/// The value version to write: 0 (Kafka's default) unless `txn` holds state only a tagged
/// field carries (Kafka's transactions v2 fields or Tributary's).
pub fn value_version(txn: &TxnMetadata) -> i16 {
    if extension_is_empty(txn) && kafka_tags(txn).is_empty() {
        0
    } else {
        1
    }
}

/// Kafka's tagged fields of `txn` that differ from their defaults, in tag order.
fn kafka_tags(txn: &TxnMetadata) -> Vec<(u32, Vec<u8>)> {
    let mut tags = Vec::new();
    if txn.previous_producer_id != -1 {
        tags.push((
            PREVIOUS_PRODUCER_ID_TAG,
            txn.previous_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if txn.next_producer_id != -1 {
        tags.push((
            NEXT_PRODUCER_ID_TAG,
            txn.next_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if txn.transaction_version != 0 {
        tags.push((
            CLIENT_TRANSACTION_VERSION_TAG,
            txn.transaction_version.to_be_bytes().to_vec(),
        ));
    }
    tags
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
    if version >= 1 {
        let kafka = kafka_tags(txn);
        let extension = encode_extension(txn);
        let mut fields: Vec<(u32, &[u8])> = kafka.iter().map(|(t, d)| (*t, d.as_slice())).collect();
        if !extension_is_empty(txn) {
            fields.push((TRIBUTARY_TAG, &extension));
        }
        w.tagged_fields(&fields);
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
    r.set_flexible(version >= 1);
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
        transaction_version: 0,
        previous_producer_id: -1,
        next_producer_id: -1,
    };
    if r.flexible() {
        for (tag, data) in r.tagged_fields()? {
            match u32::try_from(tag) {
                Ok(TRIBUTARY_TAG) => decode_extension(data, &mut txn)?,
                Ok(PREVIOUS_PRODUCER_ID_TAG) => {
                    txn.previous_producer_id = Reader::new(data, true).i64()?
                }
                Ok(NEXT_PRODUCER_ID_TAG) => txn.next_producer_id = Reader::new(data, true).i64()?,
                Ok(CLIENT_TRANSACTION_VERSION_TAG) => {
                    txn.transaction_version = Reader::new(data, true).i16()?;
                }
                _ => {}
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

#[cfg(test)]
mod tests;
