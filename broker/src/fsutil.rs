//! JSON documents of a standalone broker (ACLs, credentials, quotas, dynamic configs), saved
//! with the storage floor's durable file writes.

use std::path::{Path, PathBuf};

pub(crate) use tributary_storage::durable_file::{write_atomic, write_atomic_private};

/// A saved document that exists but cannot be read or does not parse: the broker refuses to
/// start rather than run without what it had saved.
#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {reason}")]
pub struct JsonFileError {
    path: PathBuf,
    reason: String,
}

/// The JSON value saved at `path`, or the default when there is none.
pub(crate) fn read_json_or_default<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
) -> Result<T, JsonFileError> {
    let failed = |reason: String| JsonFileError {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| failed(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// Saves `value` as JSON at `path` with [`write_atomic`].
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)
}
