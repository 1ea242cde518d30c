//! ListConfigResources (API key 74): the config resources a client may then describe or alter.
//! v0 was KIP-1000's ListClientMetricsResources (client metrics only); v1 (KIP-1142) takes a
//! filter of resource types and lists every kind, so tools find the groups that have configs
//! without a member (which ListGroups cannot show). DESCRIBE_CONFIGS on the cluster is
//! required, as in Kafka (checked by dispatch).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;

/// Config resource types (Kafka's `ConfigResource.Type`).
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// The types v1 knows, as Kafka's `ListConfigResourcesRequest.supportedResourceTypes` has
/// them; an empty filter means all of them.
const V1_TYPES: [i8; 5] = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

/// Lists the config resources of the types asked for, kind by kind in Kafka's order (groups,
/// client metrics, broker loggers, brokers, topics), each sorted by name:
/// - groups: those with a dynamic config ([`crate::group_configs`]), whether or not a member
///   ever joined (KIP-1142's point);
/// - client metrics: none, this broker keeps no client metrics subscriptions (KIP-714's
///   receiver is not configured; DescribeConfigs refuses the type);
/// - broker loggers: none, this broker has no logger config resource (DescribeConfigs refuses
///   the type), where Kafka lists one per broker: a tool describing what is listed would fail;
/// - brokers: every registered broker the client's listener reaches, by id, as Kafka's
///   `getBrokerNodes(listener)`;
/// - topics: every topic, internal ones included.
///
/// A v1 filter naming a type outside the five fails the whole request with
/// UNSUPPORTED_VERSION and lists nothing, as Kafka answers; a type named twice lists once.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    let wanted = match (ctx.version(), request.resource_types) {
        (0, _) => vec![CLIENT_METRICS],
        (_, types) if types.is_empty() => V1_TYPES.to_vec(),
        (_, types) => types,
    };
    if wanted.iter().any(|t| !V1_TYPES.contains(t)) {
        return request_refused(ResponseError::UnsupportedVersion);
    }
    let image = ctx.broker.metadata.image();
    let mut brokers: Vec<i32> = image
        .reachable_brokers(&ctx.client.listener)
        .map(|(b, _, _)| b.id)
        .collect();
    brokers.sort_unstable();
    let mut topics: Vec<String> = image.topics().map(|t| t.name.clone()).collect();
    topics.sort();
    let kinds = [
        (GROUP, ctx.broker.group_configs.groups()),
        (CLIENT_METRICS, Vec::new()),
        (BROKER_LOGGER, Vec::new()),
        (BROKER, brokers.iter().map(i32::to_string).collect()),
        (TOPIC, topics),
    ];
    let resources = kinds
        .into_iter()
        .filter(|(kind, _)| wanted.contains(kind))
        .flat_map(|(kind, names)| {
            names.into_iter().map(move |name| {
                ConfigResource::default()
                    .with_resource_name(StrBytes::from_string(name))
                    .with_resource_type(kind)
            })
        })
        .collect();
    ListConfigResourcesResponse::default().with_config_resources(resources)
}

/// The whole request answered with `error` and no resources.
fn request_refused(error: ResponseError) -> ListConfigResourcesResponse {
    ListConfigResourcesResponse::default().with_error_code(error.code())
}

impl Refuse for ListConfigResourcesRequest {
    type Response = ListConfigResourcesResponse;
    fn refuse(self, error: ResponseError) -> ListConfigResourcesResponse {
        request_refused(error)
    }
}
