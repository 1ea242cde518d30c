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
    /// The transaction version (KIP-890) the client ended the last transaction with: 2 when
    /// EndTxn v5 bumped the epoch, which is how a retried end is told from the next one.
    #[serde(default)]
    pub transaction_version: i16,
    /// The producer id before the last end moved to a new one (epochs exhausted, transactions
    /// v2), so a retry of that end with the old id is answered (-1 otherwise).
    #[serde(default = "no_producer_id")]
    pub previous_producer_id: i64,
    /// In a Prepare state of transactions v2 with the epochs exhausted: the producer id the
    /// transaction completes with (-1 otherwise).
    #[serde(default = "no_producer_id")]
    pub next_producer_id: i64,
}

fn no_epoch() -> i16 {
    -1
}

fn no_producer_id() -> i64 {
    -1
}

/// What EndTxn does under transactions v2 (KIP-890 part 2), decided by [`TxnMetadata::end_decision_v2`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndV2 {
    /// End the open transaction: prepare with the bumped epoch, write its markers, complete.
    Finish,
    /// Abort with nothing open (the client's produce may never have added a partition): bump
    /// the epoch, write no marker.
    EmptyAbort,
    /// A retry of the end that already completed: answered with the current producer.
    Retried,
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
            transaction_version: 0,
            previous_producer_id: -1,
            next_producer_id: -1,
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

    /// EndTxn v5 (transactions v2, Kafka 4.x's `endTransaction`): every end bumps the epoch, so
    /// the client's epoch alone tells a retry (one below the current, or the last epoch of the
    /// previous producer id when the bump moved to a new one) from a delayed end of an older
    /// epoch (PRODUCER_FENCED) and from the next end.
    pub fn end_decision_v2(
        &self,
        producer: (i64, i16),
        commit: bool,
    ) -> Result<EndV2, ResponseError> {
        let (id, epoch) = producer;
        let v2 = self.transaction_version >= 2;
        let retry_on_bump =
            v2 && id == self.producer_id && i32::from(epoch) + 1 == i32::from(self.producer_epoch);
        let retry_on_overflow = v2
            && self.previous_producer_id == id
            && id != self.producer_id
            && epoch == i16::MAX - 1
            && self.producer_epoch == 0;
        if id != self.producer_id && !retry_on_overflow {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        let current = id == self.producer_id && epoch == self.producer_epoch;
        let completed_outcome = match self.state {
            TxnState::CompleteCommit => Some(true),
            TxnState::CompleteAbort => Some(false),
            _ => None,
        };
        let valid = match self.state {
            TxnState::Ongoing | TxnState::Empty => current,
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_bump || retry_on_overflow || current
            }
        };
        if !valid {
            return Err(ResponseError::ProducerFenced);
        }
        let retry = retry_on_bump || retry_on_overflow;
        match (self.state, completed_outcome) {
            (TxnState::Ongoing, _) => Ok(EndV2::Finish),
            (_, Some(outcome)) if retry => {
                if outcome == commit {
                    Ok(EndV2::Retried)
                } else {
                    Err(ResponseError::InvalidTxnState)
                }
            }
            (TxnState::PrepareCommit, _) if commit => Err(ResponseError::ConcurrentTransactions),
            (TxnState::PrepareAbort, _) if !commit => Err(ResponseError::ConcurrentTransactions),
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, _)
                if !commit =>
            {
                Ok(EndV2::EmptyAbort)
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

    fn completed_v2(state: TxnState, epoch: i16) -> TxnMetadata {
        let mut txn = TxnMetadata::new(7, 60_000, 0);
        txn.state = state;
        txn.producer_epoch = epoch;
        txn.transaction_version = 2;
        txn
    }

    #[test]
    fn a_v2_end_is_told_from_its_retry_and_from_a_delayed_older_end() {
        let mut ongoing = completed_v2(TxnState::Ongoing, 3);
        ongoing.transaction_version = 0;
        assert_eq!(ongoing.end_decision_v2((7, 3), true), Ok(EndV2::Finish));
        assert_eq!(
            ongoing.end_decision_v2((7, 2), true),
            Err(ResponseError::ProducerFenced)
        );
        let done = completed_v2(TxnState::CompleteCommit, 4);
        assert_eq!(done.end_decision_v2((7, 3), true), Ok(EndV2::Retried));
        assert_eq!(
            done.end_decision_v2((7, 3), false),
            Err(ResponseError::InvalidTxnState)
        );
        assert_eq!(
            done.end_decision_v2((7, 2), true),
            Err(ResponseError::ProducerFenced),
            "a delayed end of an older epoch"
        );
        assert_eq!(done.end_decision_v2((7, 4), false), Ok(EndV2::EmptyAbort));
        assert_eq!(
            done.end_decision_v2((7, 4), true),
            Err(ResponseError::InvalidTxnState)
        );
        assert_eq!(
            done.end_decision_v2((8, 4), true),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        let preparing = completed_v2(TxnState::PrepareCommit, 4);
        assert_eq!(
            preparing.end_decision_v2((7, 3), true),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(
            preparing.end_decision_v2((7, 4), true),
            Err(ResponseError::ProducerFenced)
        );
    }

    #[test]
    fn a_v2_end_retried_across_a_new_producer_id_is_answered() {
        let mut done = completed_v2(TxnState::CompleteAbort, 0);
        done.producer_id = 9;
        done.previous_producer_id = 7;
        assert_eq!(
            done.end_decision_v2((7, i16::MAX - 1), false),
            Ok(EndV2::Retried)
        );
        assert_eq!(
            done.end_decision_v2((7, i16::MAX - 2), false),
            Err(ResponseError::InvalidProducerIdMapping)
        );
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
