//! ListGroups: every group, classic, consumer (KIP-848) and share (KIP-932), filtered by
//! state (v4+) and type (v5+, KIP-1043).

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};

/// The type of groups of the JoinGroup/SyncGroup protocol.
const CLASSIC: &str = "classic";
/// The type of groups of the ConsumerGroupHeartbeat protocol.
const CONSUMER: &str = "consumer";
/// The type (and protocol type) of share groups.
const SHARE: &str = "share";

/// One group as listed.
struct Row {
    group_id: String,
    protocol_type: String,
    state: &'static str,
    group_type: &'static str,
}

/// Answers a ListGroups request.
pub(crate) async fn handle(ctx: RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    let version = ctx.version();
    let (error, rows) = rows(&ctx);
    let wanted = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    // DESCRIBE on the cluster lists every group; otherwise those the client may describe.
    let all = ctx.sees(
        Operation::Describe,
        ResourceType::Cluster,
        crate::acl::CLUSTER_NAME,
    );
    let groups = rows
        .into_iter()
        .filter(|g| wanted(&request.states_filter, g.state))
        .filter(|g| wanted(&request.types_filter, g.group_type))
        .filter(|g| all || ctx.sees(Operation::Describe, ResourceType::Group, &g.group_id))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type))
                .with_group_state(StrBytes::from_static_str(if version >= 4 {
                    g.state
                } else {
                    ""
                }))
                .with_group_type(StrBytes::from_static_str(if version >= 5 {
                    g.group_type
                } else {
                    ""
                }))
        })
        .collect();
    ListGroupsResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_groups(groups)
}

/// Every group sorted by id; a consumer group hides the classic slot holding its offsets.
fn rows(ctx: &RequestContext) -> (Option<ResponseError>, Vec<Row>) {
    let coordinator = &ctx.broker.groups;
    let consumer = coordinator.list_consumer_groups();
    let ids: HashSet<&str> = consumer.iter().map(|(id, _)| id.as_str()).collect();
    let (error, classic) = coordinator.list(&[]);
    let mut rows: Vec<Row> = classic
        .into_iter()
        .filter(|g| !ids.contains(g.group_id.as_str()))
        .map(|g| Row {
            group_id: g.group_id,
            protocol_type: g.protocol_type,
            state: g.state.as_str(),
            group_type: CLASSIC,
        })
        .collect();
    rows.extend(consumer.iter().map(|(id, state)| Row {
        group_id: id.clone(),
        protocol_type: CONSUMER.to_string(),
        state: state.as_str(),
        group_type: CONSUMER,
    }));
    rows.extend(
        coordinator
            .list_share_groups()
            .into_iter()
            .map(|(id, state)| Row {
                group_id: id,
                protocol_type: SHARE.to_string(),
                state,
                group_type: SHARE,
            }),
    );
    rows.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    (error, rows)
}

impl Refuse for ListGroupsRequest {
    type Response = ListGroupsResponse;
    fn refuse(self, error: ResponseError) -> ListGroupsResponse {
        ListGroupsResponse::default().with_error_code(error.code())
    }
}
