//! ApiVersions: tells clients exactly which API versions this broker serves.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::RequestContext;
use crate::protocol::{encode_response, SUPPORTED_APIS};

/// Answers with the served version table.
pub(crate) async fn handle(
    _ctx: RequestContext,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    response(0)
}

/// The v0 error response to an ApiVersions request at a version this broker does not know.
pub(crate) fn unsupported(correlation_id: i32) -> Option<Bytes> {
    let response = response(ResponseError::UnsupportedVersion.code());
    match encode_response(correlation_id, 0, &response) {
        Ok(frame) => Some(frame),
        Err(error) => {
            tracing::error!(%error, "cannot encode ApiVersions error response");
            None
        }
    }
}

fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}
