//! The data directory's epoch: the incarnation at which this directory was created, kept in it
//! and reported in the broker's Lease (`tributary.dev/directory-epoch`). An ISR entry recorded
//! under an earlier incarnation vouches for data this directory never held, so the controller
//! does not re-elect a broker back with an empty or replaced disk as the last in-sync replica.

use std::path::Path;

use super::KubeError;

/// The file holding the epoch, in the data directory.
const FILE: &str = "directory.epoch";

/// The epoch the directory records; `Some(0)` for a directory that holds partitions but no
/// record (created before epochs were kept); `None` for a fresh directory, whose epoch is the
/// incarnation this start registers.
pub fn read(data_dir: &Path) -> Result<Option<i64>, KubeError> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| {
            KubeError::Invalid(format!("{}: not a directory epoch: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(holds_partitions(data_dir).then_some(0))
        }
        Err(e) => Err(KubeError::Invalid(format!("read {}: {e}", path.display()))),
    }
}

/// Records `epoch` as the directory's, durably (before anything is replicated into it).
pub fn record(data_dir: &Path, epoch: i64) -> Result<(), KubeError> {
    let path = data_dir.join(FILE);
    crate::fsutil::write_atomic(&path, format!("{epoch}\n").as_bytes())
        .map_err(|e| KubeError::Invalid(format!("write {}: {e}", path.display())))
}

/// Whether `data_dir` has any partition directory.
fn holds_partitions(data_dir: &Path) -> bool {
    std::fs::read_dir(data_dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_type().is_ok_and(|t| t.is_dir())
                && e.file_name()
                    .to_str()
                    .is_some_and(crate::replica::is_partition_dir_name)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_directory_has_no_epoch_until_one_is_recorded() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()).ok(), Some(None));
        record(dir.path(), 4).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()).ok(), Some(Some(4)));
    }

    #[test]
    fn a_directory_with_partitions_but_no_record_predates_every_entry() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("orders-0")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()).ok(), Some(Some(0)));
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_fresh_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join(FILE), "x").unwrap_or_else(|e| panic!("{e}"));
        assert!(read(dir.path()).is_err());
    }
}
