//! Small durable-file helpers shared by metadata writers.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `data` atomically and durably: write a temporary file, fsync it, rename
/// it over the old one and fsync the directory, so a crash leaves either the old or new file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
