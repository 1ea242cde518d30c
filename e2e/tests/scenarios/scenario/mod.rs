//! The scenarios, each an `async fn run(driver)` that asks for its environment. Shared helpers
//! for what several of them read (the operator's Lease, events, broker pods) live here.

pub(crate) mod assignments;
pub(crate) mod bad_input;
pub(crate) mod cluster;
pub(crate) mod durability;
pub(crate) mod external;
pub(crate) mod failover;
pub(crate) mod failure;
pub(crate) mod freeze;
pub(crate) mod fresh_topic;
pub(crate) mod install;
pub(crate) mod missing_rule;
pub(crate) mod prometheus;
pub(crate) mod reassignment;
pub(crate) mod replicated;
pub(crate) mod replication_factor;
pub(crate) mod rolling;
pub(crate) mod scaling;
pub(crate) mod schemas;
pub(crate) mod security;
pub(crate) mod timeline;
pub(crate) mod topics;

use std::time::Duration;

use serde_json::Value;

use crate::env::{wait, Env, OPERATOR_LEASE, RELEASE_NS};

/// How long a cluster may take to become Ready (kind pulls nothing, but starts real pods).
pub(crate) const READY: Duration = Duration::from_secs(180);
/// How long the operator may take to react to a change.
pub(crate) const REACT: Duration = Duration::from_secs(60);

/// The holder of the operator's leader Lease, if it has one.
pub(crate) async fn lease_holder(env: &Env) -> Option<String> {
    let lease = env
        .kubectl(&[
            "get",
            "lease",
            OPERATOR_LEASE,
            "-n",
            RELEASE_NS,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .await;
    let holder = lease.stdout.trim().to_owned();
    (lease.ok && !holder.is_empty()).then_some(holder)
}

/// The holder of the operator's leader Lease, once one of `candidates` holds it.
pub(crate) async fn leader(env: &Env, candidates: &[String]) -> String {
    wait(
        "an operator replica to hold the leader Lease",
        REACT,
        || async { lease_holder(env).await.filter(|h| candidates.contains(h)) },
    )
    .await
}

/// A KafkaCluster manifest: `name` in `namespace` with `spec` (YAML).
pub(crate) fn kafka_cluster(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n"
    )
}

/// The spec of a one-broker cluster whose claims go with it.
pub(crate) const ONE_BROKER: &str = "{brokers: 1, storage: {size: 1Gi, deleteClaim: true}}";

/// Waits (`kubectl wait`) until KafkaCluster `namespace/name` is Ready; returns it.
pub(crate) async fn ready(env: &Env, namespace: &str, name: &str) -> Value {
    let timeout = format!("--timeout={}s", READY.as_secs());
    let resource = format!("kafkacluster/{name}");
    env.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &resource,
        "-n",
        namespace,
        &timeout,
    ])
    .await;
    env.get_json(&["kafkacluster", name, "-n", namespace]).await
}

/// The names of the operator's pods, once `n` are Running and Ready.
pub(crate) async fn operator_pods(env: &Env, n: usize) -> Vec<Value> {
    wait(&format!("{n} ready operator pods"), REACT, || async {
        let pods: Vec<Value> = env
            .pods(RELEASE_NS, crate::env::OPERATOR_PODS)
            .await
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        let ready = pods.iter().all(|p| {
            p["status"]["phase"] == "Running"
                && crate::env::condition(p, "Ready").is_some_and(|c| c["status"] == "True")
        });
        (pods.len() == n && ready).then_some(pods)
    })
    .await
}

/// A pod's name.
pub(crate) fn name(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A pod's IP.
pub(crate) fn pod_ip(pod: &Value) -> String {
    pod["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The Events of `namespace` about the object of `kind` named `name`: (type, reason, message).
pub(crate) async fn events(
    env: &Env,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Vec<(String, String, String)> {
    let list = env.get_json(&["events", "-n", namespace]).await;
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["kind"] == kind && e["involvedObject"]["name"] == name)
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("type"), s("reason"), s("message"))
        })
        .collect()
}
