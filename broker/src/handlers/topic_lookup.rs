//! Finding what a request names, with the error Kafka returns when it is missing, led
//! elsewhere, or the client's leader epoch does not match. Topics come from the metadata
//! image; the replicas that serve them from the replica manager, which also answers the
//! append path ([`crate::replica::ReplicaManager::leader`]).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::Broker;
use crate::metadata::{BrokerInfo, ClusterImage, TopicImage};
use crate::partition::Partition;

/// The topic with id `id`, UNKNOWN_TOPIC_ID when the cluster has none: how every request that
/// names topics by id (KIP-516) finds them, before anything is checked by name.
pub(crate) fn by_id<'a>(
    image: &'a ClusterImage,
    id: &Uuid,
) -> Result<&'a Arc<TopicImage>, ResponseError> {
    image.topic_by_id(id).ok_or(ResponseError::UnknownTopicId)
}

/// The name of a request's topic: `name` as sent, or when the request's version names topics
/// by id (`by_id`: Produce v13+, OffsetCommit and OffsetFetch v10+) the name of topic `id`.
/// ACLs, quotas and the coordinators then go by that name, whichever way the client named it.
pub(crate) fn request_topic_name(
    image: &ClusterImage,
    by_id: bool,
    name: &TopicName,
    id: &Uuid,
) -> Result<TopicName, ResponseError> {
    if !by_id {
        return Ok(name.clone());
    }
    let found = self::by_id(image, id)?;
    Ok(TopicName(StrBytes::from_string(found.name.clone())))
}

/// Whether the cluster has partition `index` of `topic` (UNKNOWN_TOPIC_OR_PARTITION if not),
/// wherever it is led.
pub(crate) fn exists(broker: &Broker, topic: &str, index: i32) -> Result<(), ResponseError> {
    match broker.metadata.image().partition(topic, index) {
        Some(_) => Ok(()),
        None => Err(ResponseError::UnknownTopicOrPartition),
    }
}

/// The replica of partition `index` of `topic` this broker leads: UNKNOWN_TOPIC_OR_PARTITION
/// when the cluster has no such partition (or it was deleted under the request),
/// NOT_LEADER_OR_FOLLOWER when another broker leads it.
pub(crate) fn leader(
    broker: &Broker,
    topic: &str,
    index: i32,
) -> Result<Arc<Partition>, ResponseError> {
    broker
        .replicas
        .leader(&broker.metadata.image(), topic, index)
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

/// What a client told NOT_LEADER_OR_FOLLOWER learns of the partition's leader (KIP-951), so it
/// can retry there without a Metadata round trip.
pub(crate) struct LeaderHint {
    /// The leader's broker id.
    pub leader: i32,
    /// Its leader epoch.
    pub epoch: i32,
    /// How to reach it.
    pub endpoint: BrokerInfo,
}

/// The [`LeaderHint`] for partition `index` of `topic`: None when the image has no leader for
/// it, or names this broker (which just refused to act as one, e.g. while fenced).
pub(crate) fn leader_hint(broker: &Broker, topic: &str, index: i32) -> Option<LeaderHint> {
    let image = broker.metadata.image();
    let state = image.partition(topic, index)?;
    if state.leader < 0 || state.leader == broker.config.broker_id {
        return None;
    }
    Some(LeaderHint {
        leader: state.leader,
        epoch: state.leader_epoch,
        endpoint: image.broker(state.leader)?.clone(),
    })
}
