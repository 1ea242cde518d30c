//! Faults between the broker and the bucket: a bucket that refuses every request, an upload
//! cut off after its STARTED record (as a crash would leave it), and a bucket that does not
//! answer a fetch's read. Nothing is lost, nothing is deleted locally before it is in the
//! bucket, no segment is uploaded twice, and a fetch is answered in time.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use super::manifest::SegmentState;
use super::settings::Bucket;
use super::tests::{create_tiered_topic, produce, read_everything, tiered_flags, uploaded, TOPIC};
use super::{RemoteStorageSettings, TieredError, TieredStorage};
use crate::handlers::group_wire_tests::open_broker;

/// Every request succeeds.
const UP: u8 = 0;
/// Every request fails, as with the bucket unreachable.
const DOWN: u8 = 1;
/// Writes of segment data fail; the rest succeed (an upload cut off midway).
const NO_SEGMENT_DATA: u8 = 2;
/// Reads wait for `release`, as with the bucket's path dropping packets.
const HANG: u8 = 3;

/// A local-directory store whose requests fail as `mode` says, counting them.
#[derive(Debug)]
struct FlakyStore {
    inner: LocalFileSystem,
    mode: AtomicU8,
    requests: AtomicUsize,
    /// Ends the wait of the reads made in [`HANG`] mode.
    release: tokio::sync::Notify,
}

impl fmt::Display for FlakyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlakyStore({})", self.inner)
    }
}

impl FlakyStore {
    fn check(&self, location: Option<&Path>, write: bool) -> object_store::Result<()> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let refused = match self.mode.load(Ordering::SeqCst) {
            DOWN => true,
            NO_SEGMENT_DATA => write && location.is_some_and(|l| l.as_ref().ends_with(".log")),
            _ => false,
        };
        if refused {
            return Err(object_store::Error::Generic {
                store: "flaky",
                source: "the bucket is unreachable".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FlakyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(Some(location), true)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(Some(location), true)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check(Some(location), false)?;
        if self.mode.load(Ordering::SeqCst) == HANG {
            self.release.notified().await;
        }
        self.inner.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.check(Some(location), true)?;
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.check(prefix, false) {
            Ok(()) => self.inner.list(prefix),
            Err(error) => Box::pin(futures::stream::once(async move { Err(error) })),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.check(prefix, false)?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.check(Some(to), true)?;
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.check(Some(to), true)?;
        self.inner.copy_if_not_exists(from, to).await
    }
}

/// A store over the bucket directory `remote` failing as `mode` says, and a tiered storage
/// with `settings` over it.
fn flaky_tiered(
    remote: &std::path::Path,
    mode: u8,
    settings: RemoteStorageSettings,
) -> (Arc<FlakyStore>, Arc<TieredStorage>) {
    let store = Arc::new(FlakyStore {
        inner: LocalFileSystem::new_with_prefix(remote).expect("store"),
        mode: AtomicU8::new(mode),
        requests: AtomicUsize::new(0),
        release: tokio::sync::Notify::new(),
    });
    let bucket = Bucket {
        store: store.clone(),
        prefix: String::new(),
    };
    let tiered = TieredStorage::with_bucket(bucket, settings, &prometheus::Registry::new())
        .expect("tiered storage");
    (store, tiered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bucket_delays_uploads_and_local_retention_keeps_every_segment() {
    let data = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("tempdir");
    // The broker's own tiered storage serves fetches from the directory; the flaky one, on
    // the same directory, uploads.
    let b = open_broker(data.path(), tiered_flags(remote.path()));
    let (store, flaky) = flaky_tiered(
        remote.path(),
        DOWN,
        RemoteStorageSettings {
            task_interval: Duration::from_millis(10),
            ..RemoteStorageSettings::default()
        },
    );
    create_tiered_topic(&b, 1, &[("local.retention.bytes", "1")]);
    for batch in 0..60 {
        produce(&b, batch).await;
    }
    let end = 300;
    let before = read_everything(&b, end).await;
    let partition = crate::test_support::partition(&b, TOPIC, 0);
    let segments = partition.with_log(|l| l.segment_count());
    assert!(segments > 3);
    let pass = |flaky: Arc<TieredStorage>, b: Arc<crate::Broker>| async move {
        flaky
            .run_once(b.replicas.all(), crate::clock::now_ms())
            .await;
        partition_retention(&b);
    };

    // Down: the pass fails, is counted, backs off; nothing is deleted locally.
    pass(flaky.clone(), b.clone()).await;
    assert_eq!(partition.with_log(|l| l.segment_count()), segments);
    assert_eq!(partition.with_log(|l| l.log_start_offset()), 0);
    assert_eq!(
        flaky
            .probe()
            .metrics()
            .errors
            .with_label_values(&["store"])
            .get(),
        1
    );
    let requests = store.requests.load(Ordering::SeqCst);
    pass(flaky.clone(), b.clone()).await;
    assert_eq!(
        store.requests.load(Ordering::SeqCst),
        requests,
        "a partition backing off is not retried at once"
    );

    // An upload cut off after its STARTED record: the orphan is cleaned up, not served.
    store.mode.store(NO_SEGMENT_DATA, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while flaky
        .probe()
        .metrics()
        .errors
        .with_label_values(&["store"])
        .get()
        < 2
    {
        assert!(Instant::now() < deadline, "no second attempt within 10 s");
        pass(flaky.clone(), b.clone()).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let manifest = flaky
        .probe()
        .remote()
        .read_manifest(&flaky.probe().path_of(&partition))
        .await
        .expect("read");
    assert_eq!(manifest.segments.len(), 1);
    assert_eq!(manifest.segments[0].state, SegmentState::CopySegmentStarted);
    let orphan = manifest.segments[0].id;
    assert_eq!(
        partition.with_log(|l| l.log_start_offset()),
        0,
        "nothing deleted"
    );

    // Back up: every closed segment is uploaded once, then deleted locally.
    store.mode.store(UP, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while partition.with_log(|l| l.segment_count()) > 1 {
        assert!(
            Instant::now() < deadline,
            "segments not uploaded and deleted within 10 s of the bucket's return"
        );
        pass(flaky.clone(), b.clone()).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let manifest = flaky
        .probe()
        .remote()
        .read_manifest(&flaky.probe().path_of(&partition))
        .await
        .expect("read");
    assert!(manifest.segments.iter().all(|s| s.is_readable()));
    assert!(
        manifest.segments.iter().all(|s| s.id != orphan),
        "the orphan is gone"
    );
    assert!(
        manifest
            .segments
            .windows(2)
            .all(|w| w[0].end_offset == w[1].base_offset),
        "each offset in exactly one segment"
    );
    let orphan_objects = std::fs::read_dir(
        remote
            .path()
            .join(format!("{TOPIC}-{}/0", partition.topic_id())),
    )
    .expect("objects")
    .filter_map(Result::ok)
    .filter(|e| {
        e.file_name()
            .to_string_lossy()
            .contains(&orphan.to_string())
    })
    .count();
    assert_eq!(orphan_objects, 0, "the orphan's objects are deleted");
    let after = read_everything(&b, end).await;
    assert!(after == before, "records read back from the bucket differ");
}

fn partition_retention(b: &crate::Broker) {
    for p in b.replicas.all() {
        p.enforce_retention(crate::clock::now_ms())
            .expect("retention");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_the_bucket_does_not_answer_is_refused_in_time_and_counted_and_its_retry_served() {
    let data = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("tempdir");
    let (b, partition, _) = uploaded(
        data.path(),
        remote.path(),
        &[("local.retention.bytes", "1")],
        60,
    )
    .await;
    let before = read_everything(&b, 300).await;
    partition_retention(&b);
    assert!(
        partition.with_log(|l| l.log_start_offset()) > 0,
        "the start is remote"
    );

    // Another broker's view of the same bucket, whose reads stop being answered once it
    // knows the manifest.
    let (store, tiered) = flaky_tiered(
        remote.path(),
        UP,
        RemoteStorageSettings {
            fetch_max_wait: Duration::from_millis(100),
            ..RemoteStorageSettings::default()
        },
    );
    tiered.manifest(&partition).await.expect("manifest");
    store.mode.store(HANG, Ordering::SeqCst);

    // Refused in time with an error the handler answers KAFKA_STORAGE_ERROR, and counted.
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        tiered.fetch(&partition, 0, 1 << 20, true),
    )
    .await
    .expect("a fetch answered within 10 s with the bucket silent");
    assert!(
        matches!(refused, Err(TieredError::FetchTimedOut(_))),
        "{refused:?}"
    );
    let counted = || {
        tiered
            .probe()
            .metrics()
            .remote_fetch_errors
            .with_label_values(&[TOPIC])
            .get()
    };
    assert_eq!(counted(), 1);
    assert_eq!(
        tiered
            .probe()
            .metrics()
            .errors
            .with_label_values(&["timeout"])
            .get(),
        1
    );
    // A retry joins the read under way rather than sending another request.
    let requests = store.requests.load(Ordering::SeqCst);
    assert!(tiered.fetch(&partition, 0, 1 << 20, true).await.is_err());
    assert_eq!(counted(), 2);
    assert_eq!(store.requests.load(Ordering::SeqCst), requests);

    // The bucket answers again: the retries are served, the same bytes as before.
    store.mode.store(UP, Ordering::SeqCst);
    store.release.notify_waiters();
    let deadline = Instant::now() + Duration::from_secs(10);
    let records = loop {
        if let Ok(Some(read)) = tiered.fetch(&partition, 0, 1 << 20, true).await {
            break read.records;
        }
        assert!(
            Instant::now() < deadline,
            "no remote read within 10 s of the bucket's return"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!records.is_empty() && before.starts_with(&records));
}
