//! UpdateFeatures (57): changes the cluster's finalized feature levels (KIP-584) as Kafka's
//! controller does, every update or none (ALTER on the cluster, checked at dispatch).

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_crds::features::{FeatureUpdate, UpgradeType};

use super::RequestContext;
use crate::features::FeatureError;

/// Applies the request's updates, or refuses them all with the first reason.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: UpdateFeaturesRequest,
) -> UpdateFeaturesResponse {
    let version = ctx.version();
    let updates = match updates(&request, version) {
        Ok(updates) => updates,
        Err(message) => return failed(ResponseError::InvalidRequest, Some(message)),
    };
    let validate_only = version >= 1 && request.validate_only;
    match ctx.broker.features.update(&updates, validate_only).await {
        Ok(_) => {
            // Below v2 the answer lists each feature; v2 leaves the list out.
            let results = if version < 2 {
                updates
                    .iter()
                    .map(|u| {
                        UpdatableFeatureResult::default()
                            .with_feature(StrBytes::from_string(u.name.clone()))
                            .with_error_message(None)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            UpdateFeaturesResponse::default()
                .with_error_message(None)
                .with_results(results)
        }
        Err(error) => {
            tracing::warn!(%error, "UpdateFeatures refused");
            let code = match error {
                FeatureError::Invalid(_) => ResponseError::InvalidUpdateVersion,
                _ => ResponseError::FeatureUpdateFailed,
            };
            failed(code, Some(error.to_string()))
        }
    }
}

/// The request's updates; v0 says a downgrade with AllowDowngrade, later versions with the
/// upgrade type. A feature named twice is refused.
fn updates(request: &UpdateFeaturesRequest, version: i16) -> Result<Vec<FeatureUpdate>, String> {
    let mut seen = BTreeSet::new();
    request
        .feature_updates
        .iter()
        .map(|u| {
            let name = u.feature.to_string();
            if !seen.insert(name.clone()) {
                return Err(format!(
                    "The request updates feature {name} more than once."
                ));
            }
            let upgrade = match version {
                0 if u.allow_downgrade => UpgradeType::SafeDowngrade,
                0 => UpgradeType::Upgrade,
                _ => UpgradeType::from_code(u.upgrade_type),
            };
            Ok(FeatureUpdate {
                name,
                level: u.max_version_level,
                upgrade,
            })
        })
        .collect()
}

/// A refusal of the whole request: the top-level error, no per-feature results (Kafka's).
pub(super) fn failed(code: ResponseError, message: Option<String>) -> UpdateFeaturesResponse {
    UpdateFeaturesResponse::default()
        .with_error_code(code.code())
        .with_error_message(message.map(StrBytes::from_string))
}
