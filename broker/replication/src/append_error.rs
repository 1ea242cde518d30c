//! Why an append was refused: the one error of the append path, shared by the client batch
//! checks (before the partition lock) and the partition's own (under it).

use tributary_storage::codec::CodecError;
use tributary_storage::StorageError;

use crate::producer::SequenceError;
use crate::role::Role;

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The batch is invalid or the disk write failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Idempotent-producer sequence or epoch check failed.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// A batch breaks a rule Kafka enforces on client writes.
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// Recompressing for the topic's compression.type failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A transactional batch outside its producer's open transaction (the coordinator's
    /// error).
    #[error("transactional batch refused: {0:?}")]
    Transaction(kafka_protocol::error::ResponseError),
    /// A compacted topic got records without a key (their indexes within the batch): Kafka
    /// refuses the whole batch and names those records (KIP-467).
    #[error("compacted topic cannot accept a record without key (records {records:?})")]
    KeylessRecords { records: Vec<i32> },
    /// The broker could not renew its registration in time and does not act as a leader
    /// until it does: the client retries (here or at a new leader).
    #[error("this broker's registration has lapsed; it does not act as a leader until renewed")]
    Fenced,
    /// The log of this tiered partition has not been checked against its remote log
    /// metadata yet: leading from it could hand out offsets the bucket holds. The client
    /// retries.
    #[error("the partition's log awaits its remote log metadata; it does not lead until then")]
    AwaitingRemoteLog,
    /// This replica does not lead the partition (anymore): the client should refresh its
    /// metadata and write to the leader.
    #[error("this broker is not the leader of the partition ({role:?})")]
    NotLeader { role: Role },
    /// Records whose timestamps the topic refuses (outside `message.timestamp.before.max.ms`
    /// / `after.max.ms`, or LogAppendTime set by the producer), with each record's index and
    /// reason (KIP-467).
    #[error("{} record(s) with an invalid timestamp, e.g. {}", records.len(), records.first().map_or("", |r| r.1.as_str()))]
    InvalidTimestamp { records: Vec<(i32, String)> },
}
