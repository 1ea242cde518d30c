//! DescribeGroups: state, protocol and members of each classic group. Below v6 an unknown or
//! share group is Dead and a consumer group GROUP_ID_NOT_FOUND; from v6 (KIP-1043) each is
//! GROUP_ID_NOT_FOUND with Kafka's message.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use tributary_coordinator::group::state::GroupState;
use tributary_coordinator::group::summary::GroupSummary;

/// Answers a DescribeGroups request; a group the client may not DESCRIBE gets
/// GROUP_AUTHORIZATION_FAILED.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let version = ctx.version();
    let operations = |id: &str| {
        if request.include_authorized_operations {
            ctx.operations(ResourceType::Group, id)
        } else {
            i32::MIN
        }
    };
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            let ops = operations(&id);
            let described = if ctx.may(Operation::Describe, ResourceType::Group, &id) {
                describe(&ctx, &id, version)
            } else {
                Err((ResponseError::GroupAuthorizationFailed.code(), None))
            };
            match described {
                Err((code, message)) => DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(code)
                    .with_group_state(StrBytes::from_static_str(match message {
                        Some(_) => GroupState::Dead.as_str(),
                        None => "",
                    }))
                    .with_error_message(message.map(StrBytes::from_string))
                    .with_authorized_operations(ops),
                Ok(summary) => DescribedGroup::default()
                    .with_group_id(id)
                    .with_group_state(StrBytes::from_static_str(summary.state.as_str()))
                    .with_protocol_type(StrBytes::from_string(summary.protocol_type))
                    .with_protocol_data(StrBytes::from_string(summary.protocol))
                    .with_authorized_operations(ops)
                    .with_members(
                        summary
                            .members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id))
                                    .with_group_instance_id(
                                        m.instance_id
                                            .filter(|_| version >= 4)
                                            .map(StrBytes::from_string),
                                    )
                                    .with_client_id(StrBytes::from_string(m.client_id))
                                    .with_client_host(StrBytes::from_string(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// One group's summary, or its error code with the message v6 carries.
fn describe(
    ctx: &RequestContext,
    id: &str,
    version: i16,
) -> Result<GroupSummary, (i16, Option<String>)> {
    let groups = &ctx.broker.groups;
    let not_classic = || {
        let message = format!("Group {id} is not a classic group.");
        (ResponseError::GroupIdNotFound.code(), Some(message))
    };
    if version >= 6 && groups.is_share_group(id) {
        return Err(not_classic());
    }
    match groups.describe(id) {
        Err(ResponseError::GroupIdNotFound) if version >= 6 => Err(not_classic()),
        Err(error) => Err((error.code(), None)),
        Ok(summary) if version >= 6 && summary.state == GroupState::Dead => Err((
            ResponseError::GroupIdNotFound.code(),
            Some(format!("Group {id} not found.")),
        )),
        Ok(summary) => Ok(summary),
    }
}

impl Refuse for DescribeGroupsRequest {
    type Response = DescribeGroupsResponse;
    fn refuse(self, error: ResponseError) -> DescribeGroupsResponse {
        DescribeGroupsResponse::default().with_groups(
            self.groups
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
