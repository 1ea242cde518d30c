//! The coordinator runtime (the shape of Kafka's `CoordinatorRuntime`): which partitions of a
//! coordinator's internal topic this broker serves, and the one way their state comes and
//! goes. A partition is served while this broker leads it, as Kafka places coordinators. When
//! it comes to lead one, the partition's records are replayed (at once when they fit one read,
//! in the background otherwise, answered COORDINATOR_LOAD_IN_PROGRESS meanwhile) and the
//! result is installed; when the leadership moves, the partition's state is dropped and its
//! keys answer NOT_COORDINATOR, so clients find the new coordinator. Leadership is read from
//! the log on every request, so an answer never trusts a stale view.
//!
//! The install-under-one-lock rule: a replayed partition is installed, and marked loaded, with
//! the ownership map locked from the check that the load is still wanted to the end, and
//! every unload drops state under the same lock. A load that finishes after its leadership
//! was lost (or moved to a later epoch) therefore never installs stale state.
//!
//! A [`Shard`] (the group coordinator, the transaction coordinator) brings only what replaying
//! its records builds ([`Replay`]) and what installing and dropping a partition's state means.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use parking_lot::RwLock;

use crate::log::{CoordinatorLog, LogError, LogRecord};
use crate::partitioner::partition_for;

/// A served partition's state, at the leader epoch it is served for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// Its records are being replayed.
    Loading {
        /// Leader epoch the load is for.
        epoch: i32,
    },
    /// Its state is installed and served.
    Loaded {
        /// Leader epoch it is served at.
        epoch: i32,
    },
}

/// What to do with a request for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Serve it at this epoch.
    Serve(i32),
    /// Answer COORDINATOR_LOAD_IN_PROGRESS: loading at the current epoch.
    Wait,
    /// Load at this epoch (dropping what an older epoch loaded) before serving.
    Load(i32),
    /// Answer NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while this broker is taking the
    /// leadership), unloading first when something is still owned.
    Refuse {
        /// Whether the partition is still owned here.
        unload: bool,
        /// Whether the metadata already names this broker the leader.
        taking: bool,
    },
}

/// The decision for a partition this broker leads at `leads` (`None`: does not lead; then
/// `taking` says whether the metadata names it leader already) and owns as `owned`.
pub(crate) fn access(leads: Option<i32>, taking: bool, owned: Option<Ownership>) -> Access {
    match (leads, owned) {
        (Some(epoch), Some(Ownership::Loaded { epoch: e })) if e == epoch => Access::Serve(epoch),
        (Some(epoch), Some(Ownership::Loading { epoch: e })) if e == epoch => Access::Wait,
        (Some(epoch), _) => Access::Load(epoch),
        (None, owned) => Access::Refuse {
            unload: owned.is_some(),
            taking,
        },
    }
}

/// What replaying one partition's records builds: applied record by record in offset order
/// (the latest value of a key wins, a tombstone removes it), then handed to
/// [`Shard::install`] whole. Pure, so it runs on a blocking thread without locks.
pub(crate) trait Replay: Default + Send + 'static {
    /// Applies one record.
    fn apply(&mut self, record: &LogRecord);
    /// How many records were not understood (logged once the partition is installed).
    fn skipped(&self) -> usize;
}

/// A coordinator run by the [`Runtime`]: its state lives with it, the runtime decides when a
/// partition's state is installed or dropped.
pub(crate) trait Shard: Send + Sync + 'static {
    /// What replaying a partition builds.
    type Replay: Replay;
    /// The coordinator's name in logs.
    const NAME: &'static str;

    /// The runtime serving this shard's partitions.
    fn runtime(&self) -> &Runtime;

    /// Makes the state replayed from `partition` current (nothing of the partition is in
    /// memory then); returns how many keys it holds. Runs with the ownership map locked, so
    /// it must not wait on anything that waits on the runtime.
    fn install(&self, partition: i32, replay: Self::Replay) -> usize;

    /// Drops every key of `partition` from memory, answering what waits on them; returns how
    /// many there were. Runs with the ownership map locked, like [`Shard::install`].
    fn unload(&self, partition: i32) -> usize;
}

/// Why a background load failed; the partition is loaded again at the next request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The partition could not be read.
    #[error(transparent)]
    Read(#[from] LogError),
    /// The replay task panicked or was cancelled.
    #[error("the replay task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What [`Runtime::install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Installed {
    /// The partition was loaded at the epoch already.
    Already,
    /// Installed now, with this many keys.
    Now(usize),
    /// Not installed: the load is no longer wanted (leadership lost or moved on).
    Unwanted,
}

/// The partitions of one internal topic a coordinator serves, with the log they live in.
pub(crate) struct Runtime {
    log: Arc<dyn CoordinatorLog>,
    /// The partition count the topic is created with.
    configured_partitions: i32,
    /// Partition count of the topic (the configured one until it exists).
    partitions: AtomicI32,
    /// The partitions served here (led by this broker), loading or loaded. Taken before any
    /// lock of a shard's state.
    owned: RwLock<HashMap<i32, Ownership>>,
    /// Set while the shard prepares its log (see [`Runtime::hold`]).
    held: AtomicBool,
}

impl Runtime {
    /// A runtime over `log`, whose topic is created with `partitions` partitions. Nothing is
    /// served until the shard calls [`Runtime::sync_leadership`] or a request arrives.
    pub(crate) fn new(log: Arc<dyn CoordinatorLog>, partitions: i32) -> Runtime {
        Runtime {
            log,
            configured_partitions: partitions,
            partitions: AtomicI32::new(partitions),
            owned: RwLock::new(HashMap::new()),
            held: AtomicBool::new(false),
        }
    }

    /// The log the shard appends its records to.
    pub(crate) fn log(&self) -> &Arc<dyn CoordinatorLog> {
        &self.log
    }

    /// Partition count of the topic as last seen.
    pub(crate) fn partition_count(&self) -> i32 {
        self.partitions.load(Ordering::SeqCst)
    }

    /// The partition holding `key` (a group id, a transactional id).
    pub(crate) fn partition_for(&self, key: &str) -> i32 {
        partition_for(key, self.partition_count())
    }

    /// Creates the topic unless it exists, and learns its partition count.
    pub(crate) fn ensure_topic(&self) -> Result<(), LogError> {
        let n = self.log.ensure_topic(self.configured_partitions)?;
        self.partitions.store(n, Ordering::SeqCst);
        Ok(())
    }

    /// FindCoordinator: makes sure the topic exists and returns the broker leading `key`'s
    /// partition, which coordinates it.
    pub(crate) fn find(&self, key: &str) -> Result<i32, ResponseError> {
        self.ensure_topic().map_err(|error| {
            tracing::warn!(%error, "cannot create a coordinator topic");
            error.code()
        })?;
        self.log
            .leader(self.partition_for(key))
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// Whether any partition led here is still loading, or the runtime is held.
    pub(crate) fn is_loading(&self) -> bool {
        self.held.load(Ordering::SeqCst)
            || self
                .owned
                .read()
                .values()
                .any(|o| matches!(o, Ownership::Loading { .. }))
    }

    /// Answers COORDINATOR_LOAD_IN_PROGRESS for every partition and loads nothing until
    /// [`Runtime::release`]: for a shard that must write its log before anything is decided
    /// on it (the transaction coordinator's migration of its old state file).
    pub(crate) fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Ends [`Runtime::hold`] and loads the partitions led here.
    pub(crate) fn release<S: Shard>(shard: &Arc<S>) {
        shard.runtime().held.store(false, Ordering::SeqCst);
        Runtime::sync_leadership(shard);
    }

    /// Runs `f` if `partition` is loaded at `epoch`, with the ownership map locked so an
    /// unload cannot pass it: for a shard making a durable write current in memory only while
    /// it still owns the partition at the epoch the write was made at.
    pub(crate) fn if_loaded<R>(
        &self,
        partition: i32,
        epoch: i32,
        f: impl FnOnce() -> R,
    ) -> Option<R> {
        let owned = self.owned.read();
        (owned.get(&partition) == Some(&Ownership::Loaded { epoch })).then(f)
    }

    /// Whether this broker coordinates `key` now (Kafka's checks before every request):
    /// makes sure the topic exists, then [`Runtime::serve`]s the key's partition.
    pub(crate) fn serve_key<S: Shard>(shard: &Arc<S>, key: &str) -> Result<i32, ResponseError> {
        let runtime = shard.runtime();
        runtime.ensure_topic().map_err(|error| match error {
            // FindCoordinator sent the client here from a broker that already sees the topic:
            // this broker's view is behind, and it may be the coordinator. The client retries
            // here (COORDINATOR_NOT_AVAILABLE would fail librdkafka's synchronous commit).
            LogError::Creating { .. } => ResponseError::CoordinatorLoadInProgress,
            error => error.code(),
        })?;
        Runtime::serve(shard, runtime.partition_for(key))
    }

    /// Whether `partition` is served now: the leader epoch it is served at, or the error Kafka
    /// answers. Starts loading a partition this broker has just come to lead, and unloads one
    /// it no longer leads.
    pub(crate) fn serve<S: Shard>(shard: &Arc<S>, partition: i32) -> Result<i32, ResponseError> {
        let runtime = shard.runtime();
        if runtime.held.load(Ordering::SeqCst) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let leads = runtime.log.leader_epoch(partition);
        let taking = leads.is_none() && runtime.log.taking_leadership(partition);
        let owned = runtime.owned.read().get(&partition).copied();
        match access(leads, taking, owned) {
            Access::Serve(epoch) => Ok(epoch),
            Access::Wait => Err(ResponseError::CoordinatorLoadInProgress),
            Access::Load(epoch) => {
                if Runtime::load_if_small(shard.as_ref(), partition, epoch) {
                    return Ok(epoch);
                }
                Runtime::start_loading(shard, partition, epoch);
                Err(ResponseError::CoordinatorLoadInProgress)
            }
            Access::Refuse { unload, taking } => {
                if unload {
                    Runtime::unload(shard.as_ref(), partition);
                }
                // Kafka's coordinator loads on its election: a broker named leader answers
                // LOAD_IN_PROGRESS (which clients retry here) until it serves.
                Err(if taking {
                    ResponseError::CoordinatorLoadInProgress
                } else {
                    ResponseError::NotCoordinator
                })
            }
        }
    }

    /// Brings every partition in line with the current leaderships: loads the ones led here,
    /// unloads the others. Run at start and whenever the cluster metadata changes.
    pub(crate) fn sync_leadership<S: Shard>(shard: &Arc<S>) {
        let runtime = shard.runtime();
        if runtime.held.load(Ordering::SeqCst) {
            return;
        }
        let Some(partitions) = runtime.log.partitions() else {
            return;
        };
        runtime.partitions.store(partitions, Ordering::SeqCst);
        for partition in 0..partitions {
            // Errors are the expected answers for partitions not served; ignore them here.
            let _ = Runtime::serve(shard, partition);
        }
        let stale: Vec<i32> = runtime
            .owned
            .read()
            .keys()
            .copied()
            .filter(|&p| p >= partitions)
            .collect();
        for partition in stale {
            Runtime::unload(shard.as_ref(), partition);
        }
    }

    /// Loads `partition` at once when all of it comes back in one read (a new or small
    /// partition), so the first request after a leadership change or a fresh start is served
    /// rather than told to retry; true when loaded.
    fn load_if_small<S: Shard>(shard: &S, partition: i32, epoch: i32) -> bool {
        let first = match shard.runtime().log.read(partition, 0) {
            Ok(chunk) if chunk.at_end => chunk,
            _ => return false,
        };
        let mut replay = S::Replay::default();
        for record in &first.records {
            replay.apply(record);
        }
        Runtime::install(shard, partition, epoch, replay, |_| true) != Installed::Unwanted
    }

    /// Starts replaying `partition` for leader epoch `epoch` in the background, dropping what
    /// an earlier epoch loaded.
    fn start_loading<S: Shard>(shard: &Arc<S>, partition: i32, epoch: i32) {
        {
            let mut owned = shard.runtime().owned.write();
            if owned.get(&partition) == Some(&Ownership::Loading { epoch }) {
                return;
            }
            Runtime::drop_partition(shard.as_ref(), &mut owned, partition);
            owned.insert(partition, Ownership::Loading { epoch });
        }
        let shard = shard.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let log = shard.runtime().log.clone();
            let replayed = tokio::task::spawn_blocking(move || {
                replay_partition::<S::Replay>(log.as_ref(), partition)
            })
            .await;
            let replayed = match replayed {
                Ok(Ok(replay)) => Ok(replay),
                Ok(Err(error)) => Err(LoadError::from(error)),
                Err(error) => Err(LoadError::from(error)),
            };
            if let Some(keys) = Runtime::finish_load(shard.as_ref(), partition, epoch, replayed) {
                tracing::info!(
                    coordinator = S::NAME,
                    partition,
                    epoch,
                    keys,
                    elapsed = ?started.elapsed(),
                    "loaded a coordinator partition"
                );
            }
        });
    }

    /// Ends a background load of `partition` for `epoch`: installs what it replayed if the
    /// partition is still loading at that epoch, or forgets the load when it failed so the
    /// next request starts another. Returns how many keys were installed.
    fn finish_load<S: Shard>(
        shard: &S,
        partition: i32,
        epoch: i32,
        replayed: Result<S::Replay, LoadError>,
    ) -> Option<usize> {
        let loading = Ownership::Loading { epoch };
        match replayed {
            Ok(replay) => {
                match Runtime::install(shard, partition, epoch, replay, |o| o == Some(loading)) {
                    Installed::Now(keys) => Some(keys),
                    Installed::Already | Installed::Unwanted => None,
                }
            }
            Err(error) => {
                tracing::error!(
                    coordinator = S::NAME,
                    partition,
                    %error,
                    "cannot load a coordinator partition; retrying at the next request"
                );
                let mut owned = shard.runtime().owned.write();
                if owned.get(&partition) == Some(&loading) {
                    owned.remove(&partition);
                }
                None
            }
        }
    }

    /// Installs the state replayed from `partition` and serves it at `epoch`, when `wanted`
    /// accepts the partition's ownership then: all under one lock of the ownership map, so
    /// nothing can unload the partition between the check and the install.
    fn install<S: Shard>(
        shard: &S,
        partition: i32,
        epoch: i32,
        replay: S::Replay,
        wanted: impl Fn(Option<Ownership>) -> bool,
    ) -> Installed {
        let mut owned = shard.runtime().owned.write();
        let current = owned.get(&partition).copied();
        if current == Some(Ownership::Loaded { epoch }) {
            return Installed::Already;
        }
        if !wanted(current) {
            return Installed::Unwanted;
        }
        Runtime::drop_partition(shard, &mut owned, partition);
        if replay.skipped() > 0 {
            tracing::warn!(
                coordinator = S::NAME,
                partition,
                skipped = replay.skipped(),
                "records not understood while loading"
            );
        }
        let keys = shard.install(partition, replay);
        owned.insert(partition, Ownership::Loaded { epoch });
        Installed::Now(keys)
    }

    /// Stops serving `partition`: its state leaves memory; requests on its keys answer
    /// NOT_COORDINATOR from their next check on.
    fn unload<S: Shard>(shard: &S, partition: i32) {
        let mut owned = shard.runtime().owned.write();
        if owned.contains_key(&partition) {
            Runtime::drop_partition(shard, &mut owned, partition);
        }
    }

    /// Forgets `partition`'s ownership and drops its state (the caller holds `owned`).
    fn drop_partition<S: Shard>(shard: &S, owned: &mut HashMap<i32, Ownership>, partition: i32) {
        owned.remove(&partition);
        let keys = shard.unload(partition);
        if keys > 0 {
            tracing::info!(
                coordinator = S::NAME,
                partition,
                keys,
                "unloaded a coordinator partition: leadership moved"
            );
        }
    }

    /// Makes `partition` look owned as `ownership`, bypassing leadership (tests of a shard's
    /// answers while loading).
    #[cfg(test)]
    pub(crate) fn set_ownership(&self, partition: i32, ownership: Ownership) {
        self.owned.write().insert(partition, ownership);
    }
}

/// Reads `partition` from its start and replays every record.
pub(crate) fn replay_partition<R: Replay>(
    log: &dyn CoordinatorLog,
    partition: i32,
) -> Result<R, LogError> {
    let mut replay = R::default();
    let mut offset = 0;
    loop {
        let chunk = log.read(partition, offset)?;
        for record in &chunk.records {
            replay.apply(record);
        }
        if chunk.at_end || chunk.next_offset <= offset {
            break;
        }
        offset = chunk.next_offset;
    }
    Ok(replay)
}

#[cfg(test)]
mod tests;
/// Deadlines by key, fired by one task per shard.
pub(crate) mod timer;
