//! Group commit. Each partition has at most one fsync running; writes that arrive meanwhile
//! are covered by the next one, which starts as soon as the running one ends. So one fsync
//! covers every batch appended while the previous was on disk, acks=all producers share its
//! cost, and partitions never wait for each other. Writes nobody waits on are fsynced as the
//! topic's `flush.messages` and `flush.ms` say, and at segment rolls.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    flush_seconds: Histogram,
}

impl Flusher {
    /// A flusher running its fsyncs on the blocking pool of the current runtime.
    pub fn new(flush_seconds: Histogram) -> Flusher {
        Flusher {
            runtime: Handle::current(),
            flush_seconds,
        }
    }

    /// Makes sure `partition`'s writes so far get fsynced.
    pub fn request_sync(&self, partition: &Arc<Partition>) {
        if partition.request_sync() {
            let partition = partition.clone();
            let flush_seconds = self.flush_seconds.clone();
            self.runtime
                .spawn_blocking(move || sync_until_clean(&partition, &flush_seconds));
        }
    }

    /// Schedules the fsync `due` asks for, for writes no producer waits on.
    pub fn after_write(&self, partition: &Arc<Partition>, due: FlushDue) {
        match due {
            FlushDue::Now => self.request_sync(partition),
            FlushDue::Within(ms) => {
                if partition.schedule_flush() {
                    let flusher = self.clone();
                    let partition = partition.clone();
                    self.runtime.spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        partition.deferred_flush_started();
                        flusher.request_sync(&partition);
                    });
                }
            }
            FlushDue::Later => {}
        }
    }
}

/// Runs fsync rounds for one partition until no write is left unsynced.
fn sync_until_clean(partition: &Partition, flush_seconds: &Histogram) {
    loop {
        if let Some(pending) = partition.take_pending_sync() {
            let started = Instant::now();
            match pending.run() {
                Ok(offset) => partition.mark_synced(offset),
                Err(error) => {
                    // After a failed fsync the kernel may have dropped the dirty pages, so the
                    // page cache can no longer be trusted to reach the disk. Like Kafka with a
                    // failed log directory, halt: recovery on restart rescans everything after
                    // the recovery point, and nothing unsynced was acknowledged.
                    tracing::error!(?partition, %error, "fsync failed; halting the broker");
                    std::process::exit(FSYNC_FAILURE_EXIT_CODE);
                }
            }
            flush_seconds.observe(started.elapsed().as_secs_f64());
        }
        if partition.finish_sync() {
            return;
        }
    }
}
