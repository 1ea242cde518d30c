//! ApiVersions: tells clients exactly which API versions this broker serves.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::{encode_or_log, Reply, RequestContext};
use crate::broker::Broker;
use crate::protocol::{advertised_min, served_apis, ApiSets};

/// Answers with the served version table.
pub(crate) async fn handle(
    ctx: RequestContext,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    response(0, api_sets(&ctx.broker))
}

/// The optional API sets `broker` is configured to serve.
pub(crate) fn api_sets(broker: &Broker) -> ApiSets {
    ApiSets::of(
        broker.groups.config().consumer_protocol,
        broker.config.share_groups,
    )
}

/// The v0 error response to an ApiVersions request at a version this broker does not know.
pub(crate) fn unsupported(correlation_id: i32, sets: ApiSets) -> Reply {
    let response = response(ResponseError::UnsupportedVersion.code(), sets);
    encode_or_log(correlation_id, 0, &response)
}

fn response(error_code: i16, sets: ApiSets) -> ApiVersionsResponse {
    let api_keys = served_apis(sets)
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(advertised_min(key, min))
                .with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}
