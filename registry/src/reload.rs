//! A value built from files and rebuilt when they change (a rotated certificate, a Secret that
//! gained a user), looked at when the value is used: Kubernetes updates a mounted Secret by
//! swapping a symlink, which changes the files' inode, and nothing needs restarting. A rebuild
//! that fails (a file caught half-written) keeps the last good value until the files change
//! again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

/// One file's version: modification time, length and inode (absent when unreadable).
type Stamp = Option<(SystemTime, u64, u64)>;

/// Builds the value from the files.
pub type Build<T, E> = Box<dyn Fn() -> Result<T, E> + Send + Sync>;

/// A value kept in step with the files it is built from.
pub struct FileBacked<T, E> {
    what: &'static str,
    paths: Vec<PathBuf>,
    build: Build<T, E>,
    current: Mutex<(Vec<Stamp>, Arc<T>)>,
}

impl<T, E> std::fmt::Debug for FileBacked<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBacked")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl<T, E: std::fmt::Display> FileBacked<T, E> {
    /// Builds the value now: files unusable at start-up fail it, rather than serving without.
    pub fn new(what: &'static str, paths: Vec<PathBuf>, build: Build<T, E>) -> Result<Self, E> {
        let stamps = stamps(&paths);
        let value = Arc::new(build()?);
        Ok(FileBacked {
            what,
            paths,
            build,
            current: Mutex::new((stamps, value)),
        })
    }

    /// The value for the files as they are now.
    pub fn get(&self) -> Arc<T> {
        let now = stamps(&self.paths);
        let mut current = self.current.lock();
        if current.0 != now {
            current.0 = now;
            match (self.build)() {
                Ok(value) => {
                    tracing::info!(what = self.what, "reloaded after its files changed");
                    current.1 = Arc::new(value);
                }
                Err(error) => tracing::warn!(
                    what = self.what,
                    %error,
                    "its files changed but cannot be loaded; keeping the previous version"
                ),
            }
        }
        current.1.clone()
    }
}

fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    paths
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            let inode = std::os::unix::fs::MetadataExt::ino(&meta);
            Some((meta.modified().ok()?, meta.len(), inode))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_reloaded_and_a_broken_one_keeps_the_last_value() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("n");
        std::fs::write(&path, "1").unwrap_or_else(|e| panic!("{e}"));
        let read = path.clone();
        let value: FileBacked<u32, String> = FileBacked::new(
            "a number",
            vec![path.clone()],
            Box::new(move || {
                let text = std::fs::read_to_string(&read).map_err(|e| e.to_string())?;
                text.trim()
                    .parse()
                    .map_err(|e: std::num::ParseIntError| e.to_string())
            }),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(*value.get(), 1);
        // Swapped in as kubelet does: a new file renamed over the old one.
        let next = dir.path().join("next");
        std::fs::write(&next, "22").unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(&next, &path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(*value.get(), 22);
        std::fs::write(&path, "broken").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(*value.get(), 22);
    }
}
