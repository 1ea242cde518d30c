//! Values built from files that are rebuilt when the files change (cert-manager rotating a
//! certificate, a Secret gaining a user), checked when the value is used. A rebuild that fails
//! (a file caught half-written) keeps the last good value and is retried once the files
//! change again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

/// What identifies one version of a file: a rotation through a symlink swap changes the
/// inode, an in-place write the modification time or length.
type Fingerprint = Vec<Option<(SystemTime, u64, u64)>>;

/// Builds the value from the files.
pub type Loader<T> = Box<dyn Fn() -> Result<T, String> + Send + Sync>;

/// A value kept in step with the files it is built from.
pub struct Reloading<T> {
    what: &'static str,
    paths: Vec<PathBuf>,
    load: Loader<T>,
    state: Mutex<(Fingerprint, Arc<T>)>,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .finish()
    }
}

impl<T> Reloading<T> {
    /// Builds the value now (failing start-up if the files are unusable); `paths` are the
    /// files `load` reads, watched for changes.
    pub fn new(
        what: &'static str,
        paths: Vec<PathBuf>,
        load: Loader<T>,
    ) -> Result<Reloading<T>, String> {
        let fingerprint = fingerprint(&paths);
        let value = Arc::new(load()?);
        Ok(Reloading {
            what,
            paths,
            load,
            state: Mutex::new((fingerprint, value)),
        })
    }

    /// Starts from `first`, already built from the files by the caller (who reports its
    /// failure with a type of its own); `load` rebuilds it when they change.
    pub fn with_value(
        what: &'static str,
        paths: Vec<PathBuf>,
        first: T,
        load: Loader<T>,
    ) -> Reloading<T> {
        let fingerprint = fingerprint(&paths);
        Reloading {
            what,
            paths,
            load,
            state: Mutex::new((fingerprint, Arc::new(first))),
        }
    }

    /// The value for the files as they are now.
    pub fn current(&self) -> Arc<T> {
        if self.paths.is_empty() {
            return self.state.lock().1.clone();
        }
        let now = fingerprint(&self.paths);
        let mut state = self.state.lock();
        if state.0 != now {
            state.0 = now;
            match (self.load)() {
                Ok(value) => {
                    tracing::info!(what = self.what, paths = ?self.paths, "reloaded after the files changed");
                    state.1 = Arc::new(value);
                }
                Err(error) => {
                    tracing::warn!(what = self.what, %error, "the files changed but cannot be loaded; keeping the previous version");
                }
            }
        }
        state.1.clone()
    }
}

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0;
            Some((m.modified().ok()?, m.len(), inode))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_last_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("value");
        std::fs::write(&path, "1").unwrap();
        let read = path.clone();
        let value = Reloading::new(
            "test value",
            vec![path.clone()],
            Box::new(move || {
                let text = std::fs::read_to_string(&read).map_err(|e| e.to_string())?;
                text.trim().parse::<u32>().map_err(|e| e.to_string())
            }),
        )
        .unwrap();
        assert_eq!(*value.current(), 1);
        std::fs::write(&path, "22").unwrap();
        assert_eq!(*value.current(), 22);
        std::fs::write(&path, "broken").unwrap();
        assert_eq!(*value.current(), 22);
        let replacement = dir.path().join("next");
        std::fs::write(&replacement, "333").unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        assert_eq!(*value.current(), 333);
    }
}
