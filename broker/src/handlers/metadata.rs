//! Metadata: brokers, and topics with their partitions, leaders and replicas. Unknown topics are
//! auto-created when the broker and the request allow it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::error_codes::metadata_code;
use crate::metadata::{MetadataError, TopicImage, TopicSpec};

/// Answers a Metadata request. With an authorizer, a listing of every topic shows only those
/// the client may DESCRIBE; a named topic it may not describe, or may not create when it
/// would be auto-created, gets TOPIC_AUTHORIZATION_FAILED, as Kafka answers.
pub(crate) async fn handle(ctx: RequestContext, request: MetadataRequest) -> MetadataResponse {
    let broker = &ctx.broker;
    let config = &broker.config;
    let version = ctx.version();
    // v1+: null means all topics; v0: an empty list means all topics.
    let wanted = match request.topics {
        Some(list) if !(version == 0 && list.is_empty()) => Some(list),
        _ => None,
    };
    let auto_create =
        config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let ops = |name: &str| {
        if request.include_topic_authorized_operations {
            ctx.operations(ResourceType::Topic, name)
        } else {
            i32::MIN
        }
    };
    let image = broker.metadata.image();
    let listener: &str = &ctx.client.listener;
    // Brokers registered without this listener (an external listener whose address is not
    // known yet): left out, and so are the leaderships they hold, as Kafka answers.
    let unreachable = |id: i32| {
        image
            .broker(id)
            .is_some_and(|b| b.endpoint(listener).is_none())
    };
    let describe =
        |topic: &TopicImage, operations: i32| describe(topic, operations, version, &unreachable);
    let topics = match wanted {
        None => image
            .topics()
            .filter(|t| ctx.sees(Operation::Describe, ResourceType::Topic, &t.name))
            .map(|t| describe(t, ops(&t.name)))
            .collect(),
        Some(list) => {
            let mut topics = Vec::with_capacity(list.len());
            for wanted in list {
                topics.push(match wanted.name {
                    // A topic id wins over the name, as in Kafka: the Java client sends an
                    // empty name beside the id it asks about.
                    Some(name) if wanted.topic_id.is_nil() => {
                        match find_or_create(&ctx, &name, auto_create).await {
                            Ok(topic) => describe(&topic, ops(&topic.name)),
                            Err(error) => missing(Some(name), wanted.topic_id, error),
                        }
                    }
                    _ => match image.topic_by_id(&wanted.topic_id) {
                        Some(topic)
                            if ctx.may(Operation::Describe, ResourceType::Topic, &topic.name) =>
                        {
                            describe(topic, ops(&topic.name))
                        }
                        Some(_) => missing(
                            None,
                            wanted.topic_id,
                            ResponseError::TopicAuthorizationFailed,
                        ),
                        None => missing(None, wanted.topic_id, ResponseError::UnknownTopicId),
                    },
                });
            }
            topics
        }
    };
    // The addresses of the listener this request came in on, as Kafka answers.
    let brokers = image
        .reachable_brokers(listener)
        .map(|(b, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id((version >= 2).then(|| StrBytes::from_string(image.cluster_id.clone())))
        .with_controller_id(BrokerId(image.controller_for(config.broker_id)))
        .with_topics(topics)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            ctx.operations(ResourceType::Cluster, crate::acl::CLUSTER_NAME)
        } else {
            i32::MIN
        })
}

async fn find_or_create(
    ctx: &RequestContext,
    name: &TopicName,
    auto_create: bool,
) -> Result<Arc<TopicImage>, ResponseError> {
    if !ctx.may(Operation::Describe, ResourceType::Topic, name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    if let Some(topic) = ctx.broker.metadata.image().topic(name) {
        return Ok(topic.clone());
    }
    if let Err(reason) = crate::topics::names::validate_topic_name(name) {
        tracing::debug!(%reason, "metadata for an invalid topic name");
        return Err(ResponseError::InvalidTopicException);
    }
    let internal = match name.as_str() {
        crate::group::OFFSETS_TOPIC => Some(ctx.broker.groups.find("")),
        crate::txn::TRANSACTION_TOPIC => Some(ctx.broker.txns.find("")),
        _ => None,
    };
    if let Some(created) = internal {
        // Created by its coordinator, with its partition count and compaction, as Kafka
        // creates internal topics whatever the broker's auto-create setting.
        created.map(drop)?;
        return ctx
            .broker
            .metadata
            .image()
            .topic(name)
            .cloned()
            .ok_or(ResponseError::LeaderNotAvailable);
    }
    if !auto_create {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    if !ctx.may_create_topic(name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    let spec = TopicSpec {
        name: name.to_string(),
        partitions: -1,
        replication_factor: -1,
        ..TopicSpec::default()
    };
    // Auto-creation answers within the client's patience for metadata.
    let timeout = std::time::Duration::from_secs(30);
    match ctx.broker.admin.create_topic(spec, timeout).await {
        Ok(topic) => Ok(topic),
        // Another request created it first.
        Err(MetadataError::TopicExists(_)) => ctx
            .broker
            .metadata
            .image()
            .topic(name)
            .cloned()
            .ok_or(ResponseError::UnknownTopicOrPartition),
        Err(error) => {
            tracing::warn!(topic = %name.as_str(), %error, "auto-creating topic failed");
            Err(metadata_code(&error))
        }
    }
}

/// A topic's metadata; a leader the client's listener cannot reach is reported as Kafka does:
/// no leader, LISTENER_NOT_FOUND (v6+) or LEADER_NOT_AVAILABLE.
fn describe(
    topic: &TopicImage,
    operations: i32,
    version: i16,
    unreachable: &dyn Fn(i32) -> bool,
) -> MetadataResponseTopic {
    let partitions: Vec<MetadataResponsePartition> = (0..)
        .zip(&topic.partitions)
        .map(|(index, p)| {
            let (leader, error) = if !p.has_leader() {
                (p.leader, ResponseError::LeaderNotAvailable.code())
            } else if unreachable(p.leader) {
                let error = if version >= 6 {
                    ResponseError::ListenerNotFound
                } else {
                    ResponseError::LeaderNotAvailable
                };
                (crate::metadata::NO_LEADER, error.code())
            } else {
                (p.leader, 0)
            };
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().map(|m| BrokerId(m.broker)).collect())
                .with_error_code(error)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(if version >= 10 {
            topic.id
        } else {
            uuid::Uuid::nil()
        })
        .with_is_internal(version >= 1 && topic.is_internal())
        // A topic whose partitions are not all placed yet shows none: still being created, as
        // Kafka answers such a topic, so clients wait for its partition count.
        .with_error_code(if partitions.is_empty() {
            ResponseError::LeaderNotAvailable.code()
        } else {
            0
        })
        .with_partitions(partitions)
        .with_topic_authorized_operations(operations)
}

fn missing(
    name: Option<TopicName>,
    topic_id: uuid::Uuid,
    error: ResponseError,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name)
        .with_topic_id(topic_id)
        .with_topic_authorized_operations(i32::MIN)
}
