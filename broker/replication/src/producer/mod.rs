//! Idempotent and transactional producers: producer id allocation, per-partition sequence
//! tracking, and per-partition transaction bookkeeping.

mod ids;
mod snapshot;
mod state;
mod txn_index;

pub use ids::{BlockSource, FileBlocks, IdAllocator, IdAllocatorError};
pub use snapshot::{
    apply, AppliedBatch, OngoingTxn, ProducerSnapshot, SnapshotBatch, SnapshotProducer,
    SNAPSHOT_VERSION,
};
pub use state::{BatchIdentity, ProducerStateTable, ProducerSummary, SequenceCheck, SequenceError};
pub use txn_index::{TxnIndex, VerificationGuard};

pub use tributary_storage::{Marker, ProducerRef};
