//! Idempotent producers: producer id allocation and per-partition sequence tracking.

mod ids;
mod state;

pub use ids::{IdAllocator, IdAllocatorError};
pub use state::{BatchIdentity, ProducerStateTable, SequenceCheck, SequenceError};
