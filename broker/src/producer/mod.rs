//! Idempotent and transactional producers: producer id allocation, per-partition sequence
//! tracking, and per-partition transaction bookkeeping.

mod ids;
mod state;
mod txn_index;

pub use ids::{BlockSource, FileBlocks, IdAllocator, IdAllocatorError};
pub use state::{BatchIdentity, ProducerStateTable, ProducerSummary, SequenceCheck, SequenceError};
pub use txn_index::{TxnIndex, VerificationGuard};
