//! ShareGroupDescribe (KIP-932, v1): each share group's epochs, assignor and members with
//! their subscriptions and assignments. A group that is not a share group answers
//! GROUP_ID_NOT_FOUND, as Kafka does.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::consumer_group_describe::{each_group, topic_names};
use super::refuse::Refuse;
use super::RequestContext;
use crate::group::coordinator::ShareGroupDescription;
use crate::share::group::ShareMember;

/// The assignor share groups use (Kafka's only one).
const ASSIGNOR: &str = "simple";

/// Answers a ShareGroupDescribe request; a group the client may not DESCRIBE gets
/// GROUP_AUTHORIZATION_FAILED.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let names = topic_names(&ctx);
    let groups = each_group(
        &ctx,
        request.group_ids,
        request.include_authorized_operations,
        |id| ctx.broker.groups.describe_share_group(id),
        |id, ops, described| {
            match described {
                Err(error) => DescribedGroup::default()
                    .with_error_code(error.code())
                    .with_error_message(message(error, &id)),
                Ok(group) => described_group(&group, &names),
            }
            .with_group_id(id)
            .with_authorized_operations(ops)
        },
    );
    ShareGroupDescribeResponse::default().with_groups(groups)
}

/// Kafka's message for a group it cannot describe.
fn message(error: ResponseError, id: &str) -> Option<StrBytes> {
    (error == ResponseError::GroupIdNotFound)
        .then(|| StrBytes::from_string(format!("Group {id} is not a share group.")))
}

fn described_group(group: &ShareGroupDescription, names: &HashMap<Uuid, String>) -> DescribedGroup {
    let members = group
        .members
        .iter()
        .map(|(id, m)| member(id, m, names))
        .collect();
    DescribedGroup::default()
        .with_group_state(StrBytes::from_static_str(group.state()))
        .with_group_epoch(group.group_epoch)
        .with_assignment_epoch(group.assignment_epoch)
        .with_assignor_name(StrBytes::from_static_str(ASSIGNOR))
        .with_members(members)
}

fn member(id: &str, m: &ShareMember, names: &HashMap<Uuid, String>) -> Member {
    let mut by_topic: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &m.assignment {
        by_topic.entry(*topic).or_default().push(*partition);
    }
    let topic_partitions = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let name = names.get(&topic).cloned().unwrap_or_default();
            TopicPartitions::default()
                .with_topic_id(topic)
                .with_topic_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    Member::default()
        .with_member_id(StrBytes::from_string(id.to_owned()))
        .with_rack_id(m.client.rack_id.clone().map(StrBytes::from_string))
        .with_member_epoch(m.epoch)
        .with_client_id(StrBytes::from_string(m.client.client_id.clone()))
        .with_client_host(StrBytes::from_string(m.client.client_host.clone()))
        .with_subscribed_topic_names(
            m.topics
                .iter()
                .map(|t| TopicName(StrBytes::from_string(t.clone())))
                .collect(),
        )
        .with_assignment(Assignment::default().with_topic_partitions(topic_partitions))
}

impl Refuse for ShareGroupDescribeRequest {
    type Response = ShareGroupDescribeResponse;
    fn refuse(self, error: ResponseError) -> ShareGroupDescribeResponse {
        let groups = self
            .group_ids
            .into_iter()
            .map(|id| {
                DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(error.code())
            })
            .collect();
        ShareGroupDescribeResponse::default().with_groups(groups)
    }
}
