//! Loading the groups of one `__consumer_offsets` partition when this broker comes to lead it
//! (see [`super::ownership`]); its groups answer COORDINATOR_LOAD_IN_PROGRESS until then.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{GroupCoordinator, Slot};
use crate::group::load::Replay;
use crate::group::log::{CoordinatorLog, LogError};

/// Reads `partition` from its start and replays every record.
pub(super) fn replay_partition(
    log: &dyn CoordinatorLog,
    partition: i32,
) -> Result<Replay, LogError> {
    let mut replay = Replay::default();
    let mut offset = 0;
    loop {
        let chunk = log.read(partition, offset)?;
        for record in &chunk.records {
            replay.apply(record);
        }
        if chunk.at_end || chunk.next_offset <= offset {
            break;
        }
        offset = chunk.next_offset;
    }
    if replay.skipped() > 0 {
        tracing::warn!(
            partition,
            skipped = replay.skipped(),
            "records not understood while loading"
        );
    }
    Ok(replay)
}

impl GroupCoordinator {
    /// Installs the groups replayed from `partition` and opens it for requests.
    pub(super) fn install(self: &Arc<Self>, replay: Replay) -> usize {
        let now = self.now();
        let loaded = replay.into_groups(now, self.config.initial_rebalance_delay_ms);
        let count = loaded.len();
        let mut shared = Vec::with_capacity(count);
        {
            let mut groups = self.groups.write();
            for group in loaded {
                let slot = Arc::new(Mutex::new(Slot {
                    group,
                    joins: HashMap::new(),
                    syncs: HashMap::new(),
                    scheduled: None,
                }));
                let id = slot.lock().group.id().to_string();
                groups.insert(id, slot.clone());
                shared.push(slot);
            }
        }
        for slot in shared {
            self.schedule(&mut slot.lock());
        }
        count
    }
}
