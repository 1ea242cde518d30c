//! The bounded event history behind watches: every change, in resourceVersion order, with the
//! object's previous state (so a list can be served at an older resourceVersion). The oldest
//! events are compacted away past the bound; resuming from before them answers 410 Gone.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::store::Key;

/// A watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change to one object.
#[derive(Debug)]
pub(crate) struct Change {
    /// The resourceVersion of the change.
    pub(crate) rv: u64,
    pub(crate) key: Key,
    pub(crate) kind: EventType,
    /// The object after the change (its last state for a deletion).
    pub(crate) object: Value,
    /// The object before the change (`None` when it was created).
    pub(crate) previous: Option<Value>,
}

/// Events kept for resumption and the channel that fans new ones out to watches.
pub(crate) struct History {
    events: VecDeque<Arc<Change>>,
    limit: usize,
    /// The highest resourceVersion dropped from the history (0: none).
    compacted: u64,
    tx: broadcast::Sender<Arc<Change>>,
}

impl History {
    /// A history of at most `limit` events.
    pub(crate) fn new(limit: usize) -> Self {
        let (tx, _) = broadcast::channel(8192);
        History {
            events: VecDeque::new(),
            limit: limit.max(1),
            compacted: 0,
            tx,
        }
    }

    /// Appends a change and hands it to every watch.
    pub(crate) fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.events.push_back(change.clone());
        while self.events.len() > self.limit {
            if let Some(old) = self.events.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(change);
    }

    /// Drops every event (as if etcd compacted up to `rv`).
    pub(crate) fn compact_all(&mut self, rv: u64) {
        self.events.clear();
        self.compacted = rv;
    }

    /// Events after `rv`, or `Err(compacted)` when some of them are gone.
    pub(crate) fn since(&self, rv: u64) -> Result<Vec<Arc<Change>>, u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        Ok(self.events.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// A receiver of every later change.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(rv: u64) -> Change {
        Change {
            rv,
            key: Key::new("/configmaps", "ns", "c"),
            kind: EventType::Modified,
            object: json!({}),
            previous: None,
        }
    }

    #[test]
    fn resuming_before_the_compacted_window_is_gone() {
        let mut h = History::new(2);
        for rv in 1..=4 {
            h.record(change(rv));
        }
        assert_eq!(h.since(1).err(), Some(2));
        let after: Vec<u64> = h
            .since(2)
            .expect("in window")
            .iter()
            .map(|c| c.rv)
            .collect();
        assert_eq!(after, vec![3, 4]);
        assert!(h.since(4).expect("current").is_empty());
    }
}
