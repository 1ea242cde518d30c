//! Which `__consumer_offsets` partitions this coordinator serves: those whose replica on this
//! broker leads, as Kafka places group coordinators. A partition is loaded (its records
//! replayed) when this broker becomes its leader, answered COORDINATOR_LOAD_IN_PROGRESS
//! meanwhile, and unloaded when the leadership moves, after which its groups answer
//! NOT_COORDINATOR and clients find the new coordinator. Leadership is read from the log on
//! every request, so an answer never trusts a stale view.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::loading::replay_partition;
use super::{GroupCoordinator, Slot};
use crate::group::partitioner::partition_for;

/// A served partition's state, at the leader epoch it is served for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ownership {
    /// Its records are being replayed.
    Loading { epoch: i32 },
    /// Its groups are in memory and served.
    Loaded { epoch: i32 },
}

impl GroupCoordinator {
    /// Whether this coordinator serves `partition` now: Ok when loaded, an error Kafka
    /// answers otherwise. Starts loading a partition this broker has just come to lead, and
    /// unloads one it no longer leads.
    pub(super) fn serve(self: &Arc<Self>, partition: i32) -> Result<(), ResponseError> {
        let leads = self.log.leader_epoch(partition);
        let owned = self.owned.read().get(&partition).copied();
        match (leads, owned) {
            (Some(epoch), Some(Ownership::Loaded { epoch: e })) if e == epoch => Ok(()),
            (Some(epoch), Some(Ownership::Loading { epoch: e })) if e == epoch => {
                Err(ResponseError::CoordinatorLoadInProgress)
            }
            (Some(epoch), _) => {
                if self.load_if_small(partition, epoch) {
                    return Ok(());
                }
                self.start_loading(partition, epoch);
                Err(ResponseError::CoordinatorLoadInProgress)
            }
            (None, owned) => {
                if owned.is_some() {
                    self.unload(partition);
                }
                Err(ResponseError::NotCoordinator)
            }
        }
    }

    /// Brings every partition in line with the current leaderships: loads the ones led here,
    /// unloads the others. Run at start and whenever the cluster metadata changes.
    pub fn sync_leadership(self: &Arc<Self>) {
        let Some(partitions) = self.log.partitions() else {
            return;
        };
        self.set_partitions(partitions);
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

    /// Loads `partition` at once when all of it comes back in one read (a new or small
    /// partition), so the first request after a leadership change or a fresh start is served
    /// rather than told to retry; true when loaded.
    fn load_if_small(self: &Arc<Self>, partition: i32, epoch: i32) -> bool {
        let first = match self.log.read(partition, 0) {
            Ok(chunk) if chunk.at_end => chunk,
            _ => return false,
        };
        let mut replay = crate::group::load::Replay::default();
        for record in &first.records {
            replay.apply(record);
        }
        let mut owned = self.owned.write();
        if owned.get(&partition) == Some(&Ownership::Loaded { epoch }) {
            return true;
        }
        if matches!(owned.get(&partition), Some(Ownership::Loaded { .. })) {
            drop(owned);
            self.unload(partition);
            owned = self.owned.write();
        }
        owned.insert(partition, Ownership::Loaded { epoch });
        drop(owned);
        self.install(replay);
        true
    }

    /// Starts replaying `partition` for leader epoch `epoch`, dropping what an earlier epoch
    /// loaded.
    fn start_loading(self: &Arc<Self>, partition: i32, epoch: i32) {
        {
            let mut owned = self.owned.write();
            if owned.get(&partition) == Some(&Ownership::Loading { epoch }) {
                return;
            }
            if matches!(owned.get(&partition), Some(Ownership::Loaded { .. })) {
                drop(owned);
                self.unload(partition);
                owned = self.owned.write();
            }
            owned.insert(partition, Ownership::Loading { epoch });
        }
        let coordinator = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let log = coordinator.log.clone();
            let replayed =
                tokio::task::spawn_blocking(move || replay_partition(log.as_ref(), partition))
                    .await;
            let still_wanted =
                coordinator.owned.read().get(&partition) == Some(&Ownership::Loading { epoch });
            if !still_wanted {
                return;
            }
            match replayed {
                Ok(Ok(replay)) => {
                    let groups = coordinator.install(replay);
                    coordinator
                        .owned
                        .write()
                        .insert(partition, Ownership::Loaded { epoch });
                    tracing::info!(partition, epoch, groups, elapsed = ?started.elapsed(), "loaded consumer groups");
                }
                Ok(Err(error)) => {
                    tracing::error!(partition, %error, "cannot load group partition; retrying at the next request");
                    coordinator.owned.write().remove(&partition);
                }
                Err(error) => {
                    tracing::error!(partition, %error, "group loading task failed");
                    coordinator.owned.write().remove(&partition);
                }
            }
        });
    }

    /// Stops serving `partition`: its groups leave memory, and requests waiting on them are
    /// answered (their senders drop) so clients look for the new coordinator.
    pub(super) fn unload(&self, partition: i32) {
        self.owned.write().remove(&partition);
        let count = self.partition_count();
        let removed: Vec<Arc<Mutex<Slot>>> = {
            let mut groups = self.groups.write();
            let ids: Vec<String> = groups
                .keys()
                .filter(|id| partition_for(id, count) == partition)
                .cloned()
                .collect();
            ids.iter().filter_map(|id| groups.remove(id)).collect()
        };
        if !removed.is_empty() {
            tracing::info!(
                partition,
                groups = removed.len(),
                "unloaded consumer groups: leadership moved"
            );
        }
        for slot in removed {
            let mut slot = slot.lock();
            slot.joins.clear();
            slot.syncs.clear();
        }
    }

    /// Whether any partition led here is still loading.
    pub fn is_loading(&self) -> bool {
        self.owned
            .read()
            .values()
            .any(|o| matches!(o, Ownership::Loading { .. }))
    }
}
