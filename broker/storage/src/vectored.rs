//! A positioned write of several buffers as one (`pwritev`), so a batch whose header was
//! rewritten apart from its records reaches the file without being joined first.

use std::fs::File;
use std::io::{self, IoSlice};

use rustix::io::Errno;

/// Writes `parts`, one after another, at `offset` of `file`, retrying short writes as
/// `write_all_at` does.
pub(crate) fn write_all_vectored_at(file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    IoSlice::advance_slices(&mut rest, 0);
    let mut offset = offset;
    while !rest.is_empty() {
        let written = match rustix::io::pwritev(file, rest, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        };
        offset += written as u64;
        IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::write_all_vectored_at;

    #[test]
    fn parts_land_one_after_another_at_the_offset() {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(b"0123", 0).unwrap();
        let big = vec![7u8; 3 << 20];
        write_all_vectored_at(&file, &[b"ab", b"", &big, b"c"], 2).unwrap();
        let mut read = vec![0u8; 2 + 2 + big.len() + 1];
        file.read_exact_at(&mut read, 0).unwrap();
        assert_eq!(&read[..4], b"01ab");
        assert!(read[4..4 + big.len()].iter().all(|&b| b == 7));
        assert_eq!(read.last(), Some(&b'c'));
        assert_eq!(file.metadata().unwrap().len(), read.len() as u64);
    }
}
