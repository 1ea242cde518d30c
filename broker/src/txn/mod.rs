//! Transactions (KIP-98): the coordinator that binds transactional ids to producers and ends
//! their transactions with markers, its durable state, and the per-transaction rules.

pub(crate) mod coordinator;
mod metadata;
mod store;

pub use coordinator::{ProducerRef, TransactionCoordinator};
pub use metadata::{PendingOffset, TxnMetadata, TxnState};
pub use store::{StoreError, TxnMap, TxnStore};
