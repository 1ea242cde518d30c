//! The state file of brokers from before `__transaction_state`: every transactional id's
//! metadata in `transactions.json`. It is only read, once, to move its ids into the topic
//! (see `coordinator::migrate`), and then set aside so it is never applied again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::metadata::TxnMetadata;

/// Failure to read or set aside the state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read or renamed.
    #[error("transaction state {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse; fix or remove it (its ids are then forgotten).
    #[error("transaction state {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Transactional ids with their metadata, keyed by id.
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

    /// Reads the saved state; `None` when there is no file (nothing to migrate).
    pub fn load(&self) -> Result<Option<TxnMap>, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StoreError::Corrupt {
                        path: self.path.clone(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Renames the file to `transactions.json.migrated` (kept for the operator's eyes only),
    /// durably, so a later start does not apply it again.
    pub fn retire(&self) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        std::fs::rename(&self.path, self.path.with_extension("json.migrated")).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_read_once_and_then_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = TxnStore::new(dir.path());
        assert!(store.load().unwrap().is_none());
        let mut map = TxnMap::new();
        map.insert("tx".into(), TxnMetadata::new(5, 60_000, 1));
        std::fs::write(
            dir.path().join("transactions.json"),
            serde_json::to_vec(&map).unwrap(),
        )
        .unwrap();
        assert_eq!(store.load().unwrap(), Some(map));
        store.retire().unwrap();
        assert!(store.load().unwrap().is_none());
        assert!(dir.path().join("transactions.json.migrated").exists());
        std::fs::write(dir.path().join("transactions.json"), b"{oops").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
    }
}
