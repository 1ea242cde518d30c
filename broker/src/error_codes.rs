//! The one place internal errors become Kafka error codes: the handlers' answers, the
//! append path's refusals and the transaction markers' outcomes all map here.

use kafka_protocol::error::ResponseError;

use crate::metadata::MetadataError;
use crate::partition::AppendError;
use crate::producer::SequenceError;
use crate::storage::{BatchError, StorageError};

/// Kafka error code for a refused or failed metadata change.
pub(crate) fn metadata_code(error: &MetadataError) -> ResponseError {
    match error {
        MetadataError::InvalidName(_) => ResponseError::InvalidTopicException,
        MetadataError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        MetadataError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        MetadataError::InvalidConfig(_) => ResponseError::InvalidConfig,
        MetadataError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        MetadataError::PolicyViolation(_) => ResponseError::PolicyViolation,
        MetadataError::Storage(e) => storage_code(e),
        MetadataError::Store(_) => ResponseError::KafkaStorageError,
        MetadataError::TimedOut(_) => ResponseError::RequestTimedOut,
        MetadataError::Unavailable(_) => ResponseError::BrokerNotAvailable,
    }
}

/// Kafka error code for a storage failure.
pub(crate) fn storage_code(error: &StorageError) -> ResponseError {
    match error {
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::InvalidBatch { source, .. } => match source {
            BatchError::BatchTooLarge { .. } | BatchError::UncompressedTooLarge { .. } => {
                ResponseError::MessageTooLarge
            }
            BatchError::InvalidMagic { .. } => ResponseError::UnsupportedForMessageFormat,
            BatchError::InvalidRecord { .. } => ResponseError::InvalidRecord,
            BatchError::Truncated { .. }
            | BatchError::CorruptBatch { .. }
            | BatchError::CrcMismatch { .. }
            | BatchError::UnknownCompression { .. }
            | BatchError::Decompression { .. } => ResponseError::CorruptMessage,
        },
        StorageError::EmptyAppend => ResponseError::CorruptMessage,
        _ => ResponseError::KafkaStorageError,
    }
}

/// Kafka error code for a refused append.
pub(crate) fn append_code(error: &AppendError) -> ResponseError {
    match error {
        AppendError::Storage(e) => storage_code(e),
        AppendError::InvalidRecord(_) | AppendError::KeylessRecords { .. } => {
            ResponseError::InvalidRecord
        }
        AppendError::Codec(e) if e.is_over_limit() => ResponseError::MessageTooLarge,
        AppendError::Codec(_) => ResponseError::CorruptMessage,
        AppendError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        AppendError::NotLeader { .. } | AppendError::Fenced | AppendError::AwaitingRemoteLog => {
            ResponseError::NotLeaderOrFollower
        }
        AppendError::Transaction(code) => *code,
        AppendError::Sequence(
            SequenceError::StaleEpoch { .. } | SequenceError::MarkerNotBumped { .. },
        ) => ResponseError::InvalidProducerEpoch,
        AppendError::Sequence(SequenceError::OutOfOrder { .. }) => {
            ResponseError::OutOfOrderSequenceNumber
        }
    }
}
