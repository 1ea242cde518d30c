//! ListGroups: every group, filtered by state (v4+) and type (v5+; all groups here are
//! "classic").

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::group::GroupState;

/// The type of every group this coordinator runs.
const CLASSIC: &str = "classic";

/// Answers a ListGroups request.
pub(crate) async fn handle(ctx: RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    let version = ctx.version();
    let types_ok = request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case(CLASSIC));
    // An unknown state name matches no group.
    let states: Vec<GroupState> = request
        .states_filter
        .iter()
        .map(|s| GroupState::parse(s))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_else(|| vec![GroupState::Dead]);
    let (error, groups) = ctx.broker.groups.list(&states);
    let groups = if types_ok { groups } else { Vec::new() };
    // DESCRIBE on the cluster lists every group; otherwise those the client may describe.
    let all = ctx.sees(
        Operation::Describe,
        ResourceType::Cluster,
        crate::acl::CLUSTER_NAME,
    );
    let groups: Vec<_> = groups
        .into_iter()
        .filter(|g| all || ctx.sees(Operation::Describe, ResourceType::Group, &g.group_id))
        .collect();
    ListGroupsResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_groups(
            groups
                .into_iter()
                .map(|g| {
                    ListedGroup::default()
                        .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                        .with_protocol_type(StrBytes::from_string(g.protocol_type))
                        .with_group_state(StrBytes::from_static_str(if version >= 4 {
                            g.state.as_str()
                        } else {
                            ""
                        }))
                        .with_group_type(StrBytes::from_static_str(if version >= 5 {
                            CLASSIC
                        } else {
                            ""
                        }))
                })
                .collect(),
        )
}

impl Refuse for ListGroupsRequest {
    type Response = ListGroupsResponse;
    fn refuse(self, error: ResponseError) -> ListGroupsResponse {
        ListGroupsResponse::default().with_error_code(error.code())
    }
}
