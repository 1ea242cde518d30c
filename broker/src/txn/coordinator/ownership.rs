//! Which `__transaction_state` partitions this coordinator serves: those whose replica on
//! this broker leads, as Kafka places transaction coordinators. A partition is loaded (its
//! records replayed: the last value of an id wins, a tombstone removes it) when this broker
//! becomes its leader, answered COORDINATOR_LOAD_IN_PROGRESS meanwhile, and unloaded when the
//! leadership moves, after which its ids answer NOT_COORDINATOR and clients find the new
//! coordinator. Leadership is read from the log on every request, so an answer never trusts
//! a stale view. Transactions found prepared are completed by the periodic expiry, as after a
//! restart.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::{producer_view, TransactionCoordinator};
use crate::group::log::{Chunk, CoordinatorLog, LogError};
use crate::group::partitioner::partition_for;
use crate::txn::records::{decode_key, decode_value};
use crate::txn::store::TxnMap;

/// A served partition's state, at the leader epoch it is served for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ownership {
    /// Its records are being replayed.
    Loading { epoch: i32 },
    /// Its ids are in memory and served.
    Loaded { epoch: i32 },
}

/// What to do with a request for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Serve it at this epoch.
    Serve(i32),
    /// Answer COORDINATOR_LOAD_IN_PROGRESS: loading at the current epoch.
    Wait,
    /// Load at this epoch (dropping what an older epoch loaded) before serving.
    Load(i32),
    /// Answer NOT_COORDINATOR, unloading first when something is still loaded.
    Refuse { unload: bool },
}

/// The decision for a partition this broker leads at `leads` (`None`: does not lead) and
/// serves as `owned`.
pub(super) fn access(leads: Option<i32>, owned: Option<Ownership>) -> Access {
    match (leads, owned) {
        (Some(epoch), Some(Ownership::Loaded { epoch: e })) if e == epoch => Access::Serve(epoch),
        (Some(epoch), Some(Ownership::Loading { epoch: e })) if e == epoch => Access::Wait,
        (Some(epoch), _) => Access::Load(epoch),
        (None, owned) => Access::Refuse {
            unload: owned.is_some(),
        },
    }
}

/// The ids replayed from a partition.
#[derive(Debug, Default)]
pub(super) struct Replay {
    txns: TxnMap,
    skipped: usize,
}

impl Replay {
    /// The ids replayed.
    #[cfg(test)]
    pub(super) fn into_txns(self) -> TxnMap {
        self.txns
    }

    /// Applies the records of `chunk` in order.
    fn apply(&mut self, chunk: &Chunk) {
        for record in &chunk.records {
            let Some(id) = record.key.as_deref().and_then(|k| decode_key(k).ok()) else {
                self.skipped += 1;
                continue;
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
    }
}

/// Reads `partition` from its start and replays every record.
pub(super) fn replay_partition(
    log: &dyn CoordinatorLog,
    partition: i32,
) -> Result<Replay, LogError> {
    let mut replay = Replay::default();
    let mut offset = 0;
    loop {
        let chunk = log.read(partition, offset)?;
        replay.apply(&chunk);
        if chunk.at_end || chunk.next_offset <= offset {
            break;
        }
        offset = chunk.next_offset;
    }
    Ok(replay)
}

impl TransactionCoordinator {
    /// Whether this coordinator serves `partition` now: the epoch it serves it at, or the
    /// error Kafka answers. Starts loading a partition this broker has just come to lead, and
    /// unloads one it no longer leads.
    pub(super) fn serve(self: &Arc<Self>, partition: i32) -> Result<i32, ResponseError> {
        if self.migrating.load(Ordering::SeqCst) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let leads = self.log.leader_epoch(partition);
        let owned = self.owned.read().get(&partition).copied();
        match access(leads, owned) {
            Access::Serve(epoch) => Ok(epoch),
            Access::Wait => Err(ResponseError::CoordinatorLoadInProgress),
            Access::Load(epoch) => {
                if self.load_if_small(partition, epoch) {
                    return Ok(epoch);
                }
                self.start_loading(partition, epoch);
                Err(ResponseError::CoordinatorLoadInProgress)
            }
            Access::Refuse { unload } => {
                if unload {
                    self.unload(partition);
                }
                Err(ResponseError::NotCoordinator)
            }
        }
    }

    /// Brings every partition in line with the current leaderships: loads the ones led here,
    /// unloads the others. Run at start and whenever the cluster metadata changes.
    pub fn sync_leadership(self: &Arc<Self>) {
        if self.migrating.load(Ordering::SeqCst) {
            return;
        }
        let Some(partitions) = self.log.partitions() else {
            return;
        };
        self.partitions.store(partitions, Ordering::SeqCst);
        for partition in 0..partitions {
            // Errors are the expected answers for partitions not served; ignore them here.
            let _ = self.serve(partition);
        }
        let stale: Vec<i32> = self
            .owned
            .read()
            .keys()
            .copied()
            .filter(|&p| p >= partitions)
            .collect();
        for partition in stale {
            self.unload(partition);
        }
    }

    /// Whether any partition led here is still loading (ListTransactions answers
    /// COORDINATOR_LOAD_IN_PROGRESS then, as Kafka does).
    pub fn is_loading(&self) -> bool {
        self.migrating.load(Ordering::SeqCst)
            || self
                .owned
                .read()
                .values()
                .any(|o| matches!(o, Ownership::Loading { .. }))
    }

    /// Loads `partition` at once when all of it comes back in one read (a new or small
    /// partition), so the first request after a leadership change or a fresh start is served
    /// rather than told to retry; true when loaded.
    fn load_if_small(self: &Arc<Self>, partition: i32, epoch: i32) -> bool {
        let first = match self.log.read(partition, 0) {
            Ok(chunk) if chunk.at_end => chunk,
            _ => return false,
        };
        let mut replay = Replay::default();
        replay.apply(&first);
        self.install(partition, epoch, replay, |_| true)
    }

    /// Starts replaying `partition` for leader epoch `epoch` in the background.
    fn start_loading(self: &Arc<Self>, partition: i32, epoch: i32) {
        {
            let mut owned = self.owned.write();
            if owned.get(&partition) == Some(&Ownership::Loading { epoch }) {
                return;
            }
            self.drop_partition(&mut owned, partition);
            owned.insert(partition, Ownership::Loading { epoch });
        }
        let coordinator = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let log = coordinator.log.clone();
            let replayed =
                tokio::task::spawn_blocking(move || replay_partition(log.as_ref(), partition))
                    .await;
            let loading = Ownership::Loading { epoch };
            match replayed {
                Ok(Ok(replay)) => {
                    let ids = replay.txns.len();
                    if coordinator.install(partition, epoch, replay, |o| o == Some(loading)) {
                        tracing::info!(partition, epoch, ids, elapsed = ?started.elapsed(), "loaded transactional ids");
                    }
                }
                Ok(Err(error)) => {
                    tracing::error!(partition, %error, "cannot load transaction partition; retrying at the next request");
                    coordinator.forget_loading(partition, loading);
                }
                Err(error) => {
                    tracing::error!(partition, %error, "transaction loading task failed");
                    coordinator.forget_loading(partition, loading);
                }
            }
        });
    }

    fn forget_loading(&self, partition: i32, loading: Ownership) {
        let mut owned = self.owned.write();
        if owned.get(&partition) == Some(&loading) {
            owned.remove(&partition);
        }
    }

    /// Makes the replayed ids of `partition` current and serves it at `epoch`, when `wanted`
    /// accepts the partition's ownership then; true when it is loaded at `epoch` afterwards.
    fn install(
        &self,
        partition: i32,
        epoch: i32,
        replay: Replay,
        wanted: impl Fn(Option<Ownership>) -> bool,
    ) -> bool {
        let mut owned = self.owned.write();
        let current = owned.get(&partition).copied();
        if current == Some(Ownership::Loaded { epoch }) {
            return true;
        }
        if !wanted(current) {
            return false;
        }
        self.drop_partition(&mut owned, partition);
        if replay.skipped > 0 {
            tracing::warn!(
                partition,
                skipped = replay.skipped,
                "transaction records not understood while loading"
            );
        }
        {
            let mut state = self.state.lock();
            let mut producers = self.producers.write();
            for (id, txn) in replay.txns {
                producers.insert(txn.producer_id, producer_view(&txn));
                state.insert(id, txn);
            }
        }
        owned.insert(partition, Ownership::Loaded { epoch });
        true
    }

    /// Stops serving `partition`: its ids leave memory; requests on them answer
    /// NOT_COORDINATOR from their next check or write on.
    pub(super) fn unload(&self, partition: i32) {
        let mut owned = self.owned.write();
        if owned.contains_key(&partition) {
            self.drop_partition(&mut owned, partition);
        }
    }

    /// Forgets `partition`'s ownership and its ids (the caller holds `owned`).
    fn drop_partition(&self, owned: &mut HashMap<i32, Ownership>, partition: i32) {
        owned.remove(&partition);
        let count = self.partitions.load(Ordering::SeqCst);
        let mut state = self.state.lock();
        let ids: Vec<String> = state
            .keys()
            .filter(|id| partition_for(id, count) == partition)
            .cloned()
            .collect();
        if ids.is_empty() {
            return;
        }
        let mut producers = self.producers.write();
        for id in &ids {
            if let Some(txn) = state.remove(id) {
                producers.remove(&txn.producer_id);
            }
        }
        tracing::info!(
            partition,
            ids = ids.len(),
            "unloaded transactional ids: leadership moved"
        );
    }
}

#[cfg(test)]
mod tests;
