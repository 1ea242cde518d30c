//! Errors of tiered storage, with the object or file they concern.

use super::manifest::ManifestError;

/// What went wrong talking to the bucket or preparing an upload.
#[derive(Debug, thiserror::Error)]
pub enum TieredError {
    /// The remote storage settings cannot make a store.
    #[error("invalid remote storage settings: {0}")]
    Settings(String),
    /// The bucket refused or failed a request (unreachable, timed out, denied, missing).
    #[error("remote storage {op} of {path} failed: {source}")]
    Store {
        /// The operation (put, get, delete, list).
        op: &'static str,
        /// The object.
        path: String,
        #[source]
        source: object_store::Error,
    },
    /// A local segment file could not be read for upload.
    #[error("cannot read {path} for upload: {source}")]
    LocalRead {
        /// The file.
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A leader's local log could not be kept or restarted after the remote log.
    #[error("cannot open the log in {path} after its remote log: {source}")]
    LocalLog {
        /// The partition directory.
        path: std::path::PathBuf,
        #[source]
        source: tributary_storage::StorageError,
    },
    /// A manifest object is not a manifest.
    #[error("remote log manifest {path} is unreadable: {source}")]
    ManifestJson {
        /// The object.
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A manifest change broke a KIP-405 rule.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A newer leader wrote the manifest: this broker stops changing it.
    #[error(
        "remote log manifest {path} was written by leader epoch {theirs}, newer than ours ({ours})"
    )]
    Fenced {
        /// The object.
        path: String,
        /// Epoch in the manifest.
        theirs: i32,
        /// This leader's epoch.
        ours: i32,
    },
    /// Another writer replaced the manifest since this leader read it (a conditional write
    /// failed): the leader reads it again before it writes.
    #[error("remote log manifest {path} changed since it was read; reading it again")]
    ManifestConflict {
        /// The object.
        path: String,
    },
    /// A follower cannot rebuild from the remote log: it does not hold the offsets asked for.
    #[error("remote log {path} cannot rebuild a follower: {reason}")]
    NotRemote {
        /// The manifest.
        path: String,
        /// Why.
        reason: String,
    },
    /// The bucket did not answer a fetch's remote read within `remote.fetch.max.wait.ms`: the
    /// read goes on, so the client's retry may find the bytes.
    #[error("remote storage did not answer within {0:?}; the read goes on for the retry")]
    FetchTimedOut(std::time::Duration),
    /// A download several fetches waited for failed.
    #[error(transparent)]
    Shared(std::sync::Arc<TieredError>),
    /// A download's task ended without a result (the broker is shutting down).
    #[error("a remote storage download was interrupted: {0}")]
    Interrupted(String),
    /// A remote segment's bytes are not the batches the manifest promises.
    #[error("remote segment {path} is corrupt: {reason}")]
    Corrupt {
        /// The object.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl TieredError {
    /// A short label per kind, for the error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            TieredError::Settings(_) => "settings",
            TieredError::Store { .. } => "store",
            TieredError::LocalRead { .. } => "local_read",
            TieredError::LocalLog { .. } => "local_log",
            TieredError::ManifestJson { .. } => "manifest",
            TieredError::Manifest(_) => "manifest",
            TieredError::Fenced { .. } => "fenced",
            TieredError::ManifestConflict { .. } => "conflict",
            TieredError::NotRemote { .. } => "not_remote",
            TieredError::Corrupt { .. } => "corrupt",
            TieredError::FetchTimedOut(_) => "timeout",
            TieredError::Shared(error) => error.metric_label(),
            TieredError::Interrupted(_) => "interrupted",
        }
    }
}
