//! Space in the fixed-size journal file: records are placed one after another and wrap to the
//! start, never over a record whose batches are not yet durable in their segments.

use std::collections::VecDeque;

/// The journal file's records still needed for recovery, oldest first.
#[derive(Debug)]
pub(super) struct Ring {
    size: u64,
    /// End of the newest record: where the next one goes if it fits.
    head: u64,
    live: VecDeque<Placed>,
    used: u64,
}

#[derive(Debug, Clone, Copy)]
struct Placed {
    seq: u64,
    start: u64,
    len: u64,
}

impl Ring {
    /// An empty ring over a file of `size` bytes.
    pub(super) fn new(size: u64) -> Ring {
        Ring {
            size,
            head: 0,
            live: VecDeque::new(),
            used: 0,
        }
    }

    /// Where a record of `len` bytes can be written without overwriting a live one.
    pub(super) fn place(&self, len: u64) -> Option<u64> {
        if len > self.size {
            return None;
        }
        let Some(oldest) = self.live.front() else {
            return Some(if self.head + len <= self.size {
                self.head
            } else {
                0
            });
        };
        let tail = oldest.start;
        if self.head > tail {
            if self.head + len <= self.size {
                Some(self.head)
            } else {
                (len <= tail).then_some(0)
            }
        } else {
            (self.head + len <= tail).then_some(self.head)
        }
    }

    /// Records that record `seq` now occupies `len` bytes from `start`.
    pub(super) fn push(&mut self, seq: u64, start: u64, len: u64) {
        self.live.push_back(Placed { seq, start, len });
        self.head = start + len;
        self.used += len;
    }

    /// Frees the records numbered up to `seq`: their batches are durable in the segments.
    pub(super) fn release_through(&mut self, seq: u64) {
        while let Some(oldest) = self.live.front().copied() {
            if oldest.seq > seq {
                break;
            }
            self.live.pop_front();
            self.used -= oldest.len;
        }
    }

    /// Bytes held by live records.
    pub(super) fn used(&self) -> u64 {
        self.used
    }

    /// The file size.
    pub(super) fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn records_go_one_after_another() {
        let mut ring = Ring::new(100);
        assert_eq!(ring.place(30), Some(0));
        ring.push(1, 0, 30);
        assert_eq!(ring.place(30), Some(30));
        ring.push(2, 30, 30);
        assert_eq!(ring.used(), 60);
    }

    #[test]
    fn a_full_ring_places_nothing_until_released() {
        let mut ring = Ring::new(100);
        for (seq, start) in [(1, 0), (2, 40)] {
            ring.push(seq, start, 40);
        }
        assert_eq!(
            ring.place(30),
            None,
            "20 bytes at the end, none at the start"
        );
        ring.release_through(1);
        assert_eq!(ring.place(30), Some(0), "wraps into the freed start");
        ring.push(3, 0, 30);
        assert_eq!(ring.place(20), None, "10 bytes left before the oldest");
        assert_eq!(ring.place(10), Some(30));
        ring.push(4, 30, 10);
        assert_eq!(ring.place(1), None, "exactly full");
        ring.release_through(4);
        assert_eq!(ring.used(), 0);
        assert_eq!(
            ring.place(60),
            Some(40),
            "an empty ring continues at the head"
        );
        assert_eq!(
            ring.place(70),
            Some(0),
            "or starts over when the rest is too short"
        );
    }

    #[test]
    fn a_record_larger_than_the_file_never_fits() {
        assert_eq!(Ring::new(100).place(101), None);
    }
}
