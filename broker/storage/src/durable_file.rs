//! Files replaced whole and durably: a crash leaves either the old or the new contents, never
//! a mix (checkpoints of producer ids, the broker's metadata documents, credentials); and,
//! for files a restart repairs, replaced whole without waiting for the device.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `data` atomically and durably: write a temporary file, fsync it, rename
/// it over the old one and fsync the directory, so a crash leaves either the old or new file.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.truncate(true).create(true);
    write_atomic_with(path, data, &options, true)
}

/// [`write_atomic`] without the two fsyncs, for files whose loss a restart repairs: a crash
/// may leave the old contents (or, on some filesystems, a damaged file) but never a mix of
/// two writes, and the writer does not wait for the device.
pub fn replace_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.truncate(true).create(true);
    write_atomic_with(path, data, &options, false)
}

/// [`write_atomic`] for secrets: the file is readable by its owner only from its creation.
pub fn write_atomic_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    write_atomic_with(path, data, &options, true)
}

fn write_atomic_with(
    path: &Path,
    data: &[u8],
    options: &std::fs::OpenOptions,
    durable: bool,
) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let written = (|| {
        let mut file = options.clone().write(true).open(&tmp)?;
        file.write_all(data)?;
        if durable {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // Best effort: a crash can still leave one behind, which nothing reads.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent().filter(|_| durable) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A temporary name of its own for each write (`<file>.<n>.tmp`): with one shared name, two
/// writes of one file at once rename each other's half-written file into place, or find their
/// own renamed away (ENOENT). A new file each time also starts with the mode asked for.
fn tmp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", NEXT.fetch_add(1, Ordering::Relaxed)));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_of_one_file_at_once_each_land_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("doc.json");
        let contents = ["a".repeat(50_000), "b".repeat(70_000)];
        std::thread::scope(|scope| {
            for text in &contents {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..200 {
                        write_atomic(path, text.as_bytes()).expect("every write succeeds");
                    }
                });
            }
        });
        let last = std::fs::read_to_string(&path).expect("the file");
        assert!(contents.contains(&last), "a mix of two writes");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listed")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["doc.json"], "no temporary file left");
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_its_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        write_atomic_private(&path, b"one").expect("written");
        write_atomic_private(&path, b"two").expect("written again");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
    }
}
