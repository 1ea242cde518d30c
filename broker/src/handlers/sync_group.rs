//! SyncGroup: followers wait for the leader's assignment, which the coordinator persists
//! before handing it out.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::group::sync::SyncRequest;

/// Answers a SyncGroup request, possibly once the leader's assignment is stored.
pub(crate) async fn handle(ctx: RequestContext, request: SyncGroupRequest) -> SyncGroupResponse {
    if !ctx.may(Operation::Read, ResourceType::Group, &request.group_id) {
        return request.refuse(ResponseError::GroupAuthorizationFailed);
    }
    let version = ctx.version();
    let group_id = request.group_id.to_string();
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation: request.generation_id,
        protocol_type: request.protocol_type.map(|p| p.to_string()),
        protocol_name: request.protocol_name.map(|p| p.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let result = ctx.broker.groups.sync(&group_id, sync).await;
    let with_protocol = version >= 5;
    SyncGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code()))
        .with_protocol_type(
            result
                .protocol_type
                .filter(|_| with_protocol)
                .map(StrBytes::from_string),
        )
        .with_protocol_name(
            result
                .protocol_name
                .filter(|_| with_protocol)
                .map(StrBytes::from_string),
        )
        .with_assignment(result.assignment)
}

impl Refuse for SyncGroupRequest {
    type Response = SyncGroupResponse;
    fn refuse(self, error: ResponseError) -> SyncGroupResponse {
        SyncGroupResponse::default().with_error_code(error.code())
    }
}
