//! A KafkaCluster's feature levels (KIP-584) against the in-memory Kubernetes API with the
//! whole operator running: `spec.features` is held in the document the brokers serve by (and
//! pinned there, so UpdateFeatures cannot move it), `status.features` follows that document
//! whoever changes it, unpinning keeps the level, and a feature not served is an invalid spec.

use crate::common;

use common::{
    create_cluster, merge_patch, metrics, setup, start_operator, wait_until, DEADLINE, NS,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;
use tributary_crds::cluster::FeaturesStatus;
use tributary_crds::conditions::DEGRADED;
use tributary_crds::features::FeatureLevels;
use tributary_crds::registration::{dynamic_configs_name, FEATURES_KEY};
use tributary_crds::KafkaCluster;

/// The feature levels document the brokers serve by, once it exists.
async fn document(client: &Client) -> Option<(ConfigMap, FeatureLevels)> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let cm = api.get_opt(&dynamic_configs_name("demo")).await.ok()??;
    let text = cm.data.as_ref()?.get(FEATURES_KEY)?.clone();
    let levels = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{FEATURES_KEY}: {e}"));
    Some((cm, levels))
}

/// The cluster's `status.features` once it matches `want`.
async fn status_becomes(client: &Client, want: &[(&str, i16)], what: &str) -> FeaturesStatus {
    let api: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    wait_until(what, || async {
        let features = api.get("demo").await.ok()?.status?.features?;
        let finalized: Vec<(&str, i16)> = features
            .finalized
            .iter()
            .map(|(name, level)| (name.as_str(), *level))
            .collect();
        (finalized == want).then_some(features)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_features_are_held_and_the_status_follows_the_brokers_levels() {
    let (_server, client) = setup().await;
    let (stop, operator) = start_operator(&client, metrics());
    create_cluster(
        &client,
        json!({ "brokers": 1, "features": { "share.version": 0 } }),
    )
    .await;
    let pinned = status_becomes(
        &client,
        &[("group.version", 1), ("transaction.version", 2)],
        "share.version 0 finalized from the spec",
    )
    .await;
    let (_, levels) = wait_until("the levels document", || document(&client)).await;
    assert_eq!(levels.level("share.version"), 0);
    assert!(levels.pinned.contains("share.version"), "{levels:?}");
    assert_eq!(pinned.epoch, levels.epoch);

    // A broker's UpdateFeatures writes the document; the status follows it.
    let (cm, levels) = wait_until("the levels document", || document(&client)).await;
    let mut next = cm.clone();
    let downgraded = levels.with(&[("group.version".to_owned(), 0)].into());
    next.data
        .get_or_insert_with(Default::default)
        .insert(FEATURES_KEY.to_owned(), json!(downgraded).to_string());
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    if let Err(e) = configmaps
        .replace(&dynamic_configs_name("demo"), &PostParams::default(), &next)
        .await
    {
        panic!("write the levels as a broker would: {e}");
    }
    let followed = status_becomes(
        &client,
        &[("transaction.version", 2)],
        "the status to follow the brokers' change",
    )
    .await;
    assert!(followed.epoch > pinned.epoch);

    // Unpinned, the feature keeps its level and UpdateFeatures may move it again.
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    merge_patch(
        &clusters,
        "demo",
        &json!({ "spec": { "features": null } }),
        "unpin",
    )
    .await;
    let unpinned = wait_until("share.version unpinned", || async {
        let (_, levels) = document(&client).await?;
        levels.pinned.is_empty().then_some(levels)
    })
    .await;
    assert_eq!(unpinned.level("share.version"), 0, "the level stays");

    // A feature this cluster does not serve is an invalid spec, and nothing changes.
    merge_patch(
        &clusters,
        "demo",
        &json!({ "spec": { "features": { "kraft.version": 1 } } }),
        "pin a feature not served",
    )
    .await;
    let reason = wait_until("the invalid spec reported", || async {
        let status = clusters.get("demo").await.ok()?.status?;
        status
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED && c.status == "True")
            .map(|c| c.message.clone())
    })
    .await;
    assert!(reason.contains("kraft.version"), "{reason}");
    let (_, after) = wait_until("the levels document", || document(&client)).await;
    assert_eq!(after, unpinned, "an invalid spec changes no level");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}
