//! Group commit. One fsync round runs at a time for the whole broker; writes that arrive
//! meanwhile are covered by the next round, which starts as soon as the running one ends. So
//! one round covers every batch appended while the previous was on disk and acks=all producers
//! share its cost. A round covering several partitions syncs the data directory's filesystem
//! once (one journal commit and cache flush instead of one per file, a third of the CPU for a
//! request spread over six partitions) when little else is waiting to be written back; a round
//! covering one partition, or with much else dirty, fsyncs its files. Writes nobody
//! waits on are fsynced as the topic's `flush.messages` and `flush.ms` say, and at segment
//! rolls.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus::Histogram;
use tokio::runtime::Handle;

use crate::partition::Partition;
use crate::storage::FlushDue;

/// Exit code of a broker halted by a failed fsync.
pub const FSYNC_FAILURE_EXIT_CODE: i32 = 70;

/// Starts fsyncs for partitions with unsynced writes.
#[derive(Debug, Clone)]
pub struct Flusher {
    runtime: Handle,
    rounds: Arc<Rounds>,
}

/// The partitions waiting for the next fsync round, and whether a round runs.
#[derive(Debug)]
struct Rounds {
    queue: Mutex<Queue>,
    /// The data directory, whose filesystem one `syncfs` makes durable at once.
    data_dir: Option<File>,
    flush_seconds: Histogram,
    /// The last [`little_else_dirty`] answer and when it was read, reused briefly.
    dirty_check: Mutex<Option<(Instant, bool)>>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Arc<Partition>>,
    running: bool,
}

impl Flusher {
    /// A flusher running its fsyncs on the blocking pool of the current runtime; rounds
    /// covering several partitions sync `data_dir`'s filesystem once instead of each file.
    pub fn new(flush_seconds: Histogram, data_dir: Option<File>) -> Flusher {
        Flusher {
            runtime: Handle::current(),
            rounds: Arc::new(Rounds {
                queue: Mutex::new(Queue::default()),
                data_dir,
                flush_seconds,
                dirty_check: Mutex::new(None),
            }),
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
        if !queue.running {
            queue.running = true;
            let rounds = self.rounds.clone();
            self.runtime.spawn_blocking(move || rounds.run());
        }
    }

    /// Fsyncs `partition` on its own, for writes nobody waits on: a large flush (a rolled
    /// segment) never holds up the rounds acks=all producers wait for.
    fn flush_alone(&self, partition: &Arc<Partition>) {
        if partition.request_sync() {
            let partition = partition.clone();
            let rounds = self.rounds.clone();
            self.runtime.spawn_blocking(move || loop {
                rounds.round(std::slice::from_ref(&partition));
                if partition.finish_sync() {
                    return;
                }
            });
        }
    }

    /// Schedules the fsync `due` asks for, for writes no producer waits on.
    pub fn after_write(&self, partition: &Arc<Partition>, due: FlushDue) {
        match due {
            FlushDue::Now => self.flush_alone(partition),
            FlushDue::Within(ms) => {
                if partition.schedule_flush() {
                    let flusher = self.clone();
                    let partition = partition.clone();
                    self.runtime.spawn(async move {
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
    /// Runs rounds until no partition waits.
    fn run(&self) {
        loop {
            let partitions = {
                let mut queue = self.queue.lock();
                if queue.waiting.is_empty() {
                    queue.running = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            self.round(&partitions);
            let dirty: Vec<_> = partitions
                .into_iter()
                .filter(|p| !p.finish_sync())
                .collect();
            self.queue.lock().waiting.extend(dirty);
        }
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
                for (partition, offset) in synced {
                    partition.mark_synced(offset);
                }
                self.flush_seconds.observe(started.elapsed().as_secs_f64());
            }
            Err(error) => {
                // After a failed fsync the kernel may have dropped the dirty pages, so the
                // page cache can no longer be trusted to reach the disk. Like Kafka with a
                // failed log directory, halt: recovery on restart rescans everything after
                // the recovery point, and nothing unsynced was acknowledged.
                tracing::error!(%error, "fsync failed; halting the broker");
                std::process::exit(FSYNC_FAILURE_EXIT_CODE);
            }
        }
    }
}

/// Fsyncs each partition's files, in parallel when there are several: one device flush
/// overlaps the others as it would in separate rounds.
fn sync_each(
    pending: Vec<(&Arc<Partition>, crate::storage::PendingSync)>,
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
