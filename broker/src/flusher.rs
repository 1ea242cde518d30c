//! Group commit: one background task fsyncs every partition written since its last round, so
//! one fsync covers all batches appended meanwhile and acks=all producers share its cost.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::partition::Partition;

/// Exit code of a broker halted by a failed fsync.
pub const FSYNC_FAILURE_EXIT_CODE: i32 = 70;

/// Handle for queueing partitions that have unsynced writes.
#[derive(Debug, Clone)]
pub struct Flusher {
    queue: mpsc::UnboundedSender<Arc<Partition>>,
}

impl Flusher {
    /// Starts the flusher task on the current runtime.
    pub fn start() -> Flusher {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx));
        Flusher { queue }
    }

    /// Queues `partition` for the next fsync round (no-op if it is queued already).
    pub fn request_sync(&self, partition: &Arc<Partition>) {
        if partition.enqueue_for_sync() && self.queue.send(partition.clone()).is_err() {
            tracing::error!(?partition, "flusher stopped; write will not be synced");
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Arc<Partition>>) {
    while let Some(first) = rx.recv().await {
        let mut round = vec![first];
        while let Ok(more) = rx.try_recv() {
            round.push(more);
        }
        let syncs: Vec<_> = round
            .into_iter()
            .filter_map(|p| p.take_pending_sync().map(|s| (p, s)))
            .map(|(partition, sync)| tokio::task::spawn_blocking(move || (sync.run(), partition)))
            .collect();
        for sync in syncs {
            match sync.await {
                Ok((Ok(offset), partition)) => partition.mark_synced(offset),
                Ok((Err(error), partition)) => {
                    // After a failed fsync the kernel may have dropped the dirty pages, so the
                    // data in the page cache can no longer be trusted to reach the disk. Like
                    // Kafka with a failed log directory, halt: recovery on restart rescans
                    // everything after the recovery point, and nothing unsynced was acked.
                    tracing::error!(?partition, %error, "fsync failed; halting the broker");
                    std::process::exit(FSYNC_FAILURE_EXIT_CODE);
                }
                Err(error) => {
                    tracing::error!(%error, "fsync task failed; halting the broker");
                    std::process::exit(FSYNC_FAILURE_EXIT_CODE);
                }
            }
        }
    }
}
