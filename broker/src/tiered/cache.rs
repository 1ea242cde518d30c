//! A bounded least-recently-used cache of pieces of remote objects (fixed-size chunks of
//! segments, whole offset indexes), so consumers reading a remote segment from start to end
//! download each chunk once, not once per fetch.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use uuid::Uuid;

/// What a cached piece is: the segment id and which piece of it (a chunk number, or
/// [`INDEX_PIECE`] for its offset index).
pub type PieceKey = (Uuid, u64);

/// The piece number of a segment's offset index.
pub const INDEX_PIECE: u64 = u64::MAX;

/// Pieces of remote objects, at most `capacity` bytes in all.
#[derive(Debug)]
pub struct SegmentCache {
    capacity: u64,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// Most recently used last.
    order: VecDeque<(PieceKey, Bytes)>,
    bytes: u64,
}

impl SegmentCache {
    /// An empty cache holding at most `capacity` bytes (a piece larger than that is not
    /// cached).
    pub fn new(capacity: u64) -> SegmentCache {
        SegmentCache {
            capacity,
            inner: Mutex::new(Entries::default()),
        }
    }

    /// The cached piece `id`, now the most recently used.
    pub fn get(&self, id: PieceKey) -> Option<Bytes> {
        let mut inner = self.inner.lock();
        let at = inner.order.iter().position(|(k, _)| *k == id)?;
        let entry = inner.order.remove(at)?;
        let bytes = entry.1.clone();
        inner.order.push_back(entry);
        Some(bytes)
    }

    /// Caches piece `id`, evicting the least recently used until it fits.
    pub fn insert(&self, id: PieceKey, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size > self.capacity {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(at) = inner.order.iter().position(|(k, _)| *k == id) {
            if let Some((_, old)) = inner.order.remove(at) {
                inner.bytes -= old.len() as u64;
            }
        }
        while inner.bytes + size > self.capacity {
            match inner.order.pop_front() {
                Some((_, old)) => inner.bytes -= old.len() as u64,
                None => break,
            }
        }
        inner.bytes += size;
        inner.order.push_back((id, bytes));
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> u64 {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
