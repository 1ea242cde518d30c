//! JoinGroup: the group coordinator decides; this maps the request and the answer for every
//! version (KIP-394 member ids from v4, static members from v5, skip-assignment in v9).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::group::effects::JoinResult;
use crate::group::join::JoinRequest;
use crate::group::member::MemberProtocol;

/// Answers a JoinGroup request, possibly after the rebalance's join phase.
pub(crate) async fn handle(ctx: RequestContext, request: JoinGroupRequest) -> JoinGroupResponse {
    if !ctx.may(Operation::Read, ResourceType::Group, &request.group_id) {
        return request.refuse(ResponseError::GroupAuthorizationFailed);
    }
    let version = ctx.version();
    let group_id = request.group_id.to_string();
    let instance_id = request.group_instance_id.map(|i| i.to_string());
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        require_known_member_id: version >= 4 && instance_id.is_none(),
        instance_id,
        client_id: super::Client::id(&ctx.header).to_string(),
        client_host: ctx.client.host.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| MemberProtocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        supports_skip_assignment: version >= 9,
        reason: request.reason.map(|r| r.to_string()),
    };
    let topics = super::consumer_group_heartbeat::topics_image(&ctx.broker);
    let result = ctx.broker.groups.join(&group_id, join, &topics).await;
    response(result, version)
}

fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(
                    m.instance_id
                        .filter(|_| version >= 5)
                        .map(StrBytes::from_string),
                )
                .with_metadata(m.metadata)
        })
        .collect();
    // Before v7 the protocol name is not nullable.
    let protocol_name = match result.protocol_name {
        None if version < 7 => Some(StrBytes::default()),
        name => name.map(StrBytes::from_string),
    };
    JoinGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code()))
        .with_generation_id(result.generation)
        .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(result.leader))
        .with_skip_assignment(result.skip_assignment && version >= 9)
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members)
}

impl Refuse for JoinGroupRequest {
    type Response = JoinGroupResponse;
    fn refuse(self, error: ResponseError) -> JoinGroupResponse {
        JoinGroupResponse::default()
            .with_error_code(error.code())
            .with_generation_id(-1)
            .with_protocol_name(Some(StrBytes::default()))
            .with_member_id(self.member_id)
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::Encodable;

    use super::*;
    use crate::group::effects::JoinedMember;

    #[test]
    fn every_version_encodes_success_and_errors() {
        let ok = JoinResult {
            error: None,
            member_id: "m".into(),
            generation: 1,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: "m".into(),
            skip_assignment: true,
            members: vec![JoinedMember {
                member_id: "m".into(),
                instance_id: Some("i".into()),
                metadata: Bytes::from_static(b"x"),
            }],
        };
        for version in 0..=9 {
            for result in [
                ok.clone(),
                JoinResult::error("m", ResponseError::MemberIdRequired),
            ] {
                let mut buf = BytesMut::new();
                response(result, version)
                    .encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("v{version}: {e}"));
            }
        }
    }
}
