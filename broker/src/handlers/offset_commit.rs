//! OffsetCommit: offsets of existing partitions are committed by the group coordinator and
//! answered once durable; unknown partitions get UNKNOWN_TOPIC_OR_PARTITION, as in Kafka. From
//! v10 topics are named by id (KIP-848), an id the cluster does not know answers
//! UNKNOWN_TOPIC_ID, and the coordinator keeps offsets by name whichever version committed them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::refuse::Refuse;
use super::{topic_lookup, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::group::commit::Committer;
use crate::group::coordinator::{CommitOffset, CommitRequest};

/// Answers an OffsetCommit request.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let version = ctx.version();
    if !ctx.may(Operation::Read, ResourceType::Group, &request.group_id) {
        return request.refuse(ResponseError::GroupAuthorizationFailed);
    }
    let image = ctx.broker.metadata.image();
    // Where each requested partition's answer comes from: an error now, or a commit slot.
    let mut plan: Vec<Vec<Result<usize, ResponseError>>> = Vec::new();
    let mut offsets = Vec::new();
    for topic in &request.topics {
        let name =
            topic_lookup::request_topic_name(&image, version >= 10, &topic.name, &topic.topic_id)
                .and_then(|name| ctx.check_topic(Operation::Read, &name).map(|()| name));
        let row = topic
            .partitions
            .iter()
            .map(|p| {
                let name = name.as_ref().map_err(|e| *e)?;
                topic_lookup::exists(&ctx.broker, name, p.partition_index)?;
                offsets.push(CommitOffset {
                    topic: name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
                Ok(offsets.len() - 1)
            })
            .collect();
        plan.push(row);
    }
    let commit = CommitRequest {
        api_version: version,
        group_id: request.group_id.to_string(),
        committer: Committer {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
            generation: request.generation_id_or_member_epoch,
        },
        retention_ms: (version <= 4 && request.retention_time_ms >= 0)
            .then_some(request.retention_time_ms),
        offsets,
    };
    let results = if commit.offsets.is_empty() {
        Vec::new()
    } else {
        ctx.broker.groups.commit(commit).await
    };
    let topics = request
        .topics
        .into_iter()
        .zip(plan)
        .map(|(topic, row)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(row)
                .map(|(p, slot)| {
                    let result = slot.and_then(|i| results.get(i).copied().unwrap_or(Ok(())));
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(result.err().map_or(0, |e| e.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

impl Refuse for OffsetCommitRequest {
    type Response = OffsetCommitResponse;
    fn refuse(self, error: ResponseError) -> OffsetCommitResponse {
        OffsetCommitResponse::default().with_topics(
            self.topics
                .into_iter()
                .map(|t| {
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }
}
