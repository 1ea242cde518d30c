//! The one place internal errors become Kafka error codes.

use kafka_protocol::error::ResponseError;

use crate::partition::AppendError;
use crate::producer::SequenceError;
use crate::storage::{BatchError, StorageError};
use crate::topics::RegistryError;

/// Kafka error code for a topic-registry failure.
pub(crate) fn registry_code(error: &RegistryError) -> ResponseError {
    match error {
        RegistryError::InvalidName(_) => ResponseError::InvalidTopicException,
        RegistryError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        RegistryError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        RegistryError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        RegistryError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        RegistryError::InvalidConfig(_) => ResponseError::InvalidConfig,
        RegistryError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        RegistryError::PolicyViolation(_) => ResponseError::PolicyViolation,
        RegistryError::Storage(e) => storage_code(e),
        RegistryError::Store(_) => ResponseError::KafkaStorageError,
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
        AppendError::Transaction(code) => *code,
        AppendError::Sequence(SequenceError::StaleEpoch { .. }) => {
            ResponseError::InvalidProducerEpoch
        }
        AppendError::Sequence(SequenceError::OutOfOrder { .. }) => {
            ResponseError::OutOfOrderSequenceNumber
        }
    }
}
