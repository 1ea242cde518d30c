//! Offsets retention (`offsets.retention.minutes`): expired offsets get tombstones, and an
//! empty group left without offsets is removed. The offsets of a consumer group with members
//! do not expire.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::GroupCoordinator;
use crate::group::records::offset_key;
use crate::group::state::GroupState;
use crate::log::Entry;

/// Runs [`GroupCoordinator::expire_offsets`] every `every` until the coordinator is gone.
pub(super) async fn run(coordinator: Weak<GroupCoordinator>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(coordinator) = coordinator.upgrade() else {
            return;
        };
        coordinator.expire_offsets();
    }
}

impl GroupCoordinator {
    /// One retention pass over every group; returns how many offsets expired.
    pub fn expire_offsets(self: &Arc<Self>) -> usize {
        let shared: Vec<_> = self
            .groups
            .read()
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        let now = self.now();
        let mut expired_total = 0;
        for (id, shared) in shared {
            // A consumer group's offsets stay while it has members.
            if self.consumer_in_use(&id) {
                continue;
            }
            let mut slot = shared.lock();
            if slot.group.state() == GroupState::Dead {
                continue;
            }
            let id = slot.group.id().to_string();
            let expired = slot
                .group
                .expired_offsets(now.wall, self.config.offsets_retention_ms);
            let mut tombstones: Vec<Entry> = Vec::new();
            for tp in &expired {
                slot.group.offsets.remove(tp);
                tombstones.push((offset_key(&id, &tp.0, tp.1), None));
            }
            expired_total += expired.len();
            if slot.group.state() == GroupState::Empty && slot.group.offsets.is_empty() {
                tombstones.extend(self.bury(&shared, &mut slot, now));
                tracing::info!(group = %id, "removed empty group without offsets");
            }
            if !expired.is_empty() {
                tracing::info!(group = %id, count = expired.len(), "expired offsets");
            }
            if !tombstones.is_empty() {
                if let Err(error) = self.append(&id, &tombstones, now) {
                    tracing::warn!(group = %id, %error, "cannot write tombstones for expired offsets");
                }
            }
        }
        expired_total
    }
}
