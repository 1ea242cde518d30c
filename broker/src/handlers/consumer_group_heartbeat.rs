//! ConsumerGroupHeartbeat (KIP-848): the request into the core's terms, the coordinator
//! decides, the answer back. v0 lets the coordinator choose the member id (a UUID string);
//! from v1 (KIP-1082) the client chooses it and an empty one is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::group::consumer::{Assignment, HeartbeatRequest, TopicMetadata, TopicsImage};
use crate::group::coordinator::Refused;
use crate::metadata::is_internal_topic;

/// Answers a ConsumerGroupHeartbeat once what it changed is committed.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if let Err(error) = may_heartbeat(
        &ctx,
        &request.group_id,
        request.subscribed_topic_names.as_deref(),
    ) {
        return request.refuse(error);
    }
    if request.group_id.is_empty() {
        return failed(Refused {
            code: ResponseError::InvalidRequest,
            message: Some("GroupId can't be empty.".into()),
        });
    }
    let group_id = request.group_id.to_string();
    let heartbeat = core_request(&ctx, request);
    let topics = topics_image(&ctx.broker)
        .hide_from_regex(|name| ctx.may(Operation::Describe, ResourceType::Topic, name));
    match ctx
        .broker
        .groups
        .consumer_heartbeat(&group_id, heartbeat, &topics)
        .await
    {
        Ok(response) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(response.member_id)))
            .with_member_epoch(response.member_epoch)
            .with_heartbeat_interval_ms(response.heartbeat_interval_ms)
            .with_assignment(response.assignment.map(|a| wire_assignment(&a))),
        Err(refused) => {
            tracing::debug!(group = %group_id, error = ?refused.code, message = ?refused.message, "consumer group heartbeat refused");
            failed(refused)
        }
    }
}

/// Kafka's checks of a member's heartbeat: READ on the group, DESCRIBE on every topic it
/// subscribes to.
pub(super) fn may_heartbeat(
    ctx: &RequestContext,
    group_id: &str,
    subscribed: Option<&[kafka_protocol::messages::TopicName]>,
) -> Result<(), ResponseError> {
    if !ctx.may(Operation::Read, ResourceType::Group, group_id) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let hidden = |t: &kafka_protocol::messages::TopicName| {
        !ctx.may(Operation::Describe, ResourceType::Topic, t)
    };
    if subscribed.is_some_and(|names| names.iter().any(hidden)) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    Ok(())
}

/// The request as the core sees it; a v0 join without a member id gets one.
fn core_request(ctx: &RequestContext, request: ConsumerGroupHeartbeatRequest) -> HeartbeatRequest {
    let mut member_id = request.member_id.to_string();
    if member_id.is_empty() && ctx.version() == 0 && request.member_epoch == 0 {
        member_id = uuid::Uuid::new_v4().to_string();
    }
    HeartbeatRequest {
        member_id,
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|i| i.to_string()),
        rack_id: request.rack_id.map(|r| r.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|r| r.to_string()),
        server_assignor: request.server_assignor.map(|a| a.to_string()),
        owned: request.topic_partitions.map(|topics| {
            Assignment::from_topics(topics.into_iter().map(|t| (t.topic_id, t.partitions)))
        }),
        client_id: super::Client::id(&ctx.header).to_string(),
        client_host: ctx.client.host.to_string(),
    }
}

/// The cluster's topics a consumer group may subscribe to (internal topics are not).
pub(super) fn topics_image(broker: &Broker) -> TopicsImage {
    let image = broker.metadata.image();
    TopicsImage::new(
        image
            .topics()
            .filter(|t| !is_internal_topic(&t.name))
            .map(|t| TopicMetadata {
                id: t.id,
                name: t.name.clone(),
                partitions: t.partition_count(),
            }),
    )
}

fn wire_assignment(assignment: &Assignment) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        assignment
            .topics()
            .map(|(id, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_partitions(partitions.iter().copied().collect())
            })
            .collect(),
    )
}

fn failed(refused: Refused) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(refused.code.code())
        .with_error_message(refused.message.map(StrBytes::from_string))
}

impl Refuse for ConsumerGroupHeartbeatRequest {
    type Response = ConsumerGroupHeartbeatResponse;
    fn refuse(self, error: ResponseError) -> ConsumerGroupHeartbeatResponse {
        failed(error.into())
    }
}
