//! Shorthands the controller's decision tests share: broker views and partition statuses
//! written as tuples, so a table row reads as the state it describes.

use tributary_crds::{IsrEntry, KafkaPartitionStatus};

use super::liveness::{BrokerView, LiveBroker};

/// `[(id, incarnation, shutting_down)]` as a view of brokers seen renewing.
pub(crate) fn live(brokers: &[(i32, i64, bool)]) -> BrokerView {
    brokers
        .iter()
        .map(|&(id, incarnation, shutting_down)| {
            (
                id,
                LiveBroker {
                    incarnation,
                    shutting_down,
                    directory_epoch: None,
                    renewing: true,
                },
            )
        })
        .collect()
}

/// `leader`, leader and partition epochs, and ISR `[(id, incarnation)]`.
pub(crate) fn st(leader: i32, le: i32, pe: i32, isr: &[(i32, i64)]) -> KafkaPartitionStatus {
    KafkaPartitionStatus {
        leader,
        leader_epoch: le,
        partition_epoch: pe,
        isr: isr
            .iter()
            .map(|&(broker_id, broker_epoch)| IsrEntry {
                broker_id,
                broker_epoch,
            })
            .collect(),
    }
}
