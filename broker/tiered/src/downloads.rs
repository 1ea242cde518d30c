//! Downloads of remote segment pieces, each run as a task of its own and at most one per piece
//! at a time. A fetch waits for a piece only as long as it may (`remote.fetch.max.wait.ms`);
//! the download goes on without it and fills the cache, so the client's retry finds the bytes,
//! and fetches wanting the same piece meanwhile join the download under way instead of sending
//! requests of their own to a slow or unreachable bucket.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;

use super::cache::{PieceKey, SegmentCache};
use super::error::TieredError;

/// A download as the fetches waiting for it see it.
type Download = Shared<BoxFuture<'static, Result<Bytes, Arc<TieredError>>>>;

/// The downloads under way.
#[derive(Default)]
pub struct Downloads {
    under_way: Arc<Mutex<HashMap<PieceKey, Download>>>,
}

impl Downloads {
    /// The bytes of piece `key`: from the download under way, else from `fetch`, started as a
    /// task that puts them in `cache`. Dropping the returned future does not stop the task.
    pub fn get(
        &self,
        key: PieceKey,
        cache: &Arc<SegmentCache>,
        fetch: impl Future<Output = Result<Bytes, TieredError>> + Send + 'static,
    ) -> impl Future<Output = Result<Bytes, TieredError>> + Send + 'static {
        let download = {
            let mut under_way = self.under_way.lock();
            match under_way.get(&key) {
                Some(download) => download.clone(),
                None => {
                    let download = self.start(key, cache.clone(), fetch);
                    under_way.insert(key, download.clone());
                    download
                }
            }
        };
        async move { download.await.map_err(TieredError::Shared) }
    }

    fn start(
        &self,
        key: PieceKey,
        cache: Arc<SegmentCache>,
        fetch: impl Future<Output = Result<Bytes, TieredError>> + Send + 'static,
    ) -> Download {
        let under_way = self.under_way.clone();
        let task = tokio::spawn(async move {
            let fetched = fetch.await;
            if let Ok(bytes) = &fetched {
                cache.insert(key, bytes.clone());
            }
            // Removed once cached: a fetch after this finds the bytes, or starts anew.
            under_way.lock().remove(&key);
            fetched.map_err(Arc::new)
        });
        async move {
            task.await
                .unwrap_or_else(|error| Err(Arc::new(TieredError::Interrupted(error.to_string()))))
        }
        .boxed()
        .shared()
    }

    /// How many downloads are under way.
    pub fn len(&self) -> usize {
        self.under_way.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;

    #[tokio::test]
    async fn a_download_goes_on_without_its_fetch_and_others_join_it() {
        let downloads = Downloads::default();
        let cache = Arc::new(SegmentCache::new(1 << 20));
        let key = (Uuid::new_v4(), 0);
        let started = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let fetch = |started: Arc<AtomicUsize>, release: Arc<tokio::sync::Notify>| async move {
            started.fetch_add(1, Ordering::SeqCst);
            release.notified().await;
            Ok(Bytes::from_static(b"piece"))
        };
        // The first fetch gives up; a second joins the same download.
        let first = downloads.get(key, &cache, fetch(started.clone(), release.clone()));
        assert!(tokio::time::timeout(Duration::from_millis(50), first)
            .await
            .is_err());
        let second = downloads.get(key, &cache, fetch(started.clone(), release.clone()));
        assert_eq!(downloads.len(), 1);
        release.notify_one();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), second)
                .await
                .expect("joined the download")
                .expect("bytes"),
            Bytes::from_static(b"piece")
        );
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "one request to the bucket"
        );
        assert_eq!(cache.get(key), Some(Bytes::from_static(b"piece")));
        assert!(downloads.is_empty());
    }

    #[tokio::test]
    async fn a_failed_download_is_reported_to_its_waiters_and_the_next_fetch_starts_anew() {
        let downloads = Downloads::default();
        let cache = Arc::new(SegmentCache::new(1 << 20));
        let key = (Uuid::new_v4(), 0);
        let failed = downloads.get(key, &cache, async {
            Err(TieredError::Settings("unreachable".into()))
        });
        let error = failed.await.expect_err("the failure");
        assert_eq!(error.metric_label(), "settings");
        assert!(cache.get(key).is_none());
        let retried = downloads.get(key, &cache, async { Ok(Bytes::from_static(b"x")) });
        assert_eq!(retried.await.expect("bytes"), Bytes::from_static(b"x"));
    }
}
