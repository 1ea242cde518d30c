//! The share coordinator: the durable state of share-partitions in `__share_group_state`, a
//! shard of the coordinator [`Runtime`] beside the group and transaction coordinators. A
//! share-partition's state lives in the partition its key (`group:topicId:partition`) hashes
//! to, served by that partition's leader; share-partition leaders read it when they take a
//! partition and write every acknowledgement to it before answering (Kafka's
//! Initialize/Read/Write/DeleteShareGroupState). The decisions are [`ShareState`]'s; this
//! module orders them: per state partition, one decide-append-apply at a time, so a decision
//! is always taken on the state every earlier write left.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::partition::StateRange;
use super::records::{decode, encode, key_bytes, SharePartitionKey};
use super::state::{ShareState, StateRecord};
use crate::log::{CoordinatorLog, LogRecord};
use crate::{Runtime, Shard};
use tributary_storage::clock::now_ms;

/// Partitions of `__share_group_state` (Kafka's `share.coordinator.state.topic.num.partitions`).
pub const STATE_PARTITIONS: i32 = 50;

/// How far (in records) a share-partition's last snapshot may lie behind the end of its
/// state partition before a fresh one is written, so an idle share-partition never holds
/// the whole topic's history (Kafka's cold-partition snapshots).
pub const COLD_RECORDS: i64 = 2 * super::state::UPDATES_PER_SNAPSHOT as i64;

/// What a share-partition leader reads when it takes a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    /// The state epoch, which the leader's writes carry.
    pub state_epoch: i32,
    /// The start offset; -1 when the group never had one (the leader applies
    /// `share.auto.offset.reset`).
    pub start_offset: i64,
    /// The ranges of delivered records.
    pub ranges: Vec<StateRange>,
}

/// What ReadShareGroupStateSummary answers of one share-partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The state epoch.
    pub state_epoch: i32,
    /// The leader epoch of the last leader that read the state.
    pub leader_epoch: i32,
    /// The start offset (-1: never started).
    pub start_offset: i64,
    /// Offsets at or after the start offset done with (KIP-1226); `None` when unknown (a
    /// share coordinator that does not say).
    pub delivery_complete: Option<i64>,
}

/// The share coordinator.
pub struct ShareCoordinator {
    runtime: Runtime,
    state: Mutex<HashMap<SharePartitionKey, ShareState>>,
    /// Where the last snapshot of each share-partition lies: nothing before the oldest of a
    /// state partition is needed to rebuild it.
    snapshots: Mutex<HashMap<SharePartitionKey, i64>>,
    /// Each state partition's last record written or replayed.
    ends: Mutex<HashMap<i32, i64>>,
    /// Each state partition's records were deleted below this offset.
    pruned: Mutex<HashMap<i32, i64>>,
    /// State partitions where a snapshot or deletion was written since they were last
    /// pruned.
    due: Mutex<HashSet<i32>>,
    /// One change at a time per state partition.
    serial: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<()>>>>,
    write_timeout: Duration,
}

impl ShareCoordinator {
    /// A coordinator writing to `log` (`__share_group_state`), waiting at most
    /// `write_timeout` for each write to be durable.
    pub fn new(log: Arc<dyn CoordinatorLog>, write_timeout: Duration) -> Arc<ShareCoordinator> {
        Arc::new(ShareCoordinator {
            runtime: Runtime::new(log, STATE_PARTITIONS),
            state: Mutex::new(HashMap::new()),
            snapshots: Mutex::new(HashMap::new()),
            ends: Mutex::new(HashMap::new()),
            pruned: Mutex::new(HashMap::new()),
            due: Mutex::new(HashSet::new()),
            serial: Mutex::new(HashMap::new()),
            write_timeout,
        })
    }

    /// FindCoordinator key type 2: the broker serving `key`'s state (the leader of its
    /// `__share_group_state` partition, the topic created on the first lookup).
    pub fn find(&self, key: &SharePartitionKey) -> Result<i32, ResponseError> {
        self.runtime.find(&key.coordinator_key())
    }

    /// Loads the partitions this broker leads and drops the others; run when leadership
    /// changes.
    pub fn sync_leadership(self: &Arc<Self>) {
        Runtime::sync_leadership(self);
    }

    /// InitializeShareGroupState: a fresh state for `key` at `start_offset` under
    /// `state_epoch`.
    pub async fn initialize(
        self: &Arc<Self>,
        key: &SharePartitionKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<(), ResponseError> {
        self.change(key, |current| {
            ShareState::initialize(current, state_epoch, start_offset)
                .map(Some)
                .map_err(|f| f.code())
        })
        .await?;
        self.maintain(key).await;
        Ok(())
    }

    /// ReadShareGroupState by the leader at `leader_epoch`, which fences every older leader
    /// from then on. `None`: the share-partition was never initialized.
    pub async fn read(
        self: &Arc<Self>,
        key: &SharePartitionKey,
        leader_epoch: i32,
    ) -> Result<Option<StoredState>, ResponseError> {
        let state = self
            .change(key, |current| match current {
                Some(current) => current.read(leader_epoch).map_err(|f| f.code()),
                None => Ok(None),
            })
            .await?;
        Ok(state.map(|s| StoredState {
            state_epoch: s.state_epoch(),
            start_offset: s.start_offset(),
            ranges: s.ranges().to_vec(),
        }))
    }

    /// WriteShareGroupState: the leader at `leader_epoch` stores `ranges` (and a new start
    /// offset) of the state at `state_epoch`; answered once durable.
    pub async fn write(
        self: &Arc<Self>,
        key: &SharePartitionKey,
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: Option<i64>,
        ranges: &[StateRange],
    ) -> Result<(), ResponseError> {
        self.change(key, |current| {
            let fresh = ShareState::default();
            current
                .unwrap_or(&fresh)
                .write(state_epoch, leader_epoch, start_offset, ranges)
                .map(Some)
                .map_err(|f| f.code())
        })
        .await?;
        self.maintain(key).await;
        Ok(())
    }

    /// The share-partitions of `group` whose state is held here.
    pub fn keys_of(&self, group: &str) -> Vec<SharePartitionKey> {
        let mut keys: Vec<SharePartitionKey> = self
            .state
            .lock()
            .keys()
            .filter(|k| k.group == group)
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// ReadShareGroupStateSummary: `key`'s start offset, state epoch and the leader epoch of
    /// its last reader, without fencing anyone; `None` when it has no state. Answered only
    /// where the state is served (NOT_COORDINATOR elsewhere).
    pub fn summary(
        self: &Arc<Self>,
        key: &SharePartitionKey,
    ) -> Result<Option<Summary>, ResponseError> {
        Runtime::serve(self, self.state_partition(key)?)?;
        let state = self.state.lock();
        Ok(state.get(key).map(|s| Summary {
            state_epoch: s.state_epoch(),
            leader_epoch: s.leader_epoch(),
            start_offset: s.start_offset(),
            delivery_complete: Some(s.delivery_complete()),
        }))
    }

    /// DeleteShareGroupState: forgets `key` (a tombstone, so the topic's cleanup removes it).
    pub async fn delete(self: &Arc<Self>, key: &SharePartitionKey) -> Result<(), ResponseError> {
        let partition = self.state_partition(key)?;
        let serial = self.serial(partition);
        let _one_at_a_time = serial.lock().await;
        let epoch = Runtime::serve(self, partition)?;
        let k = key_bytes(key);
        let offset = self.append(partition, vec![(k, None)]).await?;
        self.runtime
            .if_loaded(partition, epoch, || {
                self.state.lock().remove(key);
                self.snapshots.lock().remove(key);
                self.ends.lock().insert(partition, offset);
                self.due.lock().insert(partition);
            })
            .ok_or(ResponseError::NotCoordinator)?;
        drop(_one_at_a_time);
        self.maintain(key).await;
        Ok(())
    }

    /// Decides a change of `key`'s state with `decide` (given the current state), appends the
    /// record it returns and applies it once durable, one change at a time per partition;
    /// returns the state after it.
    async fn change(
        self: &Arc<Self>,
        key: &SharePartitionKey,
        decide: impl FnOnce(Option<&ShareState>) -> Result<Option<StateRecord>, ResponseError>,
    ) -> Result<Option<ShareState>, ResponseError> {
        let partition = self.state_partition(key)?;
        let serial = self.serial(partition);
        let _one_at_a_time = serial.lock().await;
        let epoch = Runtime::serve(self, partition)?;
        let (current, record) = {
            let state = self.state.lock();
            let current = state.get(key);
            (current.cloned(), decide(current)?)
        };
        let Some(record) = record else {
            return Ok(current);
        };
        let (k, v) = encode(key, &record);
        let offset = self.append(partition, vec![(k, Some(v))]).await?;
        // Leadership may have moved meanwhile: the new coordinator reads the record from the
        // log, and this one answers NOT_COORDINATOR.
        self.runtime
            .if_loaded(partition, epoch, || {
                self.ends.lock().insert(partition, offset);
                if matches!(record, StateRecord::Snapshot { .. }) {
                    self.snapshots.lock().insert(key.clone(), offset);
                    self.due.lock().insert(partition);
                }
                let mut state = self.state.lock();
                let entry = state.entry(key.clone()).or_default();
                entry.apply(&record);
                Some(entry.clone())
            })
            .ok_or(ResponseError::NotCoordinator)
    }

    /// After a snapshot or deletion in `key`'s state partition: writes fresh snapshots of
    /// its share-partitions whose last one lies more than [`COLD_RECORDS`] back, then deletes
    /// the records before the oldest snapshot still needed (all of them once no
    /// share-partition is left), as Kafka's share coordinator prunes its topic.
    async fn maintain(self: &Arc<Self>, key: &SharePartitionKey) {
        let Ok(partition) = self.state_partition(key) else {
            return;
        };
        if !self.due.lock().remove(&partition) {
            return;
        }
        let Some(end) = self.ends.lock().get(&partition).copied() else {
            return;
        };
        for cold in self.held_in(partition, |at| at.is_none_or(|at| end - at > COLD_RECORDS)) {
            let refreshed = self
                .change(&cold, |current| Ok(current.map(ShareState::snapshot)))
                .await;
            if let Err(error) = refreshed {
                tracing::debug!(partition, ?error, "share state not snapshotted afresh");
                return;
            }
        }
        self.due.lock().remove(&partition);
        let needed = {
            let held = self.held_in(partition, |_| true);
            let snapshots = self.snapshots.lock();
            let oldest: Option<Option<i64>> = held
                .iter()
                .map(|k| snapshots.get(k).copied())
                .min_by_key(|at| at.unwrap_or(i64::MIN));
            match oldest {
                // A share-partition whose snapshot is unknown: keep everything.
                Some(None) => return,
                Some(Some(at)) => at,
                None => self.ends.lock().get(&partition).map_or(0, |end| end + 1),
            }
        };
        if self
            .pruned
            .lock()
            .get(&partition)
            .is_some_and(|p| *p >= needed)
        {
            return;
        }
        match self.runtime.log().delete_before(partition, needed) {
            Ok(start) => {
                self.pruned.lock().insert(partition, start);
            }
            Err(error) => tracing::warn!(partition, %error, "share-group state not pruned"),
        }
    }

    /// The share-partitions held in state `partition` whose last snapshot offset `which`
    /// selects.
    fn held_in(
        &self,
        partition: i32,
        which: impl Fn(Option<i64>) -> bool,
    ) -> Vec<SharePartitionKey> {
        let snapshots = self.snapshots.lock();
        self.state
            .lock()
            .keys()
            .filter(|k| self.runtime.partition_for(&k.coordinator_key()) == partition)
            .filter(|k| which(snapshots.get(*k).copied()))
            .cloned()
            .collect()
    }

    /// Appends `entries`; returns the first one's offset once durable.
    async fn append(
        &self,
        partition: i32,
        entries: Vec<crate::log::Entry>,
    ) -> Result<i64, ResponseError> {
        let appended =
            self.runtime
                .log()
                .append(partition, &entries, None, now_ms(), self.write_timeout);
        let written = match appended {
            Ok(appended) => appended.durable.await.map(|()| appended.base_offset),
            Err(error) => Err(error),
        };
        written.map_err(|error| {
            tracing::warn!(partition, %error, "share-group state not written");
            error.state_write_code()
        })
    }

    /// The partition of `__share_group_state` holding `key`'s state (the topic created
    /// first if it does not exist yet).
    pub fn state_partition(&self, key: &SharePartitionKey) -> Result<i32, ResponseError> {
        self.runtime.ensure_topic().map_err(|e| e.code())?;
        Ok(self.runtime.partition_for(&key.coordinator_key()))
    }

    fn serial(&self, partition: i32) -> Arc<tokio::sync::Mutex<()>> {
        self.serial.lock().entry(partition).or_default().clone()
    }
}

/// The share-partitions replayed from one state partition.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    states: HashMap<SharePartitionKey, ShareState>,
    snapshots: HashMap<SharePartitionKey, i64>,
    end: Option<i64>,
    skipped: usize,
}

impl crate::Replay for Replay {
    fn apply(&mut self, record: &LogRecord) {
        self.end = Some(record.offset);
        let Some(key) = record.key.as_deref() else {
            self.skipped += 1;
            return;
        };
        match decode(key, record.value.as_deref()) {
            Ok((key, Some(change))) => {
                if matches!(change, StateRecord::Snapshot { .. }) {
                    self.snapshots.insert(key.clone(), record.offset);
                }
                self.states.entry(key).or_default().apply(&change)
            }
            Ok((key, None)) => {
                self.snapshots.remove(&key);
                self.states.remove(&key);
            }
            Err(error) => {
                tracing::warn!(%error, "skipping a share-group state record");
                self.skipped += 1;
            }
        }
    }

    fn skipped(&self) -> usize {
        self.skipped
    }
}

impl Shard for ShareCoordinator {
    type Replay = Replay;
    const NAME: &'static str = "share";

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn install(&self, partition: i32, replay: Replay) -> usize {
        let count = replay.states.len();
        self.state.lock().extend(replay.states);
        self.snapshots.lock().extend(replay.snapshots);
        if let Some(end) = replay.end {
            self.ends.lock().insert(partition, end);
            // What an earlier coordinator left unpruned goes at the next write.
            self.due.lock().insert(partition);
        }
        count
    }

    fn unload(&self, partition: i32) -> usize {
        let elsewhere = |key: &SharePartitionKey| {
            self.runtime.partition_for(&key.coordinator_key()) != partition
        };
        self.snapshots.lock().retain(|key, _| elsewhere(key));
        self.ends.lock().remove(&partition);
        self.pruned.lock().remove(&partition);
        self.due.lock().remove(&partition);
        let mut state = self.state.lock();
        let before = state.len();
        state.retain(|key, _| elsewhere(key));
        before - state.len()
    }
}

#[cfg(test)]
mod tests;
