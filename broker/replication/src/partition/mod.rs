//! One partition replica as the request handlers see it: the log and producer state under one
//! lock, plus watch channels that wake long-polling fetches and acks=all producers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};

/// No fsync running.
const SYNC_IDLE: u8 = 0;
/// An fsync is running and covers every write so far.
const SYNC_RUNNING: u8 = 1;
/// An fsync is running and writes arrived after it started.
const SYNC_RUNNING_DIRTY: u8 = 2;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{watch, Notify};

use uuid::Uuid;

pub use crate::append_error::AppendError;
use crate::client_batch::{self, CheckedBatch, ClientBatchRules};
use crate::producer::{
    BatchIdentity, ProducerSnapshot, ProducerStateTable, ProducerSummary, SequenceCheck,
    SequenceError, TxnIndex, VerificationGuard,
};
pub use crate::role::Role;
use tributary_storage::codec::CompressionPolicy;
use tributary_storage::journal::{JournaledBatches, Replay};
use tributary_storage::{
    marker_batch, marker_is_commit, AbortedRange, BatchView, CleanerTxns, CompactionOutcome,
    FlushDue, LogConfig, PartitionLog, PendingSync, ReadPlan, SplitBatch, StorageError,
};

/// What an acknowledgement of a write waits for, beyond the in-sync replicas having it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written to the log (the page cache): acks=1, and acks=all with fsync off.
    Written,
    /// Fsynced or in the commit journal.
    Synced,
}

/// Why waiting for a write to be committed ended without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommitWaitError {
    /// The deadline passed first.
    #[error("the write was not committed within {0:?}")]
    TimedOut(std::time::Duration),
    /// The partition was deleted while the write waited.
    #[error("the partition was deleted before the write was committed")]
    Gone,
    /// Leadership moved before the in-sync replicas had the write: the new leader may not
    /// have it, so the writer retries there.
    #[error("leadership moved before the write was committed")]
    NotLeader,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    /// Offset of the first record (the original one for a duplicate).
    pub base_offset: i64,
    /// Offset after the last record written by this call; what acks=all waits to be durable.
    pub end_offset: i64,
    /// Broker time stamped on LogAppendTime topics, else -1.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// Records newly written (0 when every batch was a duplicate).
    pub records: i64,
    /// When the writes so far need an fsync if no producer waits for one.
    pub flush: FlushDue,
    /// The batches went to the commit journal: the next journal round makes them durable.
    pub journaled: bool,
}

/// Data and positions returned to a fetch: its record batches read into memory (`Bytes`), or
/// planned on their segment file ([`ReadPlan`]) to be read or sent from it later.
#[derive(Debug, Clone)]
pub struct FetchedData<R = Bytes> {
    /// Whole record batches (possibly empty, never absent).
    pub records: R,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Last stable offset: below it no transaction is open.
    pub last_stable_offset: i64,
    /// Aborted transactions within the returned records (READ_COMMITTED reads only).
    pub aborted: Vec<AbortedRange>,
}

/// A partition as tiered storage sees it (see [`Partition::tiering_view`]).
#[derive(Debug, Clone)]
pub struct TieringView {
    /// Local segments, oldest first, the active one last.
    pub segments: Vec<tributary_storage::SegmentSummary>,
    /// Offset below which no record can be truncated or still be part of an open
    /// transaction.
    pub stable_end: i64,
    /// Leader epochs and their start offsets.
    pub epochs: Vec<(i32, i64)>,
    /// Aborted transactions in the range asked for.
    pub aborted: Vec<AbortedRange>,
    /// First offset of the local log.
    pub local_log_start: i64,
    /// The log's settings (retention, tiering).
    pub config: LogConfig,
}

/// What isolation a read asks for (the fetch's isolation_level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark.
    ReadUncommitted,
    /// Only up to the last stable offset, with the aborted transactions listed.
    ReadCommitted,
    /// Everything appended, committed or not (Kafka's `FetchIsolation.LOG_END`): what a new
    /// leader's coordinator replays. Its high watermark lags the previous leader's until the
    /// followers fetch again, and the records above it were committed there.
    LogEnd,
}

struct State {
    log: PartitionLog,
    producers: ProducerStateTable,
    txns: TxnIndex,
    journal: JournalChain,
    replication: replication::Replication,
    /// The commit journal's entries that did not continue the log at start-up, kept while
    /// the log awaits its remote log check: restarted after the remote end, it may continue
    /// with them (see [`remote_check`]).
    held_journal: JournaledBatches,
}

/// What [`Partition::open`] recovers a log with besides its files.
#[derive(Debug, Clone, Copy)]
pub struct Recovery<'a> {
    /// The commit journal's batches, re-appended past the log end.
    pub replay: &'a Replay,
    /// Whether the log may end before its remote log does (a tiered partition opened from
    /// disk: its directory lost, a new volume, a journal replay that stopped early): then the
    /// replica does not act as a leader until tiered storage has checked the log against the
    /// remote log metadata ([`Partition::finish_remote_check`]), and the journal's batches
    /// that did not continue the log are kept until then.
    pub awaits_remote_log: bool,
}

impl<'a> From<&'a Replay> for Recovery<'a> {
    fn from(replay: &'a Replay) -> Self {
        Recovery {
            replay,
            awaits_remote_log: false,
        }
    }
}

/// This partition's share of the commit journal (see [`tributary_storage::journal`]).
#[derive(Debug, Default)]
struct JournalChain {
    /// Everything below this offset is fsynced or journaled (or queued for the next round);
    /// appends continue the chain only from here, so replay never meets a gap.
    end: i64,
    /// Batches appended since the last journal round took them: (base offset, batch).
    queued: Vec<(i64, SplitBatch)>,
}

impl State {
    /// The high watermark, held back by the oldest open transaction.
    fn last_stable_offset(&self) -> i64 {
        let hw = self.log.high_watermark();
        let first_unstable = self.txns.first_unstable_offset();
        // An open transaction whose start was removed (retention, DeleteRecords) holds the
        // stable offset at the log start, not below it.
        first_unstable.map_or(hw, |f| f.max(self.log.log_start_offset()).min(hw))
    }
}

/// One partition of a topic hosted by this broker.
pub struct Partition {
    topic: String,
    topic_id: Uuid,
    index: i32,
    dir: PathBuf,
    /// Leader or follower, and the epoch; read under the state lock by writers, so a write
    /// never lands after a change of role.
    role: RwLock<Role>,
    state: Mutex<State>,
    /// High watermark; fetches waiting for data watch it.
    high_watermark: watch::Sender<i64>,
    /// The leader's log end; its followers' fetches waiting for data watch it.
    log_end: watch::Sender<i64>,
    /// Offset below which everything is durable (fsynced or journaled); acks=all producers
    /// wait for it through `durable_changed`.
    durable: AtomicI64,
    durable_changed: Notify,
    /// Group-commit state: idle, syncing, or syncing with newer writes waiting.
    sync_state: AtomicU8,
    /// A deferred fsync (flush.ms) is scheduled.
    flush_scheduled: AtomicBool,
    /// The partition waits in the flusher's queue for a journal round.
    journal_requested: AtomicBool,
    /// What the topic's configs ask of client batches.
    rules: RwLock<ClientBatchRules>,
    /// The topic's `min.insync.replicas`, resolved at each config change (acks=all writes
    /// read it on every append).
    min_insync_replicas: AtomicUsize,
    /// The topic was deleted: requests holding this partition stop waiting on it and let it
    /// go, so its files close with the last reference.
    deleted: AtomicBool,
    /// The broker's self-fence: while raised, this replica does not act as a leader.
    fence: std::sync::OnceLock<std::sync::Arc<crate::fence::Fence>>,
    /// Set while the log awaits its check against the remote log metadata (a tiered
    /// partition opened from disk): meanwhile this replica does not act as a leader.
    awaits_remote_log: AtomicBool,
}

/// A topic's configuration as its partitions run with it, resolved once per change of the
/// topic's overrides or the broker's defaults, so no append parses a config string.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    /// What the log runs with: segments, retention, compaction, limits.
    pub log: LogConfig,
    /// `compression.type`.
    pub compression: CompressionPolicy,
    /// `min.insync.replicas` (at least 1).
    pub min_insync_replicas: usize,
}

impl From<LogConfig> for TopicSettings {
    /// A log's settings with Kafka's defaults for the rest (the producer's compression,
    /// `min.insync.replicas` 1).
    fn from(log: LogConfig) -> TopicSettings {
        TopicSettings {
            log,
            compression: CompressionPolicy::Producer,
            min_insync_replicas: 1,
        }
    }
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Partition({}-{})", self.topic, self.index)
    }
}

impl Partition {
    /// Opens (recovering) the log in `dir` with the topic's `settings`, re-appends what the
    /// commit journal holds beyond its end, and rebuilds producer state from it; see
    /// [`Recovery`] for a log that awaits its remote log check.
    pub fn open<'a>(
        dir: &Path,
        topic: (&str, Uuid),
        index: i32,
        role: Role,
        settings: TopicSettings,
        recovery: impl Into<Recovery<'a>>,
    ) -> Result<Partition, StorageError> {
        let Recovery {
            replay,
            awaits_remote_log,
        } = recovery.into();
        let (topic, topic_id) = topic;
        let TopicSettings {
            log: config,
            compression,
            min_insync_replicas,
        } = settings;
        let rules = RwLock::new(rules_for(&config, compression));
        let mut log = PartitionLog::open(dir, config)?;
        let journaled = replay
            .batches_from(topic_id, index, log.log_end_offset())
            .map_err(|source| StorageError::JournalRead { source })?;
        let replayed = log.replay_journaled(journaled, tributary_storage::clock::now_ms())?;
        if replayed.appended > 0 {
            // Durable before the journal's space is reused.
            log.flush()?;
        }
        let held_journal = if awaits_remote_log {
            replayed.rest
        } else {
            Vec::new()
        };
        if !held_journal.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                entries = held_journal.len(),
                "keeping the journaled batches until the remote log metadata is read"
            );
        }
        // What recovery kept is trusted; a follower's leader decides what to cut (KIP-101).
        let reopened = follower::reopened(&follower::LocalLog::of(&log));
        log.set_high_watermark(reopened.high_watermark);
        let end = log.log_end_offset();
        let (producers, txns) = rebuild_producer_state(&log, None)?;
        let journal = JournalChain {
            end: log.recovery_point(),
            queued: Vec::new(),
        };
        Ok(Partition {
            topic: topic.to_string(),
            topic_id,
            index,
            dir: dir.to_path_buf(),
            role: RwLock::new(role),
            high_watermark: watch::Sender::new(end),
            log_end: watch::Sender::new(end),
            durable: AtomicI64::new(end),
            durable_changed: Notify::new(),
            state: Mutex::new(State {
                log,
                producers,
                txns,
                journal,
                replication: replication::Replication::default(),
                held_journal,
            }),
            sync_state: AtomicU8::new(SYNC_IDLE),
            flush_scheduled: AtomicBool::new(false),
            journal_requested: AtomicBool::new(false),
            min_insync_replicas: AtomicUsize::new(min_insync_replicas.max(1)),
            rules,
            deleted: AtomicBool::new(false),
            fence: std::sync::OnceLock::new(),
            awaits_remote_log: AtomicBool::new(awaits_remote_log),
        })
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic's id.
    pub fn topic_id(&self) -> Uuid {
        self.topic_id
    }

    /// Partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// Current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.role.read().epoch()
    }

    /// Leader or follower, and at which epoch.
    pub fn role(&self) -> Role {
        *self.role.read()
    }

    /// Takes a new role, keeping the assignment and ISR held (see
    /// [`Partition::apply_leadership`], which the replica manager uses).
    pub fn set_role(&self, role: Role) {
        let current = {
            let state = self.state.lock();
            state.replication.leadership(role)
        };
        self.apply_leadership(current, tributary_storage::clock::now_ms());
    }

    /// Subjects this replica to the broker's self-fence (cluster mode).
    pub fn attach_fence(&self, fence: std::sync::Arc<crate::fence::Fence>) {
        let _ = self.fence.set(fence);
    }

    /// Whether this replica may act as the leader now: it leads, the broker is not fenced,
    /// and the log does not await its remote log check.
    pub fn acts_as_leader(&self) -> bool {
        self.role().is_leader() && !self.fenced() && !self.awaits_remote_log()
    }

    fn fenced(&self) -> bool {
        self.fence.get().is_some_and(|f| f.is_fenced())
    }

    /// The leader epoch to stamp writes with, or why this replica may not write.
    fn writable_epoch(&self) -> Result<i32, AppendError> {
        match *self.role.read() {
            Role::Leader { .. } if self.fenced() => Err(AppendError::Fenced),
            Role::Leader { .. } if self.awaits_remote_log() => Err(AppendError::AwaitingRemoteLog),
            Role::Leader { epoch } => Ok(epoch),
            role => Err(AppendError::NotLeader { role }),
        }
    }

    /// Appends batches the broker itself wrote (group metadata, offsets), checking headers,
    /// CRCs and idempotence but not the rules for client writes.
    pub fn append(&self, records: &[u8], now_ms: i64) -> Result<Appended, AppendError> {
        let batches = own_batches(records)?;
        self.append_checked(batches, now_ms, &|_, _| Ok(()), false)
    }

    /// Remembers that the produce data `records` was refused before its sequence could be
    /// checked (too few in-sync replicas), so the producer's later in-flight batches cannot
    /// land before its retry (see [`crate::producer::ProducerStateTable::note_refused`]).
    pub fn note_refused(&self, records: &[u8], now_ms: i64) {
        if let Ok(view) = tributary_storage::BatchView::header(records) {
            let identity = BatchIdentity::of(&view);
            self.state.lock().producers.note_refused(&identity, now_ms);
        }
    }

    /// Appends one partition's data of a produce request after Kafka's checks on client
    /// batches ([`client_batch`], outside the lock). Every transactional batch must first pass
    /// `verify` (the transaction coordinator's check, or the verification guard it left here,
    /// judged against this partition's open transactions), under the partition lock: a
    /// transaction's marker is appended under the same lock, so no batch of it can land after
    /// its marker. With `journal`, the batches also go to the commit journal's queue if
    /// everything before them is durable or journaled (see [`Appended::journaled`]).
    pub fn append_verified(
        &self,
        records: &Bytes,
        now_ms: i64,
        verify: &dyn Fn(&BatchIdentity, &TxnIndex) -> Result<(), AppendError>,
        journal: bool,
    ) -> Result<Appended, AppendError> {
        let rules = *self.rules.read();
        let batch = client_batch::check(records, &rules, now_ms)?;
        self.append_checked(vec![batch], now_ms, verify, journal)
    }

    /// Starts verifying `producer_id`'s transaction on this partition (KIP-890): the guard its
    /// batches present to [`TxnIndex::admits`] once the coordinator confirmed the partition is
    /// in the transaction, or `None` when its transaction is already open here.
    pub fn start_verification(&self, producer_id: i64) -> Option<VerificationGuard> {
        self.state.lock().txns.start_verification(producer_id)
    }

    fn append_checked(
        &self,
        batches: Vec<CheckedBatch>,
        now_ms: i64,
        verify: &dyn Fn(&BatchIdentity, &TxnIndex) -> Result<(), AppendError>,
        journal: bool,
    ) -> Result<Appended, AppendError> {
        let mut state = self.state.lock();
        let epoch = self.writable_epoch()?;
        for batch in batches.iter().filter(|b| b.transactional) {
            verify(&batch.identity, &state.txns)?;
        }
        let start = state.log.log_end_offset();
        let journaled = journal && state.journal.end == start;
        let mut end_offset = start;
        let mut first: Option<Appended> = None;
        for CheckedBatch {
            identity,
            transactional,
            mut batch,
        } in batches
        {
            let appended = match state.producers.check(&identity, now_ms)? {
                SequenceCheck::Duplicate { base_offset } => Appended {
                    base_offset,
                    end_offset,
                    log_append_time: -1,
                    log_start_offset: state.log.log_start_offset(),
                    records: 0,
                    flush: FlushDue::Later,
                    journaled,
                },
                SequenceCheck::Append => {
                    let info = state.log.append_split(&mut batch, epoch, now_ms)?;
                    state.producers.record(&identity, info.base_offset);
                    if transactional {
                        state.txns.on_data(identity.producer_id, info.base_offset);
                    }
                    end_offset = info.last_offset + 1;
                    if journaled {
                        state.journal.queued.push((info.base_offset, batch));
                        state.journal.end = end_offset;
                    }
                    Appended {
                        base_offset: info.base_offset,
                        end_offset,
                        log_append_time: info.log_append_time,
                        log_start_offset: info.log_start_offset,
                        records: 0,
                        flush: FlushDue::Later,
                        journaled,
                    }
                }
            };
            first.get_or_insert(appended);
        }
        let flush = state.log.flush_due();
        self.recompute_high_watermark(state);
        let mut appended = first.ok_or(StorageError::EmptyAppend)?;
        appended.end_offset = end_offset;
        appended.records = end_offset - start;
        appended.flush = flush;
        Ok(appended)
    }

    /// The topic's `min.insync.replicas`: acks=all writes need that many in-sync replicas.
    pub fn min_insync_replicas(&self) -> usize {
        self.min_insync_replicas.load(Ordering::Acquire)
    }

    /// Reads whole batches from `offset` up to the high watermark.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        isolation: Isolation,
    ) -> Result<FetchedData, StorageError> {
        let planned = self.plan_read(offset, max_bytes, min_one_batch, isolation)?;
        self.load(planned)
    }

    /// [`Partition::read`] without reading: the batches as a range of their segment file,
    /// for [`Partition::load`] or to be sent from the file.
    pub fn plan_read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        isolation: Isolation,
    ) -> Result<FetchedData<ReadPlan>, StorageError> {
        let (plan, high_watermark, last_stable_offset, log_start_offset, txns) = {
            let state = self.state.lock();
            let hw = state.log.high_watermark();
            let lso = state.last_stable_offset();
            let limit = match isolation {
                Isolation::ReadUncommitted => hw,
                Isolation::ReadCommitted => lso,
                Isolation::LogEnd => state.log.log_end_offset(),
            };
            let plan = state
                .log
                .read_plan(offset, max_bytes, limit, min_one_batch)?;
            let aborted = match isolation {
                Isolation::ReadCommitted if !plan.is_empty() => {
                    state.txns.aborted_between(offset, lso)
                }
                _ => Vec::new(),
            };
            (plan, hw, lso, state.log.log_start_offset(), aborted)
        };
        // Only the aborted transactions the returned batches can hold matter to the reader.
        let aborted = if txns.is_empty() {
            txns
        } else {
            let end = plan.last_offset.map_or(offset, |last| last + 1);
            txns.into_iter().filter(|a| a.first_offset < end).collect()
        };
        Ok(FetchedData {
            records: plan,
            high_watermark,
            log_start_offset,
            last_stable_offset,
            aborted,
        })
    }

    /// Reads the batches `planned` names (see [`Partition::plan_read`]).
    pub fn load(&self, planned: FetchedData<ReadPlan>) -> Result<FetchedData, StorageError> {
        let records = planned
            .records
            .load()
            .map_err(|source| self.read_error(source))?;
        Ok(FetchedData {
            records,
            high_watermark: planned.high_watermark,
            log_start_offset: planned.log_start_offset,
            last_stable_offset: planned.last_stable_offset,
            aborted: planned.aborted,
        })
    }

    /// A failed read of a range planned from this partition's files, as a storage error.
    pub fn read_error(&self, source: std::io::Error) -> StorageError {
        StorageError::SegmentRead {
            path: self.dir.clone(),
            source,
        }
    }

    /// The producers that wrote here, with the start of their open transaction (-1 none).
    pub fn producers(&self) -> Vec<(ProducerSummary, i64)> {
        let state = self.state.lock();
        state
            .producers
            .summaries()
            .into_iter()
            .map(|p| (p, state.txns.open_since(p.producer_id).unwrap_or(-1)))
            .collect()
    }

    /// The last stable offset: the high watermark, held back by the oldest open transaction.
    pub fn last_stable_offset(&self) -> i64 {
        self.state.lock().last_stable_offset()
    }

    /// Ends the producer's transaction here with a COMMIT or ABORT marker (written by the
    /// transaction coordinator, or by an admin aborting a hanging transaction) and returns the
    /// offset after it, for waiting on durability. The marker's epoch fences older instances
    /// of the producer; a marker older than the producer's epoch here is refused, and at
    /// `transaction_version` 2 one not above it (KIP-1228: a v2 end always bumps the epoch).
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        transaction_version: i8,
        now_ms: i64,
    ) -> Result<i64, AppendError> {
        let mut batch = marker_batch(producer_id, producer_epoch, commit, 0, now_ms)
            .ok_or_else(|| AppendError::InvalidRecord("cannot encode a marker".into()))?
            .to_vec();
        let mut state = self.state.lock();
        let epoch = self.writable_epoch()?;
        if let Some(current) = state.producers.epoch(producer_id) {
            if producer_epoch < current {
                return Err(AppendError::Sequence(SequenceError::StaleEpoch {
                    producer_id,
                    epoch: producer_epoch,
                    current,
                }));
            }
            if transaction_version >= 2 && producer_epoch == current {
                return Err(AppendError::Sequence(SequenceError::MarkerNotBumped {
                    producer_id,
                    epoch: producer_epoch,
                    current,
                }));
            }
        }
        let info = state.log.append(&mut batch, epoch, now_ms)?;
        state.producers.fence(producer_id, producer_epoch);
        state.txns.on_marker(producer_id, info.base_offset, commit);
        let end_offset = info.last_offset + 1;
        self.recompute_high_watermark(state);
        Ok(end_offset)
    }

    /// Runs `f` with the log locked, for queries such as offsets by timestamp.
    pub fn with_log<T>(&self, f: impl FnOnce(&PartitionLog) -> T) -> T {
        f(&self.state.lock().log)
    }

    /// What tiered storage needs under one lock: the segments, the offset below which
    /// everything is stable (the last stable offset, at most the high watermark), the
    /// leader epochs and the aborted transactions between `from` and the stable offset.
    pub fn tiering_view(&self, from: i64) -> TieringView {
        let state = self.state.lock();
        let stable_end = state.last_stable_offset();
        TieringView {
            segments: state.log.segment_summaries(),
            stable_end,
            epochs: state
                .log
                .epoch_entries()
                .iter()
                .map(|e| (e.epoch, e.start_offset))
                .collect(),
            aborted: state.txns.aborted_between(from, stable_end),
            local_log_start: state.log.log_start_offset(),
            config: state.log.config().clone(),
        }
    }

    /// Records that the bucket holds every record below `offset`, so local retention may
    /// delete the segments below it.
    pub fn set_remote_copied_end(&self, offset: i64) {
        self.state.lock().log.set_remote_copied_end(offset);
    }

    /// A receiver that changes whenever the leader's log grows (followers long-poll on it).
    pub fn watch_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// The offset below which everything is durable (fsynced or journaled).
    pub fn durable_offset(&self) -> i64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Returns once everything below `offset` is durable (true), or the partition was
    /// deleted (false). Writers wait with [`Partition::wait_committed`].
    pub async fn wait_durable(&self, offset: i64) -> bool {
        loop {
            // Registered before the check, so an advance right after it still wakes us.
            let changed = self.durable_changed.notified();
            if self.durable_offset() >= offset {
                return true;
            }
            if self.is_deleted() {
                return false;
            }
            changed.await;
        }
    }

    /// Returns once everything below `offset` is committed: below the high watermark (every
    /// in-sync replica has it) and, with [`Durability::Synced`], durable. The one wait every
    /// writer uses: produce, the group coordinator's log and transaction markers.
    pub async fn wait_committed(
        &self,
        offset: i64,
        durability: Durability,
        timeout: std::time::Duration,
    ) -> Result<(), CommitWaitError> {
        let epoch = self.leader_epoch();
        let wait = async {
            if durability == Durability::Synced && !self.wait_durable(offset).await {
                return Err(CommitWaitError::Gone);
            }
            let mut high_watermark = self.high_watermark.subscribe();
            loop {
                if self.is_deleted() {
                    return Err(CommitWaitError::Gone);
                }
                if *high_watermark.borrow_and_update() >= offset {
                    return Ok(());
                }
                if self.role() != (Role::Leader { epoch }) {
                    return Err(CommitWaitError::NotLeader);
                }
                if high_watermark.changed().await.is_err() {
                    return Err(CommitWaitError::Gone);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(CommitWaitError::TimedOut(timeout)))
    }

    /// Returns once everything below `offset` is durable on this broker, whatever the
    /// followers have (acks=1 with `fsync_acks_one`).
    pub async fn wait_local(
        &self,
        offset: i64,
        timeout: std::time::Duration,
    ) -> Result<(), CommitWaitError> {
        match tokio::time::timeout(timeout, self.wait_durable(offset)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(CommitWaitError::Gone),
            Err(_) => Err(CommitWaitError::TimedOut(timeout)),
        }
    }

    /// Whether the partition's topic was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Records that new writes need an fsync; true when no sync is running, so the caller
    /// must start one (at most one runs per partition, as storage requires).
    pub(crate) fn request_sync(&self) -> bool {
        let mut state = self.sync_state.load(Ordering::Acquire);
        loop {
            let next = match state {
                SYNC_IDLE => SYNC_RUNNING,
                SYNC_RUNNING => SYNC_RUNNING_DIRTY,
                _ => return false,
            };
            match self
                .sync_state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return state == SYNC_IDLE,
                Err(actual) => state = actual,
            }
        }
    }

    /// When the writes so far need an fsync if no producer waits for one.
    pub fn flush_due(&self) -> FlushDue {
        self.state.lock().log.flush_due()
    }

    /// Claims the one deferred fsync a partition may have scheduled; false if one already is.
    pub(crate) fn schedule_flush(&self) -> bool {
        !self.flush_scheduled.swap(true, Ordering::AcqRel)
    }

    /// Ends the scheduled deferred fsync, just before it is requested.
    pub(crate) fn deferred_flush_started(&self) {
        self.flush_scheduled.store(false, Ordering::Release);
    }

    /// Takes what must be fsynced now; writes after this call will ask for another round.
    pub(crate) fn take_pending_sync(&self) -> Option<PendingSync> {
        self.sync_state.store(SYNC_RUNNING, Ordering::Release);
        self.state.lock().log.pending_sync()
    }

    /// Ends the running sync unless writes asked for another round meanwhile; true if done.
    pub(crate) fn finish_sync(&self) -> bool {
        self.sync_state
            .compare_exchange(SYNC_RUNNING, SYNC_IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Records that everything below `offset` is on disk and wakes acks=all waiters.
    pub(crate) fn mark_synced(&self, offset: i64) {
        {
            let mut state = self.state.lock();
            state.log.mark_synced(offset);
            let recovery_point = state.log.recovery_point();
            state.journal.end = state.journal.end.max(recovery_point);
        }
        self.mark_durable(offset);
    }

    /// Records that a journal round queued the partition; false if it already waits in the
    /// queue.
    pub(crate) fn request_journal(&self) -> bool {
        !self.journal_requested.swap(true, Ordering::AcqRel)
    }

    /// Takes the batches queued for the journal, with the offset below which everything is
    /// durable once they are; `None` if nothing is queued. Call from one journal round at a
    /// time, each finishing before the next takes.
    pub(crate) fn take_journaled(&self) -> Option<(Vec<(i64, SplitBatch)>, i64)> {
        self.journal_requested.store(false, Ordering::Release);
        let mut state = self.state.lock();
        if state.journal.queued.is_empty() {
            return None;
        }
        Some((std::mem::take(&mut state.journal.queued), state.journal.end))
    }

    /// Fsyncs every segment file written after the recovery point and the directory, without
    /// touching the group-commit bookkeeping (so it may run beside a group commit): for
    /// journal checkpoints; the recovery point advances with the next ordinary sync.
    pub(crate) fn sync_segments(&self) -> std::io::Result<()> {
        let pending = self.state.lock().log.sync_since_recovery_point();
        pending.run().map(drop)
    }

    /// Wakes acks=all waiters: everything below `offset` is durable (fsynced or journaled).
    pub(crate) fn mark_durable(&self, offset: i64) {
        if self.advance_durable(offset) {
            self.wake_durable_waiters();
        }
    }

    /// Moves the durable offset up to `offset` without waking anyone; true if it moved. A
    /// round covering several partitions advances them all first, so each waiter, woken by
    /// the first, finds the rest done instead of sleeping again.
    pub(crate) fn advance_durable(&self, offset: i64) -> bool {
        self.durable.fetch_max(offset, Ordering::AcqRel) < offset
    }

    /// Wakes those waiting in [`Partition::wait_durable`].
    pub(crate) fn wake_durable_waiters(&self) {
        self.durable_changed.notify_waiters();
    }

    /// Moves the log start offset to `offset` (-1: the high watermark), for DeleteRecords;
    /// returns the new log start offset.
    pub fn delete_records(&self, offset: i64) -> Result<i64, StorageError> {
        let (start, retired) = {
            let mut state = self.state.lock();
            let target = if offset == -1 {
                state.log.high_watermark()
            } else {
                offset
            };
            let start = state.log.delete_records(target)?;
            state.log.checkpoint()?;
            state.txns.drop_before(start);
            (start, state.log.take_retired())
        };
        delete_off_the_workers(retired);
        Ok(start)
    }

    /// Forgets the idempotence state of producers idle here for `expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`) unless their transaction is open, so state does not grow
    /// with every producer instance that ever wrote; returns how many were forgotten.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        let mut state = self.state.lock();
        let State {
            producers, txns, ..
        } = &mut *state;
        producers.expire(now_ms, expiration_ms, |pid| txns.open_since(pid).is_some())
    }

    /// Applies retention and age-based rolling; the removed segments' files are deleted after
    /// the partition lock is let go, so no produce or fetch waits for the file system to free
    /// them. Blocking: call from a blocking thread.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<(), StorageError> {
        let (enforced, retired) = {
            let mut state = self.state.lock();
            let enforced = state.log.enforce_retention(now_ms);
            let start = state.log.log_start_offset();
            state.txns.drop_before(start);
            // Taken even after a failure: the segments retired before it are gone from the log.
            (enforced, state.log.take_retired())
        };
        retired.delete()?;
        enforced.map(drop)
    }

    /// Compacts the closed segments of a `cleanup.policy=compact` partition; the reading and
    /// rewriting run without the partition lock. Blocking: call from a blocking thread.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionOutcome, StorageError> {
        let job = {
            let state = self.state.lock();
            let txns = CleanerTxns {
                first_unstable_offset: state.txns.first_unstable_offset(),
                aborted: state
                    .txns
                    .aborted_between(state.log.log_start_offset(), i64::MAX),
            };
            state.log.compaction_job(now_ms, txns)
        };
        let Some(job) = job else {
            return Ok(CompactionOutcome::default());
        };
        let compacted = job.run()?;
        self.state.lock().log.install_compaction(compacted)
    }

    /// fsyncs everything and writes checkpoints (shutdown, tests).
    pub fn flush(&self) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        state.log.flush()?;
        let end = state.log.log_end_offset();
        state.log.mark_synced(end);
        state.log.checkpoint()?;
        drop(state);
        self.mark_durable(end);
        Ok(())
    }

    /// Writes the high-watermark, recovery-point and log-start checkpoints; the fsyncs run
    /// without holding the partition lock. Blocking: call from a blocking thread.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let Some(plan) = self.state.lock().log.checkpoint_plan() else {
            return Ok(());
        };
        plan.write()?;
        self.state.lock().log.mark_checkpointed(&plan);
        Ok(())
    }

    /// Switches to new topic settings.
    pub fn configure(&self, settings: TopicSettings) {
        let TopicSettings {
            log,
            compression,
            min_insync_replicas,
        } = settings;
        *self.rules.write() = rules_for(&log, compression);
        self.min_insync_replicas
            .store(min_insync_replicas.max(1), Ordering::Release);
        self.state.lock().log.update_config(log);
    }

    /// Removes the partition's files (topic deletion) and wakes every fetch and producer
    /// waiting on it, so they answer and drop their references (and with the last one the
    /// open segment files) instead of holding them until their timeouts.
    pub fn delete_data(&self) -> Result<(), StorageError> {
        self.deleted.store(true, Ordering::Release);
        let removed = {
            let mut state = self.state.lock();
            state.producers.clear();
            state.txns.clear();
            match std::fs::remove_dir_all(&self.dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StorageError::Delete {
                    path: self.dir.clone(),
                    source,
                }),
            }
        };
        self.high_watermark.send_modify(|_| {});
        self.log_end.send_modify(|_| {});
        self.wake_durable_waiters();
        removed
    }

    /// Log size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.state.lock().log.size_bytes()
    }
}

/// The client-batch rules of a topic with these storage settings and `compression.type`.
fn rules_for(config: &LogConfig, compression: CompressionPolicy) -> ClientBatchRules {
    ClientBatchRules {
        compression,
        keys_required: config.compact,
        timestamp_type: config.timestamp_type,
        timestamp_before_max_ms: config.timestamp_before_max_ms,
        timestamp_after_max_ms: config.timestamp_after_max_ms,
        max_message_bytes: config.max_message_bytes,
        max_uncompressed_bytes: config.max_uncompressed_batch_bytes,
    }
}

/// Splits batches the broker wrote itself into what [`Partition::append_checked`] takes,
/// checking each header and CRC.
fn own_batches(records: &[u8]) -> Result<Vec<CheckedBatch>, AppendError> {
    let mut out = Vec::with_capacity(1);
    let mut pos = 0;
    while pos < records.len() {
        let index = out.len();
        let invalid = |source| StorageError::InvalidBatch { index, source };
        let view = BatchView::parse(&records[pos..]).map_err(invalid)?;
        let batch = client_batch::split(Bytes::copy_from_slice(view.as_bytes()))?;
        out.push(CheckedBatch::new(batch));
        pos += view.size();
    }
    Ok(out)
}

/// Producer and transaction state rebuilt from the batch headers of `log` (start-up, and
/// after a follower's truncation), starting from `seed` when the log restarted past the
/// remote log (the state as of its start, from the remote segment's producer snapshot).
fn rebuild_producer_state(
    log: &PartitionLog,
    seed: Option<&ProducerSnapshot>,
) -> Result<(ProducerStateTable, TxnIndex), StorageError> {
    let (mut producers, txns) = seed.map(ProducerSnapshot::restore).unwrap_or_default();
    let mut txn_events = Vec::new();
    log.scan_batch_headers(log.log_start_offset(), |header| {
        let identity = BatchIdentity {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            last_offset_delta: header.last_offset_delta,
            max_timestamp: header.max_timestamp,
        };
        producers.record(&identity, header.base_offset);
        if header.is_transactional() {
            txn_events.push(*header);
        }
    })?;
    let txns = rebuild_txns(log, &mut producers, txns, &txn_events)?;
    Ok((producers, txns))
}

/// Replays the transactional batches found at start-up: data opens a transaction, a marker
/// (read back to learn whether it commits or aborts) closes it and fences older epochs.
fn rebuild_txns(
    log: &PartitionLog,
    producers: &mut ProducerStateTable,
    mut txns: TxnIndex,
    headers: &[tributary_storage::BatchHeaderInfo],
) -> Result<TxnIndex, StorageError> {
    for header in headers {
        if !header.is_control() {
            txns.on_data(header.producer_id, header.base_offset);
            continue;
        }
        let end = header.next_offset();
        let plan = log.read_plan(header.base_offset, header.size as usize, end, true)?;
        let bytes = plan.load().map_err(|source| StorageError::SegmentRead {
            path: log.dir().to_path_buf(),
            source,
        })?;
        let commit = BatchView::parse(&bytes)
            .ok()
            .and_then(|v| marker_is_commit(&v));
        if let Some(commit) = commit {
            producers.fence(header.producer_id, header.producer_epoch);
            txns.on_marker(header.producer_id, header.base_offset, commit);
        }
    }
    Ok(txns)
}

pub mod follower;
pub mod isr;
mod remote_check;
mod replication;
#[cfg(test)]
mod tests;

/// Deletes `retired` on a blocking thread when called on the async runtime (DeleteRecords, a
/// follower's fetch loop), so no worker serving requests waits for the file system; inline
/// elsewhere. A failure is logged: the records are already gone from the log, and a restart
/// deletes the files left.
fn delete_off_the_workers(retired: tributary_storage::RetiredFiles) {
    if retired.is_empty() {
        return;
    }
    let delete = move || {
        if let Err(error) = retired.delete() {
            tracing::warn!(%error, "cannot delete a removed segment's files; a restart deletes them");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(delete)),
        Err(_) => delete(),
    }
}

pub use remote_check::{RemoteCheck, RemoteRestart};
pub use replication::{FollowerAppend, IsrProposal, Leadership, ReplicaFetch, ReplicaRead};
