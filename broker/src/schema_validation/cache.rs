//! The schema facts the registry gave, by id, kept for a while and up to a bound, so a
//! validated topic costs a registry call per new id, not per batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::SchemaFacts;

/// A bounded, expiring map of schema id to what the registry said of it.
#[derive(Debug)]
pub struct FactsCache {
    entries: Mutex<HashMap<i32, (Instant, Arc<SchemaFacts>)>>,
    capacity: usize,
    ttl: Duration,
}

impl FactsCache {
    /// A cache of at most `capacity` ids, each trusted for `ttl` (a subject may gain or lose
    /// the id later).
    pub fn new(capacity: usize, ttl: Duration) -> FactsCache {
        FactsCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The facts of `id` if cached and not expired at `now`.
    pub fn get(&self, id: i32, now: Instant) -> Option<Arc<SchemaFacts>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&id) {
            Some((at, facts)) if now.duration_since(*at) < self.ttl => Some(facts.clone()),
            Some(_) => {
                entries.remove(&id);
                None
            }
            None => None,
        }
    }

    /// Keeps the facts of `id` from `now`; when full, expired entries go first, then the
    /// oldest.
    pub fn insert(&self, id: i32, facts: Arc<SchemaFacts>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&id) {
            entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(id, (now, facts));
    }

    /// How many ids are cached.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
