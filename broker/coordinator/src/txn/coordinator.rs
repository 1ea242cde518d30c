//! The transaction coordinator (KIP-98): binds transactional ids to producer ids and
//! epochs, tracks the partitions and group offsets of each open transaction, and ends
//! transactions by writing COMMIT or ABORT markers to every partition they touched (and
//! committing their offsets). Transactions that outlive their timeout are aborted with an
//! epoch bump that fences the producer, on the runtime's timer (see [`deadlines`]).
//!
//! A transactional id is coordinated by the leader of its `__transaction_state` partition,
//! as in Kafka: the coordinator is a shard of the coordinator [`Runtime`], which loads and
//! unloads those partitions (see [`shard`]). Every change is appended to that partition (see
//! [`super::records`]) and durable before it is acted on or answered, so a new leader, or this
//! broker after a crash, finishes what was prepared. Requests of one transactional id run one
//! at a time under that id's async lock; different ids proceed in parallel.

mod deadlines;
#[cfg(test)]
mod fixtures;
mod migrate;
mod shard;

use kafka_protocol::error::ResponseError;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::config::TxnConfig;
use super::host::{TxnHost, MARKER_TIMEOUT};
use super::metadata::{EndV2, PendingOffset, TxnMetadata, TxnState};
use super::records::{encode_value, txn_key};
use super::store::TxnMap;
use crate::log::CoordinatorLog;
use crate::offset_commit::CommitOffset;
use crate::runtime::timer::Timers;
use crate::Runtime;
use deadlines::{is_due, TxnTimer, RETRY_MS};
use tributary_storage::clock::now_ms;
use tributary_storage::{Marker, ProducerRef};

pub use migrate::Legacy;

/// The wall clock (ms) transactions are timed by: the broker's, or one a test steps.
type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What the produce path and OffsetFetch check of a transactional producer without waiting
/// for its id's lock.
#[derive(Debug, Default)]
struct ProducerView {
    epoch: i16,
    /// Whether a transaction is open (partitions may be written).
    open: bool,
    partitions: HashSet<(String, i32)>,
}

/// Coordinator of the transactional ids whose `__transaction_state` partitions this broker
/// leads.
pub struct TransactionCoordinator {
    config: TxnConfig,
    /// The `__transaction_state` partitions served here (led by this broker), and the log.
    /// Held while the state of a broker from before the topic is being moved into it: every
    /// id answers COORDINATOR_LOAD_IN_PROGRESS meanwhile.
    runtime: Runtime,
    /// Every id of the loaded partitions. Locked briefly, never across an await; taken after
    /// the runtime's ownership lock when both are.
    state: Mutex<TxnMap>,
    /// One async lock per transactional id.
    id_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Every transactional producer of the loaded ids by producer id; taken after `state`.
    producers: RwLock<HashMap<i64, ProducerView>>,
    clock: Clock,
    /// The ids' deadlines, fired by [`TransactionCoordinator::run_timers`].
    timers: Arc<Timers<TxnTimer>>,
    /// The earliest entry pending on `timers` for each id, so an entry is only added when it
    /// comes earlier. Taken last.
    scheduled: Mutex<HashMap<String, i64>>,
}

impl TransactionCoordinator {
    /// A coordinator keeping its state in `log`. Nothing is served until
    /// [`TransactionCoordinator::start`].
    pub fn new(config: TxnConfig, log: Arc<dyn CoordinatorLog>) -> TransactionCoordinator {
        TransactionCoordinator::with_clock(config, log, Arc::new(now_ms))
    }

    /// A coordinator timing transactions by `clock` (wall ms).
    fn with_clock(
        config: TxnConfig,
        log: Arc<dyn CoordinatorLog>,
        clock: Clock,
    ) -> TransactionCoordinator {
        let runtime = Runtime::new(log, config.topic_partitions);
        TransactionCoordinator {
            config,
            runtime,
            state: Mutex::new(TxnMap::new()),
            id_locks: Mutex::new(HashMap::new()),
            producers: RwLock::new(HashMap::new()),
            clock,
            timers: Arc::new(Timers::default()),
            scheduled: Mutex::new(HashMap::new()),
        }
    }

    /// Now on the clock transactions are timed by.
    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Moves `legacy` state into the topic first if there is some, then loads the partitions
    /// led here. Needs a Tokio runtime. Transactions are timed out once
    /// [`TransactionCoordinator::run_timers`] runs.
    pub fn start(self: &Arc<Self>, legacy: Option<Legacy>) {
        match legacy {
            Some(legacy) => {
                self.runtime.hold();
                tokio::spawn(migrate::run(self.clone(), legacy));
            }
            None => self.sync_leadership(),
        }
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        self.runtime.partition_for(transactional_id)
    }

    /// FindCoordinator for a transactional id: makes sure the topic exists and returns the
    /// broker leading the id's partition, which coordinates it.
    pub fn find(&self, transactional_id: &str) -> Result<i32, ResponseError> {
        self.runtime.find(transactional_id)
    }

    /// Brings every `__transaction_state` partition in line with the current leaderships:
    /// loads the ones led here, unloads the others. Run at start and whenever the cluster
    /// metadata changes.
    pub fn sync_leadership(self: &Arc<Self>) {
        Runtime::sync_leadership(self);
    }

    /// Whether any partition led here is still loading, or the migration still runs
    /// (ListTransactions answers COORDINATOR_LOAD_IN_PROGRESS then, as Kafka does).
    pub fn is_loading(&self) -> bool {
        self.runtime.is_loading()
    }

    /// Whether this broker coordinates `transactional_id` now: the leader epoch its partition
    /// is served at, or NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS (Kafka's
    /// `getTransactionState` checks).
    fn check(self: &Arc<Self>, transactional_id: &str) -> Result<i32, ResponseError> {
        Runtime::serve_key(self, transactional_id)
    }

    /// InitProducerId for a transactional id: a new producer id, or the existing one with a
    /// bumped epoch that fences older instances; an open transaction is aborted first.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        host: &dyn TxnHost,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerRef>,
    ) -> Result<ProducerRef, ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        self.check(transactional_id)?;
        let now = self.now();
        let _serial = self.lock_id(transactional_id).await;
        let Some(mut txn) = self.get(transactional_id) else {
            let id = next_producer_id(host).await?;
            let txn = TxnMetadata::new(id, timeout_ms, now);
            let result = ProducerRef { id, epoch: 0 };
            self.save(transactional_id, txn).await?;
            return Ok(result);
        };
        if matches!(txn.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            // The last end is still being completed; the client retries.
            return Err(ResponseError::ConcurrentTransactions);
        }
        if let Some(expected) = expected {
            if expected.id != txn.producer_id {
                return Err(ResponseError::ProducerFenced);
            }
            if expected.epoch == txn.last_producer_epoch && txn.state != TxnState::Ongoing {
                // A retry of the bump that made the current epoch, or the producer whose
                // transaction timed out (KIP-360): it gets the current epoch.
                return Ok(ProducerRef {
                    id: txn.producer_id,
                    epoch: txn.producer_epoch,
                });
            }
            if expected.epoch != txn.producer_epoch {
                return Err(ResponseError::ProducerFenced);
            }
        }
        let mut previous = txn.producer_epoch;
        let bumped = bump_epoch(&mut txn);
        if txn.state == TxnState::Ongoing {
            // Fence the old instance with the bumped epoch its abort markers carry.
            let completed = self
                .finish(host, transactional_id, txn.clone(), false)
                .await?;
            if !completed {
                return Err(ResponseError::ConcurrentTransactions);
            }
            txn = self.get(transactional_id).unwrap_or(txn);
        }
        if !bumped {
            // Epochs exhausted: a new producer id, after the old one's markers were written
            // with it; the old id is forgotten, so its instances can no longer write.
            self.producers.write().remove(&txn.producer_id);
            txn.producer_id = next_producer_id(host).await?;
            txn.producer_epoch = 0;
            previous = -1;
        }
        txn.timeout_ms = timeout_ms;
        txn.last_producer_epoch = previous;
        txn.transaction_version = 0;
        txn.updated_ms = now;
        let result = ProducerRef {
            id: txn.producer_id,
            epoch: txn.producer_epoch,
        };
        self.save(transactional_id, txn).await?;
        Ok(result)
    }

    /// AddPartitionsToTxn: the partitions join the transaction (opening it if needed).
    pub async fn add_partitions(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerRef,
        partitions: &[(String, i32)],
    ) -> Result<(), ResponseError> {
        self.join(transactional_id, producer, |txn| {
            txn.partitions.extend(partitions.iter().cloned())
        })
        .await
    }

    /// AddPartitionsToTxn v4+ with `verify_only` (KIP-890), asked by a partition leader about
    /// to append the producer's first transactional batch there: for each partition, whether
    /// it is in the producer's ongoing transaction. Nothing is added. A transaction being
    /// ended answers CONCURRENT_TRANSACTIONS (its markers are on their way), another producer
    /// of the id INVALID_PRODUCER_ID_MAPPING and another epoch PRODUCER_FENCED, as Kafka's
    /// `handleVerifyPartitionsInTransaction` does.
    pub fn verify_partitions(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerRef,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, ResponseError> {
        self.check(transactional_id)?;
        let txn = self
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        verified_partitions(&txn, producer, partitions)
    }

    /// AddOffsetsToTxn: the group's offsets will be committed with the transaction. Its
    /// `__consumer_offsets` partition (`offsets_partition`) joins the transaction, as in
    /// Kafka: the group coordinator writes TxnOffsetCommit's offsets there as transactional
    /// records, and the transaction's marker there decides whether they count.
    pub async fn add_offsets(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerRef,
        group_id: &str,
        offsets_partition: (String, i32),
    ) -> Result<(), ResponseError> {
        self.join(transactional_id, producer, |txn| {
            txn.groups.insert(group_id.to_string());
            txn.partitions.insert(offsets_partition);
        })
        .await
    }

    /// Whether this broker coordinates `transactional_id` now.
    pub fn coordinates(self: &Arc<Self>, transactional_id: &str) -> bool {
        self.check(transactional_id).is_ok()
    }

    /// Opens the transaction if needed and applies `add`, saving only what changed.
    async fn join(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerRef,
        add: impl FnOnce(&mut TxnMetadata),
    ) -> Result<(), ResponseError> {
        self.check(transactional_id)?;
        let _serial = self.lock_id(transactional_id).await;
        let mut txn = self.current(transactional_id, producer)?;
        let now = self.now();
        let before = txn.clone();
        txn.begin(now)?;
        add(&mut txn);
        if txn != before {
            txn.updated_ms = now;
            self.save(transactional_id, txn).await?;
        }
        Ok(())
    }

    /// EndTxn before v5: commits or aborts the open transaction; a retried end that already
    /// completed is answered with success.
    pub async fn end_txn(
        self: &Arc<Self>,
        host: &dyn TxnHost,
        transactional_id: &str,
        producer: ProducerRef,
        commit: bool,
    ) -> Result<(), ResponseError> {
        self.check(transactional_id)?;
        let _serial = self.lock_id(transactional_id).await;
        let mut txn = self.current(transactional_id, producer)?;
        if !txn.end_decision(commit)? {
            return Ok(());
        }
        txn.transaction_version = 0;
        // Once the decision is saved the end happens, now or on a later retry.
        self.finish(host, transactional_id, txn, commit)
            .await
            .map(|_| ())
    }

    /// EndTxn v5 (transactions v2, KIP-890 part 2): every end bumps the producer epoch (to a
    /// new producer id once the epochs are exhausted), the markers carry the bumped epoch, and
    /// the answer is the producer the client continues with. A retry of a completed end is
    /// answered with it too; an end from an older epoch is fenced
    /// ([`TxnMetadata::end_decision_v2`]).
    pub async fn end_txn_v2(
        self: &Arc<Self>,
        host: &dyn TxnHost,
        transactional_id: &str,
        producer: ProducerRef,
        commit: bool,
    ) -> Result<ProducerRef, ResponseError> {
        self.check(transactional_id)?;
        let _serial = self.lock_id(transactional_id).await;
        let mut txn = self
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        match txn.end_decision_v2((producer.id, producer.epoch), commit)? {
            EndV2::Retried => return Ok(continuing(&txn)),
            EndV2::Finish | EndV2::EmptyAbort => {}
        }
        if txn.producer_epoch >= i16::MAX - 1 {
            // The bump takes the last epoch: the transaction completes with a new producer id.
            txn.next_producer_id = next_producer_id(host).await?;
        }
        txn.last_producer_epoch = txn.producer_epoch;
        txn.producer_epoch = txn.producer_epoch.saturating_add(1);
        txn.transaction_version = 2;
        self.finish(host, transactional_id, txn.clone(), commit)
            .await?;
        Ok(continuing(&txn))
    }

    /// Every transactional id this broker coordinates, with its metadata, in id order
    /// (ListTransactions).
    pub fn snapshot(&self) -> Vec<(String, TxnMetadata)> {
        self.state
            .lock()
            .iter()
            .map(|(id, txn)| (id.clone(), txn.clone()))
            .collect()
    }

    /// DescribeTransactions of one id: its metadata (`None` when unknown), or why this broker
    /// cannot say.
    pub fn describe(
        self: &Arc<Self>,
        transactional_id: &str,
    ) -> Result<Option<TxnMetadata>, ResponseError> {
        self.check(transactional_id)?;
        Ok(self.get(transactional_id))
    }

    /// Whether this broker coordinates producer `id`'s transactions (holds its state), so
    /// [`TransactionCoordinator::check_produce`] can judge its writes.
    pub fn coordinates_producer(&self, id: i64) -> bool {
        self.producers.read().contains_key(&id)
    }

    /// Whether a transactional batch may be written: its producer's transaction is open with
    /// this epoch and has added the partition. A partition not in the transaction is
    /// TRANSACTION_ABORTABLE, as Kafka's verification answers it (the produce handler gives
    /// clients older than the error INVALID_TXN_STATE).
    pub fn check_produce(
        &self,
        producer: ProducerRef,
        topic: &str,
        partition: i32,
    ) -> Result<(), ResponseError> {
        let producers = self.producers.read();
        let Some(txn) = producers.get(&producer.id) else {
            return Err(ResponseError::InvalidTxnState);
        };
        if producer.epoch != txn.epoch {
            // A fenced (or impossible) instance: clients treat this as fatal, as they must.
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if !txn.open || !txn.partitions.contains(&(topic.to_string(), partition)) {
            return Err(ResponseError::TransactionAbortable);
        }
        Ok(())
    }

    /// At once, what the timer does when each deadline comes: aborts transactions past their
    /// timeout (bumping the epoch, which fences the producer until it re-initializes),
    /// finishes ends that could not complete earlier, and forgets ids idle for
    /// transactional.id.expiration.ms.
    pub async fn expire(self: &Arc<Self>, host: &dyn TxnHost) {
        for id in self.ids_where(is_due) {
            self.end_if_due(host, &id).await;
        }
        self.forget_idle().await;
    }

    /// The transactional ids whose metadata passes `test` now.
    fn ids_where(&self, test: impl Fn(&TxnMetadata, i64) -> bool) -> Vec<String> {
        let now = self.now();
        let state = self.state.lock();
        state
            .iter()
            .filter(|(_, t)| test(t, now))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Forgets transactional ids without an open transaction whose last change is older than
    /// the expiration, as Kafka does; their producers can no longer end anything here.
    async fn forget_idle(self: &Arc<Self>) {
        let expiration = self.config.id_expiration_ms;
        let idle = |t: &TxnMetadata, now: i64| {
            matches!(
                t.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            ) && now.saturating_sub(t.updated_ms) >= expiration
        };
        for id in self.ids_where(idle) {
            let serial = self.lock_id(&id).await;
            // Looked at again under the id's lock: a request may have used it meanwhile.
            let Some(txn) = self.get(&id).filter(|t| idle(t, self.now())) else {
                continue;
            };
            // A tombstone: compaction removes the id from the topic too.
            if self.write(&id, None).await.is_err() {
                continue;
            }
            tracing::info!(transactional_id = %id, "transactional id expired");
            self.producers.write().remove(&txn.producer_id);
            let mut locks = self.id_locks.lock();
            // Only when nobody else waits on it, so one id never has two locks.
            if locks.get(&id).is_some_and(|l| Arc::strong_count(l) == 2) {
                locks.remove(&id);
            }
            drop(serial);
        }
    }

    /// Saves the decision (a Prepare state), then writes the markers (and on commit the
    /// offsets) and completes `txn`. `Ok(false)`: the decision is saved but the rest failed
    /// and is retried on the timer (see [`deadlines`]).
    async fn finish(
        self: &Arc<Self>,
        host: &dyn TxnHost,
        transactional_id: &str,
        mut txn: TxnMetadata,
        commit: bool,
    ) -> Result<bool, ResponseError> {
        let prepared = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if txn.state != prepared {
            txn.state = prepared;
            txn.markers_written = false;
            txn.updated_ms = self.now();
            self.save(transactional_id, txn.clone()).await?;
        }
        if !txn.markers_written {
            if let Err(error) = write_markers(host, &txn, commit).await {
                tracing::warn!(
                    transactional_id,
                    ?error,
                    "transaction markers will be retried"
                );
                return Ok(false);
            }
            txn.markers_written = true;
        }
        // Offsets this coordinator holds itself come only from states earlier releases wrote;
        // now they are in `__consumer_offsets`, committed by the marker.
        if commit {
            if let Err(error) = commit_offsets(host, &txn.pending_offsets).await {
                tracing::warn!(
                    transactional_id,
                    ?error,
                    "transaction offsets will be retried"
                );
                // Remember the markers, so the retry only commits the offsets.
                self.save(transactional_id, txn).await?;
                return Ok(false);
            }
        }
        txn.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        txn.partitions.clear();
        txn.groups.clear();
        txn.pending_offsets.clear();
        txn.markers_written = false;
        txn.updated_ms = self.now();
        if txn.next_producer_id >= 0 {
            // Transactions v2 past the last epoch: the markers went out with the old id, the
            // client continues with the new one (a retry with the old id is still answered).
            self.producers.write().remove(&txn.producer_id);
            txn.previous_producer_id = txn.producer_id;
            txn.producer_id = txn.next_producer_id;
            txn.next_producer_id = -1;
            txn.producer_epoch = 0;
            txn.last_producer_epoch = -1;
        }
        self.save(transactional_id, txn).await?;
        Ok(true)
    }

    /// Makes `txn` the state of `transactional_id` once its record is durable.
    async fn save(
        self: &Arc<Self>,
        transactional_id: &str,
        txn: TxnMetadata,
    ) -> Result<(), ResponseError> {
        self.write(transactional_id, Some(txn)).await
    }

    /// Appends `txn` (`None`: a tombstone) to the id's partition, waits until it is committed
    /// and durable, then makes it current. Only while this broker leads the partition at the
    /// epoch it loaded (a replica that no longer acts as leader refuses the append too); on
    /// failure the previous state stays.
    async fn write(
        self: &Arc<Self>,
        transactional_id: &str,
        txn: Option<TxnMetadata>,
    ) -> Result<(), ResponseError> {
        let partition = self.partition_for(transactional_id);
        let epoch = Runtime::serve(self, partition)?;
        let entries = [(txn_key(transactional_id), txn.as_ref().map(encode_value))];
        let written = match self.runtime.log().append(
            partition,
            &entries,
            None,
            now_ms(),
            self.config.write_timeout,
        ) {
            Ok(appended) => appended.durable.await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            tracing::warn!(transactional_id, partition, %error, "transaction state not written");
            return Err(error.state_write_code());
        }
        // Leadership may have moved meanwhile: then the new coordinator reads the record from
        // the log, and this one answers NOT_COORDINATOR.
        self.runtime
            .if_loaded(partition, epoch, || {
                let mut state = self.state.lock();
                match txn {
                    Some(txn) => {
                        self.publish(&txn);
                        // Its deadline: an open transaction's timeout, or a retry of the
                        // end in case the request making it is dropped before it completes.
                        self.schedule(transactional_id, &txn, self.now().saturating_add(RETRY_MS));
                        state.insert(transactional_id.to_string(), txn);
                    }
                    None => {
                        state.remove(transactional_id);
                    }
                }
            })
            .ok_or(ResponseError::NotCoordinator)
    }

    /// The current metadata of `transactional_id`.
    fn get(&self, transactional_id: &str) -> Option<TxnMetadata> {
        self.state.lock().get(transactional_id).cloned()
    }

    /// The transaction of `transactional_id` if `producer` is its current instance.
    fn current(
        &self,
        transactional_id: &str,
        producer: ProducerRef,
    ) -> Result<TxnMetadata, ResponseError> {
        let txn = self
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        txn.check_producer(producer.id, producer.epoch)?;
        Ok(txn)
    }

    /// What replaying every partition of the log gives now (tests compare it with memory).
    #[cfg(any(test, feature = "test-support"))]
    pub fn state_in_log(&self) -> TxnMap {
        let log = self.runtime.log();
        let mut all = TxnMap::new();
        for partition in 0..log.partitions().unwrap_or(0) {
            let replay: shard::Replay = crate::runtime::replay_partition(log.as_ref(), partition)
                .expect("replay a partition");
            all.extend(replay.into_txns());
        }
        all
    }

    /// Waits for the lock serializing the requests of `transactional_id`.
    async fn lock_id(&self, transactional_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .id_locks
            .lock()
            .entry(transactional_id.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Mirrors `txn` into the lock-free view the produce path reads.
    fn publish(&self, txn: &TxnMetadata) {
        self.producers
            .write()
            .insert(txn.producer_id, producer_view(txn));
    }
}

/// What the produce path needs of `txn`.
fn producer_view(txn: &TxnMetadata) -> ProducerView {
    ProducerView {
        epoch: txn.producer_epoch,
        open: txn.state == TxnState::Ongoing,
        partitions: txn.partitions.iter().cloned().collect(),
    }
}

/// The producer a client continues with after a transactions v2 end of `txn`: the new
/// producer id once the prepared end completes, else the current one.
fn continuing(txn: &TxnMetadata) -> ProducerRef {
    if txn.next_producer_id >= 0 {
        ProducerRef {
            id: txn.next_producer_id,
            epoch: 0,
        }
    } else {
        ProducerRef {
            id: txn.producer_id,
            epoch: txn.producer_epoch,
        }
    }
}

/// Moves to the next epoch; false when the epochs are exhausted (the caller moves to a new
/// producer id once the current one's markers are written).
fn bump_epoch(txn: &mut TxnMetadata) -> bool {
    if txn.producer_epoch >= i16::MAX - 1 {
        return false;
    }
    txn.producer_epoch += 1;
    true
}

async fn next_producer_id(host: &dyn TxnHost) -> Result<i64, ResponseError> {
    host.next_producer_id().await
}

/// Appends the marker to every partition of the transaction and waits until all are
/// committed. A partition that refuses the marker's epoch already holds it or a later end
/// (an earlier attempt of this end wrote it there), so, as Kafka's coordinator does, it is
/// left as done.
async fn write_markers(
    host: &dyn TxnHost,
    txn: &TxnMetadata,
    commit: bool,
) -> Result<(), ResponseError> {
    let now = now_ms();
    let marker = Marker {
        producer: ProducerRef {
            id: txn.producer_id,
            epoch: txn.producer_epoch,
        },
        commit,
        transaction_version: i8::try_from(txn.transaction_version).unwrap_or(0),
    };
    let mut writes = Vec::with_capacity(txn.partitions.len());
    for (topic, index) in &txn.partitions {
        // A partition deleted since it was added has nothing left to mark.
        match host.append_marker(topic, *index, marker, now) {
            Ok(Some(write)) => writes.push((topic, *index, write)),
            Ok(None) => {}
            Err(error) => already_marked(error, topic, *index)?,
        }
    }
    for (topic, index, write) in writes {
        if let Err(error) = write.committed(MARKER_TIMEOUT).await {
            already_marked(error, topic, index)?;
        }
    }
    Ok(())
}

/// `Ok` when a partition's refusal of a marker says it already holds it (INVALID_PRODUCER_EPOCH);
/// any other refusal fails the end, which is retried.
fn already_marked(error: ResponseError, topic: &str, partition: i32) -> Result<(), ResponseError> {
    if error == ResponseError::InvalidProducerEpoch {
        tracing::info!(
            topic,
            partition,
            "a marker refused for its epoch is already written"
        );
        return Ok(());
    }
    Err(error)
}

/// Commits the transaction's offsets, group by group.
async fn commit_offsets(
    host: &dyn TxnHost,
    pending: &[PendingOffset],
) -> Result<(), ResponseError> {
    let mut by_group: HashMap<&str, Vec<CommitOffset>> = HashMap::new();
    for o in pending {
        by_group.entry(&o.group).or_default().push(CommitOffset {
            topic: o.topic.clone(),
            partition: o.partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch,
            metadata: o.metadata.clone(),
        });
    }
    for (group, offsets) in by_group {
        host.commit_offsets(group, offsets).await?;
    }
    Ok(())
}

/// Which of `partitions` are in `txn`'s ongoing transaction, if `producer` is its current
/// instance (the pure part of [`TransactionCoordinator::verify_partitions`]).
fn verified_partitions(
    txn: &TxnMetadata,
    producer: ProducerRef,
    partitions: &[(String, i32)],
) -> Result<Vec<bool>, ResponseError> {
    if txn.producer_id != producer.id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if txn.producer_epoch != producer.epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if matches!(txn.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
        return Err(ResponseError::ConcurrentTransactions);
    }
    let ongoing = txn.state == TxnState::Ongoing;
    Ok(partitions
        .iter()
        .map(|p| ongoing && txn.partitions.contains(p))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_being_ended_is_not_verified() {
        let mut txn = TxnMetadata::new(7, 60_000, 0);
        txn.state = TxnState::PrepareAbort;
        txn.partitions.insert(("t".into(), 0));
        let producer = ProducerRef { id: 7, epoch: 0 };
        assert_eq!(
            verified_partitions(&txn, producer, &[("t".into(), 0)]).err(),
            Some(ResponseError::ConcurrentTransactions)
        );
        txn.state = TxnState::Ongoing;
        assert_eq!(
            verified_partitions(&txn, producer, &[("t".into(), 0)]),
            Ok(vec![true])
        );
    }
}
