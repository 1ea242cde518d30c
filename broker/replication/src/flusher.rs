//! Group commit. One fsync round runs at a time for the whole broker; writes that arrive
//! meanwhile are covered by the next round, which starts as soon as the running one ends. So
//! one round covers every batch appended while the previous was on disk and acks=all producers
//! share its cost. A round covering several partitions syncs the data directory's filesystem
//! once (one journal commit and cache flush instead of one per file, a third of the CPU for a
//! request spread over six partitions) when little else is waiting to be written back; a round
//! covering one partition, or with much else dirty, fsyncs its files. Writes nobody
//! waits on are fsynced as the topic's `flush.messages` and `flush.ms` say, and at segment
//! rolls.
//!
//! Once the commit journal is ready, a round covering journaled batches instead writes them
//! to the journal with one `fdatasync` (see [`tributary_storage::journal`]); checkpoints in the background
//! fsync the segments those rounds covered and release the journal space.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus::{Histogram, IntCounter};
use tokio::runtime::Handle;
use uuid::Uuid;

use crate::partition::Partition;
use tributary_storage::journal::{Entry, FileSystemSpace, Journal};
use tributary_storage::{FlushDue, Writeback};

pub use tributary_storage::FSYNC_FAILURE_EXIT_CODE;

/// Starts fsyncs for partitions with unsynced writes.
#[derive(Debug, Clone)]
pub struct Flusher {
    rounds: Arc<Rounds>,
}

/// The partitions waiting for the next fsync round, and whether a round runs.
#[derive(Debug)]
struct Rounds {
    runtime: Handle,
    queue: Mutex<Queue>,
    /// The data directory, whose filesystem one `syncfs` makes durable at once.
    data_dir: Option<File>,
    flush_seconds: Histogram,
    /// Bytes whose writeback [`Flusher::start_writeback`] started.
    writeback_bytes: IntCounter,
    /// The last [`little_else_dirty`] answer and when it was read, reused briefly.
    dirty_check: Mutex<Option<(Instant, bool)>>,
    /// The commit journal, once created; rounds hold the lock from taking the partitions'
    /// batches until they are durable, so each round finishes before the next takes.
    journal: Mutex<Option<JournalState>>,
    journal_ready: AtomicBool,
    checkpointing: AtomicBool,
    /// Journal rounds run so far, and whether a task watches them for a quiet spell.
    journal_rounds: AtomicU64,
    quiet_watch: AtomicBool,
}

#[derive(Debug, Default)]
struct Queue {
    /// Partitions whose segments need an fsync.
    waiting: Vec<Arc<Partition>>,
    /// Partitions with batches queued for the journal.
    journaled: Vec<Arc<Partition>>,
    running: bool,
}

#[derive(Debug)]
struct JournalState {
    journal: Journal,
    /// Partitions journaled since the last checkpoint began, by topic id and index: the
    /// segments the next checkpoint fsyncs.
    touched: HashMap<(Uuid, i32), Arc<Partition>>,
    last_checkpoint: Instant,
}

/// A checkpoint starts once live journal records fill this fraction of the file (1/n)...
/// Small and frequent: a checkpoint's writeback queues on the device ahead of the journal
/// rounds producers wait on, so one fsyncing half the journal held them up for tens of
/// milliseconds (produce p99.9 over 50 ms); an eighth keeps it to a few.
const CHECKPOINT_FRACTION: u64 = 8;
/// ...or when this long has passed since the last one...
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
/// ...or when no journal round ran for this long. A burst of acks=all writes is checkpointed
/// as soon as it ends, while its segments hold little else to write back: writes nobody waits
/// on (acks=1) that land in the same segments later would otherwise all be written back by
/// the next checkpoint's fsyncs, a long stall for the acks=all producers of that moment.
const QUIET_AFTER: Duration = Duration::from_millis(10);

impl Flusher {
    /// A flusher running its fsyncs on the blocking pool of the current runtime; rounds
    /// covering several partitions sync `data_dir`'s filesystem once instead of each file.
    pub fn new(
        flush_seconds: Histogram,
        writeback_bytes: IntCounter,
        data_dir: Option<File>,
    ) -> Flusher {
        Flusher {
            rounds: Arc::new(Rounds {
                runtime: Handle::current(),
                queue: Mutex::new(Queue::default()),
                data_dir,
                flush_seconds,
                writeback_bytes,
                dirty_check: Mutex::new(None),
                journal: Mutex::new(None),
                journal_ready: AtomicBool::new(false),
                checkpointing: AtomicBool::new(false),
                journal_rounds: AtomicU64::new(0),
                quiet_watch: AtomicBool::new(false),
            }),
        }
    }

    /// Creates (zero-filling, which takes a moment) or reopens the commit journal at `path`
    /// in the background, for rounds numbered after `last_seq`, sized to the space there is
    /// ([`Journal::prepare`]); fsynced appends use it once it is ready and fsync their
    /// segments until then, or for good if there is no room for it or it cannot be made.
    pub fn start_journal(&self, path: PathBuf, size: u64, last_seq: u64) {
        let rounds = self.rounds.clone();
        self.rounds.runtime.spawn_blocking(move || {
            match Journal::prepare(&path, size, last_seq, &FileSystemSpace) {
                Ok(None) => {}
                Ok(Some(journal)) => {
                    tracing::info!(path = %path.display(), bytes = journal.size(), "commit journal ready");
                    *rounds.journal.lock() = Some(JournalState {
                        journal,
                        touched: HashMap::new(),
                        last_checkpoint: Instant::now(),
                    });
                    rounds.journal_ready.store(true, Ordering::Release);
                }
                Err(error) => tracing::warn!(
                    path = %path.display(),
                    %error,
                    "no commit journal; fsynced produce requests fsync their segments"
                ),
            }
        });
    }

    /// Bytes of journal records not yet released by a checkpoint (`None`: no journal).
    #[cfg(any(test, feature = "test-support"))]
    pub fn journal_used(&self) -> Option<u64> {
        self.rounds
            .journal
            .lock()
            .as_ref()
            .map(|s| s.journal.used())
    }

    /// Whether appends may go through the commit journal
    /// ([`crate::partition::Partition::append_verified`] with `journal`).
    pub fn journal_ready(&self) -> bool {
        self.rounds.journal_ready.load(Ordering::Acquire)
    }

    /// Makes the batches these partitions queued for the journal durable in the next journal
    /// round, which acks=all producers wait on like a group commit.
    pub fn request_journal_commits<'a>(
        &self,
        partitions: impl IntoIterator<Item = &'a Arc<Partition>>,
    ) {
        let wanted: Vec<_> = partitions
            .into_iter()
            .filter(|p| p.request_journal())
            .cloned()
            .collect();
        if !wanted.is_empty() {
            let mut queue = self.rounds.queue.lock();
            queue.journaled.extend(wanted);
            self.rounds.start_running(&mut queue);
        }
    }

    /// Makes sure `partition`'s writes so far get fsynced, in the shared rounds producers
    /// wait on.
    pub fn request_sync(&self, partition: &Arc<Partition>) {
        self.request_syncs([partition]);
    }

    /// [`Flusher::request_sync`] for several partitions at once, so the writes of one request
    /// start one round together rather than the first starting a round of its own.
    pub fn request_syncs<'a>(&self, partitions: impl IntoIterator<Item = &'a Arc<Partition>>) {
        let wanted: Vec<_> = partitions
            .into_iter()
            .filter(|p| p.request_sync())
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let mut queue = self.rounds.queue.lock();
        queue.waiting.extend(wanted);
        self.rounds.start_running(&mut queue);
    }

    /// Fsyncs `partition` on its own, for writes nobody waits on: a large flush (a rolled
    /// segment) never holds up the rounds acks=all producers wait for.
    fn flush_alone(&self, partition: &Arc<Partition>) {
        if partition.request_sync() {
            let partition = partition.clone();
            let rounds = self.rounds.clone();
            self.rounds.runtime.spawn_blocking(move || loop {
                rounds.round(std::slice::from_ref(&partition));
                if partition.finish_sync() {
                    return;
                }
            });
        }
    }

    /// Starts `writeback` on the blocking pool (it may wait for room in the device's queue),
    /// counting its bytes.
    pub fn start_writeback(&self, writeback: Writeback) {
        let started = self.rounds.writeback_bytes.clone();
        self.rounds
            .runtime
            .spawn_blocking(move || match writeback.start() {
                Ok(()) => started.inc_by(writeback.bytes()),
                // Nothing is lost: the pages stay dirty for the kernel or the next fsync.
                Err(error) => tracing::debug!(%error, "cannot start writeback"),
            });
    }

    /// Schedules the fsync `due` asks for, for writes no producer waits on.
    pub fn after_write(&self, partition: &Arc<Partition>, due: FlushDue) {
        match due {
            FlushDue::Now => self.flush_alone(partition),
            FlushDue::Within(ms) => {
                if partition.schedule_flush() {
                    let flusher = self.clone();
                    let partition = partition.clone();
                    self.rounds.runtime.spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        partition.deferred_flush_started();
                        flusher.flush_alone(&partition);
                    });
                }
            }
            FlushDue::Later => {}
        }
    }
}

impl Rounds {
    /// Starts the thread running rounds unless it runs.
    fn start_running(self: &Arc<Self>, queue: &mut Queue) {
        if !queue.running {
            queue.running = true;
            let rounds = self.clone();
            self.runtime.spawn_blocking(move || rounds.run());
        }
    }

    /// Runs rounds until no partition waits.
    fn run(self: &Arc<Self>) {
        loop {
            let (journaled, partitions) = {
                let mut queue = self.queue.lock();
                if queue.waiting.is_empty() && queue.journaled.is_empty() {
                    queue.running = false;
                    return;
                }
                (
                    std::mem::take(&mut queue.journaled),
                    std::mem::take(&mut queue.waiting),
                )
            };
            if !journaled.is_empty() {
                self.journal_round(journaled);
            }
            if partitions.is_empty() {
                continue;
            }
            self.round(&partitions);
            let dirty: Vec<_> = partitions
                .into_iter()
                .filter(|p| !p.finish_sync())
                .collect();
            self.queue.lock().waiting.extend(dirty);
        }
    }

    /// One journal round: the batches the partitions queued become durable with one journal
    /// record, or, when the journal has no room for it, by fsyncing their segments.
    fn journal_round(self: &Arc<Self>, partitions: Vec<Arc<Partition>>) {
        let started = Instant::now();
        let mut guard = self.journal.lock();
        let taken: Vec<_> = partitions
            .into_iter()
            .filter_map(|p| p.take_journaled().map(|(batches, end)| (p, batches, end)))
            .collect();
        if taken.is_empty() {
            return;
        }
        let entries: Vec<Entry<'_>> = taken
            .iter()
            .flat_map(|(p, batches, _)| {
                batches.iter().map(|(base_offset, batch)| Entry {
                    topic_id: p.topic_id(),
                    partition: p.index(),
                    base_offset: *base_offset,
                    batches: batch.parts(),
                })
            })
            .collect();
        let synced = match guard
            .as_mut()
            .map(|state| (state.journal.commit(&entries), state))
        {
            Some((Ok(Some(_)), state)) => {
                for (partition, _, _) in &taken {
                    state
                        .touched
                        .entry((partition.topic_id(), partition.index()))
                        .or_insert_with(|| partition.clone());
                }
                Ok(())
            }
            Some((Err(error), _)) => Err(error),
            // No room in the journal (or none at all): the segments themselves.
            Some((Ok(None), _)) | None => sync_segments(taken.iter().map(|(p, _, _)| p)),
        };
        if let Err(error) = synced {
            halt(&error);
        }
        // Counted before anyone is woken, so a round that acknowledged writes is always seen.
        self.flush_seconds.observe(started.elapsed().as_secs_f64());
        // Advance every partition before waking anyone: a producer waiting on several of
        // them, woken by the first, then finds the rest done rather than sleeping again.
        let advanced: Vec<_> = taken
            .iter()
            .filter(|(partition, _, end)| partition.advance_durable(*end))
            .collect();
        for (partition, _, _) in advanced {
            partition.wake_durable_waiters();
        }
        let due = guard.as_ref().is_some_and(|state| {
            state.journal.used() >= state.journal.size() / CHECKPOINT_FRACTION
                || state.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
        });
        drop(guard);
        self.journal_rounds.fetch_add(1, Ordering::AcqRel);
        if due {
            self.start_checkpoint();
        }
        // Also after a due round: what the burst journals after this checkpoint began still
        // needs the checkpoint when the burst ends.
        if !self.quiet_watch.swap(true, Ordering::AcqRel) {
            let rounds = self.clone();
            self.runtime
                .spawn(async move { rounds.checkpoint_when_quiet().await });
        }
    }

    /// Starts a checkpoint in the background unless one runs.
    fn start_checkpoint(self: &Arc<Self>) {
        if !self.checkpointing.swap(true, Ordering::AcqRel) {
            let rounds = self.clone();
            self.runtime.spawn_blocking(move || rounds.checkpoint());
        }
    }

    /// Watches the journal rounds and, once none ran for [`QUIET_AFTER`], checkpoints until
    /// every partition journaled so far is checkpointed.
    async fn checkpoint_when_quiet(self: Arc<Self>) {
        let mut seen = self.journal_rounds.load(Ordering::Acquire);
        loop {
            tokio::time::sleep(QUIET_AFTER).await;
            let now = self.journal_rounds.load(Ordering::Acquire);
            if now != seen {
                seen = now;
                continue;
            }
            if self.checkpointing.load(Ordering::Acquire) {
                continue;
            }
            if self.journaled_since_checkpoint() {
                self.start_checkpoint();
                continue;
            }
            self.quiet_watch.store(false, Ordering::Release);
            // A round between the check and the store found this watch running and started
            // none; watch on for it unless a new watch already does.
            if !self.journaled_since_checkpoint() || self.quiet_watch.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }

    /// Whether partitions were journaled since the last checkpoint began.
    fn journaled_since_checkpoint(&self) -> bool {
        self.journal
            .lock()
            .as_ref()
            .is_some_and(|state| !state.touched.is_empty())
    }

    /// Fsyncs the segments of every partition journaled so far, then frees the journal
    /// records that covered them. One partition at a time, for the same reason checkpoints
    /// are small: the device queue never holds more than one partition's writeback ahead of
    /// the journal rounds.
    fn checkpoint(&self) {
        let taken = self.journal.lock().as_mut().map(|state| {
            state.last_checkpoint = Instant::now();
            (state.journal.last_seq(), std::mem::take(&mut state.touched))
        });
        if let Some((seq, partitions)) = taken {
            if let Err(error) = partitions.values().try_for_each(|p| p.sync_segments()) {
                halt(&error);
            }
            if let Some(state) = self.journal.lock().as_mut() {
                state.journal.release_through(seq);
            }
        }
        self.checkpointing.store(false, Ordering::Release);
    }

    /// [`little_else_dirty`], read from /proc at most once per [`DIRTY_CHECK_INTERVAL`]
    /// rather than on each of the thousand or so rounds a second of acks=all traffic runs.
    fn little_else_dirty(&self) -> bool {
        let mut last = self.dirty_check.lock();
        match *last {
            Some((at, answer)) if at.elapsed() < DIRTY_CHECK_INTERVAL => answer,
            _ => {
                let answer = little_else_dirty();
                *last = Some((Instant::now(), answer));
                answer
            }
        }
    }

    /// One fsync round: everything the partitions wrote so far becomes durable.
    fn round(&self, partitions: &[Arc<Partition>]) {
        let started = Instant::now();
        let pending: Vec<_> = partitions
            .iter()
            .filter_map(|p| p.take_pending_sync().map(|s| (p, s)))
            .collect();
        if pending.is_empty() {
            return;
        }
        let synced: std::io::Result<Vec<_>> = match self.data_dir.as_ref() {
            Some(dir) if pending.len() > 1 && self.little_else_dirty() => sync_filesystem(dir)
                .map(|()| pending.into_iter().map(|(p, s)| (p, s.offset())).collect()),
            _ => sync_each(pending),
        };
        match synced {
            Ok(synced) => {
                self.flush_seconds.observe(started.elapsed().as_secs_f64());
                for (partition, offset) in synced {
                    partition.mark_synced(offset);
                }
            }
            Err(error) => halt(&error),
        }
    }
}

/// After a failed fsync the kernel may have dropped the dirty pages, so the page cache can no
/// longer be trusted to reach the disk. Like Kafka with a failed log directory, halt: recovery
/// on restart rescans everything after the recovery point and replays the journal, and nothing
/// not durable was acknowledged.
fn halt(error: &std::io::Error) -> ! {
    tracing::error!(%error, "fsync failed; halting the broker");
    std::process::exit(FSYNC_FAILURE_EXIT_CODE);
}

/// Most threads one [`sync_segments`] fsyncs with.
const SEGMENT_SYNC_THREADS: usize = 8;

/// Fsyncs the segments the partitions wrote since their recovery points, a few partitions per
/// thread, so device flushes overlap: for a journal round that found no room, whose producers
/// wait for it.
fn sync_segments<'a>(
    partitions: impl IntoIterator<Item = &'a Arc<Partition>>,
) -> std::io::Result<()> {
    let partitions: Vec<_> = partitions.into_iter().collect();
    let per_thread = partitions.len().div_ceil(SEGMENT_SYNC_THREADS).max(1);
    std::thread::scope(|scope| {
        let running: Vec<_> = partitions
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|p| p.sync_segments())))
            .collect();
        running.into_iter().try_for_each(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")))
        })
    })
}

/// Fsyncs each partition's files, in parallel when there are several: one device flush
/// overlaps the others as it would in separate rounds.
fn sync_each(
    pending: Vec<(&Arc<Partition>, tributary_storage::PendingSync)>,
) -> std::io::Result<Vec<(&Arc<Partition>, i64)>> {
    if pending.len() < 2 {
        return pending
            .into_iter()
            .map(|(p, s)| s.run().map(|offset| (p, offset)))
            .collect();
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = pending
            .into_iter()
            .map(|(p, s)| (p, scope.spawn(move || s.run())))
            .collect();
        running
            .into_iter()
            .map(|(p, handle)| {
                let synced = handle
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")));
                synced.map(|offset| (p, offset))
            })
            .collect()
    })
}

/// Page cache not yet written back above which a round syncs its files one by one: `syncfs`
/// would also write back everything else dirty (writes nobody waits on, other programs'),
/// holding acks=all producers up behind it.
const SYNCFS_MAX_DIRTY_BYTES: u64 = 4 << 20;

/// How long a reading of the dirty page cache stays good enough to pick a round's sync.
const DIRTY_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// Whether the page cache holds little unwritten data, so a `syncfs` costs about what the
/// round's own files do. Unknown counts as not.
fn little_else_dirty() -> bool {
    dirty_bytes().is_some_and(|dirty| dirty <= SYNCFS_MAX_DIRTY_BYTES)
}

/// The system's dirty page cache, from `/proc/meminfo`.
fn dirty_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("Dirty:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Makes every write on `dir`'s filesystem durable with one `syncfs`: a single journal
/// commit and cache flush instead of one per file.
#[cfg(target_os = "linux")]
fn sync_filesystem(dir: &File) -> std::io::Result<()> {
    rustix::fs::syncfs(dir)?;
    Ok(())
}

/// Elsewhere the broker opens no directory for filesystem syncs, so this is never called.
#[cfg(not(target_os = "linux"))]
fn sync_filesystem(_: &File) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_dirty_page_cache_is_read_from_meminfo() {
        let dirty = super::dirty_bytes().expect("Dirty: in /proc/meminfo");
        assert_eq!(dirty % 1024, 0, "reported in KiB");
    }
}
