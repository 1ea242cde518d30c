//! Files replaced whole and durably: a crash leaves either the old or the new contents, never
//! a mix (checkpoints of producer ids, the broker's metadata documents, credentials).

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `data` atomically and durably: write a temporary file, fsync it, rename
/// it over the old one and fsync the directory, so a crash leaves either the old or new file.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.truncate(true).create(true);
    write_atomic_with(path, data, &options)
}

/// [`write_atomic`] for secrets: the file is readable by its owner only from its creation.
pub fn write_atomic_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
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
