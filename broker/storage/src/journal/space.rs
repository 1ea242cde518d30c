//! How big the commit journal may be. It is preallocated in full, so a journal sized without
//! looking at the disk fills a small one at the first start and leaves nothing for the logs.
//! A new one takes at most a quarter of the space there is (one already there is kept while
//! within an eighth of that), and there is none below a floor where it would be too small to
//! be worth its file.

use std::io;
use std::path::Path;

use super::record::{padded, BLOCK};

/// The journal takes at most 1/n of the free space (its own old file counted as free).
pub const FREE_SPACE_SHARE: u64 = 4;

/// Below this the journal is off and fsynced appends fsync their segments: the smallest
/// journal the configuration accepts (`commit-journal-bytes`).
pub const MIN_JOURNAL_BYTES: u64 = 1 << 20;

/// Reads the free space of the file system holding a directory; tests give a figure.
pub trait FreeSpace: std::fmt::Debug + Send + Sync {
    /// Bytes that may still be written on the file system holding `dir`.
    fn free_bytes(&self, dir: &Path) -> io::Result<u64>;
}

/// The file system's own figure: what an unprivileged writer may use (`f_bavail`), leaving
/// the blocks reserved for root alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSystemSpace;

impl FreeSpace for FileSystemSpace {
    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        crate::disk::usable_bytes(dir)
    }
}

/// What to do with the journal file at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizing {
    /// Keep the file there, of this size.
    Keep(u64),
    /// (Re)create the file at this size.
    Create(u64),
    /// No journal: the share of the free space is below [`MIN_JOURNAL_BYTES`].
    Off,
}

/// The journal for `wanted` bytes (the configured size) when the file system has `free` bytes
/// and the journal file there has `existing` bytes, which a new one would replace: at most a
/// [`FREE_SPACE_SHARE`] share of both together, in whole blocks. A file there within an eighth
/// of that size (and no larger than configured) is kept rather than rewritten at every start
/// as the logs beside it grow: a journal never takes more than 9/32 of the space.
pub fn size_for(wanted: u64, existing: Option<u64>, free: u64) -> Sizing {
    let available = free.saturating_add(existing.unwrap_or(0));
    let share = available / FREE_SPACE_SHARE / BLOCK * BLOCK;
    let wanted = padded(wanted.max(BLOCK));
    let bound = wanted.min(share);
    if bound < MIN_JOURNAL_BYTES {
        return Sizing::Off;
    }
    match existing {
        Some(size)
            if size % BLOCK == 0
                && (MIN_JOURNAL_BYTES..=wanted).contains(&size)
                && size.abs_diff(bound) <= bound / 8 =>
        {
            Sizing::Keep(size)
        }
        _ => Sizing::Create(bound),
    }
}

#[cfg(test)]
mod tests {
    use super::Sizing::{Create, Keep, Off};
    use super::*;

    const MIB: u64 = 1 << 20;

    /// In MiB: (configured, journal there, free, what to do, why).
    const CASES: &[(u64, Option<u64>, u64, Sizing, &str)] = &[
        (128, None, 102_400, Create(128), "a roomy disk"),
        (128, Some(128), 102_400, Keep(128), "kept"),
        (64, Some(128), 102_400, Create(64), "configured smaller"),
        // The first start on 96 MiB free: 24 MiB, not the 128 MiB configured.
        (128, None, 96, Create(24), "a quarter"),
        // The next starts count the journal's own file as free, and keep it, also when
        // the logs took a little space meanwhile (it is then a little over a quarter)...
        (128, Some(24), 72, Keep(24), "still a quarter"),
        (128, Some(24), 70, Keep(24), "a little over"),
        (128, Some(22), 74, Keep(22), "a little under"),
        // ...but not once it is over an eighth above a quarter, or far below.
        (128, Some(24), 60, Create(21), "an eighth over"),
        (128, Some(24), 16, Create(10), "the logs grew"),
        (128, Some(10), 1024, Create(128), "space came back"),
        // Below the 1 MiB floor there is none.
        (128, None, 4, Create(1), "the floor"),
        (128, None, 3, Off, "below the floor"),
        (128, None, 0, Off, "a full disk"),
    ];

    #[test]
    fn the_journal_takes_at_most_a_quarter_of_the_free_space() {
        for &(wanted, existing, free, expected, why) in CASES {
            let expected = match expected {
                Create(mib) => Create(mib * MIB),
                Keep(mib) => Keep(mib * MIB),
                Off => Off,
            };
            let sized = size_for(wanted * MIB, existing.map(|e| e * MIB), free * MIB);
            assert_eq!(sized, expected, "{why}");
        }
    }

    #[test]
    fn the_journal_is_whole_blocks() {
        let rounded_up = size_for(MIB + 1, None, 1 << 40);
        assert_eq!(rounded_up, Create(MIB + BLOCK));
        let rounded_down = size_for(128 * MIB, None, 8 * MIB + 3);
        assert_eq!(rounded_down, Create(2 * MIB));
        let odd = size_for(128 * MIB, Some(2 * MIB + 1), 8 * MIB);
        assert_eq!(odd, Create(10 * MIB / 4 / BLOCK * BLOCK), "never kept");
        assert_eq!(size_for(128 * MIB, None, 4 * MIB - 1), Off);
    }
}
