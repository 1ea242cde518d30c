//! ShareAcknowledge (KIP-932, v1-2): a member's acknowledgements without a fetch, at the
//! session epoch the broker expects (it may close the session with -1, never open one);
//! each partition is answered once its acknowledgements are durable. v2 may carry RENEW
//! (KIP-1222: the records' locks start again) and answers the lock duration.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_acknowledge_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::share_requests::{
    ack_ranges, acknowledge_all, current_leader, endpoints, member, node_endpoint, release_member,
    settings,
};
use super::RequestContext;

/// Answers a ShareAcknowledge.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let key = match member(&ctx, request.group_id.as_ref(), request.member_id.as_ref()) {
        Ok(key) => key,
        Err(error) => return request.refuse(error),
    };
    let granted = ctx
        .broker
        .share_sessions
        .lock()
        .acknowledge(&key, request.share_session_epoch);
    let granted = match granted {
        Ok(granted) => granted,
        Err(error) => return request.refuse(error.code()),
    };
    let acks = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let batches = p.acknowledgement_batches.iter().map(|b| {
                    (
                        b.first_offset,
                        b.last_offset,
                        b.acknowledge_types.as_slice(),
                    )
                });
                let ranges = ack_ranges(batches, request.is_renew_ack);
                ((t.topic_id, p.partition_index), ranges)
            })
        })
        .collect();
    let codes = acknowledge_all(&ctx, &key, acks).await;
    if granted.closed {
        release_member(&ctx.broker, &key).await;
    }
    let mut topics: BTreeMap<uuid::Uuid, Vec<PartitionData>> = BTreeMap::new();
    let mut leaders = BTreeSet::new();
    for ((topic, partition), code) in codes {
        let (leader, epoch) = if code == ResponseError::NotLeaderOrFollower.code() {
            current_leader(&ctx.broker, topic, partition)
        } else {
            (-1, -1)
        };
        leaders.insert(leader);
        topics.entry(topic).or_default().push(
            PartitionData::default()
                .with_partition_index(partition)
                .with_error_code(code)
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(leader)
                        .with_leader_epoch(epoch),
                ),
        );
    }
    let node_endpoints = endpoints(&ctx, leaders)
        .into_iter()
        .map(node_endpoint!(NodeEndpoint))
        .collect();
    let lock_ms = settings(&ctx.broker, &key.group).limits.lock_duration_ms;
    ShareAcknowledgeResponse::default()
        .with_acquisition_lock_timeout_ms(i32::try_from(lock_ms).unwrap_or(i32::MAX))
        .with_responses(
            topics
                .into_iter()
                .map(|(topic_id, partitions)| {
                    ShareAcknowledgeTopicResponse::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_node_endpoints(node_endpoints)
}

impl Refuse for ShareAcknowledgeRequest {
    type Response = ShareAcknowledgeResponse;
    fn refuse(self, error: ResponseError) -> ShareAcknowledgeResponse {
        ShareAcknowledgeResponse::default().with_error_code(error.code())
    }
}
