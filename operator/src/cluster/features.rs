//! The cluster's feature levels (KIP-584): the operator holds the features a KafkaCluster's
//! `spec.features` names at their levels, as Strimzi runs `kafka-features.sh` for
//! `metadataVersion`, by writing the document the brokers serve by, and reports the levels
//! finalized (whoever set them) in the status.

use std::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;
use tributary_crds::cluster::FeaturesStatus;
use tributary_crds::features::{pin, FeatureLevels};
use tributary_crds::registration::{dynamic_configs_name, FEATURES_KEY};
use tributary_crds::KafkaCluster;

use crate::builders::Names;
use crate::context::Context;
use crate::shared_documents::{update_document, Updated};
use crate::Result;

/// Holds the features `cluster.spec.features` names (checked already) at their levels and
/// returns the levels finalized; `None` while the brokers' dynamic-configs ConfigMap does not
/// exist yet.
pub async fn finalize_features(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
) -> Result<Option<FeaturesStatus>> {
    let seen: Mutex<Option<FeatureLevels>> = Mutex::new(None);
    let hold = |document: &mut FeatureLevels| {
        let changed = pin(document, &cluster.spec.features);
        if let Ok(mut seen) = seen.lock() {
            *seen = Some(document.clone());
        }
        changed
    };
    let object = dynamic_configs_name(&names.cluster);
    let updated = update_document::<ConfigMap, FeatureLevels>(
        ctx,
        &names.namespace,
        &object,
        FEATURES_KEY,
        &hold,
    )
    .await?;
    if updated == Updated::Written {
        tracing::info!(cluster = %names.cluster, features = ?cluster.spec.features, "feature levels pinned");
    }
    let seen = seen.into_inner().ok().flatten();
    Ok(seen
        .filter(|_| updated != Updated::Missing)
        .map(|levels| status_of(&levels)))
}

/// The status of `levels`: the features switched on, with the epoch.
pub fn status_of(levels: &FeatureLevels) -> FeaturesStatus {
    FeaturesStatus {
        epoch: levels.epoch,
        finalized: levels
            .finalized()
            .into_iter()
            .filter(|&(_, level)| level > 0)
            .map(|(name, level)| (name.to_owned(), level))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_lists_the_features_switched_on() {
        let levels = FeatureLevels::default().with(&[("share.version".to_owned(), 0)].into());
        let status = status_of(&levels);
        assert_eq!(status.epoch, 1);
        assert_eq!(
            status.finalized,
            [
                ("group.version".to_owned(), 1),
                ("transaction.version".to_owned(), 2)
            ]
            .into()
        );
    }
}
