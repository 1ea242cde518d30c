//! ShareGroupHeartbeat (KIP-932, v1): a share consumer joins, heartbeats and leaves its share
//! group at the group's coordinator, which answers its epoch and, on a join or a change, the
//! partitions it reads (shared with the group's other members).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use super::consumer_group_heartbeat::may_heartbeat;
use super::refuse::Refuse;
use super::RequestContext;
use crate::broker::Broker;
use crate::group::coordinator::Refused;
use crate::metadata::is_internal_topic;
use crate::share::group::{Heartbeat, MemberClient, TopicsView, LEAVE_EPOCH};
use crate::share::session::SessionKey;

/// Answers a ShareGroupHeartbeat; READ on the group and DESCRIBE on every subscribed topic
/// are needed, as Kafka checks them.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    if let Err(error) = may_heartbeat(
        &ctx,
        &request.group_id,
        request.subscribed_topic_names.as_deref(),
    ) {
        return request.refuse(error);
    }
    let group_id = request.group_id.to_string();
    let member_id = request.member_id.to_string();
    let heartbeat = Heartbeat {
        member_id: member_id.clone(),
        member_epoch: request.member_epoch,
        topics: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.to_string()).collect()),
        client: MemberClient {
            client_id: super::Client::id(&ctx.header).to_string(),
            client_host: ctx.client.host.to_string(),
            rack_id: request.rack_id.map(|r| r.to_string()),
        },
    };
    let topics = topics_view(&ctx.broker);
    let groups = &ctx.broker.groups;
    let config = ctx
        .broker
        .group_configs
        .share_membership(&group_id, groups.config().share);
    let answered = groups
        .share_heartbeat(&group_id, &heartbeat, &topics, &config)
        .await;
    if answered
        .as_ref()
        .is_ok_and(|a| a.member_epoch == LEAVE_EPOCH)
    {
        leave(&ctx.broker, &group_id, &member_id).await;
    }
    match answered {
        Ok(answer) => ShareGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(member_id)))
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
            .with_assignment(answer.assignment.map(|assigned| {
                let mut by_topic: std::collections::BTreeMap<uuid::Uuid, Vec<i32>> =
                    std::collections::BTreeMap::new();
                for (topic, partition) in assigned {
                    by_topic.entry(topic).or_default().push(partition);
                }
                WireAssignment::default().with_topic_partitions(
                    by_topic
                        .into_iter()
                        .map(|(id, partitions)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
            })),
        Err(refused) => {
            tracing::debug!(group = %group_id, error = ?refused.code, message = ?refused.message, "share group heartbeat refused");
            failed(refused)
        }
    }
}

/// A member that left its group: its share session here stays until the member closes it
/// (ShareAcknowledge or ShareFetch at epoch -1, which clients send as they leave) or its
/// connection ends, and that gives its records back. Closing it here would refuse the
/// acknowledgements the member sent just before leaving that arrive just after (librdkafka
/// sends both at once, on different connections), and their records would be delivered
/// again. Without a session here, what it may still hold here goes back now.
async fn leave(broker: &Broker, group: &str, member: &str) {
    let key = SessionKey {
        group: group.to_owned(),
        member: member.to_owned(),
    };
    if broker.share_sessions.lock().epoch(&key).is_none() {
        super::share_requests::release_member(broker, &key).await;
    }
}

/// The topics a share group may read: every partition of each non-internal topic (a
/// share-partition's state is initialized on its first fetch).
fn topics_view(broker: &Broker) -> TopicsView {
    broker
        .metadata
        .image()
        .topics()
        .filter(|t| !is_internal_topic(&t.name))
        .map(|t| (t.name.clone(), (t.id, (0..t.partition_count()).collect())))
        .collect()
}

fn failed(refused: Refused) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse::default()
        .with_error_code(refused.code.code())
        .with_error_message(refused.message.map(StrBytes::from_string))
}

impl Refuse for ShareGroupHeartbeatRequest {
    type Response = ShareGroupHeartbeatResponse;
    fn refuse(self, error: ResponseError) -> ShareGroupHeartbeatResponse {
        failed(error.into())
    }
}
