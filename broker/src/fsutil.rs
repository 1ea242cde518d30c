//! Small durable-file helpers shared by metadata writers.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `data` atomically and durably: write a temporary file, fsync it, rename
/// it over the old one and fsync the directory, so a crash leaves either the old or new file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.truncate(true).create(true);
    write_atomic_with(path, data, &options)
}

/// The JSON value saved at `path`, or the default when there is none; the error says what is
/// wrong with the file.
pub(crate) fn read_json_or_default<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
) -> Result<T, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e.to_string()),
    }
}

/// Saves `value` as JSON at `path` with [`write_atomic`].
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)
}

/// [`write_atomic`] for secrets: the file is readable by its owner only from its creation.
pub(crate) fn write_atomic_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    // A stale temporary file would keep its old mode: start from a new one.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    write_atomic_with(path, data, &options)
}

fn write_atomic_with(
    path: &Path,
    data: &[u8],
    options: &std::fs::OpenOptions,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = options.clone().write(true).open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
