//! The group coordinator as a shard of the coordinator [`Runtime`]: what loading one of its
//! `__consumer_offsets` partitions installs (the classic, consumer and share groups [`Replay`]
//! rebuilds, with their timers) and what unloading drops (the partition's groups, answering
//! their waiting joins and syncs so clients look for the new coordinator). When either
//! happens is the runtime's decision.

use std::sync::Arc;

use parking_lot::Mutex;

use super::{GroupCoordinator, Slot};
use crate::group::load::Replay;
use crate::log::LogRecord;
use crate::partitioner::partition_for;
use crate::{Runtime, Shard};

impl crate::Replay for Replay {
    fn apply(&mut self, record: &LogRecord) {
        Replay::apply(self, record);
    }

    fn skipped(&self) -> usize {
        Replay::skipped(self)
    }
}

impl Shard for GroupCoordinator {
    type Replay = Replay;
    const NAME: &'static str = "group";

    fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn install(&self, partition: i32, mut replay: Replay) -> usize {
        self.txn_offsets
            .lock()
            .insert(partition, replay.take_txn_offsets());
        let consumer = self.install_consumer_groups(replay.take_consumer_groups(), self.now());
        let share = self.install_share_groups(replay.take_share_groups());
        let loaded = replay.into_groups(self.now(), self.config.initial_rebalance_delay_ms);
        let count = loaded.len() + consumer + share;
        let mut shared = Vec::with_capacity(count);
        {
            let mut groups = self.groups.write();
            for group in loaded {
                let id = group.id().to_string();
                let slot = Arc::new(Mutex::new(Slot::new(group)));
                groups.insert(id, slot.clone());
                shared.push(slot);
            }
        }
        for slot in shared {
            self.schedule(&mut slot.lock());
        }
        count
    }

    fn unload(&self, partition: i32) -> usize {
        self.txn_offsets.lock().remove(&partition);
        let count = self.runtime.partition_count();
        let removed: Vec<Arc<Mutex<Slot>>> = {
            let mut groups = self.groups.write();
            let ids: Vec<String> = groups
                .keys()
                .filter(|id| partition_for(id, count) == partition)
                .cloned()
                .collect();
            ids.iter().filter_map(|id| groups.remove(id)).collect()
        };
        for slot in &removed {
            let mut slot = slot.lock();
            slot.joins.clear();
            slot.syncs.clear();
        }
        let consumer = self.unload_consumer_groups(|id| partition_for(id, count) == partition);
        let share = self.unload_share_groups(|id| partition_for(id, count) == partition);
        removed.len() + consumer + share
    }
}
