//! Where internal errors become Kafka error codes for the handlers' answers: metadata
//! changes here, storage and append failures on the replication floor (whose append path
//! answers with them too), re-exported.

use kafka_protocol::error::ResponseError;

use crate::metadata::MetadataError;
pub(crate) use tributary_replication::error_codes::{append_code, storage_code};

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
