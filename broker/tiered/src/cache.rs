//! A bounded least-recently-used cache of pieces of remote objects (fixed-size chunks of
//! segments, whole offset indexes), so consumers reading a remote segment from start to end
//! download each chunk once, not once per fetch.
//!
//! Every operation is O(1): a map from key to slot, and the slots chained most to least
//! recently used through indexes into one vector (a doubly linked list without pointers), so
//! a large cache of small chunks costs no scan per fetch.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;
use uuid::Uuid;

/// What a cached piece is: the segment id and which piece of it (a chunk number, or
/// [`INDEX_PIECE`] and [`TIME_INDEX_PIECE`] for its indexes).
pub type PieceKey = (Uuid, u64);

/// The piece number of a segment's offset index.
pub const INDEX_PIECE: u64 = u64::MAX;

/// The piece number of a segment's time index (ListOffsets by timestamp).
pub const TIME_INDEX_PIECE: u64 = u64::MAX - 1;

/// Pieces of remote objects, at most `capacity` bytes in all.
#[derive(Debug)]
pub struct SegmentCache {
    capacity: u64,
    inner: Mutex<Lru>,
}

/// No slot: the end of the chain.
const NONE: usize = usize::MAX;

#[derive(Debug)]
struct Slot {
    key: PieceKey,
    bytes: Bytes,
    /// Towards the most recently used.
    newer: usize,
    /// Towards the least recently used.
    older: usize,
}

#[derive(Debug)]
struct Lru {
    slots: Vec<Slot>,
    /// Slots no piece uses, for reuse.
    free: Vec<usize>,
    map: HashMap<PieceKey, usize>,
    /// Most recently used slot.
    newest: usize,
    /// Least recently used slot: the next evicted.
    oldest: usize,
    bytes: u64,
}

impl Default for Lru {
    fn default() -> Self {
        Lru {
            slots: Vec::new(),
            free: Vec::new(),
            map: HashMap::new(),
            newest: NONE,
            oldest: NONE,
            bytes: 0,
        }
    }
}

impl Lru {
    /// Takes slot `at` out of the chain.
    fn unlink(&mut self, at: usize) {
        let (newer, older) = (self.slots[at].newer, self.slots[at].older);
        match newer {
            NONE => self.newest = older,
            n => self.slots[n].older = older,
        }
        match older {
            NONE => self.oldest = newer,
            o => self.slots[o].newer = newer,
        }
    }

    /// Puts slot `at` at the most recently used end of the chain.
    fn link_newest(&mut self, at: usize) {
        self.slots[at].newer = NONE;
        self.slots[at].older = self.newest;
        match self.newest {
            NONE => self.oldest = at,
            n => self.slots[n].newer = at,
        }
        self.newest = at;
    }

    /// Drops the piece in slot `at`, returning its bytes' size.
    fn remove(&mut self, at: usize) -> u64 {
        self.unlink(at);
        let slot = &mut self.slots[at];
        let size = slot.bytes.len() as u64;
        slot.bytes = Bytes::new();
        self.map.remove(&slot.key);
        self.free.push(at);
        self.bytes -= size;
        size
    }

    fn get(&mut self, key: &PieceKey) -> Option<Bytes> {
        let at = *self.map.get(key)?;
        self.unlink(at);
        self.link_newest(at);
        Some(self.slots[at].bytes.clone())
    }

    fn insert(&mut self, key: PieceKey, bytes: Bytes, capacity: u64) {
        if let Some(&at) = self.map.get(&key) {
            self.remove(at);
        }
        let size = bytes.len() as u64;
        while self.bytes + size > capacity && self.oldest != NONE {
            self.remove(self.oldest);
        }
        let slot = Slot {
            key,
            bytes,
            newer: NONE,
            older: NONE,
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.slots[at] = slot;
                at
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.map.insert(key, at);
        self.link_newest(at);
        self.bytes += size;
    }

    /// Keys from most to least recently used.
    #[cfg(test)]
    fn order(&self) -> Vec<PieceKey> {
        let mut keys = Vec::new();
        let mut at = self.newest;
        while at != NONE {
            keys.push(self.slots[at].key);
            at = self.slots[at].older;
        }
        keys
    }
}

impl SegmentCache {
    /// An empty cache holding at most `capacity` bytes (a piece larger than that is not
    /// cached).
    pub fn new(capacity: u64) -> SegmentCache {
        SegmentCache {
            capacity,
            inner: Mutex::new(Lru::default()),
        }
    }

    /// The cached piece `id`, now the most recently used.
    pub fn get(&self, id: PieceKey) -> Option<Bytes> {
        self.inner.lock().get(&id)
    }

    /// Caches piece `id`, evicting the least recently used until it fits.
    pub fn insert(&self, id: PieceKey, bytes: Bytes) {
        if bytes.len() as u64 > self.capacity {
            return;
        }
        self.inner.lock().insert(id, bytes, self.capacity);
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    /// Pieces held.
    pub fn len(&self) -> usize {
        self.inner.lock().map.len()
    }

    /// Whether it holds no piece.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<PieceKey> {
        let id = Uuid::new_v4();
        (0..n as u64).map(|i| (id, i)).collect()
    }

    #[test]
    fn the_least_recently_used_piece_is_evicted_to_stay_within_capacity() {
        let cache = SegmentCache::new(10);
        let (a, b, c) = (
            (Uuid::new_v4(), 0),
            (Uuid::new_v4(), 0),
            (Uuid::new_v4(), 0),
        );
        cache.insert(a, Bytes::from_static(b"aaaa"));
        cache.insert(b, Bytes::from_static(b"bbbb"));
        assert!(cache.get(a).is_some(), "a is now the most recent");
        cache.insert(c, Bytes::from_static(b"cccc"));
        assert!(cache.get(b).is_none(), "b was the least recently used");
        assert!(cache.get(a).is_some());
        assert!(cache.get(c).is_some());
        assert_eq!(cache.size_bytes(), 8);
        cache.insert((Uuid::new_v4(), 0), Bytes::from(vec![0; 11]));
        assert_eq!(cache.size_bytes(), 8, "too big to cache");
    }

    #[test]
    fn eviction_follows_use_order_not_insertion_order() {
        let cache = SegmentCache::new(4);
        let k = keys(6);
        for key in &k[..4] {
            cache.insert(*key, Bytes::from_static(b"x"));
        }
        // Use 0 and 2: the order from newest is 2, 0, 3, 1.
        assert!(cache.get(k[0]).is_some());
        assert!(cache.get(k[2]).is_some());
        assert_eq!(cache.inner.lock().order(), vec![k[2], k[0], k[3], k[1]]);
        cache.insert(k[4], Bytes::from_static(b"x"));
        assert!(cache.get(k[1]).is_none(), "1 was the least recently used");
        cache.insert(k[5], Bytes::from_static(b"x"));
        assert!(cache.get(k[3]).is_none(), "then 3");
        assert_eq!(cache.inner.lock().order(), vec![k[5], k[4], k[2], k[0]]);
        assert_eq!((cache.len(), cache.size_bytes()), (4, 4));
    }

    #[test]
    fn a_large_piece_evicts_as_many_old_ones_as_it_needs_and_slots_are_reused() {
        let cache = SegmentCache::new(10);
        let k = keys(5);
        for key in &k[..4] {
            cache.insert(*key, Bytes::from_static(b"xx"));
        }
        cache.insert(k[4], Bytes::from(vec![1; 7]));
        assert_eq!(cache.inner.lock().order(), vec![k[4], k[3]]);
        assert_eq!(cache.size_bytes(), 9);
        assert_eq!(cache.inner.lock().slots.len(), 4, "freed slots reused");
        // Replacing a piece keeps one copy, counted once, as the newest.
        cache.insert(k[3], Bytes::from_static(b"yyy"));
        assert_eq!(cache.inner.lock().order(), vec![k[3], k[4]]);
        assert_eq!(cache.size_bytes(), 10);
        assert_eq!(cache.get(k[3]), Some(Bytes::from_static(b"yyy")));
    }

    #[test]
    fn a_zero_capacity_cache_holds_nothing() {
        let cache = SegmentCache::new(0);
        let k = keys(1);
        cache.insert(k[0], Bytes::from_static(b"x"));
        assert!(cache.is_empty());
        cache.insert(k[0], Bytes::new());
        assert_eq!(cache.len(), 1, "an empty piece fits");
        assert_eq!(cache.get(k[0]), Some(Bytes::new()));
    }
}
