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

/// A producer's identity in a transactional request (and in the marker ending its
/// transaction).
#[derive(Debug, Clone, Copy)]
pub struct ProducerRef {
    /// Producer id.
    pub id: i64,
    /// Producer epoch.
    pub epoch: i16,
}
