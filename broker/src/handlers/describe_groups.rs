//! DescribeGroups: state, protocol and members of each group; unknown groups are Dead.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};

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
                ctx.broker.groups.describe(&id).map_err(|e| e.code())
            } else {
                Err(ResponseError::GroupAuthorizationFailed.code())
            };
            match described {
                Err(code) => DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(code)
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
