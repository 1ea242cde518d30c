//! Blocks reserved ahead of a growing segment file (`fallocate` with `FALLOC_FL_KEEP_SIZE`).
//!
//! A buffered append into blocks the file does not have yet makes the filesystem reserve and
//! track each new block as it writes it (ext4's delayed allocation: about a fifth of the
//! write's kernel time for 16 KiB batches); blocks reserved in one call ahead are only
//! mapped. The file's length stays the log's, so readers, recovery and retention see nothing
//! of it. The space goes back when the segment stops growing (a roll) or is cut; a crash may
//! leave one window reserved past a segment's end, which its next truncation or deletion frees.
//!
//! Reserving is an optimisation only: a filesystem without `fallocate` or out of space gets
//! plain appends, and the append itself decides whether the write fits.

use std::fs::File;

/// How far ahead of the data a growing segment reserves. Small, because every partition
/// being written holds one window of disk that nothing else can use.
pub(crate) const WINDOW: u64 = 1 << 20;

/// How far a segment file has blocks reserved.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// End of the reserved range; nothing is known reserved past the file's data before the
    /// first [`Reservation::cover`].
    end: u64,
    /// False once the filesystem refused a reservation: the segment appends without.
    enabled: bool,
}

impl Reservation {
    /// A file whose data ends at `size`, nothing reserved past it.
    pub(crate) fn new(size: u64) -> Reservation {
        Reservation {
            end: size,
            enabled: true,
        }
    }

    /// Reserves blocks for a write up to `needed` when it would pass the reserved range:
    /// [`WINDOW`] past it, or up to `whole` (the segment's size limit, when the topic's
    /// `preallocate` asks for the whole segment as Kafka does) if that is further.
    pub(crate) fn cover(&mut self, file: &File, needed: u64, whole: Option<u64>) {
        if !self.enabled || needed <= self.end {
            return;
        }
        let end = needed.saturating_add(WINDOW).max(whole.unwrap_or_default());
        match reserve(file, self.end, end - self.end) {
            Ok(()) => self.end = end,
            Err(error) => {
                tracing::debug!(%error, "segment blocks not reserved ahead; appending without");
                self.enabled = false;
            }
        }
    }

    /// Gives back what is reserved past `size`, the data's end, when the file stops growing.
    /// Setting the length it already has frees the blocks past it on ext4; punching them out
    /// does on filesystems that keep blocks past the end through a truncation (XFS).
    pub(crate) fn release(&mut self, file: &File, size: u64) {
        if self.end > size {
            if let Err(error) = unreserve(file, size, self.end - size) {
                tracing::debug!(%error, "segment blocks past the data not punched out");
            }
            if let Err(error) = file.set_len(size) {
                tracing::warn!(%error, "segment blocks past the data not given back");
            }
        }
        self.end = size;
    }

    /// The file was cut to `size`, which also frees blocks reserved past it.
    pub(crate) fn cut(&mut self, size: u64) {
        self.end = size;
    }
}

#[cfg(target_os = "linux")]
fn reserve(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    Ok(fallocate(file, FallocateFlags::KEEP_SIZE, offset, len)?)
}

#[cfg(target_os = "linux")]
fn unreserve(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    Ok(fallocate(file, flags, offset, len)?)
}

#[cfg(not(target_os = "linux"))]
fn reserve(_: &File, _: u64, _: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(not(target_os = "linux"))]
fn unreserve(_: &File, _: u64, _: u64) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileExt, MetadataExt};

    use super::{Reservation, WINDOW};

    /// Bytes of disk the file holds.
    fn allocated(file: &std::fs::File) -> u64 {
        file.metadata().unwrap().blocks() * 512
    }

    #[test]
    fn a_growing_file_holds_a_window_past_its_data_and_gives_it_back_at_release() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create_new(dir.path().join("f")).unwrap();
        let mut reservation = Reservation::new(0);
        let data = vec![7u8; 10_000];
        reservation.cover(&file, data.len() as u64, None);
        file.write_all_at(&data, 0).unwrap();
        assert_eq!(
            file.metadata().unwrap().len(),
            10_000,
            "the length is the data's"
        );
        assert!(
            allocated(&file) >= 10_000 + WINDOW,
            "{} bytes allocated",
            allocated(&file)
        );
        // Within the window: no new reservation; past it: the next window.
        reservation.cover(&file, 20_000, None);
        file.write_all_at(&data, 10_000).unwrap();
        reservation.cover(&file, 2 * WINDOW, None);
        assert!(allocated(&file) >= 3 * WINDOW);
        // `preallocate`: the whole segment at once.
        reservation.cover(&file, 3 * WINDOW + 1, Some(8 * WINDOW));
        assert!(allocated(&file) >= 8 * WINDOW);
        reservation.release(&file, 20_000);
        assert_eq!(file.metadata().unwrap().len(), 20_000);
        assert!(
            allocated(&file) <= 20_480,
            "{} bytes still allocated past 20,000 bytes of data",
            allocated(&file)
        );
        let mut back = vec![0u8; 20_000];
        file.read_exact_at(&mut back, 0).unwrap();
        assert!(back.iter().all(|&b| b == 7));
    }
}
