//! One timer for all of a shard's keys (groups, transactions): a heap of (deadline, key), and
//! the task that fires it. Keys push their next deadline when it moves earlier; entries that
//! turn out stale just cause a harmless extra tick. The deadlines are on whatever millisecond
//! clock the shard judges its keys by, which it hands to [`run`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Pending deadlines (ms on the shard's clock) by key: a group id, a transactional id.
pub(crate) struct Timers<K = String> {
    heap: Mutex<BinaryHeap<Reverse<(i64, K)>>>,
    wake: Notify,
}

impl<K: Ord> Default for Timers<K> {
    fn default() -> Timers<K> {
        Timers {
            heap: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
        }
    }
}

impl<K: Ord + Clone> Timers<K> {
    /// Asks for `key` to be ticked at `deadline`.
    pub(crate) fn schedule<Q: ToOwned<Owned = K> + ?Sized>(&self, deadline: i64, key: &Q) {
        let mut heap = self.heap.lock();
        let earlier = heap.peek().is_none_or(|Reverse((d, _))| deadline < *d);
        heap.push(Reverse((deadline, key.to_owned())));
        drop(heap);
        if earlier {
            self.wake.notify_one();
        }
    }

    /// Removes and returns the keys due at `now`, without duplicates.
    pub(crate) fn take_due(&self, now: i64) -> Vec<K> {
        let mut heap = self.heap.lock();
        let mut due: Vec<K> = Vec::new();
        while heap.peek().is_some_and(|Reverse((d, _))| *d <= now) {
            if let Some(Reverse((_, key))) = heap.pop() {
                if !due.contains(&key) {
                    due.push(key);
                }
            }
        }
        due
    }

    /// The earliest deadline, if any.
    pub(crate) fn next(&self) -> Option<i64> {
        self.heap.lock().peek().map(|Reverse((d, _))| *d)
    }

    /// Resolves when an earlier deadline was scheduled.
    pub(crate) async fn changed(&self) {
        self.wake.notified().await;
    }
}

/// Fires `timers` for `owner` until it is dropped: sleeps until the next deadline (or until an
/// earlier one is scheduled) by the owner's clock `now`, then ticks each due key.
pub(crate) async fn run<T, K: Ord + Clone>(
    owner: Weak<T>,
    timers: Arc<Timers<K>>,
    now: impl Fn(&T) -> i64,
    tick: impl Fn(&Arc<T>, &K),
) {
    loop {
        let next = {
            let Some(owner) = owner.upgrade() else {
                return;
            };
            for key in timers.take_due(now(&owner)) {
                tick(&owner, &key);
            }
            timers.next().map(|d| (d - now(&owner)).max(0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_groups_come_out_once_in_deadline_order() {
        let t: Timers = Timers::default();
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
