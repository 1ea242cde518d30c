//! ApiVersions: tells clients exactly which API versions this broker serves.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::{encode_or_log, Reply, RequestContext};
use crate::protocol::{advertised_min, served_apis};

/// Answers with the served version table.
pub(crate) async fn handle(
    ctx: RequestContext,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    response(0, ctx.broker.groups.config().consumer_protocol)
}

/// The v0 error response to an ApiVersions request at a version this broker does not know.
pub(crate) fn unsupported(correlation_id: i32, consumer_protocol: bool) -> Reply {
    let response = response(ResponseError::UnsupportedVersion.code(), consumer_protocol);
    encode_or_log(correlation_id, 0, &response)
}

fn response(error_code: i16, consumer_protocol: bool) -> ApiVersionsResponse {
    let api_keys = served_apis(consumer_protocol)
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
