//! Tiered storage (KIP-405): closed, stable segments of topics with `remote.storage.enable`
//! are copied by the partition leader to an object store (an S3-compatible bucket or a local
//! directory, through the `object_store` crate); local retention then deletes only what the
//! bucket holds, by `local.retention.*`; `retention.*` bound the remote log; fetches below
//! the local log start are answered from the bucket. The hot path (appends, ISR replication,
//! acks) does not change, and nothing here runs unless the broker sets
//! `remote.log.storage.system.enable`.
//!
//! - [`manifest`]: the remote log metadata (a manifest object per partition; why there);
//! - [`plan`]: pure decisions (what to upload, what total retention removes);
//! - [`opening`]: a leader's log checked against the remote log before it leads, so it
//!   never starts below what the bucket holds;
//! - [`store`]: object names and bucket operations; [`settings`]: which bucket;
//!   [`credentials`]: S3 keys from a mounted Secret, re-read when it is rotated;
//! - [`upload`]: one leader's pass over a partition; [`read`] and [`cache`]: remote fetches,
//!   bounded in time, their downloads going on in [`downloads`];
//! - [`snapshots`]: producer snapshots per segment; [`orphans`]: objects no manifest names;
//! - [`timestamps`]: ListOffsets by timestamp over the remote log.
//!
//! Between replicas: only the leader writes the manifest, once per term read afresh from the
//! bucket and written conditionally ([`store::RemoteStorage::write_manifest_over`]), so a
//! deposed leader cannot overwrite a newer one's; followers read it to bound their local
//! retention, and a follower sent OFFSET_MOVED_TO_TIERED_STORAGE rebuilds from it
//! ([`TieredStorage::rebuild_plan_for`]).

pub mod cache;
pub mod credentials;
pub mod downloads;
pub mod error;
pub mod manifest;
pub mod metrics;
pub mod opening;
pub mod orphans;
pub mod plan;
#[cfg(any(test, feature = "test-support"))]
pub mod probe;
pub mod read;
pub mod settings;
pub mod snapshots;
pub mod store;
pub mod timestamps;
mod upload;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use uuid::Uuid;

pub use error::TieredError;
pub use manifest::Manifest;
pub use settings::RemoteStorageSettings;

use cache::{SegmentCache, INDEX_PIECE, TIME_INDEX_PIECE};
use metrics::TieredMetrics;
use store::{ManifestBase, PartitionPath, RemoteStorage, EPOCHS, LOG};

use tributary_replication::append::AppendHost;
use tributary_replication::fetcher::{HostError, RemoteRebuild, RemoteRestart};
use tributary_replication::partition::Partition;
use tributary_storage::AbortedRange;

/// Longest a partition waits before its next try after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Longest a leader awaiting its remote log check waits before its next try: it serves
/// nobody until the bucket answers, so it must notice the bucket's return within seconds.
const MAX_CHECK_BACKOFF: Duration = Duration::from_secs(5);

/// Records read from the bucket for a fetch.
#[derive(Debug, Clone)]
pub struct RemoteRead {
    /// Whole batches from the one holding the fetch offset.
    pub records: Bytes,
    /// Aborted transactions among them.
    pub aborted: Vec<AbortedRange>,
    /// First offset of the remote log, the partition's log start.
    pub log_start_offset: i64,
}

/// The broker's tiered storage: the bucket, the partitions' manifests as last read or
/// written, the fetch cache and the metrics.
pub struct TieredStorage {
    remote: RemoteStorage,
    /// The bucket itself, for what [`RemoteStorage`] does not do: deleting the objects it
    /// does not name (producer snapshots, orphans) and listing a partition's objects with
    /// their ages.
    objects: Arc<dyn object_store::ObjectStore>,
    settings: RemoteStorageSettings,
    manifests: Mutex<HashMap<(Uuid, i32), Arc<Manifest>>>,
    /// Per partition led here: the leader epoch whose term read the manifest from the
    /// bucket, and what its next conditional write replaces. A term never writes over a
    /// manifest it did not read itself.
    bases: Mutex<HashMap<(Uuid, i32), (i32, ManifestBase)>>,
    /// Where each partition seen here keeps its objects, to delete them with its topic.
    known: Mutex<HashMap<(Uuid, i32), PartitionPath>>,
    cache: Arc<SegmentCache>,
    /// Pieces being downloaded for fetches, one download per piece.
    downloads: downloads::Downloads,
    metrics: TieredMetrics,
    /// Per partition: consecutive failures and when to try again.
    backoff: Mutex<HashMap<(Uuid, i32), (u32, Instant)>>,
}

impl std::fmt::Debug for TieredStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TieredStorage({:?})", self.remote)
    }
}

impl TieredStorage {
    /// Opens the bucket the settings name and registers the metrics in `registry`.
    pub fn open(
        settings: RemoteStorageSettings,
        registry: &prometheus::Registry,
    ) -> Result<Arc<TieredStorage>, TieredError> {
        let bucket = settings.open()?;
        TieredStorage::with_bucket(bucket, settings, registry)
    }

    /// [`TieredStorage::open`] over a bucket opened by the caller (tests inject faults with
    /// a store of their own).
    pub fn with_bucket(
        bucket: settings::Bucket,
        settings: RemoteStorageSettings,
        registry: &prometheus::Registry,
    ) -> Result<Arc<TieredStorage>, TieredError> {
        let metrics = TieredMetrics::register(registry)
            .map_err(|e| TieredError::Settings(format!("cannot register metrics: {e}")))?;
        Ok(Arc::new(TieredStorage {
            objects: bucket.store.clone(),
            remote: RemoteStorage::new(bucket),
            cache: Arc::new(SegmentCache::new(settings.cache_bytes)),
            downloads: downloads::Downloads::default(),
            settings,
            manifests: Mutex::new(HashMap::new()),
            bases: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            metrics,
            backoff: Mutex::new(HashMap::new()),
        }))
    }

    /// A view of its insides, for tests of whole brokers.
    #[cfg(any(test, feature = "test-support"))]
    pub fn probe(&self) -> probe::Probe<'_> {
        probe::Probe(self)
    }

    /// How often the background task runs.
    pub fn task_interval(&self) -> Duration {
        self.settings.task_interval
    }

    fn path_of(&self, partition: &Partition) -> PartitionPath {
        let path =
            self.remote
                .partition(partition.topic(), partition.topic_id(), partition.index());
        self.known
            .lock()
            .entry((partition.topic_id(), partition.index()))
            .or_insert_with(|| path.clone());
        path
    }

    /// The partition's manifest: as last seen, else read from the bucket (so a replica with
    /// an empty disk knows the remote log at once).
    pub async fn manifest(&self, partition: &Partition) -> Result<Arc<Manifest>, TieredError> {
        let key = (partition.topic_id(), partition.index());
        if let Some(found) = self.manifests.lock().get(&key) {
            return Ok(found.clone());
        }
        let manifest = Arc::new(self.remote.read_manifest(&self.path_of(partition)).await?);
        self.manifests.lock().insert(key, manifest.clone());
        Ok(manifest)
    }

    fn install(&self, partition: &Partition, manifest: Manifest) {
        let key = (partition.topic_id(), partition.index());
        self.manifests.lock().insert(key, Arc::new(manifest));
    }

    /// One pass over `partitions`: each tiered partition this broker leads uploads what is
    /// due and applies remote retention; each it follows reads the manifest so its local
    /// retention deletes only what the bucket holds. A partition whose pass fails backs off (doubling,
    /// up to [`MAX_BACKOFF`]); its local segments stay until they are uploaded.
    pub async fn run_once(&self, partitions: Vec<Arc<Partition>>, now_ms: i64) {
        for partition in partitions {
            if partition.is_deleted() || !partition.with_log(|log| log.config().remote_storage) {
                continue;
            }
            let key = (partition.topic_id(), partition.index());
            let waiting = self
                .backoff
                .lock()
                .get(&key)
                .is_some_and(|&(_, next)| Instant::now() < next);
            if waiting {
                continue;
            }
            let pass = if partition.role().is_leader() {
                self.lead_partition(&partition, now_ms).await
            } else {
                self.follow_remote_log(&partition).await
            };
            match pass {
                Ok(()) => {
                    self.backoff.lock().remove(&key);
                }
                Err(error) => {
                    self.metrics
                        .errors
                        .with_label_values(&[error.metric_label()])
                        .inc();
                    // The manifest may have changed under us: the next term pass reads it
                    // again before writing. Until then reads, ListOffsets and the log start
                    // keep answering from the last manifest seen, which still names only
                    // objects in the bucket: an unreachable bucket must not make the remote
                    // part of the log look gone to consumers.
                    self.bases.lock().remove(&key);
                    if partition.role().is_leader() {
                        self.report_backlog(&partition);
                    }
                    let cap = if partition.awaits_remote_log() {
                        MAX_CHECK_BACKOFF
                    } else {
                        MAX_BACKOFF
                    };
                    let mut backoff = self.backoff.lock();
                    let failures = backoff.get(&key).map_or(0, |&(n, _)| n) + 1;
                    let wait = self
                        .settings
                        .task_interval
                        .saturating_mul(1 << failures.min(8))
                        .min(cap);
                    backoff.insert(key, (failures, Instant::now() + wait));
                    tracing::warn!(
                        ?partition,
                        %error,
                        failures,
                        retry_in = ?wait,
                        "tiered storage pass failed; local segments are kept until uploaded"
                    );
                }
            }
        }
    }

    /// A leader's pass: its log checked against the remote log first if it awaits that, then
    /// the uploads and remote retention.
    async fn lead_partition(&self, partition: &Partition, now_ms: i64) -> Result<(), TieredError> {
        self.check_leader(partition).await?;
        if partition.awaits_remote_log() {
            // Its role changed during the check: the next pass checks again.
            return Ok(());
        }
        self.sync_partition(partition, now_ms).await
    }

    /// The upload lag of a led partition whose pass failed, against the last manifest seen:
    /// the backlog keeps growing while the bucket is away, and the lag alert must see it.
    fn report_backlog(&self, partition: &Partition) {
        let key = (partition.topic_id(), partition.index());
        let Some(manifest) = self.manifests.lock().get(&key).cloned() else {
            return;
        };
        let view = partition.tiering_view(0);
        let due: Vec<_> = plan::segments_to_upload(&view.segments, &manifest, view.stable_end)
            .into_iter()
            .cloned()
            .collect();
        self.report_lag(partition, &due);
    }

    /// Reads whole batches from the remote segment holding `offset`, if the remote log has
    /// it; `Ok(None)` when it does not (the caller answers OFFSET_OUT_OF_RANGE as before).
    /// At most `max_bytes`, but at least one whole batch.
    pub async fn read(
        &self,
        partition: &Partition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Option<RemoteRead>, TieredError> {
        self.read_within(partition, offset, max_bytes, true).await
    }

    /// [`TieredStorage::read`] within a fetch's byte budget: at most `max_bytes`, which only
    /// the first partition answering with data (`min_one`) may pass, by one whole batch.
    pub async fn read_within(
        &self,
        partition: &Partition,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<Option<RemoteRead>, TieredError> {
        let manifest = self.manifest(partition).await?;
        let (Some(segment), Some(log_start_offset)) =
            (manifest.segment_for(offset), manifest.log_start_offset())
        else {
            return Ok(None);
        };
        let at = self.path_of(partition);
        let index = self.piece(&at, segment, INDEX_PIECE).await?;
        let from = read::start_position(&index, segment.base_offset, offset, segment.size_bytes);
        if max_bytes == 0 && !min_one {
            return Ok(Some(RemoteRead {
                records: Bytes::new(),
                aborted: Vec::new(),
                log_start_offset,
            }));
        }
        let want = u64::try_from(max_bytes.max(1)).unwrap_or(u64::MAX);
        let records = self
            .scan(&at, segment, from, want, |window, at_end| {
                let base = segment.base_offset;
                read::cut(window, at_end, base, offset, max_bytes, min_one).map(Into::into)
            })
            .await?;
        self.metrics
            .remote_fetches
            .with_label_values(&[partition.topic()])
            .inc();
        Ok(Some(RemoteRead {
            records,
            aborted: segment.aborted.iter().map(AbortedRange::from).collect(),
            log_start_offset,
        }))
    }

    /// What `look` finds in `segment` from byte `from` (a batch boundary), shown windows of
    /// it: `want` bytes first, then as many as it says it needs, up to the segment's end. A
    /// window that cannot grow to what `look` needs, or that `look` finds malformed, is a
    /// corrupt segment.
    async fn scan<T>(
        &self,
        at: &PartitionPath,
        segment: &manifest::RemoteSegment,
        from: u64,
        mut want: u64,
        look: impl Fn(&Bytes, bool) -> Result<read::Window<T>, String>,
    ) -> Result<T, TieredError> {
        let corrupt = |reason: String| TieredError::Corrupt {
            path: at.segment(segment.base_offset, segment.id, LOG).to_string(),
            reason,
        };
        loop {
            let to = from.saturating_add(want).min(segment.size_bytes);
            let window = self.window(at, segment, from, to).await?;
            let at_end = to == segment.size_bytes;
            match look(&window, at_end).map_err(corrupt)? {
                read::Window::Found(found) => return Ok(found),
                read::Window::NeedBytes(n) => {
                    let n = u64::try_from(n).unwrap_or(u64::MAX);
                    if at_end || n <= want {
                        return Err(corrupt(format!("no whole batch at byte {from}")));
                    }
                    want = n;
                }
            }
        }
    }

    /// Moves the partition's remote log start to `offset` (DeleteRecords) in its manifest;
    /// the segments wholly below it go at the next pass. Returns the partition's log start
    /// given its local one.
    pub async fn delete_records(
        &self,
        partition: &Partition,
        offset: i64,
        local_log_start: i64,
    ) -> Result<i64, TieredError> {
        let at = self.path_of(partition);
        let epoch = partition.leader_epoch();
        let mut manifest = self.manifest_for_term(partition, &at, epoch).await?;
        if offset > manifest.records_deleted_before {
            manifest.delete_records_before(offset);
            manifest.leader_epoch = manifest.leader_epoch.max(epoch);
            self.save(partition, &at, &manifest).await?;
        }
        Ok(overall_start(&manifest, local_log_start))
    }

    /// The manifest as this leader's term knows it: read from the bucket once per term (a
    /// new leader never trusts what it cached as a follower or in an earlier term), then as
    /// this term last wrote it. Refused if a newer leader epoch wrote it.
    pub(crate) async fn manifest_for_term(
        &self,
        partition: &Partition,
        at: &PartitionPath,
        epoch: i32,
    ) -> Result<Manifest, TieredError> {
        let key = (partition.topic_id(), partition.index());
        let same_term = self
            .bases
            .lock()
            .get(&key)
            .is_some_and(|(term, _)| *term == epoch);
        let cached = same_term
            .then(|| self.manifests.lock().get(&key).cloned())
            .flatten();
        let manifest = match cached {
            Some(manifest) => Manifest::clone(&manifest),
            None => {
                let read = self.remote.read_manifest_versioned(at).await?;
                self.bases.lock().insert(key, (epoch, read.base));
                self.install(partition, read.manifest.clone());
                read.manifest
            }
        };
        if manifest.fenced_for(epoch) {
            return Err(TieredError::Fenced {
                path: at.manifest().to_string(),
                theirs: manifest.leader_epoch,
                ours: epoch,
            });
        }
        Ok(manifest)
    }

    /// Writes the manifest over the one this term read or last wrote (conditionally, see
    /// [`RemoteStorage::write_manifest_over`]) and makes it what readers see.
    pub(crate) async fn save(
        &self,
        partition: &Partition,
        at: &PartitionPath,
        manifest: &Manifest,
    ) -> Result<(), TieredError> {
        let key = (partition.topic_id(), partition.index());
        let Some((term, base)) = self.bases.lock().get(&key).cloned() else {
            return Err(TieredError::ManifestConflict {
                path: at.manifest().to_string(),
            });
        };
        if term != manifest.leader_epoch {
            return Err(TieredError::ManifestConflict {
                path: at.manifest().to_string(),
            });
        }
        let next = self.remote.write_manifest_over(at, &base, manifest).await?;
        self.bases.lock().insert(key, (term, next));
        self.install(partition, manifest.clone());
        Ok(())
    }

    /// A follower's pass: read the manifest the leader keeps and let local retention delete
    /// the segments the bucket holds (KIP-405 followers learn the copied end from the remote
    /// log metadata, as Kafka's follower task does), so follower disks are bounded too.
    async fn follow_remote_log(&self, partition: &Partition) -> Result<(), TieredError> {
        let key = (partition.topic_id(), partition.index());
        self.bases.lock().remove(&key);
        let manifest = self.remote.read_manifest(&self.path_of(partition)).await?;
        let local_start = partition.with_log(|log| log.log_start_offset());
        partition.set_remote_copied_end(manifest.covered_end(local_start));
        self.install(partition, manifest);
        Ok(())
    }

    /// KIP-405's follower rebuild of its auxiliary state, the remote part: the leader
    /// answered OFFSET_MOVED_TO_TIERED_STORAGE with its local log start; read the manifest
    /// afresh, find the remote segment holding the offset before it, and read that segment's
    /// leader-epoch checkpoint and producer snapshot. The caller restarts the log with the
    /// result.
    pub async fn rebuild_plan_for(
        &self,
        partition: &Partition,
        leader_local_start: i64,
    ) -> Result<RemoteRestart, TieredError> {
        let at = self.path_of(partition);
        let manifest = self.remote.read_manifest(&at).await?;
        self.install(partition, manifest.clone());
        let target = plan::rebuild_target(&manifest, leader_local_start).map_err(|reason| {
            TieredError::NotRemote {
                path: at.manifest().to_string(),
                reason,
            }
        })?;
        let path = at.segment(target.base_offset, target.id, EPOCHS);
        let text = self
            .remote
            .get_optional(&path)
            .await?
            .ok_or_else(|| TieredError::Corrupt {
                path: path.to_string(),
                reason: "the segment's leader-epoch checkpoint is missing".into(),
            })?;
        let checkpoint =
            plan::parse_epoch_checkpoint(&text).map_err(|reason| TieredError::Corrupt {
                path: path.to_string(),
                reason,
            })?;
        let producers = self.load_snapshot(&at, target).await?;
        Ok(RemoteRestart {
            restart_at: leader_local_start,
            epochs: plan::epochs_before(&checkpoint, leader_local_start),
            producers,
        })
    }

    /// The partition's log start: the remote log start when the remote log is known and
    /// starts lower, else the local one.
    pub fn log_start_offset(&self, partition: &Partition, local_log_start: i64) -> i64 {
        let key = (partition.topic_id(), partition.index());
        match self.manifests.lock().get(&key) {
            Some(manifest) => overall_start(manifest, local_log_start),
            None => local_log_start,
        }
    }

    /// Bytes `[from, to)` of a segment's `.log`, from cached chunks of the read-ahead size
    /// (each fetched once: the next fetches of a consumer going through the segment find
    /// their bytes cached).
    async fn window(
        &self,
        at: &PartitionPath,
        segment: &manifest::RemoteSegment,
        from: u64,
        to: u64,
    ) -> Result<Bytes, TieredError> {
        if from >= to {
            return Ok(Bytes::new());
        }
        let chunk = self.settings.read_ahead_bytes.max(1);
        let (first, last) = (from / chunk, (to - 1) / chunk);
        let mut chunks = Vec::new();
        for chunk in first..=last {
            chunks.push(self.piece(at, segment, chunk).await?);
        }
        let skip = usize::try_from(from - first * chunk).unwrap_or(usize::MAX);
        let len = usize::try_from(to - from).unwrap_or(usize::MAX);
        let joined = match chunks.as_slice() {
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        };
        Ok(joined.slice(skip.min(joined.len())..(skip + len).min(joined.len())))
    }

    /// One cached piece of a segment: chunk `piece` of its `.log` (checked to be as long as
    /// the manifest says), or its offset index ([`INDEX_PIECE`]; empty if it has none).
    /// Downloaded by a task of its own that the caller may stop waiting for (see
    /// [`downloads`]).
    async fn piece(
        &self,
        at: &PartitionPath,
        segment: &manifest::RemoteSegment,
        piece: u64,
    ) -> Result<Bytes, TieredError> {
        let key = (segment.id, piece);
        if let Some(bytes) = self.cache.get(key) {
            return Ok(bytes);
        }
        let fetch = download_piece(
            self.remote.clone(),
            at.clone(),
            segment.clone(),
            piece,
            self.settings.read_ahead_bytes.max(1),
        );
        self.downloads.get(key, &self.cache, fetch).await
    }

    /// Reads the remote log for a consumer's fetch as [`TieredStorage::read_within`] does, but
    /// waits for the bucket at most `remote.fetch.max.wait.ms` (the download goes on without
    /// it, for the retry); a read that fails or times out is counted per topic (Kafka's
    /// RemoteFetchErrorsPerSec) and by kind.
    pub async fn fetch(
        &self,
        partition: &Partition,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<Option<RemoteRead>, TieredError> {
        let wait = self.settings.fetch_max_wait;
        let read = self.read_within(partition, offset, max_bytes, min_one);
        let result = tokio::time::timeout(wait, read)
            .await
            .unwrap_or(Err(TieredError::FetchTimedOut(wait)));
        if let Err(error) = &result {
            self.count_error(error);
            self.metrics
                .remote_fetch_errors
                .with_label_values(&[partition.topic()])
                .inc();
        }
        result
    }

    /// Counts a failed remote read by kind.
    pub fn count_error(&self, error: &TieredError) {
        self.metrics
            .errors
            .with_label_values(&[error.metric_label()])
            .inc();
    }

    /// The remote log start as last read or written here, if the remote log holds anything.
    pub fn remote_log_start(&self, partition: &Partition) -> Option<i64> {
        let key = (partition.topic_id(), partition.index());
        self.manifests.lock().get(&key)?.log_start_offset()
    }

    /// Bytes of the partition's remote log as last read or written here (no request to the
    /// bucket), if known.
    pub fn remote_size(&self, partition: &Partition) -> Option<u64> {
        let key = (partition.topic_id(), partition.index());
        Some(self.manifests.lock().get(&key)?.size_bytes())
    }

    /// The remote storage URL (`s3://bucket/prefix`, `file:///directory`).
    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// Offset after the last uploaded record, if known.
    pub fn copied_end(&self, partition: &Partition) -> Option<i64> {
        let key = (partition.topic_id(), partition.index());
        self.manifests.lock().get(&key)?.copied_end_offset()
    }

    /// Deletes the objects of the partitions seen here whose topic no longer exists (deleted,
    /// or deleted and re-created under a new id), and forgets them. A failure leaves the
    /// partition known, so the next pass tries again.
    pub async fn delete_removed_topics(&self, exists: impl Fn(&Uuid) -> bool) {
        let gone: Vec<((Uuid, i32), PartitionPath)> = self
            .known
            .lock()
            .iter()
            .filter(|((id, _), _)| !exists(id))
            .map(|(key, path)| (*key, path.clone()))
            .collect();
        for (key, path) in gone {
            match self.remote.delete_partition(&path).await {
                Ok(objects) => {
                    self.known.lock().remove(&key);
                    self.manifests.lock().remove(&key);
                    self.backoff.lock().remove(&key);
                    tracing::info!(path = ?path, objects, "deleted the remote log of a deleted topic");
                }
                Err(error) => {
                    self.count_error(&error);
                    tracing::warn!(path = ?path, %error, "cannot delete a deleted topic's remote log yet");
                }
            }
        }
    }
}

/// A follower rebuilds from the tiered storage's remote log; each failure is counted in its
/// error metrics.
impl RemoteRebuild for TieredStorage {
    fn plan<'a>(
        &'a self,
        partition: &'a Partition,
        leader_local_start: i64,
    ) -> BoxFuture<'a, Result<RemoteRestart, HostError>> {
        Box::pin(async move {
            let plan = self.rebuild_plan_for(partition, leader_local_start).await;
            plan.map_err(|error| {
                self.count_error(&error);
                HostError::from(error)
            })
        })
    }
}

/// Piece `piece` of `segment`'s objects from the bucket: a `chunk`-byte chunk of its `.log`
/// (checked to be as long as the manifest says), or its offset or time index ([`INDEX_PIECE`],
/// [`TIME_INDEX_PIECE`]; empty if it has none).
async fn download_piece(
    remote: RemoteStorage,
    at: PartitionPath,
    segment: manifest::RemoteSegment,
    piece: u64,
    chunk: u64,
) -> Result<Bytes, TieredError> {
    let index = match piece {
        INDEX_PIECE => Some(store::INDEX),
        TIME_INDEX_PIECE => Some(store::TIME_INDEX),
        _ => None,
    };
    if let Some(suffix) = index {
        let path = at.segment(segment.base_offset, segment.id, suffix);
        return Ok(remote.get_optional(&path).await?.unwrap_or_default());
    }
    let path = at.segment(segment.base_offset, segment.id, LOG);
    let start = piece.saturating_mul(chunk);
    let end = start.saturating_add(chunk).min(segment.size_bytes);
    let bytes = remote.get_range(&path, start..end).await?;
    if bytes.len() as u64 != end.saturating_sub(start) {
        return Err(TieredError::Corrupt {
            path: path.to_string(),
            reason: format!(
                "{} bytes at {start}, the manifest promises {}",
                bytes.len(),
                end.saturating_sub(start)
            ),
        });
    }
    Ok(bytes)
}

/// The lower of the remote and the local log starts.
fn overall_start(manifest: &Manifest, local_log_start: i64) -> i64 {
    manifest
        .log_start_offset()
        .map_or(local_log_start, |remote| remote.min(local_log_start))
}

/// Runs the upload and remote retention pass every task interval, for the partitions the
/// broker leads, and the manifest refresh for those it follows; ends with the broker.
pub async fn run<H: AppendHost + ?Sized>(tiered: Arc<TieredStorage>, broker: std::sync::Weak<H>) {
    let mut tick = tokio::time::interval(tiered.task_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(partitions) = broker.upgrade().map(|b| b.replicas().all()) else {
            return;
        };
        tiered
            .run_once(partitions, tributary_storage::clock::now_ms())
            .await;
        // The image after the pass: every partition the pass saw existed by then.
        let Some(image) = broker.upgrade().map(|b| b.metadata().image()) else {
            return;
        };
        tiered
            .delete_removed_topics(|id| image.topic_by_id(id).is_some())
            .await;
    }
}
