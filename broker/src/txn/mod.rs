//! Transactions (KIP-98): the coordinator that binds transactional ids to producers and ends
//! their transactions with markers, its durable state, and the per-transaction rules.

pub(crate) mod coordinator;
mod host;
mod metadata;
pub mod records;
mod store;

pub use coordinator::{ProducerRef, TransactionCoordinator};
pub use host::{MarkerWrite, TxnHost, MARKER_TIMEOUT};
pub use metadata::{PendingOffset, TxnMetadata, TxnState};
pub use records::TRANSACTION_TOPIC;
pub use store::{StoreError, TxnMap, TxnStore};
