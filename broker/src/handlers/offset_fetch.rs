//! OffsetFetch: committed offsets of one group (v1-v7) or several (v8+); partitions without
//! a commit report offset -1. With `require_stable` (KIP-447), partitions whose offsets an open
//! transaction is about to commit answer UNSTABLE_OFFSET_COMMIT, which clients retry. From v10
//! topics are named by id (KIP-848) in the request and the response; an id the cluster does not
//! know answers UNKNOWN_TOPIC_ID, as Kafka's coordinator does.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::refuse::Refuse;
use super::{topic_lookup, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::group::coordinator::{FetchedTopic, MemberEpoch};
use crate::group::records::OffsetValue;
use crate::metadata::ClusterImage;

/// One partition's answer, whichever response shape carries it.
struct Answer {
    partition: i32,
    value: Option<OffsetValue>,
    error: Option<ResponseError>,
}

/// Answers an OffsetFetch request.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let version = ctx.version();
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| group(&ctx, g, request.require_stable))
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    // v1 has no "all topics" form and no top-level error: errors go on every partition.
    let topics = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let (error, topics) = fetch(
        &ctx,
        &request.group_id,
        topics,
        request.require_stable,
        None,
    );
    let topics = topics
        .into_iter()
        .map(|(name, answers)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    answers
                        .into_iter()
                        .map(|mut a| {
                            if version < 2 {
                                a.error = error;
                            }
                            partitions_v0(a)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default()
        .with_error_code(if version >= 2 {
            error.map_or(0, |e| e.code())
        } else {
            0
        })
        .with_topics(topics)
}

type Answers = Vec<(String, Vec<Answer>)>;

/// One group's answer in the multi-group form (v8+).
fn group(
    ctx: &RequestContext,
    g: OffsetFetchRequestGroup,
    require_stable: bool,
) -> OffsetFetchResponseGroup {
    let version = ctx.version();
    let image = ctx.broker.metadata.image();
    let requested = g.topics.map(|ts| Requested::of(&image, version >= 10, ts));
    let member_id = g.member_id.as_deref().unwrap_or("");
    let member =
        (version >= 9 && (g.member_id.is_some() || g.member_epoch != -1)).then_some(MemberEpoch {
            member_id,
            epoch: g.member_epoch,
        });
    let named = requested.as_ref().map(|r| r.named.clone());
    let (error, answers) = fetch(ctx, &g.group_id, named, require_stable, member);
    let asked_id = |name: &str| requested.as_ref().and_then(|r| r.ids.get(name).copied());
    let mut topics: Vec<OffsetFetchResponseTopics> = answers
        .into_iter()
        .filter_map(|(name, answers)| {
            let id = asked_id(&name).or_else(|| image.topic(&name).map(|t| t.id));
            // From v10 a topic is only named by its id: one the cluster no longer has (the
            // offsets of a deleted topic, in a fetch of all topics) is left out, as in Kafka.
            if version >= 10 && id.is_none() {
                return None;
            }
            Some(
                OffsetFetchResponseTopics::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_topic_id(id.unwrap_or_default())
                    .with_partitions(answers.into_iter().map(partitions_v8).collect()),
            )
        })
        .collect();
    let unknown = requested.map(|r| r.unknown).unwrap_or_default();
    topics.extend(unknown.into_iter().map(|(id, partitions, error)| {
        OffsetFetchResponseTopics::default()
            .with_topic_id(id)
            .with_partitions(
                partitions
                    .into_iter()
                    .map(|partition| {
                        partitions_v8(Answer {
                            partition,
                            value: None,
                            error: Some(error),
                        })
                    })
                    .collect(),
            )
    }));
    OffsetFetchResponseGroup::default()
        .with_group_id(g.group_id)
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_topics(topics)
}

/// The topics one group's request names (v8+), by name.
struct Requested {
    /// The topics the cluster knows, with the partitions asked.
    named: Vec<(String, Vec<i32>)>,
    /// The id each was asked by (v10+), echoed in the response.
    ids: HashMap<String, Uuid>,
    /// Topics named by an id the cluster does not know, with their partitions and error.
    unknown: Vec<(Uuid, Vec<i32>, ResponseError)>,
}

impl Requested {
    /// Names `topics`, asked by id when `by_id` (v10+).
    fn of(image: &ClusterImage, by_id: bool, topics: Vec<OffsetFetchRequestTopics>) -> Requested {
        let mut requested = Requested {
            named: Vec::with_capacity(topics.len()),
            ids: HashMap::new(),
            unknown: Vec::new(),
        };
        for t in topics {
            match topic_lookup::request_topic_name(image, by_id, &t.name, &t.topic_id) {
                Ok(name) => {
                    if by_id {
                        requested.ids.insert(name.to_string(), t.topic_id);
                    }
                    requested
                        .named
                        .push((name.to_string(), t.partition_indexes));
                }
                Err(error) => requested
                    .unknown
                    .push((t.topic_id, t.partition_indexes, error)),
            }
        }
        requested
    }
}

/// Offsets of one group; on a group-level error, the requested partitions with no offset.
/// `member` is the consumer group member asking (OffsetFetch v9), whose epoch is checked.
fn fetch(
    ctx: &RequestContext,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    member: Option<MemberEpoch<'_>>,
) -> (Option<ResponseError>, Answers) {
    let groups = &ctx.broker.groups;
    let to_answers = |fetched: Vec<FetchedTopic>| -> Answers {
        fetched
            .into_iter()
            .map(|(t, ps)| {
                let answers = ps
                    .into_iter()
                    .map(|(partition, value)| Answer {
                        partition,
                        error: (require_stable && groups.holds_txn_offset(group_id, &t, partition))
                            .then_some(ResponseError::UnstableOffsetCommit),
                        value,
                    })
                    .collect();
                (t, answers)
            })
            .collect()
    };
    let unanswered = |topics: Option<Vec<(String, Vec<i32>)>>| -> Vec<FetchedTopic> {
        topics
            .unwrap_or_default()
            .into_iter()
            .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect()))
            .collect()
    };
    if !ctx.may(Operation::Describe, ResourceType::Group, group_id) {
        let error = ResponseError::GroupAuthorizationFailed;
        return (Some(error), to_answers(unanswered(topics)));
    }
    // Topics the client may not describe: named ones answer TOPIC_AUTHORIZATION_FAILED, and a
    // fetch of every topic leaves them out, as in Kafka.
    let (allowed, denied): (Option<Vec<_>>, Vec<_>) = match topics {
        None => (None, Vec::new()),
        Some(all) => {
            let (yes, no) = all
                .into_iter()
                .partition(|(t, _)| ctx.may(Operation::Describe, ResourceType::Topic, t));
            (Some(yes), no)
        }
    };
    let mut denied = to_answers(unanswered(Some(denied)));
    for (_, answers) in &mut denied {
        for a in answers {
            a.error = Some(ResponseError::TopicAuthorizationFailed);
        }
    }
    let checked = member.map_or(Ok(()), |who| {
        ctx.broker.groups.check_offset_fetch(group_id, who)
    });
    let fetched = checked.and_then(|()| ctx.broker.groups.fetch_offsets(group_id, allowed.clone()));
    let (error, mut answers) = match fetched {
        Ok(fetched) => (None, to_answers(fetched)),
        Err(error) => (Some(error), to_answers(unanswered(allowed))),
    };
    answers.retain(|(t, _)| ctx.sees(Operation::Describe, ResourceType::Topic, t));
    answers.extend(denied);
    (error, answers)
}

fn fields(a: &Answer) -> (i64, i32, StrBytes) {
    match &a.value {
        Some(v) => (
            v.offset,
            v.leader_epoch,
            StrBytes::from_string(v.metadata.clone()),
        ),
        None => (-1, -1, StrBytes::default()),
    }
}

fn partitions_v0(a: Answer) -> OffsetFetchResponsePartition {
    let (offset, epoch, metadata) = fields(&a);
    OffsetFetchResponsePartition::default()
        .with_partition_index(a.partition)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(epoch)
        .with_metadata(Some(metadata))
        .with_error_code(a.error.map_or(0, |e| e.code()))
}

fn partitions_v8(a: Answer) -> OffsetFetchResponsePartitions {
    let (offset, epoch, metadata) = fields(&a);
    OffsetFetchResponsePartitions::default()
        .with_partition_index(a.partition)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(epoch)
        .with_metadata(Some(metadata))
        .with_error_code(a.error.map_or(0, |e| e.code()))
}

impl Refuse for OffsetFetchRequest {
    type Response = OffsetFetchResponse;
    fn refuse(self, error: ResponseError) -> OffsetFetchResponse {
        OffsetFetchResponse::default()
            .with_error_code(error.code())
            .with_groups(
                self.groups
                    .into_iter()
                    .map(|g| {
                        OffsetFetchResponseGroup::default()
                            .with_group_id(g.group_id)
                            .with_error_code(error.code())
                    })
                    .collect(),
            )
    }
}
