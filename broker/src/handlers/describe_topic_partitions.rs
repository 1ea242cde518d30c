//! DescribeTopicPartitions (KIP-966): the paginated Metadata the Java admin's `describeTopics`
//! uses. Topics come sorted by name, at most `response_partition_limit` partitions per answer
//! (and never more than [`MAX_PARTITIONS_PER_RESPONSE`], Kafka's
//! `max.request.partition.size.limit`); a cursor names the first topic and partition of the
//! next page. Which partitions a page holds is the pure [`page`].

use std::ops::Range;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::metadata::{is_internal_topic, ClusterImage, TopicImage};

/// The most partitions one answer holds, whatever the client asks (Kafka's default
/// `max.request.partition.size.limit`).
pub(super) const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

/// One topic of a page: its name and the partition indexes it shows (`None`: the topic does
/// not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PageTopic<'a> {
    /// The topic's name.
    pub(super) name: &'a str,
    /// The partitions shown, or `None` for a topic that does not exist.
    pub(super) partitions: Option<Range<i32>>,
}

/// A page: its topics in order, and where the next page starts (topic, partition).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Page<'a> {
    /// The topics this answer describes.
    pub(super) topics: Vec<PageTopic<'a>>,
    /// The first topic and partition left for the next request, if any.
    pub(super) next: Option<(&'a str, i32)>,
}

/// Splits `topics` (sorted by name, each with its partition count, `None` when it does not
/// exist) into the page that starts at `cursor` and holds at most `limit` partitions, as
/// Kafka's metadata cache does: the cursor's topic starts at the cursor's partition, the
/// others at 0; a topic cut short ends the page with a cursor into it; a page that is full
/// before a topic ends with a cursor at that topic's partition 0.
pub(super) fn page<'a>(
    topics: &[(&'a str, Option<i32>)],
    cursor: Option<(&str, i32)>,
    limit: i32,
) -> Page<'a> {
    let mut remaining = limit;
    let mut out = Page::default();
    for &(name, count) in topics {
        if remaining <= 0 {
            if remaining == 0 {
                out.next = Some((name, 0));
            }
            break;
        }
        let Some(count) = count else {
            out.topics.push(PageTopic {
                name,
                partitions: None,
            });
            continue;
        };
        let start = match cursor {
            Some((topic, index)) if topic == name => index.max(0),
            _ => 0,
        };
        let end = count.min(start.saturating_add(remaining));
        let shown = start.min(end)..end;
        out.topics.push(PageTopic {
            name,
            partitions: Some(shown.clone()),
        });
        if end < count {
            out.next = Some((name, end));
            break;
        }
        remaining -= shown.end - shown.start;
    }
    out
}

/// The partitions one answer may hold: what the client asks, at most
/// [`MAX_PARTITIONS_PER_RESPONSE`].
pub(super) fn limit(requested: i32) -> i32 {
    requested.min(MAX_PARTITIONS_PER_RESPONSE)
}

/// Answers DescribeTopicPartitions. An empty topic list means every topic the client may
/// DESCRIBE; named topics it may not describe get TOPIC_AUTHORIZATION_FAILED (after the
/// others, without their id), unknown ones UNKNOWN_TOPIC_OR_PARTITION or
/// INVALID_TOPIC_EXCEPTION. A cursor whose topic the list does not name is INVALID_REQUEST.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.metadata.image();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.as_str(), c.partition_index));
    let after = cursor.map_or("", |(topic, _)| topic);
    let all = request.topics.is_empty();
    let mut names: Vec<&str> = if all {
        image.topics().map(|t| t.name.as_str()).collect()
    } else {
        request.topics.iter().map(|t| t.name.as_str()).collect()
    };
    names.retain(|name| *name >= after);
    names.sort_unstable();
    names.dedup();
    if let Some((topic, _)) = cursor.filter(|_| !all) {
        if !names.contains(&topic) {
            tracing::debug!(
                topic,
                "DescribeTopicPartitions cursor names a topic not asked for"
            );
            return refused(&request, ResponseError::InvalidRequest);
        }
    }
    // A listing leaves out what the client may not see; a named topic it may not describe is
    // a refusal, logged.
    let (allowed, denied): (Vec<&str>, Vec<&str>) = names.into_iter().partition(|name| {
        if all {
            ctx.sees(Operation::Describe, ResourceType::Topic, name)
        } else {
            ctx.may(Operation::Describe, ResourceType::Topic, name)
        }
    });
    let counts: Vec<(&str, Option<i32>)> = allowed
        .iter()
        .map(|name| (*name, image.topic(name).map(|t| t.partition_count())))
        .collect();
    let page = page(&counts, cursor, limit(request.response_partition_limit));
    let listener: &str = &ctx.client.listener;
    let mut topics: Vec<DescribeTopicPartitionsResponseTopic> = page
        .topics
        .iter()
        .filter_map(|t| match (&t.partitions, image.topic(t.name)) {
            (Some(range), Some(topic)) => Some(
                describe(&image, topic, range.clone(), listener)
                    .with_topic_authorized_operations(ctx.operations(ResourceType::Topic, t.name)),
            ),
            // Listing every topic leaves out one deleted meanwhile, as Kafka does.
            _ if all => None,
            _ => Some(unknown(t.name)),
        })
        .collect();
    if !all {
        topics.extend(
            denied
                .into_iter()
                .map(|name| error_topic(name, ResponseError::TopicAuthorizationFailed)),
        );
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(page.next.map(|(topic, index)| {
            Cursor::default()
                .with_topic_name(topic_name(topic))
                .with_partition_index(index)
        }))
}

/// The partitions `range` of `topic`, as the client's listener sees them: a leader without an
/// address on it is no leader, and replicas on brokers not registered (or without the
/// listener) are offline.
fn describe(
    image: &ClusterImage,
    topic: &TopicImage,
    range: Range<i32>,
    listener: &str,
) -> DescribeTopicPartitionsResponseTopic {
    let reachable = |id: i32| {
        image
            .broker(id)
            .is_some_and(|b| b.endpoint(listener).is_some())
    };
    let partitions = range
        .filter_map(|index| topic.partition(index).map(|p| (index, p)))
        .map(|(index, p)| {
            let leader = if p.has_leader() && reachable(p.leader) {
                p.leader
            } else {
                crate::metadata::NO_LEADER
            };
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().map(|m| BrokerId(m.broker)).collect())
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
                .with_offline_replicas(
                    p.replicas
                        .iter()
                        .copied()
                        .filter(|id| !reachable(*id))
                        .map(BrokerId)
                        .collect(),
                )
        })
        .collect();
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
}

/// A named topic that does not exist: UNKNOWN_TOPIC_OR_PARTITION, or INVALID_TOPIC_EXCEPTION
/// when no topic could have that name.
fn unknown(name: &str) -> DescribeTopicPartitionsResponseTopic {
    let error = match crate::topics::names::validate_topic_name(name) {
        Ok(()) => ResponseError::UnknownTopicOrPartition,
        Err(_) => ResponseError::InvalidTopicException,
    };
    error_topic(name, error)
}

fn error_topic(name: &str, error: ResponseError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error.code())
        .with_name(Some(topic_name(name)))
        .with_is_internal(is_internal_topic(name))
        .with_topic_authorized_operations(i32::MIN)
}

/// Every named topic answered with `error` (the whole request refused).
pub(super) fn refused(
    request: &DescribeTopicPartitionsRequest,
    error: ResponseError,
) -> DescribeTopicPartitionsResponse {
    DescribeTopicPartitionsResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| error_topic(t.name.as_str(), error))
            .collect(),
    )
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

#[cfg(test)]
mod tests;
