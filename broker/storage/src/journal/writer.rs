//! Appending rounds to the journal file: one synchronous positioned write each.
//!
//! The file is created full size and zero-filled once, so a round's write neither allocates
//! blocks nor changes the file size: making it durable writes the round's blocks and flushes
//! the device cache, with no filesystem metadata to commit. Where the filesystem allows, the
//! file is opened with `O_DIRECT`: the write goes from the round's buffer straight to the
//! device, without copying through the page cache and writing it back; elsewhere (tmpfs, say)
//! it is buffered. Either way an `fdatasync` follows.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

#[cfg(test)]
use super::prepare::create_zero_filled;
use super::record::{self, Entry, BLOCK};
use super::ring::Ring;

/// The journal file, open for appending rounds.
#[derive(Debug)]
pub struct Journal {
    file: File,
    ring: Ring,
    next_seq: u64,
    buf: AlignedBuf,
}

impl Journal {
    /// Opens the journal at `path` for rounds numbered after `last_seq`, first (re)creating it
    /// zero-filled at `size` bytes (rounded up to whole blocks) unless it already has that
    /// size, whatever the free space; as [`Journal::prepare`] otherwise.
    #[cfg(test)]
    pub(crate) fn open_or_create(path: &Path, size: u64, last_seq: u64) -> io::Result<Journal> {
        let size = record::padded(size.max(BLOCK));
        let current = std::fs::metadata(path).map(|m| m.len()).ok();
        if current != Some(size) {
            create_zero_filled(path, size)?;
        }
        Journal::open(path, size, last_seq)
    }

    /// Opens the journal file at `path`, of `size` bytes, for rounds after `last_seq`.
    pub(super) fn open(path: &Path, size: u64, last_seq: u64) -> io::Result<Journal> {
        let open = |flags| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(path)
        };
        let file = match open(OFlags::DIRECT.bits() as i32) {
            Ok(file) => file,
            Err(_) => open(0)?,
        };
        Ok(Journal {
            file,
            ring: Ring::new(size),
            next_seq: last_seq + 1,
            buf: AlignedBuf::default(),
        })
    }

    /// Writes one record of `entries` and makes it durable; returns its round number, or
    /// `None` when the live records leave no room for it (nothing is written then).
    pub fn commit(&mut self, entries: &[Entry<'_>]) -> io::Result<Option<u64>> {
        let len = record::encoded_len(entries);
        let Some(start) = self.ring.place(len) else {
            return Ok(None);
        };
        let seq = self.next_seq;
        let out = self.buf.slice(len as usize);
        record::encode(seq, entries, out);
        self.file.write_all_at(out, start)?;
        self.file.sync_data()?;
        self.ring.push(seq, start, len);
        self.next_seq += 1;
        Ok(Some(seq))
    }

    /// The number of the last round written (or replayed, before any was written).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Frees the space of rounds up to `seq`, whose batches are now durable in their segments.
    pub fn release_through(&mut self, seq: u64) {
        self.ring.release_through(seq);
    }

    /// Bytes held by records not yet released.
    pub fn used(&self) -> u64 {
        self.ring.used()
    }

    /// The file size.
    pub fn size(&self) -> u64 {
        self.ring.size()
    }
}

/// A reusable buffer whose slices start on a [`BLOCK`] boundary in memory, as `O_DIRECT`
/// writes need.
#[derive(Debug, Default)]
struct AlignedBuf {
    raw: Vec<u8>,
}

impl AlignedBuf {
    /// A block-aligned slice of `len` bytes (contents unspecified).
    fn slice(&mut self, len: usize) -> &mut [u8] {
        let block = BLOCK as usize;
        if self.raw.len() < len + block {
            self.raw = vec![0; (len + block).next_power_of_two()];
        }
        let start = self.raw.as_ptr().align_offset(block);
        &mut self.raw[start..start + len]
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::Journal;
    use crate::journal::record::{Entry, BLOCK};
    use crate::journal::Replay;

    #[test]
    fn committed_rounds_are_replayed_and_space_is_reused_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commit.journal");
        let mut journal = Journal::open_or_create(&path, 4 * BLOCK, 0).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 * BLOCK);
        let id = Uuid::new_v4();
        let batches = vec![1u8; 5000];
        let entry = |base_offset| Entry {
            topic_id: id,
            partition: 1,
            base_offset,
            batches: [&batches, &[]],
        };
        assert_eq!(journal.commit(&[entry(0)]).unwrap(), Some(1));
        assert_eq!(journal.commit(&[entry(10)]).unwrap(), Some(2));
        assert_eq!(journal.used(), 4 * BLOCK);
        assert_eq!(journal.commit(&[entry(20)]).unwrap(), None, "full");
        journal.release_through(1);
        assert_eq!(journal.commit(&[entry(20)]).unwrap(), Some(3));

        let replay = Replay::scan(&path).unwrap();
        assert_eq!(replay.last_seq(), 3);
        let bases: Vec<i64> = replay
            .batches_from(id, 1, 10)
            .unwrap()
            .into_iter()
            .map(|(base, bytes)| {
                assert_eq!(bytes, batches);
                base
            })
            .collect();
        assert_eq!(bases, [10, 20]);

        // Reopened at the same size the file is kept, and numbering continues.
        let mut reopened = Journal::open_or_create(&path, 4 * BLOCK, replay.last_seq()).unwrap();
        assert_eq!(reopened.commit(&[entry(30)]).unwrap(), Some(4));
    }

    #[test]
    fn a_journal_of_another_size_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commit.journal");
        std::fs::write(&path, b"short").unwrap();
        let journal = Journal::open_or_create(&path, 3 * BLOCK + 1, 0).unwrap();
        assert_eq!(journal.size(), 4 * BLOCK);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 * BLOCK);
        assert!(!path.with_extension("tmp").exists());
    }
}
