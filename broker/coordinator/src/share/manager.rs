//! The share-partitions a broker leads (Kafka's `SharePartitionManager`): each one's window
//! ([`SharePartition`]) initialized from its durable state, records acquired from the log for
//! a member, acknowledgements made durable before they are applied, locks expired. The log
//! and the durable state are reached through [`ShareLog`] and [`StatePersister`], so the same
//! logic runs over the broker's replicas and share coordinator as over tests' fakes.
//!
//! Leadership: a share-partition lives while this broker leads its partition at the epoch it
//! was loaded at; a new epoch loads it again from the durable state (its locks do not
//! survive, pitfall 2), and a fenced write drops it, answered NOT_LEADER_OR_FOLLOWER.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tributary_storage::ReadPlan;
use uuid::Uuid;

use super::coordinator::{ShareCoordinator, StoredState};
use super::partition::{
    AckRange, AcquireMode, Acquired, FetchedBatch, Limits, RecordState, SharePartition, StateRange,
};
use super::records::SharePartitionKey;

/// What a share fetch needs of a partition's log on its leader.
pub trait ShareLog: Send + Sync {
    /// The leader epoch while this broker leads the partition, `None` otherwise.
    fn leader_epoch(&self, topic: Uuid, partition: i32) -> Option<i32>;
    /// The log start offset and the end a share fetch may read to (the high watermark, or
    /// the last stable offset under read_committed).
    fn bounds(&self, topic: Uuid, partition: i32, read_committed: bool) -> Option<(i64, i64)>;
    /// Whole batches from `offset`, about `max_bytes`, below the readable end; left in their
    /// segment file when `from_file` (the member's connection sends from files).
    fn read(
        &self,
        topic: Uuid,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
        from_file: bool,
    ) -> Result<LogChunk, ResponseError>;
    /// The first offset whose timestamp is at or after `timestamp_ms` (the log end if none).
    fn offset_for_time(&self, topic: Uuid, partition: i32, timestamp_ms: i64) -> Option<i64>;
}

/// Batches read for a share fetch: their bytes as stored, and their offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogChunk {
    /// The batches' bytes.
    pub records: ShareRecords,
    /// Each batch's offsets (aborted ones flagged under read_committed).
    pub batches: Vec<FetchedBatch>,
}

/// The batches a share fetch hands a member: in memory, or a range of their segment file that
/// a plaintext connection sends from the file, as it sends a Fetch's (zero-copy).
#[derive(Debug, Clone)]
pub enum ShareRecords {
    /// The bytes, read.
    Memory(Bytes),
    /// Where the bytes are.
    File(ReadPlan),
}

impl ShareRecords {
    /// The batches' length in bytes.
    pub fn len(&self) -> usize {
        match self {
            ShareRecords::Memory(bytes) => bytes.len(),
            ShareRecords::File(plan) => plan.length,
        }
    }

    /// True for no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ShareRecords {
    fn default() -> Self {
        ShareRecords::Memory(Bytes::new())
    }
}

/// Equal when they are the same bytes, or the same range of the same open file.
impl PartialEq for ShareRecords {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ShareRecords::Memory(a), ShareRecords::Memory(b)) => a == b,
            (ShareRecords::File(a), ShareRecords::File(b)) => {
                Arc::ptr_eq(&a.file, &b.file) && (a.position, a.length) == (b.position, b.length)
            }
            _ => false,
        }
    }
}

impl Eq for ShareRecords {}

/// Where share-partition state is kept (Kafka's `Persister`): the share coordinator, in
/// this process or over the wire.
pub trait StatePersister: Send + Sync {
    /// ReadShareGroupState.
    fn read<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        leader_epoch: i32,
    ) -> BoxFuture<'a, Result<Option<StoredState>, ResponseError>>;
    /// InitializeShareGroupState.
    fn initialize<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> BoxFuture<'a, Result<(), ResponseError>>;
    /// WriteShareGroupState.
    fn write<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: Option<i64>,
        ranges: Vec<StateRange>,
    ) -> BoxFuture<'a, Result<(), ResponseError>>;
}

impl StatePersister for Arc<ShareCoordinator> {
    fn read<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        leader_epoch: i32,
    ) -> BoxFuture<'a, Result<Option<StoredState>, ResponseError>> {
        Box::pin(ShareCoordinator::read(self, key, leader_epoch))
    }

    fn initialize<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        Box::pin(ShareCoordinator::initialize(
            self,
            key,
            state_epoch,
            start_offset,
        ))
    }

    fn write<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: Option<i64>,
        ranges: Vec<StateRange>,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        Box::pin(async move {
            ShareCoordinator::write(self, key, state_epoch, leader_epoch, start_offset, &ranges)
                .await
        })
    }
}

/// Where a share-partition without stored state starts (`share.auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// At the log end (Kafka's default).
    Latest,
    /// At the log start.
    Earliest,
    /// At the first record at most this long ago (`by_duration:<ISO-8601>`), in ms.
    ByDuration(i64),
}

/// A group's settings for its share-partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareSettings {
    /// Locks, delivery limit, window cap, renewal.
    pub limits: Limits,
    /// `share.auto.offset.reset`.
    pub reset: OffsetReset,
    /// `share.isolation.level` is read_committed.
    pub read_committed: bool,
}

/// What one member's fetch of one share-partition asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchAsk {
    /// How the count limits the acquisition.
    pub mode: AcquireMode,
    /// Records to acquire (soft in batch mode).
    pub max_records: usize,
    /// Bytes to read.
    pub max_bytes: usize,
    /// Whether the records may stay in their segment file (a plaintext connection).
    pub from_file: bool,
}

/// What a member got from one share-partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareFetched {
    /// The batches holding the acquired records (empty when nothing was acquired).
    pub records: ShareRecords,
    /// The offsets acquired, with their delivery counts.
    pub acquired: Vec<Acquired>,
}

/// One loaded share-partition.
struct Loaded {
    window: SharePartition,
    leader_epoch: i32,
    state_epoch: i32,
}

/// A loaded share-partition as metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStats {
    /// The start offset.
    pub start_offset: i64,
    /// Records delivered and not yet done with.
    pub in_flight: i64,
    /// Records at or after the start offset done with.
    pub delivery_complete: i64,
}

/// Record transitions of the share-partitions a broker leads, since it started (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareCounts {
    /// Records whose acquisition lock expired before they were acknowledged.
    pub lock_expiries: u64,
    /// Records handed to members (each delivery counted).
    pub acquired: u64,
    /// Records archived durably: rejected, gaps, or out of deliveries.
    pub archived: u64,
}

#[derive(Debug, Default)]
struct Counts {
    lock_expiries: AtomicU64,
    acquired: AtomicU64,
    archived: AtomicU64,
}

/// How many offsets the inclusive ranges cover.
fn offsets(ranges: impl Iterator<Item = (i64, i64)>) -> u64 {
    ranges
        .map(|(first, last)| u64::try_from(last - first + 1).unwrap_or(0))
        .sum()
}

/// The share-partitions this broker leads.
pub struct SharePartitionManager {
    log: Arc<dyn ShareLog>,
    persister: Arc<dyn StatePersister>,
    loaded: Mutex<HashMap<SharePartitionKey, Arc<tokio::sync::Mutex<Option<Loaded>>>>>,
    /// Record transitions since the start.
    counts: Counts,
    /// Each share-partition's figures as last seen, shown while it is busy.
    last_stats: Mutex<HashMap<SharePartitionKey, WindowStats>>,
    /// Share-partitions forgotten while busy: loaded again when next used.
    stale: Mutex<std::collections::HashSet<SharePartitionKey>>,
}

impl SharePartitionManager {
    /// A manager over `log` whose state `persister` keeps.
    pub fn new(log: Arc<dyn ShareLog>, persister: Arc<dyn StatePersister>) -> Self {
        SharePartitionManager {
            log,
            persister,
            loaded: Mutex::new(HashMap::new()),
            counts: Counts::default(),
            last_stats: Mutex::new(HashMap::new()),
            stale: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Acquires records of `key` for `member` at `now`.
    pub async fn fetch(
        &self,
        key: &SharePartitionKey,
        member: &str,
        settings: &ShareSettings,
        ask: FetchAsk,
        now: i64,
    ) -> Result<ShareFetched, ResponseError> {
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        let expired = {
            let loaded = self.load(key, settings, &mut guard).await?;
            loaded.window.set_limits(settings.limits);
            self.expire_loaded(key, loaded, now).await
        };
        if let Err(error) = expired {
            return Err(self.refused(key, &mut guard, error));
        }
        let loaded = guard.as_mut().ok_or(ResponseError::NotLeaderOrFollower)?;
        let (log_start, _) = self
            .log
            .bounds(key.topic, key.partition, settings.read_committed)
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        loaded.window.move_start(log_start);
        let Some(from) = loaded.window.fetch_offset() else {
            return Ok(ShareFetched::default());
        };
        let chunk = self.log.read(
            key.topic,
            key.partition,
            from,
            ask.max_bytes,
            settings.read_committed,
            ask.from_file,
        )?;
        let acquired =
            loaded
                .window
                .acquire(member, &chunk.batches, ask.mode, ask.max_records, now);
        if acquired.is_empty() {
            return Ok(ShareFetched::default());
        }
        self.counts.acquired.fetch_add(
            offsets(acquired.iter().map(|a| (a.first, a.last))),
            Ordering::Relaxed,
        );
        Ok(ShareFetched {
            records: chunk.records,
            acquired,
        })
    }

    /// Applies `member`'s acknowledgements of `key` once they are durable.
    pub async fn acknowledge(
        &self,
        key: &SharePartitionKey,
        member: &str,
        settings: &ShareSettings,
        acks: &[AckRange],
        now: i64,
    ) -> Result<(), ResponseError> {
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        let loaded = self.load(key, settings, &mut guard).await?;
        // The group's configs as they are now (a RENEW needs them to allow it).
        loaded.window.set_limits(settings.limits);
        let pending = loaded
            .window
            .acknowledge(member, acks, now)
            .map_err(|e| e.code())?;
        let start =
            (pending.start_after > loaded.window.start_offset()).then_some(pending.start_after);
        if pending.changes.is_empty() && start.is_none() {
            loaded.window.complete(pending.id, true, now);
            return Ok(());
        }
        let written = self.persist(key, loaded, start, pending.changes).await;
        match written {
            Ok(()) => {
                loaded.window.complete(pending.id, true, now);
                Ok(())
            }
            Err(error) => {
                loaded.window.complete(pending.id, false, now);
                Err(self.refused(key, &mut guard, error))
            }
        }
    }

    /// Gives back what `member` holds in `key` (its session closed).
    pub async fn release_member(
        &self,
        key: &SharePartitionKey,
        member: &str,
    ) -> Result<(), ResponseError> {
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        let Some(loaded) = guard.as_mut() else {
            return Ok(());
        };
        let changes = loaded.window.release_member(member);
        if changes.is_empty() {
            return Ok(());
        }
        let written = self.persist(key, loaded, None, changes).await;
        written.map_err(|error| self.refused(key, &mut guard, error))
    }

    /// Writes `changes` (and a new start offset) of `loaded` under its epochs.
    async fn persist(
        &self,
        key: &SharePartitionKey,
        loaded: &Loaded,
        start: Option<i64>,
        changes: Vec<StateRange>,
    ) -> Result<(), ResponseError> {
        let (state_epoch, leader_epoch) = (loaded.state_epoch, loaded.leader_epoch);
        let archived = offsets(
            changes
                .iter()
                .filter(|r| r.state == RecordState::Archived)
                .map(|r| (r.first, r.last)),
        );
        self.persister
            .write(key, state_epoch, leader_epoch, start, changes)
            .await?;
        self.counts.archived.fetch_add(archived, Ordering::Relaxed);
        Ok(())
    }

    /// Every loaded share-partition as metrics show it: as it is now, or, when a fetch is
    /// busy with it this instant, as last seen (a scrape never waits for a fetch).
    pub fn stats(&self) -> Vec<(SharePartitionKey, WindowStats)> {
        let slots: Vec<_> = self
            .loaded
            .lock()
            .iter()
            .map(|(k, slot)| (k.clone(), slot.clone()))
            .collect();
        let mut last = self.last_stats.lock();
        last.retain(|key, _| slots.iter().any(|(k, _)| k == key));
        slots
            .into_iter()
            .filter_map(|(key, slot)| {
                let now = slot.try_lock().ok().and_then(|guard| {
                    let window = &guard.as_ref()?.window;
                    let done = window.delivery_complete();
                    Some(WindowStats {
                        start_offset: window.start_offset(),
                        in_flight: window.in_flight() - done,
                        delivery_complete: done,
                    })
                });
                let stats = match now {
                    Some(stats) => {
                        last.insert(key.clone(), stats);
                        stats
                    }
                    None => *last.get(&key)?,
                };
                Some((key, stats))
            })
            .collect()
    }

    /// Record transitions of the share-partitions led here since the start.
    pub fn counts(&self) -> ShareCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ShareCounts {
            lock_expiries: get(&self.counts.lock_expiries),
            acquired: get(&self.counts.acquired),
            archived: get(&self.counts.archived),
        }
    }

    /// The share-partitions loaded now.
    pub fn loaded(&self) -> Vec<SharePartitionKey> {
        let mut keys: Vec<SharePartitionKey> = self.loaded.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Drops every share-partition of `group` that `which` selects (the group was deleted or
    /// its offsets changed): a later fetch loads it again from the durable state, if any. One
    /// busy this instant (an acknowledgement being written) stays in place and is loaded
    /// again by whatever uses it next, after that write: dropping it now would let a new
    /// window load the state from before the write, and deliver accepted records again.
    pub fn forget(&self, group: &str, which: impl Fn(&SharePartitionKey) -> bool) {
        let mut stale = self.stale.lock();
        self.loaded.lock().retain(|key, slot| {
            if key.group != group || !which(key) {
                return true;
            }
            match slot.try_lock() {
                Ok(mut idle) => {
                    *idle = None;
                    false
                }
                Err(_) => {
                    stale.insert(key.clone());
                    true
                }
            }
        });
    }

    fn slot(&self, key: &SharePartitionKey) -> Arc<tokio::sync::Mutex<Option<Loaded>>> {
        self.loaded.lock().entry(key.clone()).or_default().clone()
    }

    /// The share-partition of `key` as this broker leads it now: loaded again from the
    /// durable state when it was loaded under another leader epoch, or never.
    async fn load<'a>(
        &self,
        key: &SharePartitionKey,
        settings: &ShareSettings,
        slot: &'a mut Option<Loaded>,
    ) -> Result<&'a mut Loaded, ResponseError> {
        if self.stale.lock().remove(key) {
            *slot = None;
        }
        let epoch = self
            .log
            .leader_epoch(key.topic, key.partition)
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        if slot.as_ref().is_some_and(|l| l.leader_epoch != epoch) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(self.read_state(key, settings, epoch).await?);
        }
        slot.as_mut().ok_or(ResponseError::NotLeaderOrFollower)
    }

    async fn read_state(
        &self,
        key: &SharePartitionKey,
        settings: &ShareSettings,
        leader_epoch: i32,
    ) -> Result<Loaded, ResponseError> {
        let stored = self
            .persister
            .read(key, leader_epoch)
            .await
            .map_err(fenced_as_not_leader)?;
        let (state_epoch, window) = match stored {
            Some(s) if s.start_offset >= 0 => (
                s.state_epoch,
                SharePartition::restore(s.start_offset, &s.ranges, settings.limits),
            ),
            stored => {
                let state_epoch = stored.map_or(0, |s| s.state_epoch);
                let start = self.reset_offset(key, settings)?;
                self.persister
                    .initialize(key, state_epoch, start)
                    .await
                    .map_err(fenced_as_not_leader)?;
                self.persister
                    .read(key, leader_epoch)
                    .await
                    .map_err(fenced_as_not_leader)?;
                (state_epoch, SharePartition::new(start, settings.limits))
            }
        };
        Ok(Loaded {
            window,
            leader_epoch,
            state_epoch,
        })
    }

    /// The start of a share-partition the group never read (`share.auto.offset.reset`).
    fn reset_offset(
        &self,
        key: &SharePartitionKey,
        settings: &ShareSettings,
    ) -> Result<i64, ResponseError> {
        let (start, end) = self
            .log
            .bounds(key.topic, key.partition, settings.read_committed)
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        Ok(match settings.reset {
            OffsetReset::Latest => end,
            OffsetReset::Earliest => start,
            OffsetReset::ByDuration(ms) => {
                let since = tributary_storage::clock::now_ms().saturating_sub(ms);
                self.log
                    .offset_for_time(key.topic, key.partition, since)
                    .unwrap_or(end)
                    .max(start)
            }
        })
    }

    /// Expires locks that ran out; the expiry stands even when its write fails (Kafka's
    /// rule), unless the write was fenced.
    async fn expire_loaded(
        &self,
        key: &SharePartitionKey,
        loaded: &mut Loaded,
        now: i64,
    ) -> Result<(), ResponseError> {
        let changes = loaded.window.expire_locks(now);
        if changes.is_empty() {
            return Ok(());
        }
        self.counts.lock_expiries.fetch_add(
            offsets(changes.iter().map(|r| (r.first, r.last))),
            Ordering::Relaxed,
        );
        match self.persist(key, loaded, None, changes).await {
            Err(error @ (ResponseError::FencedLeaderEpoch | ResponseError::FencedStateEpoch)) => {
                Err(error)
            }
            Err(error) => {
                tracing::warn!(group = %key.group, partition = key.partition, ?error,
                    "share-partition lock expiry not written");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// The answer to a failed write: a fenced share-partition is dropped (another leader
    /// has it) and answers NOT_LEADER_OR_FOLLOWER.
    fn refused(
        &self,
        key: &SharePartitionKey,
        slot: &mut Option<Loaded>,
        error: ResponseError,
    ) -> ResponseError {
        let fenced = fenced_as_not_leader(error);
        if fenced == ResponseError::NotLeaderOrFollower {
            tracing::info!(group = %key.group, partition = key.partition, ?error,
                "share-partition fenced: dropped");
            *slot = None;
        }
        fenced
    }
}

/// FENCED_LEADER_EPOCH and FENCED_STATE_EPOCH from the persister mean another leader has
/// the share-partition: clients are told NOT_LEADER_OR_FOLLOWER and look it up again.
fn fenced_as_not_leader(error: ResponseError) -> ResponseError {
    match error {
        ResponseError::FencedLeaderEpoch | ResponseError::FencedStateEpoch => {
            ResponseError::NotLeaderOrFollower
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
