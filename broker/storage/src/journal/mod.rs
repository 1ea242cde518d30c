//! The commit journal: a write-ahead log that makes acks=all writes durable with one small
//! sequential write and one `fdatasync` of a single preallocated file per group-commit round,
//! instead of fsyncs of every segment file the round touched (each allocating blocks, growing
//! files and committing filesystem metadata).
//!
//! A round appends one record holding the batches it covers, byte for byte as they were
//! written to their segments. Segments are fsynced in the background by checkpoints, after
//! which the records they cover are released and their space reused. At start-up each
//! partition first recovers its segments as usual (cutting torn tails), then re-appends the
//! journaled batches from its log end on: a batch below the log end is already there, one at
//! the log end was lost with the torn tail.
//!
//! A partition's batches are journaled only while everything before them is durable or
//! journaled too, so replay never has to fill a gap. Logs are never truncated at run time on a
//! standalone broker; replication, which will truncate, must write the truncation to the
//! journal (or checkpoint the partition first) before reusing the offsets.

mod prepare;
mod record;
mod replay;
mod ring;
mod space;
mod writer;

pub use prepare::{remove_leftover, JournalError};
pub use record::{Entry, BLOCK};
pub use replay::Replay;
pub use space::{
    size_for, FileSystemSpace, FreeSpace, Sizing, FREE_SPACE_SHARE, MIN_JOURNAL_BYTES,
};
pub use writer::Journal;

/// The journal's file name in the data directory.
pub const JOURNAL_FILE: &str = "commit.journal";

/// One partition's journaled appends, in order: (base offset, batches as stored).
pub type JournaledBatches = Vec<(i64, Vec<u8>)>;
