//! LeaveGroup: one member (v0-v2) or a batch of members (v3+, KIP-345 admin removal by
//! instance id) leave, and the group rebalances.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::group::heartbeat::LeavingMember;

/// Answers a LeaveGroup request.
pub(crate) async fn handle(ctx: RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse {
    if !ctx.may(Operation::Read, ResourceType::Group, &request.group_id) {
        return request.refuse(ResponseError::GroupAuthorizationFailed);
    }
    let version = ctx.version();
    let leaving: Vec<LeavingMember> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                reason: m.reason.as_ref().map(|r| r.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: request.member_id.to_string(),
            instance_id: None,
            reason: None,
        }]
    };
    match ctx.broker.groups.leave(&request.group_id, &leaving) {
        Err(error) => LeaveGroupResponse::default().with_error_code(error.code()),
        Ok(results) if version < 3 => {
            // One member: its result is the response's error.
            let code = results
                .into_iter()
                .next()
                .and_then(Result::err)
                .map_or(0, |e| e.code());
            LeaveGroupResponse::default().with_error_code(code)
        }
        Ok(results) => LeaveGroupResponse::default().with_members(
            request
                .members
                .into_iter()
                .zip(results)
                .map(|(m, r)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(r.err().map_or(0, |e| e.code()))
                })
                .collect(),
        ),
    }
}

impl Refuse for LeaveGroupRequest {
    type Response = LeaveGroupResponse;
    fn refuse(self, error: ResponseError) -> LeaveGroupResponse {
        LeaveGroupResponse::default().with_error_code(error.code())
    }
}
