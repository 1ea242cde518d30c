//! Transactions (KIP-98): the coordinator that binds transactional ids to producers and ends
//! their transactions with markers, its durable state in `__transaction_state`, and the
//! per-transaction rules.
//!
//! - [`metadata`]: one id's state and the pure checks every request makes against it.
//! - [`records`]: Kafka's `__transaction_state` record schemas.
//! - [`coordinator`]: the operations, the shard of the coordinator runtime (what loading and
//!   unloading a partition means) and the one-time migration of the state file brokers kept
//!   before the topic ([`store`]).
//! - [`host`]: what the coordinator needs of the rest of the broker.

mod config;
pub(crate) mod coordinator;
mod host;
mod metadata;
pub mod records;
mod store;

pub use config::TxnConfig;
pub use coordinator::{Legacy, TransactionCoordinator};
pub use host::{LocalWait, MarkerWrite, TxnHost, MARKER_TIMEOUT};
pub use metadata::{EndV2, PendingOffset, TxnMetadata, TxnState};
pub use records::TRANSACTION_TOPIC;
pub use store::{StoreError, TxnMap, TxnStore};
pub use tributary_storage::{Marker, ProducerRef};
