//! ISR changes a leader proposes, written to the cluster metadata one at a time per partition
//! (the partition holds at most one in flight) and reported back to the partition, which
//! takes the new ISR only once it is recorded (KIP-497's pending state).

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::partition::{IsrProposal, Partition};

/// Where a leader's ISR changes are recorded (the KafkaPartition's status in cluster mode).
pub trait IsrWriter: Send + Sync {
    /// Records `proposal` if the partition is still at its leader and partition epochs;
    /// returns the new partition epoch, or `None` when the write was refused or failed (the
    /// partition's next metadata says what happened instead).
    fn write<'a>(&'a self, proposal: &'a IsrProposal) -> BoxFuture<'a, Option<i32>>;
}

/// Counters of ISR changes, as Kafka's ReplicaManager reports them.
#[derive(Clone)]
pub struct IsrCounters {
    /// ISR changes recorded that removed replicas.
    pub shrinks: prometheus::IntCounter,
    /// ISR changes recorded that added replicas.
    pub expands: prometheus::IntCounter,
    /// ISR changes the cluster metadata refused, or that could not be written.
    pub failed: prometheus::IntCounter,
}

/// Writes `proposal` with `writer` (none: refused at once) and reports the outcome to
/// `partition` and the counters.
pub(crate) fn submit(
    writer: Option<Arc<dyn IsrWriter>>,
    counters: Option<IsrCounters>,
    partition: Arc<Partition>,
    proposal: IsrProposal,
) {
    let Some(writer) = writer else {
        partition.isr_change_done(&proposal, None);
        return;
    };
    let before = partition.isr_size();
    tokio::spawn(async move {
        let written = writer.write(&proposal).await;
        if let Some(c) = &counters {
            match written {
                Some(_) if proposal.isr.len() < before => c.shrinks.inc(),
                Some(_) => c.expands.inc(),
                None => c.failed.inc(),
            }
        }
        match written {
            Some(epoch) => tracing::info!(
                topic = proposal.topic,
                partition = proposal.partition,
                isr = ?proposal.isr,
                partition_epoch = epoch,
                "ISR changed"
            ),
            None => tracing::info!(
                topic = proposal.topic,
                partition = proposal.partition,
                isr = ?proposal.isr,
                "ISR change not recorded"
            ),
        }
        partition.isr_change_done(&proposal, written);
    });
}
