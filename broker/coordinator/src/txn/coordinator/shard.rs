//! The transaction coordinator as a shard of the coordinator [`Runtime`]: replaying a
//! `__transaction_state` partition keeps the last value of each id (a tombstone removes it);
//! loading installs those ids with their producers' view, unloading drops both, after which
//! the ids answer NOT_COORDINATOR from their next check or write on. Loading sets each id's
//! deadline on the timer: transactions found prepared (cut off by a restart or a leadership
//! move) are completed at once, open ones time out as they would have. When a partition is
//! loaded or unloaded is the runtime's decision.

use super::{producer_view, TransactionCoordinator};
use crate::log::LogRecord;
use crate::partitioner::partition_for;
use crate::txn::records::{decode_key, decode_value};
use crate::txn::store::TxnMap;
use crate::{Runtime, Shard};

/// The ids replayed from a partition.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    txns: TxnMap,
    skipped: usize,
}

impl Replay {
    /// The ids replayed.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn into_txns(self) -> TxnMap {
        self.txns
    }
}

impl crate::Replay for Replay {
    fn apply(&mut self, record: &LogRecord) {
        let Some(id) = record.key.as_deref().and_then(|k| decode_key(k).ok()) else {
            self.skipped += 1;
            return;
        };
        match record.value.as_deref().map(decode_value) {
            None => {
                self.txns.remove(&id);
            }
            Some(Ok(txn)) => {
                self.txns.insert(id, txn);
            }
            Some(Err(error)) => {
                tracing::warn!(transactional_id = %id, %error, "skipping a transaction record");
                self.skipped += 1;
            }
        }
    }

    fn skipped(&self) -> usize {
        self.skipped
    }
}

impl Shard for TransactionCoordinator {
    type Replay = Replay;
    const NAME: &'static str = "transaction";

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn install(&self, _partition: i32, replay: Replay) -> usize {
        let count = replay.txns.len();
        let now = self.now();
        let mut state = self.state.lock();
        let mut producers = self.producers.write();
        for (id, txn) in replay.txns {
            producers.insert(txn.producer_id, producer_view(&txn));
            self.schedule(&id, &txn, now);
            state.insert(id, txn);
        }
        count
    }

    fn unload(&self, partition: i32) -> usize {
        let count = self.runtime.partition_count();
        let mut state = self.state.lock();
        let ids: Vec<String> = state
            .keys()
            .filter(|id| partition_for(id, count) == partition)
            .cloned()
            .collect();
        if ids.is_empty() {
            return 0;
        }
        let mut producers = self.producers.write();
        for id in &ids {
            if let Some(txn) = state.remove(id) {
                producers.remove(&txn.producer_id);
            }
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests;
