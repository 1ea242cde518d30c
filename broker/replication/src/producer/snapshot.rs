//! Producer state as of an offset, in a form that outlives the log it came from (Kafka's
//! producer snapshot). Tiered storage uploads one with each remote segment (KIP-405), so a
//! replica whose log restarts past the remote part still knows the idempotent and
//! transactional producers whose batches it never saw: a retry of their last batches is a
//! duplicate, not a second append, and their open transactions still bound the stable offset.
//!
//! JSON, like the remote manifest beside it: versioned, readable when diagnosing a bucket,
//! and small (five batches per producer).

use serde::{Deserialize, Serialize};

use super::state::{BatchIdentity, ProducerStateTable};
use super::txn_index::TxnIndex;

/// The snapshot format this broker writes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One of a producer's remembered batches (the deduplication window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotBatch {
    /// Sequence of its first record.
    pub first_sequence: i32,
    /// Sequence of its last record.
    pub last_sequence: i32,
    /// Offset it was appended at: what a retry is answered with.
    pub base_offset: i64,
}

/// One producer's idempotence state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Its current epoch: older ones are fenced.
    pub epoch: i16,
    /// Max timestamp of its last batch (for `producer.id.expiration.ms`).
    pub last_timestamp: i64,
    /// Its last batches, oldest first.
    pub batches: Vec<SnapshotBatch>,
}

/// A transaction open at the snapshot's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OngoingTxn {
    /// Its producer.
    pub producer_id: i64,
    /// Offset of its first record: the last stable offset cannot pass it, and an abort
    /// reports the range from it.
    pub first_offset: i64,
}

/// The producer state of a partition covering every batch below `end_offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Offset after the last batch the state includes.
    pub end_offset: i64,
    /// Producers by id.
    pub producers: Vec<SnapshotProducer>,
    /// Open transactions by producer id.
    #[serde(default)]
    pub ongoing: Vec<OngoingTxn>,
}

impl ProducerSnapshot {
    /// The state of a log that has no batch below `end_offset` (or whose earlier batches
    /// carry no producer state anyone kept).
    pub fn empty(end_offset: i64) -> ProducerSnapshot {
        ProducerSnapshot {
            version: SNAPSHOT_VERSION,
            end_offset,
            producers: Vec::new(),
            ongoing: Vec::new(),
        }
    }

    /// Captures `producers` and `txns` as covering every batch below `end_offset`.
    pub fn capture(
        producers: &ProducerStateTable,
        txns: &TxnIndex,
        end_offset: i64,
    ) -> ProducerSnapshot {
        let mut ongoing: Vec<OngoingTxn> = txns
            .ongoing()
            .map(|(producer_id, first_offset)| OngoingTxn {
                producer_id,
                first_offset,
            })
            .collect();
        ongoing.sort_unstable_by_key(|t| t.producer_id);
        ProducerSnapshot {
            version: SNAPSHOT_VERSION,
            end_offset,
            producers: producers.entries(),
            ongoing,
        }
    }

    /// The producer state and open transactions it describes.
    pub fn restore(&self) -> (ProducerStateTable, TxnIndex) {
        let producers = ProducerStateTable::from_entries(&self.producers);
        let mut txns = TxnIndex::default();
        for txn in &self.ongoing {
            txns.on_data(txn.producer_id, txn.first_offset);
        }
        (producers, txns)
    }

    /// Decodes a snapshot object.
    pub fn from_json(bytes: &[u8]) -> Result<ProducerSnapshot, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Encodes it for the bucket.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// What one stored batch changes in producer state.
#[derive(Debug, Clone, Copy)]
pub struct AppliedBatch {
    /// Its idempotence fields.
    pub identity: BatchIdentity,
    /// Offset of its first record.
    pub base_offset: i64,
    /// Part of a transaction (data or marker).
    pub transactional: bool,
    /// A control batch: `Some(commit)` when it is a transaction marker that could be read.
    pub control: Option<Option<bool>>,
}

/// Applies one stored batch, in log order, to producer and transaction state: the batch is
/// remembered for deduplication; transactional data opens its producer's transaction; a
/// marker closes it and fences the producer's older epochs.
pub fn apply(producers: &mut ProducerStateTable, txns: &mut TxnIndex, batch: &AppliedBatch) {
    let id = batch.identity.producer_id;
    producers.record(&batch.identity, batch.base_offset);
    match batch.control {
        Some(Some(commit)) => {
            producers.fence(id, batch.identity.producer_epoch);
            txns.on_marker(id, batch.base_offset, commit);
        }
        Some(None) => {}
        None if batch.transactional => txns.on_data(id, batch.base_offset),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::SequenceCheck;

    fn data(pid: i64, seq: i32, base_offset: i64, transactional: bool) -> AppliedBatch {
        AppliedBatch {
            identity: BatchIdentity {
                producer_id: pid,
                producer_epoch: 2,
                base_sequence: seq,
                last_offset_delta: 4,
                max_timestamp: 1_000 + base_offset,
            },
            base_offset,
            transactional,
            control: None,
        }
    }

    fn marker(pid: i64, epoch: i16, base_offset: i64, commit: bool) -> AppliedBatch {
        AppliedBatch {
            identity: BatchIdentity {
                producer_id: pid,
                producer_epoch: epoch,
                base_sequence: -1,
                last_offset_delta: 0,
                max_timestamp: 0,
            },
            base_offset,
            transactional: true,
            control: Some(Some(commit)),
        }
    }

    #[test]
    fn a_restored_snapshot_answers_retries_as_duplicates_and_keeps_open_transactions() {
        let (mut producers, mut txns) = (ProducerStateTable::default(), TxnIndex::default());
        for batch in [
            data(7, 0, 0, false),
            data(7, 5, 5, false),
            data(9, 0, 10, true),
            data(8, 0, 15, true),
            marker(8, 3, 20, false),
        ] {
            apply(&mut producers, &mut txns, &batch);
        }
        let snapshot = ProducerSnapshot::capture(&producers, &txns, 21);
        let json = snapshot.to_json().expect("encode");
        let decoded = ProducerSnapshot::from_json(&json).expect("decode");
        assert_eq!(decoded, snapshot);
        let (restored, restored_txns) = decoded.restore();
        assert_eq!(
            restored.check(&data(7, 5, 0, false).identity, 0),
            Ok(SequenceCheck::Duplicate { base_offset: 5 })
        );
        assert_eq!(
            restored.check(&data(7, 10, 0, false).identity, 0),
            Ok(SequenceCheck::Append)
        );
        assert!(
            restored.check(&data(7, 20, 0, false).identity, 0).is_err(),
            "a gap after the restored sequences"
        );
        assert_eq!(restored_txns.open_since(9), Some(10));
        assert_eq!(restored_txns.open_since(8), None, "aborted before the end");
        assert_eq!(restored.epoch(8), Some(3), "the marker's epoch fences");
        assert_eq!(restored.summaries(), producers.summaries());
    }

    #[test]
    fn applying_a_batch_already_in_the_snapshot_again_changes_nothing() {
        let (mut producers, mut txns) = (ProducerStateTable::default(), TxnIndex::default());
        for seq in 0..5 {
            apply(
                &mut producers,
                &mut txns,
                &data(7, seq * 5, i64::from(seq) * 5, false),
            );
        }
        let before = ProducerSnapshot::capture(&producers, &txns, 25);
        // A follower restarting inside the snapshot's last segment fetches its tail again.
        apply(&mut producers, &mut txns, &data(7, 20, 20, false));
        assert_eq!(ProducerSnapshot::capture(&producers, &txns, 25), before);
        assert_eq!(
            producers.check(&data(7, 0, 0, false).identity, 0),
            Ok(SequenceCheck::Duplicate { base_offset: 0 }),
            "the whole window is still remembered"
        );
    }

    #[test]
    fn a_snapshot_without_open_transactions_decodes() {
        let old = br#"{"version":1,"end_offset":4,"producers":[]}"#;
        assert_eq!(
            ProducerSnapshot::from_json(old).expect("decode"),
            ProducerSnapshot::empty(4)
        );
        assert!(ProducerSnapshot::from_json(b"[").is_err());
    }
}
