//! Where topic metadata lives. Standalone brokers keep it in their data directory; the cluster
//! mode keeps it in KafkaTopic objects. Both sit behind [`MetadataStore`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Persisted description of one topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Kafka topic name.
    pub name: String,
    /// Stable topic id (Metadata v10+, Fetch v13+).
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// Topic config overrides.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// Leader epoch of every partition (standalone: the epoch at creation).
    #[serde(default)]
    pub leader_epoch: i32,
}

/// Failure to load or save topic metadata.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Disk I/O failed.
    #[error("topic metadata {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not valid.
    #[error("topic metadata {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Persistence of the topic list; every save replaces the whole list atomically.
pub trait MetadataStore: Send + Sync {
    /// All topics, as last saved.
    fn load(&self) -> Result<Vec<TopicRecord>, StoreError>;
    /// Replaces the saved topics.
    fn save(&self, topics: &[TopicRecord]) -> Result<(), StoreError>;
}

/// A JSON file in the data directory (standalone mode).
#[derive(Debug)]
pub struct LocalStore {
    path: PathBuf,
}

impl LocalStore {
    /// A store at `<data_dir>/topics.json`.
    pub fn new(data_dir: &Path) -> LocalStore {
        LocalStore {
            path: data_dir.join("topics.json"),
        }
    }
}

impl MetadataStore for LocalStore {
    fn load(&self) -> Result<Vec<TopicRecord>, StoreError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        serde_json::from_slice(&text).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            source,
        })
    }

    fn save(&self, topics: &[TopicRecord]) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(topics).map_err(|e| io(e.into()))?;
        crate::fsutil::write_atomic(&self.path, &json).map_err(io)
    }
}
