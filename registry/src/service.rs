//! The registry service: reads answer from the replayed state; writes are planned against it
//! (one at a time, so ids and versions are allocated from a state that includes every earlier
//! write), appended to the store, and answered once the store has applied them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::elector::{Elector, Role};
use crate::error::ApiError;
use crate::ops::Outcome;
use crate::records::{Record, RecordError};
use crate::state::Registry;

/// Why a write could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record could not be encoded.
    #[error(transparent)]
    Encode(#[from] RecordError),
    /// The broker refused or failed the produce.
    #[error("producing to the schemas topic failed: {0}")]
    Produce(String),
    /// A newer writer initialised the shared transactional producer: this instance may no
    /// longer write until it starts a new term.
    #[error("a newer writer fenced this instance's producer ({0}); it stops writing")]
    Fenced(String),
    /// This instance has no producer of a current term (never started one, or was fenced).
    #[error("this instance has no writer term (not started, or fenced by a newer writer)")]
    NotWriting,
    /// The record was produced but the reader did not reach it in time.
    #[error("the schemas topic reader did not reach offset {offset} within {waited_ms} ms")]
    ReadTimeout {
        /// The produced record's offset.
        offset: i64,
        /// How long the write waited.
        waited_ms: u128,
    },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ReadTimeout { .. } => ApiError::store_timeout(e),
            StoreError::Fenced(_) | StoreError::NotWriting => {
                ApiError::unknown_writer(format!("This instance is not the writer: {e}; retry"))
            }
            other => ApiError::store(other),
        }
    }
}

/// A boxed future, so that stores can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where records go: `append` returns once they are durable and applied to the shared state.
pub trait Store: Send + Sync {
    /// Appends the records in order, atomically (one transaction): all are applied or none.
    fn append(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The offset up to which the shared state has applied the topic (the next one to read):
    /// sent with every answer, so an instance that forwarded a write can wait to have read it.
    fn applied(&self) -> i64;

    /// Waits until the state has applied the topic up to `offset` (exclusive); false when
    /// `timeout` passed first.
    fn wait_applied(&self, offset: i64, timeout: Duration) -> BoxFuture<'_, bool>;

    /// Starts a writer term: fences every earlier writer (so none of their records can be
    /// committed any more), then reads the topic to its end by appending a NOOP marker and
    /// waiting until the state has applied it, so everything any earlier writer committed is in
    /// the state. A new writer does this before it allocates ids. Returns the offset applied up
    /// to.
    fn catch_up(&self) -> BoxFuture<'_, Result<i64, StoreError>>;
}

/// A store that applies records straight to the state: for tests, and the reference for
/// what the Kafka store does after its round trip.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<RwLock<Registry>>,
    /// Records applied, standing in for the topic's offsets.
    applied: Arc<AtomicI64>,
}

impl MemoryStore {
    /// A store applying to `state`.
    pub fn new(state: Arc<RwLock<Registry>>) -> Self {
        MemoryStore {
            state,
            applied: Arc::new(AtomicI64::new(0)),
        }
    }
}

impl Store for MemoryStore {
    fn append(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut state = self.state.write();
            for record in records {
                // Through the bytes, as the Kafka store does.
                let (key, value) = record.encode()?;
                if let Err(e) = state.apply_bytes(&key, value.as_deref()) {
                    return Err(StoreError::Encode(e));
                }
                self.applied.fetch_add(1, Ordering::AcqRel);
            }
            Ok(())
        })
    }

    fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    fn wait_applied(&self, offset: i64, _timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move { self.applied() >= offset })
    }

    fn catch_up(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move { Ok(self.applied()) })
    }
}

/// The registry: state, store, elector.
pub struct Service {
    state: Arc<RwLock<Registry>>,
    store: Arc<dyn Store>,
    elector: Arc<dyn Elector>,
    writes: tokio::sync::Mutex<()>,
    /// A stall between planning a write and appending it (fault injection for the fencing
    /// tests: a writer frozen there must be fenced by the cluster).
    pause_before_append: Option<Duration>,
}

impl Service {
    /// A service over a state kept current by `store`.
    pub fn new(
        state: Arc<RwLock<Registry>>,
        store: Arc<dyn Store>,
        elector: Arc<dyn Elector>,
    ) -> Self {
        Service {
            state,
            store,
            elector,
            writes: tokio::sync::Mutex::new(()),
            pause_before_append: None,
        }
    }

    /// Stalls every write for `pause` between its plan and its append: a test's way to freeze a
    /// writer after its role check, where only the cluster's fencing can stop it.
    pub fn with_pause_before_append(mut self, pause: Duration) -> Self {
        self.pause_before_append = Some(pause);
        self
    }

    /// A service over an in-memory store, for tests.
    pub fn in_memory() -> Self {
        let state = Arc::new(RwLock::new(Registry::default()));
        let store = Arc::new(MemoryStore::new(state.clone()));
        Service::new(state, store, Arc::new(crate::elector::Standalone))
    }

    /// The store, for the HTTP layer's read-your-writes wait after forwarding.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// This instance's role now.
    pub fn role(&self) -> Role {
        self.elector.role()
    }

    fn check_writer(&self) -> Result<(), ApiError> {
        match self.elector.role() {
            Role::Writer => Ok(()),
            Role::Follower { writer } => Err(ApiError::not_writer(format!(
                "This instance is not the writer; the writer is {writer}"
            ))),
            Role::Unavailable { reason } => Err(ApiError::unknown_writer(format!(
                "No writer is available: {reason}"
            ))),
        }
    }

    /// Answers a read from the current state.
    pub fn read<T>(&self, f: impl FnOnce(&Registry) -> T) -> T {
        f(&self.state.read())
    }

    /// Plans a write against the current state and appends its records, one write at a time.
    pub async fn write<T>(
        &self,
        plan: impl FnOnce(&Registry) -> Result<Outcome<T>, ApiError>,
    ) -> Result<T, ApiError> {
        self.check_writer()?;
        let _one_writer = self.writes.lock().await;
        // Again: waiting for the previous write may have taken this instance past its deadline.
        self.check_writer()?;
        let outcome = plan(&self.state.read())?;
        if !outcome.records.is_empty() {
            if let Some(pause) = self.pause_before_append {
                tracing::info!("stalling a write before its append (fault injection)");
                tokio::time::sleep(pause).await;
            }
            if let Err(e) = self.store.append(outcome.records).await {
                if matches!(e, StoreError::Fenced(_) | StoreError::NotWriting) {
                    tracing::warn!(error = %e, "this instance's producer is fenced; it stops writing");
                    self.elector.deposed();
                }
                return Err(e.into());
            }
        }
        Ok(outcome.reply)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::records::RecordKey;

    /// A store whose producer a newer writer fenced.
    struct FencedStore;

    impl Store for FencedStore {
        fn append(&self, _records: Vec<Record>) -> BoxFuture<'_, Result<(), StoreError>> {
            Box::pin(async { Err(StoreError::Fenced("PRODUCER_FENCED".to_owned())) })
        }
        fn applied(&self) -> i64 {
            0
        }
        fn wait_applied(&self, _offset: i64, _timeout: Duration) -> BoxFuture<'_, bool> {
            Box::pin(async { true })
        }
        fn catch_up(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
            Box::pin(async { Ok(0) })
        }
    }

    /// The writer until deposed.
    #[derive(Default)]
    struct Deposable(AtomicBool);

    impl Elector for Deposable {
        fn role(&self) -> Role {
            if self.0.load(Ordering::Acquire) {
                Role::Unavailable {
                    reason: "deposed".to_owned(),
                }
            } else {
                Role::Writer
            }
        }
        fn deposed(&self) {
            self.0.store(true, Ordering::Release);
        }
    }

    fn noop() -> Outcome<()> {
        Outcome {
            records: vec![Record {
                key: RecordKey::Noop { magic: 0 },
                value: None,
            }],
            reply: (),
        }
    }

    #[tokio::test]
    async fn a_fenced_write_is_refused_as_a_non_writer_and_deposes_the_instance() {
        let state = Arc::new(RwLock::new(Registry::default()));
        let elector = Arc::new(Deposable::default());
        let service = Service::new(state, Arc::new(FencedStore), elector.clone());
        let refused = match service.write(|_| Ok(noop())).await {
            Ok(()) => panic!("a fenced store's write succeeded"),
            Err(e) => e,
        };
        assert!(refused.is_not_writer(), "{refused:?}");
        assert!(refused.message.contains("fenced"), "{}", refused.message);
        assert!(!elector.is_writer());
        // The next write is refused before it is planned.
        let again = service.write(|_| -> Result<Outcome<()>, ApiError> {
            panic!("planned a write while deposed")
        });
        assert!(matches!(again.await, Err(e) if e.is_not_writer()));
    }
}
