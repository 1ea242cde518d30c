//! Finding the partition a request names, with the error Kafka returns when it is missing or
//! the client's leader epoch does not match.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::partition::Partition;
use crate::topics::Topic;

/// The partition `index` of `topic`, or UNKNOWN_TOPIC_OR_PARTITION (also once the topic is
/// deleted under a request that found it).
pub(crate) fn partition(
    topic: Option<&Arc<Topic>>,
    index: i32,
) -> Result<Arc<Partition>, ResponseError> {
    topic
        .and_then(|t| t.partition(index))
        .filter(|p| !p.is_deleted())
        .cloned()
        .ok_or(ResponseError::UnknownTopicOrPartition)
}

/// Checks a client's `current_leader_epoch` (-1 means "not known"), as KIP-320 describes.
pub(crate) fn check_leader_epoch(
    partition: &Partition,
    client_epoch: i32,
) -> Result<(), ResponseError> {
    let epoch = partition.leader_epoch();
    if client_epoch < 0 || client_epoch == epoch {
        Ok(())
    } else if client_epoch < epoch {
        Err(ResponseError::FencedLeaderEpoch)
    } else {
        Err(ResponseError::UnknownLeaderEpoch)
    }
}

/// Looks a topic up by name.
pub(crate) fn by_name(broker: &Broker, name: &str) -> Option<Arc<Topic>> {
    broker.topics.get(name)
}
