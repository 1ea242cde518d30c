//! How much the file system holding the log directory offers: what DescribeLogDirs reports
//! (KIP-827's total and usable bytes) and the gauges a disk-full alert fires on before the
//! broker runs out of space (with tiered storage, segments not yet uploaded stay local, so
//! an unreachable bucket fills the disk).

use std::path::Path;

/// Total and usable bytes of the file system holding `dir`, or `None` when it cannot be
/// asked. Usable is what an unprivileged writer gets (`f_bavail`), as Kafka reports it.
pub fn statvfs_bytes(dir: &Path) -> Option<(i64, i64)> {
    let fs = rustix::fs::statvfs(dir).ok()?;
    let size = |blocks: u64| i64::try_from(blocks.saturating_mul(fs.f_frsize)).unwrap_or(i64::MAX);
    Some((size(fs.f_blocks), size(fs.f_bavail)))
}

/// Bytes an unprivileged writer may still write on the file system holding `dir` (`f_bavail`).
pub fn usable_bytes(dir: &Path) -> std::io::Result<u64> {
    let fs = rustix::fs::statvfs(dir)?;
    Ok(fs.f_bavail.saturating_mul(fs.f_frsize))
}

/// [`statvfs_bytes`] with Kafka's -1 ("unknown") for both when the file system cannot be asked.
pub fn capacity(dir: &Path) -> (i64, i64) {
    statvfs_bytes(dir).unwrap_or((-1, -1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_has_a_capacity_and_a_missing_one_is_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (total, usable) = capacity(dir.path());
        assert!(
            total > 0 && (0..=total).contains(&usable),
            "{total} {usable}"
        );
        assert_eq!(capacity(&dir.path().join("missing")), (-1, -1));
    }
}
