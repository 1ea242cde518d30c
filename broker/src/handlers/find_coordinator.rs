//! FindCoordinator: a group is coordinated by the leader of its `__consumer_offsets`
//! partition, a transactional id by the leader of its `__transaction_state` partition, a
//! share-partition's state (v6+, `group:topicId:partition`, asked by brokers) by the leader of
//! its `__share_group_state` partition, as in Kafka (the topic is created on the first
//! lookup). v4+ batches keys.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::share::records::SharePartitionKey;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;
const SHARE: i8 = 2;

/// Answers a FindCoordinator request.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let version = ctx.version();
    let keys = if version >= 4 {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    let coordinators: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| lookup(&ctx, version, request.key_type, key))
        .collect();
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.into_iter().next().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(if version >= 1 { c.error_message } else { None })
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}

fn lookup(ctx: &RequestContext, version: i16, key_type: i8, key: StrBytes) -> Coordinator {
    let image = ctx.broker.metadata.image();
    let shares = version >= 6 && super::api_versions::api_sets(&ctx.broker).share_groups;
    let coordinator = match key_type {
        GROUP if !ctx.may(Operation::Describe, ResourceType::Group, &key) => {
            Err(ResponseError::GroupAuthorizationFailed)
        }
        TRANSACTION if !ctx.may(Operation::Describe, ResourceType::TransactionalId, &key) => {
            Err(ResponseError::TransactionalIdAuthorizationFailed)
        }
        // The leader of the group's `__consumer_offsets` partition.
        GROUP => ctx.broker.groups.find(&key),
        // The leader of the id's `__transaction_state` partition.
        TRANSACTION => ctx.broker.txns.find(&key),
        SHARE if !shares => Err(ResponseError::InvalidRequest),
        SHARE if !ctx.may_on_cluster(Operation::ClusterAction) => {
            Err(ResponseError::ClusterAuthorizationFailed)
        }
        // The leader of the share-partition's `__share_group_state` partition.
        SHARE => SharePartitionKey::parse(&key)
            .ok_or(ResponseError::InvalidRequest)
            .and_then(|k| ctx.broker.shares.find(&k)),
        _ => Err(ResponseError::InvalidRequest),
    };
    // A coordinator clients of this listener cannot reach yet is not available to them.
    let node = coordinator.and_then(|id| {
        image
            .broker(id)
            .and_then(|node| Some((node, node.endpoint(&ctx.client.listener)?)))
            .ok_or(ResponseError::CoordinatorNotAvailable)
    });
    match node {
        Ok((node, (host, port))) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(node.id))
            .with_host(StrBytes::from_string(host.to_string()))
            .with_port(port),
        Err(error) => failed(key, error),
    }
}

fn failed(key: StrBytes, error: ResponseError) -> Coordinator {
    Coordinator::default()
        .with_key(key)
        .with_node_id(BrokerId(-1))
        .with_host(StrBytes::default())
        .with_port(-1)
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_static_str(match error {
            ResponseError::CoordinatorNotAvailable => "the coordinator is not available",
            ResponseError::InvalidRequest => "unknown coordinator key type or malformed key",
            _ => "coordinator lookup failed",
        })))
}

impl Refuse for FindCoordinatorRequest {
    type Response = FindCoordinatorResponse;
    fn refuse(self, error: ResponseError) -> FindCoordinatorResponse {
        FindCoordinatorResponse::default()
            .with_error_code(error.code())
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_coordinators(
                self.coordinator_keys
                    .into_iter()
                    .map(|k| failed(k, error))
                    .collect(),
            )
    }
}
