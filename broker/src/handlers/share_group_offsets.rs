//! The share group offsets admin APIs (KIP-932, v0). Describe: where each share-partition of
//! a share group starts (its start offset, the first record not yet acknowledged for good)
//! and the leader epoch of its last reader, from the share coordinator's state: every
//! share-partition the group has when the request names no topics, -1 for a partition the
//! group never read. Alter and Delete change an idle group's share-partitions' state.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition as AlterPartition,
    AlterShareGroupOffsetsResponseTopic as AlterTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic as DeleteTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup as Group,
    DescribeShareGroupOffsetsResponsePartition as Partition,
    DescribeShareGroupOffsetsResponseTopic as Topic,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsResponse, DescribeShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::share::records::SharePartitionKey;

/// Answers a DescribeShareGroupOffsets request.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|g| {
            let id = g.group_id.to_string();
            let described = if ctx.may(Operation::Describe, ResourceType::Group, &id) {
                let wanted = g.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (t.topic_name.to_string(), t.partitions))
                        .collect()
                });
                group_offsets(&ctx, &id, wanted)
            } else {
                Err(ResponseError::GroupAuthorizationFailed)
            };
            match described {
                Ok(topics) => Group::default().with_topics(topics),
                Err(error) => Group::default().with_error_code(error.code()),
            }
            .with_group_id(g.group_id)
        })
        .collect();
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}

/// The offsets of group `id` for `wanted` (topic name and partitions), or every
/// share-partition it has state for.
fn group_offsets(
    ctx: &RequestContext,
    id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Vec<Topic>, ResponseError> {
    let shares = &ctx.broker.shares;
    let held = shares.keys_of(id);
    if !ctx.broker.groups.is_share_group(id) && held.is_empty() {
        return Err(ResponseError::GroupIdNotFound);
    }
    let image = ctx.broker.metadata.image();
    let wanted = wanted.unwrap_or_else(|| {
        let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for key in &held {
            if let Some(topic) = image.topic_by_id(&key.topic) {
                all.entry(topic.name.clone())
                    .or_default()
                    .push(key.partition);
            }
        }
        all.into_iter().collect()
    });
    let topics = wanted
        .into_iter()
        .map(|(name, partitions)| {
            let visible = ctx.may(Operation::Describe, ResourceType::Topic, &name);
            let topic = image.topic(&name).filter(|_| visible);
            let topic_id = topic.map_or(Uuid::nil(), |t| t.id);
            let partitions = partitions
                .into_iter()
                .map(|index| {
                    let partition = Partition::default().with_partition_index(index);
                    let refused = if !visible {
                        Some(ResponseError::TopicAuthorizationFailed)
                    } else if topic.and_then(|t| t.partition(index)).is_none() {
                        Some(ResponseError::UnknownTopicOrPartition)
                    } else {
                        None
                    };
                    if let Some(error) = refused {
                        return partition
                            .with_start_offset(-1)
                            .with_leader_epoch(-1)
                            .with_error_code(error.code());
                    }
                    let key = SharePartitionKey {
                        group: id.to_owned(),
                        topic: topic_id,
                        partition: index,
                    };
                    let (start, epoch) = shares.summary(&key).unwrap_or((-1, -1));
                    partition.with_start_offset(start).with_leader_epoch(epoch)
                })
                .collect();
            Topic::default()
                .with_topic_name(TopicName(StrBytes::from_string(name)))
                .with_topic_id(topic_id)
                .with_partitions(partitions)
        })
        .collect();
    Ok(topics)
}

impl Refuse for DescribeShareGroupOffsetsRequest {
    type Response = DescribeShareGroupOffsetsResponse;
    fn refuse(self, error: ResponseError) -> DescribeShareGroupOffsetsResponse {
        let groups = self
            .groups
            .into_iter()
            .map(|g| {
                Group::default()
                    .with_group_id(g.group_id)
                    .with_error_code(error.code())
            })
            .collect();
        DescribeShareGroupOffsetsResponse::default().with_groups(groups)
    }
}

/// Answers an AlterShareGroupOffsets request (v0): an idle share group's share-partitions
/// start at the offsets given, each under a new state epoch (its old state fenced), and
/// are loaded afresh by the next fetch.
pub(crate) async fn alter(
    ctx: RequestContext,
    request: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    let id = request.group_id.to_string();
    if let Err(error) = idle_group(&ctx, &id, Operation::Read) {
        return AlterShareGroupOffsetsResponse::default().with_error_code(error.code());
    }
    let image = ctx.broker.metadata.image();
    let shares = &ctx.broker.shares;
    let mut responses = Vec::new();
    for t in request.topics {
        let name = t.topic_name.to_string();
        let topic = image
            .topic(&name)
            .filter(|_| ctx.may(Operation::Read, ResourceType::Topic, &name));
        let refused_topic = if ctx.may(Operation::Read, ResourceType::Topic, &name) {
            ResponseError::UnknownTopicOrPartition
        } else {
            ResponseError::TopicAuthorizationFailed
        };
        let topic_id = topic.map_or(Uuid::nil(), |t| t.id);
        let mut partitions = Vec::new();
        for p in t.partitions {
            let index = p.partition_index;
            let result = match topic.and_then(|t| t.partition(index)) {
                None => Err(refused_topic),
                Some(_) if p.start_offset < -1 => Err(ResponseError::InvalidRequest),
                Some(_) => {
                    let key = SharePartitionKey {
                        group: id.clone(),
                        topic: topic_id,
                        partition: index,
                    };
                    let epoch = shares.state_epoch(&key).map_or(0, |e| e.saturating_add(1));
                    let result = shares.initialize(&key, epoch, p.start_offset).await;
                    ctx.broker.share_partitions.forget(&id, |k| *k == key);
                    result
                }
            };
            partitions.push(
                AlterPartition::default()
                    .with_partition_index(index)
                    .with_error_code(result.err().map_or(0, |e| e.code())),
            );
        }
        responses.push(
            AlterTopic::default()
                .with_topic_name(t.topic_name)
                .with_topic_id(topic_id)
                .with_partitions(partitions),
        );
    }
    AlterShareGroupOffsetsResponse::default().with_responses(responses)
}

/// Answers a DeleteShareGroupOffsets request (v0): an idle share group forgets its
/// share-partitions of the topics named (their state deleted); a later fetch starts them
/// anew by `share.auto.offset.reset`.
pub(crate) async fn delete(
    ctx: RequestContext,
    request: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    let id = request.group_id.to_string();
    if let Err(error) = idle_group(&ctx, &id, Operation::Delete) {
        return DeleteShareGroupOffsetsResponse::default().with_error_code(error.code());
    }
    let image = ctx.broker.metadata.image();
    let shares = &ctx.broker.shares;
    let held = shares.keys_of(&id);
    let mut responses = Vec::new();
    for t in request.topics {
        let name = t.topic_name.to_string();
        let readable = ctx.may(Operation::Read, ResourceType::Topic, &name);
        let topic = image.topic(&name).filter(|_| readable);
        let result = match topic {
            None if !readable => Err(ResponseError::TopicAuthorizationFailed),
            None => Err(ResponseError::UnknownTopicOrPartition),
            Some(topic) => {
                let mut result = Ok(());
                for key in held.iter().filter(|k| k.topic == topic.id) {
                    if let Err(error) = shares.delete(key).await {
                        result = Err(error);
                    }
                }
                ctx.broker
                    .share_partitions
                    .forget(&id, |k| k.topic == topic.id);
                result
            }
        };
        responses.push(
            DeleteTopic::default()
                .with_topic_name(t.topic_name)
                .with_topic_id(topic.map_or(Uuid::nil(), |t| t.id))
                .with_error_code(result.err().map_or(0, |e| e.code())),
        );
    }
    DeleteShareGroupOffsetsResponse::default().with_responses(responses)
}

/// Kafka's checks before a share group's offsets change: `operation` on the group, and the
/// group idle (no members) and of no other type.
fn idle_group(ctx: &RequestContext, id: &str, operation: Operation) -> Result<(), ResponseError> {
    if !ctx.may(operation, ResourceType::Group, id) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    ctx.broker.groups.share_group_is_idle(id)
}

impl Refuse for AlterShareGroupOffsetsRequest {
    type Response = AlterShareGroupOffsetsResponse;
    fn refuse(self, error: ResponseError) -> AlterShareGroupOffsetsResponse {
        AlterShareGroupOffsetsResponse::default().with_error_code(error.code())
    }
}

impl Refuse for DeleteShareGroupOffsetsRequest {
    type Response = DeleteShareGroupOffsetsResponse;
    fn refuse(self, error: ResponseError) -> DeleteShareGroupOffsetsResponse {
        DeleteShareGroupOffsetsResponse::default().with_error_code(error.code())
    }
}
