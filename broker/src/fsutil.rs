//! JSON documents of a standalone broker (ACLs, credentials, quotas, dynamic configs), saved
//! with the storage floor's durable file writes.

use std::path::Path;

pub(crate) use tributary_storage::durable_file::{write_atomic, write_atomic_private};

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
