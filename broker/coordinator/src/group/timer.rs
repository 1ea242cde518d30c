//! One timer for all groups: a heap of (deadline, group id). Groups push their next deadline
//! when it moves earlier; entries that turn out stale just cause a harmless extra tick.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Pending group deadlines (monotonic ms).
#[derive(Default)]
pub struct Timers {
    heap: Mutex<BinaryHeap<Reverse<(i64, String)>>>,
    wake: Notify,
}

impl Timers {
    /// Asks for `group` to be ticked at `deadline`.
    pub fn schedule(&self, deadline: i64, group: &str) {
        let mut heap = self.heap.lock();
        let earlier = heap.peek().is_none_or(|Reverse((d, _))| deadline < *d);
        heap.push(Reverse((deadline, group.to_string())));
        drop(heap);
        if earlier {
            self.wake.notify_one();
        }
    }

    /// Removes and returns the groups due at `now`, without duplicates.
    pub fn take_due(&self, now: i64) -> Vec<String> {
        let mut heap = self.heap.lock();
        let mut due: Vec<String> = Vec::new();
        while heap.peek().is_some_and(|Reverse((d, _))| *d <= now) {
            if let Some(Reverse((_, group))) = heap.pop() {
                if !due.contains(&group) {
                    due.push(group);
                }
            }
        }
        due
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<i64> {
        self.heap.lock().peek().map(|Reverse((d, _))| *d)
    }

    /// Resolves when an earlier deadline was scheduled.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_groups_come_out_once_in_deadline_order() {
        let t = Timers::default();
        t.schedule(30, "c");
        t.schedule(10, "a");
        t.schedule(20, "b");
        t.schedule(15, "a");
        assert_eq!(t.next(), Some(10));
        assert_eq!(t.take_due(20), vec!["a", "b"]);
        assert_eq!(t.next(), Some(30));
        assert!(t.take_due(29).is_empty());
    }
}
