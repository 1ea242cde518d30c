//! Partition directories in the data directory: `<topic>-<index>`, created fresh for new
//! replicas and removed when no metadata owns them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tributary_storage::StorageError;

use crate::topic_names::validate_topic_name;

/// The directory of partition `index` of `topic`.
pub(super) fn partition_dir(data_dir: &Path, topic: &str, index: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{index}"))
}

/// Removes `dir` and everything in it; false if it did not exist.
pub(super) fn remove_dir(dir: &Path) -> Result<bool, StorageError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StorageError::Delete {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Removes partition directories the metadata does not assign to this broker (`owned`):
/// what a crash left of a creation that never completed, of a deletion that did not finish,
/// or of a replica moved elsewhere. Anything that is not a partition directory stays.
pub(super) fn remove_stray(data_dir: &Path, owned: &HashSet<(String, i32)>) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some((topic, index)) = parse_partition_dir(&name) else {
            continue;
        };
        let stray = !owned.contains(&(topic.to_string(), index));
        if stray && entry.file_type().is_ok_and(|t| t.is_dir()) {
            match remove_dir(&entry.path()) {
                Ok(_) => tracing::warn!(dir = name, "removed a partition directory no topic owns"),
                Err(error) => tracing::warn!(%error, "cannot remove a stray partition directory"),
            }
        }
    }
}

/// Whether `name` is a partition directory's name.
pub fn is_partition_dir_name(name: &str) -> bool {
    parse_partition_dir(name).is_some()
}

/// `(topic, index)` of a partition directory name, if it is one.
fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, index) = name.rsplit_once('-')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    validate_topic_name(topic).ok()?;
    Some((topic, index.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directory_names_parse_to_topic_and_index() {
        assert_eq!(parse_partition_dir("orders-12"), Some(("orders", 12)));
        assert_eq!(parse_partition_dir("my-topic-0"), Some(("my-topic", 0)));
        assert_eq!(
            parse_partition_dir("__consumer_offsets-49"),
            Some(("__consumer_offsets", 49))
        );
        for not_one in [
            "orders",
            "orders-",
            "orders-x",
            "-3",
            "topics.json",
            "bad name-1",
        ] {
            assert_eq!(parse_partition_dir(not_one), None, "{not_one}");
        }
    }
}
