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
            other => ApiError::store(other),
        }
    }
}

/// A boxed future, so that stores can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where records go: `append` returns once they are durable and applied to the shared state.
pub trait Store: Send + Sync {
    /// Appends the records in order.
    fn append(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The offset up to which the shared state has applied the topic (the next one to read):
    /// sent with every answer, so an instance that forwarded a write can wait to have read it.
    fn applied(&self) -> i64;

    /// Waits until the state has applied the topic up to `offset` (exclusive); false when
    /// `timeout` passed first.
    fn wait_applied(&self, offset: i64, timeout: Duration) -> BoxFuture<'_, bool>;

    /// Reads the topic to its end: appends a NOOP marker and waits until the state has applied
    /// it, so everything appended before it (by any earlier writer) is in the state. A new
    /// writer does this before it allocates ids. Returns the offset applied up to.
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
        }
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
            self.store.append(outcome.records).await?;
        }
        Ok(outcome.reply)
    }
}
