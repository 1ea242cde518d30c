//! The task that fires group deadlines (sessions, join and sync phases).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::GroupCoordinator;
use crate::group::timer::Timers;

/// Sleeps until the next deadline (or an earlier one is scheduled) and ticks due groups.
pub(super) async fn run(coordinator: Weak<GroupCoordinator>, timers: Arc<Timers>) {
    loop {
        let next = {
            let Some(coordinator) = coordinator.upgrade() else {
                return;
            };
            let now = coordinator.now().mono;
            for id in timers.take_due(now) {
                coordinator.tick(&id);
            }
            timers.next().map(|d| (d - coordinator.now().mono).max(0))
        };
        match next {
            Some(ms) => {
                let sleep =
                    tokio::time::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
                tokio::select! {
                    _ = sleep => {}
                    _ = timers.changed() => {}
                }
            }
            None => timers.changed().await,
        }
    }
}

impl GroupCoordinator {
    /// Fires whatever deadlines of `group_id` have passed.
    pub(super) fn tick(self: &Arc<Self>, group_id: &str) {
        self.tick_consumer(group_id);
        let Some(shared) = self.get(group_id) else {
            return;
        };
        let mut slot = shared.lock();
        slot.scheduled = None;
        let effects = slot.group.tick(self.now());
        self.apply(&shared, &mut slot, effects);
    }
}
