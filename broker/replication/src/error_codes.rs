//! The Kafka error codes of the storage and append failures, for every writer that answers a
//! client: the append path's refusals here, and the broker's handlers above.

use kafka_protocol::error::ResponseError;
use tributary_storage::{BatchError, StorageError};

use crate::append_error::AppendError;
use crate::producer::SequenceError;

/// Kafka error code for a storage failure.
pub fn storage_code(error: &StorageError) -> ResponseError {
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
pub fn append_code(error: &AppendError) -> ResponseError {
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
