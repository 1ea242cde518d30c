//! The task that fires group deadlines (sessions, join and sync phases).

use std::sync::{Arc, Weak};

use super::GroupCoordinator;
use crate::runtime::timer::{self, Timers};

/// Sleeps until the next deadline (or an earlier one is scheduled) and ticks due groups.
pub(super) async fn run(coordinator: Weak<GroupCoordinator>, timers: Arc<Timers>) {
    timer::run(coordinator, timers, |c| c.now().mono, |c, id| c.tick(id)).await;
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

    /// The earliest deadline on the timer (tests step the clock to it).
    #[cfg(test)]
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.timers.next()
    }

    /// Ticks every group due at the coordinator's clock now, as the timer task would (tests,
    /// with a clock they step).
    #[cfg(test)]
    pub(crate) fn fire_due(self: &Arc<Self>) {
        for group_id in self.timers.take_due(self.now().mono) {
            self.tick(&group_id);
        }
    }
}
