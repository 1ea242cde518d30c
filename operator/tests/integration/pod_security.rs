//! Pod Security: the chart's operator pod (every optional value on) and the broker and
//! registry pods the operator renders for a KafkaCluster with every feature on satisfy the
//! `restricted` Pod Security Standard, as the local API server's admission evaluates it
//! (`tributary_e2e::apiserver::podsecurity`), so they run in namespaces labelled
//! `pod-security.kubernetes.io/enforce: restricted`.

use serde::Deserialize;
use serde_json::Value;
use tributary_e2e::apiserver::podsecurity::{evaluate, Level, Violation};

use super::chart::full_values_text;
use super::manifest_scan::operator_objects;

/// `(kind/name, pod metadata, pod spec)` of every workload among the YAML documents.
fn pod_templates(yaml: &str) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("invalid YAML: {e}"));
        let kind = v["kind"].as_str().unwrap_or_default();
        let template = match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                &v["spec"]["template"]
            }
            "CronJob" => &v["spec"]["jobTemplate"]["spec"]["template"],
            "Pod" => &v,
            _ => continue,
        };
        let name = format!(
            "{kind}/{}",
            v["metadata"]["name"].as_str().unwrap_or_default()
        );
        out.push((name, template["metadata"].clone(), template["spec"].clone()));
    }
    out
}

/// Each workload's `restricted` violations, Kubernetes-worded (empty when it passes).
fn restricted_violations(yaml: &str) -> Vec<(String, String)> {
    pod_templates(yaml)
        .into_iter()
        .map(|(name, meta, spec)| {
            (
                name,
                Violation::join(&evaluate(Level::Restricted, &meta, &spec)),
            )
        })
        .collect()
}

#[test]
fn the_charts_operator_pod_is_restricted_with_every_value_on() {
    let found = restricted_violations(&full_values_text());
    assert!(
        found
            .iter()
            .any(|(name, _)| name.starts_with("Deployment/")),
        "the chart renders no operator Deployment: {found:?}"
    );
    let bad: Vec<_> = found.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(
        bad.is_empty(),
        "violates PodSecurity \"restricted:latest\": {bad:?}"
    );
}

#[test]
fn the_operators_broker_and_registry_pods_are_restricted_with_every_feature_on() {
    let found = restricted_violations(&operator_objects());
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.starts_with("StatefulSet/")),
        "no broker StatefulSet: {names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("Deployment/")),
        "no registry Deployment: {names:?}"
    );
    let bad: Vec<_> = found.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(
        bad.is_empty(),
        "violates PodSecurity \"restricted:latest\": {bad:?}"
    );
}

#[test]
fn a_pod_without_hardening_is_found_in_yaml() {
    let yaml = "kind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n";
    let found = restricted_violations(yaml);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].1.starts_with("allowPrivilegeEscalation != false"),
        "{found:?}"
    );
}
