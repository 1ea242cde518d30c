//! OffsetForLeaderEpoch: the end offset of a leader epoch, which consumers use to detect log
//! truncation (KIP-320) and followers to truncate before fetching (KIP-101, KIP-279).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{topic_lookup, RequestContext};
use crate::acl::Operation;

/// Answers the end offset of each requested epoch.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let allowed = if request.replica_id.0 >= 0 {
                if ctx.may_on_cluster(Operation::ClusterAction) {
                    Ok(())
                } else {
                    Err(kafka_protocol::error::ResponseError::TopicAuthorizationFailed)
                }
            } else {
                ctx.check_topic(Operation::Describe, &topic.topic)
            };
            let partitions = topic
                .partitions
                .into_iter()
                .map(|wanted| {
                    let response = EpochEndOffset::default()
                        .with_partition(wanted.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let outcome = allowed
                        .and_then(|()| {
                            topic_lookup::leader(&ctx.broker, &topic.topic, wanted.partition)
                        })
                        .and_then(|p| {
                            topic_lookup::check_leader_epoch(&p, wanted.current_leader_epoch)?;
                            Ok(p.with_log(|log| log.end_offset_for_epoch(wanted.leader_epoch)))
                        });
                    match outcome {
                        Ok((epoch, end_offset)) => response
                            .with_leader_epoch(epoch)
                            .with_end_offset(end_offset),
                        Err(code) => response.with_error_code(code.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
