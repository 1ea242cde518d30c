//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};

/// Answers a Heartbeat request.
pub(crate) async fn handle(ctx: RequestContext, request: HeartbeatRequest) -> HeartbeatResponse {
    if !ctx.may(Operation::Read, ResourceType::Group, &request.group_id) {
        return request.refuse(ResponseError::GroupAuthorizationFailed);
    }
    let result = ctx.broker.groups.heartbeat(
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}

impl Refuse for HeartbeatRequest {
    type Response = HeartbeatResponse;
    fn refuse(self, error: ResponseError) -> HeartbeatResponse {
        HeartbeatResponse::default().with_error_code(error.code())
    }
}
