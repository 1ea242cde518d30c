//! What the metrics read of the groups at a scrape: how many there are of each type in each
//! state, and the rebalances they went through since the last scrape.

use std::collections::{BTreeMap, HashSet};

use super::GroupCoordinator;
use crate::group::rebalance_log::Rebalances;

/// The groups served here, as a scrape sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Classic groups by Kafka's state name.
    pub classic: BTreeMap<&'static str, i64>,
    /// Consumer (KIP-848) groups by Kafka's state name.
    pub consumer: BTreeMap<&'static str, i64>,
    /// Classic rebalances started and finished since the last scrape.
    pub classic_rebalances: Rebalances,
    /// Consumer group rebalances (new group epochs) started and finished since then.
    pub consumer_rebalances: Rebalances,
}

impl GroupCoordinator {
    /// Counts the groups and takes their rebalances since the last call (one caller: the
    /// metrics scrape).
    pub fn take_stats(&self) -> GroupStats {
        let mut stats = GroupStats::default();
        let consumer = self.list_consumer_groups();
        for (_, state) in &consumer {
            *stats.consumer.entry(state.as_str()).or_default() += 1;
        }
        let consumer_ids: HashSet<&str> = consumer.iter().map(|(id, _)| id.as_str()).collect();
        let shared: Vec<_> = self.groups.read().values().cloned().collect();
        for slot in shared {
            let mut slot = slot.lock();
            // A consumer group's offsets sit in a classic slot of the same id.
            if !consumer_ids.contains(slot.group.id()) {
                *stats
                    .classic
                    .entry(slot.group.state().as_str())
                    .or_default() += 1;
            }
            let taken = slot.group.rebalances.take();
            stats.classic_rebalances.started += taken.started;
            stats
                .classic_rebalances
                .finished_ms
                .extend(taken.finished_ms);
        }
        stats.consumer_rebalances = self.take_consumer_rebalances();
        stats
    }
}
