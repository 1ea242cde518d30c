//! The bucket as the remote log sees it: object names per partition and segment, and the
//! few operations tiered storage needs (put, ranged get, delete, list), each failure naming
//! its object.
//!
//! Layout, as Kafka's RemoteStorageManager lays it out per partition:
//! `{prefix}/{topic}-{topic_id}/{partition}/{base_offset:020}-{segment_id}.{suffix}` with
//! suffixes `log`, `index`, `timeindex` and `leader-epoch-checkpoint`, and the partition's
//! `manifest.json` beside them.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use uuid::Uuid;

use super::error::TieredError;
use super::manifest::{Manifest, RemoteSegment};
use super::settings::Bucket;

/// Suffix of the segment data object.
pub const LOG: &str = "log";
/// Suffix of the offset index object.
pub const INDEX: &str = "index";
/// Suffix of the time index object.
pub const TIME_INDEX: &str = "timeindex";
/// Suffix of the leader-epoch checkpoint object.
pub const EPOCHS: &str = "leader-epoch-checkpoint";
/// Every suffix a segment may have, for deletion.
pub const SUFFIXES: &[&str] = &[LOG, INDEX, TIME_INDEX, EPOCHS];

/// Size of the parts segments are uploaded in (S3 wants at least 5 MiB but the last).
pub const PART_BYTES: usize = 8 << 20;

/// A file shorter than the segment size the log reported is an error, never a short object.
fn check_length(read: u64, size: u64) -> std::io::Result<()> {
    if read == size {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("{read} bytes on disk, {size} expected"),
    ))
}

/// Names the objects of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPath {
    dir: String,
}

impl PartitionPath {
    /// The directory of partition `index` of a topic.
    pub fn new(prefix: &str, topic: &str, topic_id: Uuid, index: i32) -> PartitionPath {
        let dir = if prefix.is_empty() {
            format!("{topic}-{topic_id}/{index}")
        } else {
            format!("{prefix}/{topic}-{topic_id}/{index}")
        };
        PartitionPath { dir }
    }

    /// The partition's manifest object.
    pub fn manifest(&self) -> Path {
        Path::from(format!("{}/manifest.json", self.dir))
    }

    /// Object `suffix` of a segment.
    pub fn segment(&self, base_offset: i64, id: Uuid, suffix: &str) -> Path {
        Path::from(format!("{}/{base_offset:020}-{id}.{suffix}", self.dir))
    }

    /// The partition's directory, for listing and deleting everything in it.
    pub fn dir(&self) -> Path {
        Path::from(self.dir.clone())
    }
}

/// The bucket and the prefix of this cluster's objects.
#[derive(Clone)]
pub struct RemoteStorage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl std::fmt::Debug for RemoteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteStorage({}, prefix {:?})", self.store, self.prefix)
    }
}

fn store_error(op: &'static str, path: &Path) -> impl FnOnce(object_store::Error) -> TieredError {
    let path = path.to_string();
    move |source| TieredError::Store { op, path, source }
}

impl RemoteStorage {
    /// Wraps an opened bucket.
    pub fn new(bucket: Bucket) -> RemoteStorage {
        RemoteStorage {
            store: bucket.store,
            prefix: bucket.prefix,
        }
    }

    /// Names the objects of a partition.
    pub fn partition(&self, topic: &str, topic_id: Uuid, index: i32) -> PartitionPath {
        PartitionPath::new(&self.prefix, topic, topic_id, index)
    }

    /// The partition's manifest; an empty one if it has none yet.
    pub async fn read_manifest(&self, at: &PartitionPath) -> Result<Manifest, TieredError> {
        let path = at.manifest();
        match self.store.get(&path).await {
            Ok(found) => {
                let bytes = found.bytes().await.map_err(store_error("get", &path))?;
                Manifest::from_json(&bytes).map_err(|source| TieredError::ManifestJson {
                    path: path.to_string(),
                    source,
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Manifest::default()),
            Err(e) => Err(store_error("get", &path)(e)),
        }
    }

    /// Replaces the partition's manifest.
    pub async fn write_manifest(
        &self,
        at: &PartitionPath,
        manifest: &Manifest,
    ) -> Result<(), TieredError> {
        let path = at.manifest();
        let json = manifest
            .to_json()
            .map_err(|source| TieredError::ManifestJson {
                path: path.to_string(),
                source,
            })?;
        self.put(&path, Bytes::from(json)).await
    }

    /// Writes one object.
    pub async fn put(&self, path: &Path, bytes: Bytes) -> Result<(), TieredError> {
        self.store
            .put(path, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(store_error("put", path))
    }

    /// Uploads the first `size` bytes of a local file, in parts of [`PART_BYTES`] when larger
    /// than one (a segment is not held in memory whole), as one object.
    pub async fn put_file(
        &self,
        path: &Path,
        file: &std::path::Path,
        size: u64,
    ) -> Result<(), TieredError> {
        use tokio::io::AsyncReadExt;
        let local = |source| TieredError::LocalRead {
            path: file.to_path_buf(),
            source,
        };
        let opened = tokio::fs::File::open(file).await.map_err(local)?;
        let mut reader = opened.take(size);
        if size <= PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(PART_BYTES.min(size as usize));
            reader.read_to_end(&mut bytes).await.map_err(local)?;
            check_length(bytes.len() as u64, size).map_err(local)?;
            return self.put(path, Bytes::from(bytes)).await;
        }
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(store_error("put", path))?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut sent = 0u64;
        let mut buf = vec![0u8; PART_BYTES];
        loop {
            let read = match reader.read(&mut buf).await {
                Ok(read) => read,
                Err(error) => {
                    let _ = parts.abort().await;
                    return Err(local(error));
                }
            };
            if read == 0 {
                break;
            }
            if let Err(error) = parts.wait_for_capacity(4).await {
                return Err(store_error("put", path)(error));
            }
            parts.write(&buf[..read]);
            sent += read as u64;
        }
        if let Err(error) = check_length(sent, size) {
            let _ = parts.abort().await;
            return Err(local(error));
        }
        parts
            .finish()
            .await
            .map(|_| ())
            .map_err(store_error("put", path))
    }

    /// Reads `range` of one object.
    pub async fn get_range(&self, path: &Path, range: Range<u64>) -> Result<Bytes, TieredError> {
        self.store
            .get_range(path, range)
            .await
            .map_err(store_error("get", path))
    }

    /// A whole object, or `None` if it does not exist.
    pub async fn get_optional(&self, path: &Path) -> Result<Option<Bytes>, TieredError> {
        match self.store.get(path).await {
            Ok(found) => found
                .bytes()
                .await
                .map(Some)
                .map_err(store_error("get", path)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error("get", path)(e)),
        }
    }

    /// Deletes every object of a segment; objects already gone are fine (a retried deletion).
    pub async fn delete_segment(
        &self,
        at: &PartitionPath,
        segment: &RemoteSegment,
    ) -> Result<(), TieredError> {
        for suffix in SUFFIXES {
            let path = at.segment(segment.base_offset, segment.id, suffix);
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error("delete", &path)(e)),
            }
        }
        Ok(())
    }

    /// Deletes every object of a partition (topic deletion).
    pub async fn delete_partition(&self, at: &PartitionPath) -> Result<usize, TieredError> {
        let dir = at.dir();
        let objects: Vec<_> = self
            .store
            .list(Some(&dir))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(store_error("list", &dir))?;
        for path in &objects {
            match self.store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error("delete", path)(e)),
            }
        }
        Ok(objects.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiered::settings::RemoteStorageSettings;

    fn storage(dir: &std::path::Path) -> RemoteStorage {
        let bucket = RemoteStorageSettings {
            url: format!("file://{}", dir.display()),
            ..RemoteStorageSettings::default()
        }
        .open()
        .expect("bucket");
        RemoteStorage::new(bucket)
    }

    #[tokio::test]
    async fn files_upload_their_valid_prefix_in_parts_and_a_short_file_is_an_error() {
        let remote = tempfile::tempdir().expect("tempdir");
        let local = tempfile::tempdir().expect("tempdir");
        let store = storage(remote.path());
        let file = local.path().join("segment.log");
        let content: Vec<u8> = (0..(2 * PART_BYTES + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&file, &content).expect("write");
        let at = store.partition("t", Uuid::nil(), 0);
        for size in [1_000, PART_BYTES + 7, 2 * PART_BYTES + 100] {
            let path = at.segment(0, Uuid::new_v4(), LOG);
            store
                .put_file(&path, &file, size as u64)
                .await
                .expect("upload");
            let back = store.get_range(&path, 0..size as u64).await.expect("read");
            assert!(back == content[..size], "{size} bytes come back as written");
            let meta = store.store.head(&path).await.expect("head");
            assert_eq!(meta.size, size as u64, "no more than the valid prefix");
        }
        let path = at.segment(0, Uuid::new_v4(), LOG);
        let too_long = content.len() as u64 + 1;
        assert!(matches!(
            store.put_file(&path, &file, too_long).await,
            Err(TieredError::LocalRead { .. })
        ));
        assert_eq!(
            store.get_optional(&path).await.expect("get"),
            None,
            "nothing stored"
        );
    }
}
