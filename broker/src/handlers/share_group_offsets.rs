//! DescribeShareGroupOffsets (KIP-932, v0): where each share-partition of a share group starts
//! (its start offset, the first record not yet acknowledged for good) and the leader epoch
//! of its last reader, from the share coordinator's state: every share-partition the group
//! has when the request names no topics, -1 for a partition the group never read.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup as Group,
    DescribeShareGroupOffsetsResponsePartition as Partition,
    DescribeShareGroupOffsetsResponseTopic as Topic,
};
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, TopicName,
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
