//! Durable transaction state: every transactional id's metadata in one file, replaced
//! atomically (write, fsync, rename, fsync the directory) on each change, so a restart finds
//! the producer ids and epochs it handed out and the transactions it must finish.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::metadata::TxnMetadata;
use crate::fsutil::write_atomic;

/// Failure to read or write the state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("transaction state {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("transaction state {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// All transactional ids, keyed by id.
pub type TxnMap = BTreeMap<String, TxnMetadata>;

/// The state file of one broker.
#[derive(Debug, Clone)]
pub struct TxnStore {
    path: PathBuf,
}

impl TxnStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: &Path) -> TxnStore {
        TxnStore {
            path: data_dir.join("transactions.json"),
        }
    }

    /// Reads the saved state; a missing file is an empty one.
    pub fn load(&self) -> Result<TxnMap, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TxnMap::new()),
            Err(source) => Err(StoreError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Replaces the saved state with `map`, durably, off the async runtime.
    pub async fn save(&self, map: &TxnMap) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(map).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        let path = self.path.clone();
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| io(std::io::Error::other(e)))?
            .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_survives_a_reload_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = TxnStore::new(dir.path());
        assert!(store.load().unwrap().is_empty());
        let mut map = TxnMap::new();
        map.insert("tx".into(), TxnMetadata::new(5, 60_000, 1));
        store.save(&map).await.unwrap();
        assert_eq!(TxnStore::new(dir.path()).load().unwrap(), map);
        std::fs::write(dir.path().join("transactions.json"), b"{oops").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
    }
}
