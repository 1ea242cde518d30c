//! ApiVersions: tells clients exactly which API versions this broker serves, and the features
//! it supports and the cluster has finalized (KIP-584), which clients and `kafka-features.sh`
//! read.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_crds::features::{FeatureLevels, FEATURES};

use super::{encode_or_log, Reply, RequestContext};
use crate::broker::Broker;
use crate::features::{GROUP_VERSION, SHARE_VERSION, TRANSACTION_VERSION};
use crate::protocol::{advertised_min, served_apis, ApiSets};

/// Answers with the served version table and, from v3, the features.
pub(crate) async fn handle(
    ctx: RequestContext,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let response = response(0, api_sets(&ctx.broker));
    let version = ctx.version();
    if version < 3 {
        return response;
    }
    with_features(response, &ctx.broker.features.levels(), version)
}

/// The optional API sets `broker` serves: each as configured, and only while the cluster's
/// feature level has it on (`group.version` for the consumer group protocol, `share.version`
/// for share groups, `transaction.version` 2 for transactions v2's versions).
pub(crate) fn api_sets(broker: &Broker) -> ApiSets {
    let on = |name| broker.features.level(name) >= 1;
    ApiSets::of(
        broker.groups.config().consumer_protocol && on(GROUP_VERSION),
        broker.config.share_groups && on(SHARE_VERSION),
    )
    .with_transactions_v2(broker.features.level(TRANSACTION_VERSION) >= 2)
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

/// `response` with the supported and finalized features, as Kafka 4.x answers `version`:
/// below v4 a feature whose lowest level is 0 is left out of the supported list (older clients
/// refuse a range starting at 0, KAFKA-17492); a feature at level 0 is not finalized.
fn with_features(
    response: ApiVersionsResponse,
    levels: &FeatureLevels,
    version: i16,
) -> ApiVersionsResponse {
    let supported = FEATURES
        .iter()
        .filter(|f| version >= 4 || f.min > 0)
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect();
    let finalized = levels
        .finalized()
        .into_iter()
        .filter(|&(_, level)| level > 0)
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    response
        .with_supported_features(supported)
        .with_finalized_features_epoch(levels.epoch)
        .with_finalized_features(finalized)
}
