//! ConsumerGroupDescribe (KIP-848): each consumer group's epochs, assignor and members with
//! their current and target assignments and (v1) whether each joined through the classic
//! protocol, from the coordinator's state. A group that is not a consumer group answers
//! GROUP_ID_NOT_FOUND, as Kafka does.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::group::consumer::{Assignment, ConsumerGroup};

/// Answers a ConsumerGroupDescribe request; a group the client may not DESCRIBE gets
/// GROUP_AUTHORIZATION_FAILED.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let names = topic_names(&ctx);
    let groups = each_group(
        &ctx,
        request.group_ids,
        request.include_authorized_operations,
        |id| ctx.broker.groups.describe_consumer_group(id),
        |id, ops, described| {
            match described {
                Err(error) => DescribedGroup::default().with_error_code(error.code()),
                Ok(group) => described_group(&ctx, &group, &names),
            }
            .with_group_id(id)
            .with_authorized_operations(ops)
        },
    );
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

/// Every topic's name by id, for the assignments a describe shows.
pub(super) fn topic_names(ctx: &RequestContext) -> HashMap<Uuid, String> {
    let image = ctx.broker.metadata.image();
    image.topics().map(|t| (t.id, t.name.clone())).collect()
}

/// Each group a describe request names, answered by `answer` with the operations the client
/// may do on it (`i32::MIN` unless asked) and what `describe` finds: a group the client may
/// not DESCRIBE is GROUP_AUTHORIZATION_FAILED.
pub(super) fn each_group<T, G>(
    ctx: &RequestContext,
    ids: Vec<GroupId>,
    include_operations: bool,
    describe: impl Fn(&str) -> Result<T, ResponseError>,
    answer: impl Fn(GroupId, i32, Result<T, ResponseError>) -> G,
) -> Vec<G> {
    ids.into_iter()
        .map(|id| {
            let ops = if include_operations {
                ctx.operations(ResourceType::Group, &id)
            } else {
                i32::MIN
            };
            let described = if ctx.may(Operation::Describe, ResourceType::Group, &id) {
                describe(&id)
            } else {
                Err(ResponseError::GroupAuthorizationFailed)
            };
            answer(id, ops, described)
        })
        .collect()
}

fn described_group(
    ctx: &RequestContext,
    group: &ConsumerGroup,
    names: &HashMap<Uuid, String>,
) -> DescribedGroup {
    let members = group
        .members()
        .values()
        .map(|m| {
            Member::default()
                .with_member_id(StrBytes::from_string(m.member_id.clone()))
                .with_instance_id(m.instance_id.clone().map(StrBytes::from_string))
                .with_rack_id(m.rack_id.clone().map(StrBytes::from_string))
                .with_member_epoch(m.member_epoch)
                .with_client_id(StrBytes::from_string(m.client_id.clone()))
                .with_client_host(StrBytes::from_string(m.client_host.clone()))
                .with_subscribed_topic_names(
                    m.subscribed_topic_names
                        .iter()
                        .map(|n| TopicName(StrBytes::from_string(n.clone())))
                        .collect(),
                )
                .with_subscribed_topic_regex(
                    m.subscribed_topic_regex.clone().map(StrBytes::from_string),
                )
                .with_assignment(wire_assignment(&m.assigned, names))
                .with_target_assignment(wire_assignment(&group.target(&m.member_id), names))
                .with_member_type(member_type(m.uses_classic_protocol()))
        })
        .collect();
    let assignor = group.preferred_assignor(&ctx.broker.groups.config().consumer);
    DescribedGroup::default()
        .with_group_state(StrBytes::from_static_str(group.state().as_str()))
        .with_group_epoch(group.group_epoch())
        .with_assignment_epoch(group.assignment_epoch())
        .with_assignor_name(StrBytes::from_static_str(assignor.name()))
        .with_members(members)
}

/// ConsumerGroupDescribe v1's member type (KIP-1099): 0 for a member that joined through the
/// classic protocol (KIP-848's online migration), 1 for a consumer protocol member.
fn member_type(classic: bool) -> i8 {
    if classic {
        0
    } else {
        1
    }
}

/// Partitions by topic, named from the metadata image (a deleted topic has an empty name).
fn wire_assignment(assignment: &Assignment, names: &HashMap<Uuid, String>) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        assignment
            .topics()
            .map(|(id, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(TopicName(StrBytes::from_string(
                        names.get(&id).cloned().unwrap_or_default(),
                    )))
                    .with_partitions(partitions.iter().copied().collect())
            })
            .collect(),
    )
}

impl Refuse for ConsumerGroupDescribeRequest {
    type Response = ConsumerGroupDescribeResponse;
    fn refuse(self, error: ResponseError) -> ConsumerGroupDescribeResponse {
        ConsumerGroupDescribeResponse::default().with_groups(
            self.group_ids
                .into_iter()
                .map(|id| {
                    DescribedGroup::default()
                        .with_group_id(id)
                        .with_error_code(error.code())
                })
                .collect(),
        )
    }
}
