//! missing rule: the chart rendered with one rule the operator needs taken out of its
//! ClusterRole (create, get, ... on ServiceAccounts) and applied as the chart is. The operator
//! starts and leads, but its start-up review of its own rules (SelfSubjectRulesReview) names
//! what it lacks in its log and in the KafkaCluster's `Authorized` condition, and the cluster
//! never becomes Ready: no StatefulSet, so no broker, is ever made.

use serde_json::{json, Value};

use crate::env::{condition, wait, Driver, Env, OPERATOR_PODS, RELEASE, RELEASE_NS};

use super::{kafka_cluster, operator_pods, ONE_BROKER, REACT};

const NS: &str = "missing-rule";
/// The resource whose rule the operator's ClusterRole loses.
const DROPPED: &str = "serviceaccounts";

/// The chart's objects as `helm template` renders them with its defaults (the e2e values
/// also render monitoring objects, whose CRDs a fresh cluster lacks).
async fn rendered(env: &Env) -> Vec<Value> {
    let yaml = env
        .helm_ok(&[
            "template",
            RELEASE,
            "charts/tributary",
            "--namespace",
            RELEASE_NS,
        ])
        .await;
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("helm printed YAML"))
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

/// Removes from the operator's ClusterRole the one rule on [`DROPPED`].
fn drop_rule(objects: &mut [Value]) {
    let role = objects
        .iter_mut()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "tributary-operator")
        .expect("the chart renders the operator's ClusterRole");
    let rules = role["rules"]
        .as_array_mut()
        .expect("the ClusterRole has rules");
    let before = rules.len();
    rules.retain(|r| r["resources"] != json!([DROPPED]));
    assert_eq!(rules.len() + 1, before, "one rule on {DROPPED} was dropped");
}

pub(crate) async fn run(driver: Driver) {
    let env = Env::fresh(driver).await;
    let mut objects = rendered(&env).await;
    drop_rule(&mut objects);
    env.kubectl_ok(&["create", "namespace", RELEASE_NS]).await;
    let documents: Vec<String> = objects.iter().map(Value::to_string).collect();
    let applied = env.apply_result(&documents.join("\n---\n")).await;
    assert!(
        applied.ok,
        "kubectl apply of the chart failed: {}",
        applied.stderr
    );
    let pods = operator_pods(&env, 2).await;
    assert!(!pods.is_empty());

    let namespace = env.namespace(NS).await;
    env.apply(&kafka_cluster(NS, "unauthorized", ONE_BROKER))
        .await;
    let message = wait(
        "the KafkaCluster's Authorized condition to name what the operator lacks",
        REACT,
        || async {
            let obj = env
                .get_json(&["kafkacluster", "unauthorized", "-n", NS])
                .await;
            let c = condition(&obj, "Authorized")?;
            (c["status"] == "False" && c["reason"] == "MissingPermissions")
                .then(|| c["message"].as_str().unwrap_or_default().to_owned())
        },
    )
    .await;
    for verb in ["get", "create", "patch", "delete"] {
        assert!(
            message.contains(&format!("{verb} {DROPPED}")),
            "{verb} {DROPPED} named: {message}"
        );
    }
    assert!(
        !message.contains("statefulsets"),
        "only what is missing is named: {message}"
    );

    let cluster = env
        .get_json(&["kafkacluster", "unauthorized", "-n", NS])
        .await;
    assert_ne!(
        condition(&cluster, "Ready").map(|c| c["status"].clone()),
        Some("True".into()),
        "{cluster}"
    );
    let sets = env
        .kubectl_ok(&["get", "statefulsets", "-n", NS, "-o", "name"])
        .await;
    assert!(sets.trim().is_empty(), "no brokers are made: {sets}");

    let logs = env
        .kubectl_ok(&["logs", "-n", RELEASE_NS, "-l", OPERATOR_PODS, "--tail=-1"])
        .await;
    let named = logs
        .lines()
        .find(|l| l.contains("lacks permissions it needs"))
        .unwrap_or_else(|| panic!("the operator logs what it lacks:\n{logs}"));
    assert!(
        named.contains(&format!("create {DROPPED}")),
        "the log names the permission: {named}"
    );
    drop(namespace);
    env.stop().await;
}
