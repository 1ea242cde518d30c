//! The group coordinator: owns every group of this broker's `__consumer_offsets` partitions,
//! runs group operations under a per-group lock, carries out their effects (answers to
//! waiting requests, records to persist), and drives timers. It is a shard of the coordinator
//! [`Runtime`], which loads and unloads its partitions (see [`shard`]).
//!
//! Locking rules: the group map lock is never held while a group is locked; the runtime's
//! ownership lock is taken before either, and never while a group is locked.

mod admin;
mod consumer;
mod expiry;
mod membership;
mod migration;
mod offsets;
mod shard;
mod share;
mod stats;
mod timers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::classic::Group;
use super::config::GroupConfig;
use super::effects::{AfterStore, Effects, JoinResult, Now, StoreGroup, SyncResult};
use super::records::group_key;
use super::state::GroupState;
use super::txn_offsets::PendingTxnOffsets;
use crate::log::{Appended, CoordinatorLog, Entry, LogError};
use crate::runtime::timer::Timers;
use crate::Runtime;
use tributary_storage::ProducerRef;

pub use admin::ListedGroup;
pub use consumer::{MemberEpoch, Refused};
pub use offsets::{CommitOffset, CommitRequest, FetchedTopic};
pub use share::ShareGroupDescription;
pub use stats::GroupStats;

/// A group with the requests waiting on it.
pub(crate) struct Slot {
    group: Group,
    joins: HashMap<String, oneshot::Sender<JoinResult>>,
    syncs: HashMap<String, oneshot::Sender<SyncResult>>,
    /// Deadline already in the timer heap for this group.
    scheduled: Option<i64>,
}

impl Slot {
    /// `group`, with nothing waiting on it yet.
    fn new(group: Group) -> Slot {
        Slot {
            group,
            joins: HashMap::new(),
            syncs: HashMap::new(),
            scheduled: None,
        }
    }
}

type SharedSlot = Arc<Mutex<Slot>>;

/// Whether an API accepts the empty group id (Kafka allows it for the offset and admin APIs,
/// for old clients and so every group can be inspected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupIdRule {
    /// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetDelete: must be non-empty.
    NonEmpty,
    /// OffsetCommit, OffsetFetch, DescribeGroups, DeleteGroups: empty is fine.
    AllowEmpty,
}

/// The coordinator of every group on this broker.
/// The clock the groups are judged by: monotonic milliseconds for deadlines, wall time for
/// what is stored. Tests step their own.
pub(crate) type Clock = Arc<dyn Fn() -> Now + Send + Sync>;

pub struct GroupCoordinator {
    config: GroupConfig,
    /// The `__consumer_offsets` partitions served here (led by this broker), and the log.
    runtime: Runtime,
    clock: Clock,
    groups: RwLock<HashMap<String, SharedSlot>>,
    timers: Arc<Timers>,
    /// Offsets of open transactions (TxnOffsetCommit), per `__consumer_offsets` partition
    /// served here: in effect once the transaction's COMMIT marker reaches the partition (see
    /// [`GroupCoordinator::complete_txn_offsets`]).
    txn_offsets: Mutex<HashMap<i32, PendingTxnOffsets>>,
    /// The consumer groups (KIP-848) of the partitions served here. Never locked while a
    /// classic group is, nor the other way round.
    consumer: Mutex<consumer::ConsumerState>,
    /// The share groups (KIP-932) of the partitions served here; never locked together with
    /// the classic or consumer groups.
    share: Mutex<share::ShareGroups>,
}

impl GroupCoordinator {
    /// A coordinator writing to `log`. Nothing runs until [`GroupCoordinator::start`].
    pub fn new(config: GroupConfig, log: Arc<dyn CoordinatorLog>) -> GroupCoordinator {
        let epoch = Instant::now();
        let clock = Arc::new(move || Now {
            mono: i64::try_from(epoch.elapsed().as_millis()).unwrap_or(i64::MAX),
            wall: tributary_storage::clock::now_ms(),
        });
        GroupCoordinator::with_clock(config, log, clock)
    }

    /// A coordinator judging its groups by `clock`.
    pub(crate) fn with_clock(
        config: GroupConfig,
        log: Arc<dyn CoordinatorLog>,
        clock: Clock,
    ) -> GroupCoordinator {
        let runtime = Runtime::new(log, config.offsets_topic_partitions);
        GroupCoordinator {
            config,
            runtime,
            clock,
            groups: RwLock::new(HashMap::new()),
            timers: Arc::new(Timers::default()),
            txn_offsets: Mutex::new(HashMap::new()),
            consumer: Mutex::new(consumer::ConsumerState::default()),
            share: Mutex::new(share::ShareGroups::default()),
        }
    }

    /// Starts loading the groups of the partitions led here, the timer and offset expiry.
    /// Needs a Tokio runtime.
    pub fn start(self: &Arc<Self>) {
        self.sync_leadership();
        tokio::spawn(timers::run(Arc::downgrade(self), self.timers.clone()));
        tokio::spawn(expiry::run(
            Arc::downgrade(self),
            Duration::from_millis(
                u64::try_from(self.config.offsets_retention_check_interval_ms.max(1)).unwrap_or(1),
            ),
        ));
    }

    /// Settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn now(&self) -> Now {
        (self.clock)()
    }

    /// The `__consumer_offsets` partition holding `group_id`.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        self.runtime.partition_for(group_id)
    }

    /// FindCoordinator for a group: makes sure the offsets topic exists and returns the
    /// broker leading the group's partition, which coordinates it.
    pub fn find(&self, group_id: &str) -> Result<i32, ResponseError> {
        self.runtime.find(group_id)
    }

    /// Brings every `__consumer_offsets` partition in line with the current leaderships:
    /// loads the ones led here, unloads the others. Run at start and whenever the cluster
    /// metadata changes.
    pub fn sync_leadership(self: &Arc<Self>) {
        Runtime::sync_leadership(self);
    }

    /// Whether any partition led here is still loading.
    pub fn is_loading(&self) -> bool {
        self.runtime.is_loading()
    }

    /// Checks what Kafka's `validateGroupStatus` checks: a valid id, and a partition this
    /// broker leads and has loaded (NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS otherwise).
    pub(crate) fn check(
        self: &Arc<Self>,
        group_id: &str,
        rule: GroupIdRule,
    ) -> Result<(), ResponseError> {
        if rule == GroupIdRule::NonEmpty && group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        Runtime::serve_key(self, group_id).map(drop)
    }

    fn get(&self, group_id: &str) -> Option<SharedSlot> {
        self.groups.read().get(group_id).cloned()
    }

    fn get_or_create(&self, group_id: &str) -> SharedSlot {
        if let Some(slot) = self.get(group_id) {
            return slot;
        }
        let now = self.now();
        self.groups
            .write()
            .entry(group_id.to_string())
            .or_insert_with(|| {
                let group = Group::new(group_id, now, self.config.initial_rebalance_delay_ms);
                Arc::new(Mutex::new(Slot::new(group)))
            })
            .clone()
    }

    /// Drops a dead group from the map, unless a new group took its id meanwhile.
    fn forget(&self, group_id: &str, slot: &SharedSlot) {
        let mut groups = self.groups.write();
        if groups.get(group_id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            groups.remove(group_id);
        }
    }

    /// Appends records for `group_id` to its partition.
    fn append(&self, group_id: &str, entries: &[Entry], now: Now) -> Result<Appended, LogError> {
        self.append_as(group_id, entries, None, now)
    }

    /// Appends records for `group_id` to its partition, in `txn`'s transaction if given.
    fn append_as(
        &self,
        group_id: &str,
        entries: &[Entry],
        txn: Option<ProducerRef>,
        now: Now,
    ) -> Result<Appended, LogError> {
        self.runtime.ensure_topic()?;
        let timeout = Duration::from_millis(
            u64::try_from(self.config.offsets_commit_timeout_ms).unwrap_or(0),
        );
        self.runtime.log().append(
            self.partition_for(group_id),
            entries,
            txn,
            now.wall,
            timeout,
        )
    }

    /// Carries out `effects` for a locked group: answers waiters, persists records, and
    /// re-arms the group's timer.
    fn apply(self: &Arc<Self>, shared: &SharedSlot, slot: &mut Slot, effects: Effects) {
        for (member, reply) in effects.joins {
            if let Some(tx) = slot.joins.remove(&member) {
                let _ = tx.send(reply);
            }
        }
        for (member, reply) in effects.syncs {
            if let Some(tx) = slot.syncs.remove(&member) {
                let _ = tx.send(reply);
            }
        }
        for store in effects.stores {
            self.store(shared, slot, store);
        }
        self.schedule(slot);
    }

    fn schedule(&self, slot: &mut Slot) {
        if let Some(deadline) = slot.group.next_deadline() {
            if slot.scheduled.is_none_or(|s| deadline < s) {
                slot.scheduled = Some(deadline);
                self.timers.schedule(deadline, slot.group.id());
            }
        }
    }

    /// Persists a group record; what waits on it continues once it is durable.
    fn store(self: &Arc<Self>, shared: &SharedSlot, slot: &mut Slot, store: StoreGroup) {
        let group_id = slot.group.id().to_string();
        let now = self.now();
        let entries = [(group_key(&group_id), Some(store.value.encode()))];
        match self.append(&group_id, &entries, now) {
            Err(error) => {
                tracing::warn!(group = %group_id, %error, "cannot store group metadata");
                let effects = slot.group.on_stored(store.then, Err(error.code()), now);
                self.apply(shared, slot, effects);
            }
            Ok(appended) => {
                let this = self.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    let result = appended.durable.await.map_err(|error| {
                        tracing::warn!(group = %group_id, %error, "group metadata not durable");
                        error.code()
                    });
                    if store.then == AfterStore::Nothing {
                        return;
                    }
                    let mut slot = shared.lock();
                    let now = this.now();
                    let effects = slot.group.on_stored(store.then, result, now);
                    this.apply(&shared, &mut slot, effects);
                });
            }
        }
    }

    /// Marks a group Dead and removes it, with tombstones for its metadata (when it ever
    /// had a generation) and for `offsets`. Returns the tombstone entries to append.
    fn bury(&self, shared: &SharedSlot, slot: &mut Slot, now: Now) -> Vec<Entry> {
        let group = &mut slot.group;
        let mut tombstones: Vec<Entry> = group
            .offsets
            .remove_all()
            .into_iter()
            .map(|(t, p)| (super::records::offset_key(group.id(), &t, p), None))
            .collect();
        if group.generation() > 0 {
            tombstones.push((group_key(group.id()), None));
        }
        if group.state() != GroupState::Dead {
            group.transition(GroupState::Dead, now);
        }
        slot.joins.clear();
        slot.syncs.clear();
        self.forget(&group.id.clone(), shared);
        tombstones
    }
}

#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod share_tests;
#[cfg(test)]
mod tests;
