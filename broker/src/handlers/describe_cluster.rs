//! DescribeCluster: the cluster id, controller and brokers (AdminClient.describeCluster).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;

/// Endpoint type of broker listeners (KIP-919); the only kind this broker has.
const ENDPOINT_BROKERS: i8 = 1;

/// Describes the cluster as Metadata does: every registered broker a client of the request's
/// listener can reach (with that listener's address and its rack) and the same controller id;
/// from v2, when asked, the fenced ones too, marked (KIP-1073).
pub(crate) async fn handle(
    ctx: RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            ctx.operations(crate::acl::ResourceType::Cluster, crate::acl::CLUSTER_NAME)
        } else {
            i32::MIN
        });
    if request.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "only broker endpoints are served",
            )));
    }
    let image = ctx.broker.metadata.image();
    let listener: &str = &ctx.client.listener;
    let fenced = image
        .fenced_brokers
        .values()
        .filter(|_| request.include_fenced_brokers)
        .filter_map(|b| b.endpoint(listener).map(|(host, port)| (b, host, port)));
    let brokers = image
        .reachable_brokers(listener)
        .map(|b| (b, false))
        .chain(fenced.map(|b| (b, true)))
        .map(|((b, host, port), is_fenced)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
                .with_is_fenced(is_fenced)
        })
        .collect();
    response
        .with_cluster_id(StrBytes::from_string(image.cluster_id.clone()))
        .with_controller_id(BrokerId(image.controller_for(ctx.broker.config.broker_id)))
        .with_brokers(brokers)
}
