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
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart};
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

/// A manifest as read, with what a conditional write over it needs.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The manifest (empty when the bucket has none).
    pub manifest: Manifest,
    /// What it was read from.
    pub base: ManifestBase,
}

/// What a leader's next manifest write replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestBase {
    /// No manifest object existed: create it, failing if another leader did first.
    Absent,
    /// A manifest existed, with the version the store gave it (`None`: the store gives
    /// none, so writes are epoch-guarded).
    Existing(Option<UpdateVersion>),
}

impl ManifestBase {
    fn normalized(self) -> ManifestBase {
        match self {
            ManifestBase::Existing(Some(v)) if v.e_tag.is_none() && v.version.is_none() => {
                ManifestBase::Existing(None)
            }
            other => other,
        }
    }
}

/// How a manifest write is made safe against a deposed leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// Replace only the version read (`PutMode::Update`, S3 If-Match).
    Update(UpdateVersion),
    /// Create; fail if it exists (`PutMode::Create`, S3 If-None-Match, a hard link on a
    /// local directory).
    Create,
    /// Read again and refuse to overwrite a manifest of a newer leader epoch.
    EpochGuarded,
}

/// The write that replaces `base` (pure; see [`RemoteStorage::write_manifest_over`]).
pub fn write_decision(base: &ManifestBase) -> WriteMode {
    match base {
        ManifestBase::Absent => WriteMode::Create,
        ManifestBase::Existing(Some(version)) => WriteMode::Update(version.clone()),
        ManifestBase::Existing(None) => WriteMode::EpochGuarded,
    }
}

fn manifest_json(path: &Path, manifest: &Manifest) -> Result<Bytes, TieredError> {
    manifest
        .to_json()
        .map(Bytes::from)
        .map_err(|source| TieredError::ManifestJson {
            path: path.to_string(),
            source,
        })
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
        Ok(self.read_manifest_versioned(at).await?.manifest)
    }

    /// The partition's manifest with the version the bucket gave it (its ETag or object
    /// version), for a conditional replacement; an empty one with no version if it has none.
    pub async fn read_manifest_versioned(
        &self,
        at: &PartitionPath,
    ) -> Result<Versioned, TieredError> {
        let path = at.manifest();
        match self.store.get(&path).await {
            Ok(found) => {
                let version = UpdateVersion {
                    e_tag: found.meta.e_tag.clone(),
                    version: found.meta.version.clone(),
                };
                let bytes = found.bytes().await.map_err(store_error("get", &path))?;
                let manifest =
                    Manifest::from_json(&bytes).map_err(|source| TieredError::ManifestJson {
                        path: path.to_string(),
                        source,
                    })?;
                let version =
                    (version.e_tag.is_some() || version.version.is_some()).then_some(version);
                Ok(Versioned {
                    manifest,
                    base: ManifestBase::Existing(version),
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Versioned {
                manifest: Manifest::default(),
                base: ManifestBase::Absent,
            }),
            Err(e) => Err(store_error("get", &path)(e)),
        }
    }

    /// Replaces the partition's manifest unconditionally (tests, and stores that cannot do
    /// better; leaders use [`RemoteStorage::write_manifest_over`]).
    pub async fn write_manifest(
        &self,
        at: &PartitionPath,
        manifest: &Manifest,
    ) -> Result<(), TieredError> {
        let path = at.manifest();
        self.put(&path, manifest_json(&path, manifest)?).await
    }

    /// Replaces the manifest a leader read (`base`) with `manifest`, only if nobody wrote it
    /// in between, as [`write_decision`] decides: `PutMode::Update` with the version read,
    /// `PutMode::Create` when there was none; where the store cannot update conditionally
    /// (a local directory), it reads the manifest again and refuses to overwrite one a newer
    /// leader epoch wrote. Returns the base for the next write.
    pub async fn write_manifest_over(
        &self,
        at: &PartitionPath,
        base: &ManifestBase,
        manifest: &Manifest,
    ) -> Result<ManifestBase, TieredError> {
        let path = at.manifest();
        let json = manifest_json(&path, manifest)?;
        let mode = match write_decision(base) {
            WriteMode::Update(version) => PutMode::Update(version),
            WriteMode::Create => PutMode::Create,
            WriteMode::EpochGuarded => return self.epoch_guarded(at, manifest, json).await,
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from_bytes(json.clone()), opts)
            .await
        {
            Ok(result) => Ok(ManifestBase::Existing(Some(UpdateVersion {
                e_tag: result.e_tag,
                version: result.version,
            }))
            .normalized()),
            Err(object_store::Error::NotImplemented) => {
                self.epoch_guarded(at, manifest, json).await
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Err(TieredError::ManifestConflict {
                path: path.to_string(),
            }),
            Err(e) => Err(store_error("put", &path)(e)),
        }
    }

    /// The fallback of stores without conditional updates: read the manifest again, refuse
    /// if a newer leader epoch wrote it, else overwrite it.
    async fn epoch_guarded(
        &self,
        at: &PartitionPath,
        manifest: &Manifest,
        json: Bytes,
    ) -> Result<ManifestBase, TieredError> {
        let path = at.manifest();
        let current = self.read_manifest(at).await?;
        if current.fenced_for(manifest.leader_epoch) {
            return Err(TieredError::Fenced {
                path: path.to_string(),
                theirs: current.leader_epoch,
                ours: manifest.leader_epoch,
            });
        }
        self.put(&path, json).await?;
        Ok(ManifestBase::Existing(None))
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
    use crate::settings::RemoteStorageSettings;

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

    #[test]
    fn a_manifest_write_replaces_only_what_was_read() {
        let version = UpdateVersion {
            e_tag: Some("\"abc\"".into()),
            version: None,
        };
        assert_eq!(write_decision(&ManifestBase::Absent), WriteMode::Create);
        assert_eq!(
            write_decision(&ManifestBase::Existing(Some(version.clone()))),
            WriteMode::Update(version)
        );
        assert_eq!(
            write_decision(&ManifestBase::Existing(None)),
            WriteMode::EpochGuarded
        );
        let bare = ManifestBase::Existing(Some(UpdateVersion {
            e_tag: None,
            version: None,
        }));
        assert_eq!(bare.normalized(), ManifestBase::Existing(None));
    }

    #[tokio::test]
    async fn a_directory_creates_manifests_exclusively_and_guards_updates_by_leader_epoch() {
        let remote = tempfile::tempdir().expect("tempdir");
        let store = storage(remote.path());
        let at = store.partition("t", Uuid::nil(), 0);
        let read = store.read_manifest_versioned(&at).await.expect("read");
        assert_eq!(read.base, ManifestBase::Absent);
        let at_epoch = |leader_epoch| Manifest {
            leader_epoch,
            ..Manifest::default()
        };
        let base = store
            .write_manifest_over(&at, &read.base, &at_epoch(3))
            .await
            .expect("create");
        // A second leader that also found no manifest cannot create it again.
        assert!(matches!(
            store
                .write_manifest_over(&at, &ManifestBase::Absent, &at_epoch(2))
                .await,
            Err(TieredError::ManifestConflict { .. })
        ));
        // No conditional update on a directory: epoch-guarded instead.
        let base = store
            .write_manifest_over(&at, &base, &at_epoch(4))
            .await
            .expect("a newer epoch writes");
        assert_eq!(base, ManifestBase::Existing(None));
        assert!(matches!(
            store.write_manifest_over(&at, &base, &at_epoch(3)).await,
            Err(TieredError::Fenced {
                theirs: 4,
                ours: 3,
                ..
            })
        ));
        assert_eq!(
            store.read_manifest(&at).await.expect("read").leader_epoch,
            4
        );
    }
}
