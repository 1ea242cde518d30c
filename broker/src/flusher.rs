//! Group commit: one background task fsyncs every partition written since its last round, so
//! one fsync covers all batches appended meanwhile and acks=all producers share its cost.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::partition::Partition;

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
                    // Acks wait for this offset and time out: no unsynced write is acknowledged.
                    tracing::error!(?partition, %error, "fsync failed");
                }
                Err(error) => tracing::error!(%error, "fsync task failed"),
            }
        }
    }
}
