//! What the transaction coordinator knows of one transactional id, and the pure checks every
//! transactional request makes against it (Kafka's TransactionMetadata and the validation
//! in TransactionCoordinator).

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

/// States of a transaction (Kafka's TransactionState, without the ones only replication
/// needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// No transaction since the producer id was handed out.
    Empty,
    /// Partitions or offsets were added; markers are owed at the end.
    Ongoing,
    /// EndTxn(commit) accepted; markers being written.
    PrepareCommit,
    /// EndTxn(abort) or a timeout accepted; markers being written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
}

impl TxnState {
    /// Kafka's name of the state, as DescribeTransactions and ListTransactions report it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }
}

/// Offsets a transaction commits for a consumer group when it commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOffset {
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch (-1 unknown).
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
}

/// One transactional id's producer and transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMetadata {
    /// Producer id bound to the transactional id.
    pub producer_id: i64,
    /// Current epoch; older ones are fenced.
    pub producer_epoch: i16,
    /// transaction.timeout.ms of the producer.
    pub timeout_ms: i32,
    /// Where the transaction is.
    pub state: TxnState,
    /// Partitions written in the current transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups whose offsets the current transaction commits.
    pub groups: BTreeSet<String>,
    /// Offsets sent with TxnOffsetCommit that earlier releases held here until the
    /// transaction committed; read back from their states and committed at the end. New
    /// offsets go to `__consumer_offsets` in the transaction instead.
    pub pending_offsets: Vec<PendingOffset>,
    /// Wall time the current transaction started (ms).
    pub started_ms: i64,
    /// Wall time of the last change (ms).
    pub updated_ms: i64,
    /// The epoch before the coordinator itself bumped it to abort a timed-out transaction
    /// (-1 otherwise): that producer may still re-initialize with it (KIP-360).
    #[serde(default = "no_epoch")]
    pub last_producer_epoch: i16,
    /// In a Prepare state: the markers are written and durable, only the offsets (and the
    /// completion) remain, so a retried end does not write them again.
    #[serde(default)]
    pub markers_written: bool,
}

fn no_epoch() -> i16 {
    -1
}

impl TxnMetadata {
    /// A fresh producer with no transaction yet.
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            producer_epoch: 0,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            pending_offsets: Vec::new(),
            started_ms: -1,
            updated_ms: now_ms,
            last_producer_epoch: -1,
            markers_written: false,
        }
    }

    /// Checks that a request comes from the current producer instance.
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), ResponseError> {
        if producer_id != self.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < self.producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if epoch > self.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        Ok(())
    }

    /// Opens the transaction if none is open: AddPartitionsToTxn and AddOffsetsToTxn may
    /// start one from any completed state.
    pub fn begin(&mut self, now_ms: i64) -> Result<(), ResponseError> {
        match self.state {
            TxnState::Ongoing => Ok(()),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                self.state = TxnState::Ongoing;
                self.started_ms = now_ms;
                self.partitions.clear();
                self.groups.clear();
                self.pending_offsets.clear();
                Ok(())
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Err(ResponseError::ConcurrentTransactions)
            }
        }
    }

    /// What EndTxn does in the current state: `Ok(true)` when markers must be written,
    /// `Ok(false)` for a retry of an end that already completed.
    pub fn end_decision(&self, commit: bool) -> Result<bool, ResponseError> {
        match (self.state, commit) {
            (TxnState::Ongoing, _) => Ok(true),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(false),
            // The same end still being completed: retry later.
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Whether the transaction has run past its timeout.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing
            && now_ms.saturating_sub(self.started_ms) > i64::from(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_current_instance_passes_the_producer_check() {
        let mut txn = TxnMetadata::new(7, 60_000, 0);
        txn.producer_epoch = 3;
        assert_eq!(txn.check_producer(7, 3), Ok(()));
        assert_eq!(txn.check_producer(7, 2), Err(ResponseError::ProducerFenced));
        assert_eq!(
            txn.check_producer(7, 4),
            Err(ResponseError::InvalidProducerEpoch)
        );
        assert_eq!(
            txn.check_producer(8, 3),
            Err(ResponseError::InvalidProducerIdMapping)
        );
    }

    #[test]
    fn end_txn_completes_once_and_retries_are_answered() {
        let mut txn = TxnMetadata::new(7, 60_000, 0);
        assert_eq!(txn.end_decision(true), Err(ResponseError::InvalidTxnState));
        txn.begin(10).unwrap();
        txn.partitions.insert(("t".into(), 0));
        assert_eq!(txn.end_decision(true), Ok(true));
        txn.state = TxnState::CompleteCommit;
        assert_eq!(txn.end_decision(true), Ok(false));
        assert_eq!(txn.end_decision(false), Err(ResponseError::InvalidTxnState));
        txn.state = TxnState::PrepareCommit;
        assert_eq!(
            txn.end_decision(true),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(txn.end_decision(false), Err(ResponseError::InvalidTxnState));
        txn.state = TxnState::CompleteCommit;
        txn.begin(20).unwrap();
        assert!(txn.partitions.is_empty() && txn.started_ms == 20);
    }

    #[test]
    fn transactions_expire_after_their_timeout_only_while_open() {
        let mut txn = TxnMetadata::new(7, 1_000, 0);
        assert!(!txn.is_expired(10_000));
        txn.begin(100).unwrap();
        assert!(!txn.is_expired(1_100));
        assert!(txn.is_expired(1_101));
    }
}
