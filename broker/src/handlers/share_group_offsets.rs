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
use crate::share::coordinator::Summary;
use crate::share::manager::StatePersister;
use crate::share::records::SharePartitionKey;

/// Answers a DescribeShareGroupOffsets request.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for g in request.groups {
        let id = g.group_id.to_string();
        let described = if ctx.may(Operation::Describe, ResourceType::Group, &id) {
            let wanted = g.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.topic_name.to_string(), t.partitions))
                    .collect()
            });
            group_offsets(&ctx, &id, wanted).await
        } else {
            Err(ResponseError::GroupAuthorizationFailed)
        };
        groups.push(
            match described {
                Ok(topics) => Group::default().with_topics(topics),
                Err(error) => Group::default().with_error_code(error.code()),
            }
            .with_group_id(g.group_id),
        );
    }
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}

/// The offsets of group `id` for `wanted` (topic name and partitions), or every
/// share-partition it has state for, wherever that state is served.
async fn group_offsets(
    ctx: &RequestContext,
    id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Vec<Topic>, ResponseError> {
    let is_share_group = ctx.broker.groups.is_share_group(id);
    let image = ctx.broker.metadata.image();
    let (wanted, mut found) = match wanted {
        Some(wanted) => (wanted, BTreeMap::new()),
        None => {
            let held = ctx.broker.share_states.held(id).await?;
            let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (key, _) in &held {
                if let Some(topic) = image.topic_by_id(&key.topic) {
                    all.entry(topic.name.clone())
                        .or_default()
                        .push(key.partition);
                }
            }
            let found = held.into_iter().map(|(k, s)| (k, Ok(Some(s)))).collect();
            (all.into_iter().collect(), found)
        }
    };
    if !is_share_group && wanted.is_empty() {
        return Err(ResponseError::GroupIdNotFound);
    }
    let key = |topic: Uuid, partition: i32| SharePartitionKey {
        group: id.to_owned(),
        topic,
        partition,
    };
    let mut asked = Vec::new();
    for (name, partitions) in &wanted {
        let visible = ctx.may(Operation::Describe, ResourceType::Topic, name);
        if let Some(topic) = image.topic(name).filter(|_| visible) {
            asked.extend(
                partitions
                    .iter()
                    .filter(|index| topic.partition(**index).is_some())
                    .map(|index| key(topic.id, *index))
                    .filter(|k| !found.contains_key(k)),
            );
        }
    }
    found.extend(ctx.broker.share_states.summaries(asked).await);
    if !is_share_group && !found.values().any(|s| matches!(s, Ok(Some(_)))) {
        return Err(ResponseError::GroupIdNotFound);
    }
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
                    let answered = if !visible {
                        Err(ResponseError::TopicAuthorizationFailed)
                    } else if topic.and_then(|t| t.partition(index)).is_none() {
                        Err(ResponseError::UnknownTopicOrPartition)
                    } else {
                        found
                            .get(&key(topic_id, index))
                            .copied()
                            .unwrap_or(Err(ResponseError::UnknownServerError))
                    };
                    match answered {
                        Ok(summary) => partition
                            .with_start_offset(summary.map_or(-1, |s| s.start_offset))
                            .with_leader_epoch(summary.map_or(-1, |s| s.leader_epoch))
                            .with_lag(summary.map_or(-1, |s| lag(ctx, &name, index, &s))),
                        Err(error) => partition
                            .with_start_offset(-1)
                            .with_leader_epoch(-1)
                            .with_error_code(error.code()),
                    }
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

/// KIP-1226's share-partition lag: records up to the high watermark not yet done with (the
/// high watermark read from this broker's replica; -1 without one, or without the count).
fn lag(ctx: &RequestContext, topic: &str, index: i32, summary: &Summary) -> i64 {
    let Some(complete) = summary.delivery_complete else {
        return -1;
    };
    let Some(replica) = ctx.broker.replicas.get(topic, index) else {
        return -1;
    };
    let high_watermark = replica.with_log(|log| log.high_watermark());
    (high_watermark - summary.start_offset - complete).max(0)
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
                    let states = &ctx.broker.share_states;
                    let result = match states.summaries(vec![key.clone()]).await.pop() {
                        Some((_, Ok(summary))) => {
                            let epoch = summary.map_or(0, |s| s.state_epoch.saturating_add(1));
                            states.initialize(&key, epoch, p.start_offset).await
                        }
                        Some((_, Err(error))) => Err(error),
                        None => Err(ResponseError::UnknownServerError),
                    };
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
    let states = &ctx.broker.share_states;
    let held = match states.held(&id).await {
        Ok(held) => held,
        Err(error) => {
            return DeleteShareGroupOffsetsResponse::default().with_error_code(error.code())
        }
    };
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
                for (key, _) in held.iter().filter(|(k, _)| k.topic == topic.id) {
                    if let Err(error) = states.delete(key).await {
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
