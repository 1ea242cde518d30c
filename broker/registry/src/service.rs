//! The registry service: reads answer from the replayed state; writes are planned against it
//! (one at a time, so ids and versions are allocated from a state that includes every earlier
//! write), appended to the store, and answered once the store has applied them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::elector::Elector;
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
}

/// A store that applies records straight to the state: for tests, and the reference for
/// what the Kafka store does after its round trip.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<RwLock<Registry>>,
}

impl MemoryStore {
    /// A store applying to `state`.
    pub fn new(state: Arc<RwLock<Registry>>) -> Self {
        MemoryStore { state }
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
            }
            Ok(())
        })
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

    /// Answers a read from the current state.
    pub fn read<T>(&self, f: impl FnOnce(&Registry) -> T) -> T {
        f(&self.state.read())
    }

    /// Plans a write against the current state and appends its records, one write at a time.
    pub async fn write<T>(
        &self,
        plan: impl FnOnce(&Registry) -> Result<Outcome<T>, ApiError>,
    ) -> Result<T, ApiError> {
        if !self.elector.is_writer() {
            return Err(ApiError::not_writer());
        }
        let _one_writer = self.writes.lock().await;
        let outcome = plan(&self.state.read())?;
        if !outcome.records.is_empty() {
            self.store.append(outcome.records).await?;
        }
        Ok(outcome.reply)
    }
}
