//! bad input: invalid KafkaClusters and KafkaTopics are refused by the CRDs' validation as a
//! real API server refuses them (schema, CEL rules, unknown fields), or, when only the operator
//! can tell, reported as a status condition and a Warning Event; nothing crashes.

use crate::env::{condition, wait, Driver, Env};
use tributary_e2e::clients::http_get;

use super::{events, kafka_cluster, operator_pods, pod_ip, REACT};

const NS: &str = "bad-input";

fn cluster(name: &str, spec: &str) -> String {
    kafka_cluster(NS, name, spec)
}

fn topic(name: &str, spec: &str) -> String {
    format!("apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: {name}, namespace: {NS}}}\nspec: {spec}\n")
}

/// Waits until `kind/name` has a condition `type_` with `reason`, and a Warning Event with it.
async fn reported(env: &Env, kind: &str, name: &str, type_: &str, reason: &str) {
    let resource = format!("{}/{name}", kind.to_lowercase());
    wait(&format!("{resource} to report {reason}"), REACT, || async {
        let obj = env.get_json(&[&resource, "-n", NS]).await;
        let c = condition(&obj, type_)?;
        (c["reason"] == reason).then_some(())
    })
    .await;
    wait(
        &format!("a Warning Event {reason} about {resource}"),
        REACT,
        || async {
            events(env, NS, kind, name)
                .await
                .iter()
                .any(|(t, r, _)| t == "Warning" && r == reason)
                .then_some(())
        },
    )
    .await;
}

pub(crate) async fn run(driver: Driver) {
    let env = Env::shared(driver).await;
    let _namespace = env.namespace(NS).await;
    let refused = [
        (
            topic(
                "zero",
                "{clusterRef: x, partitions: 0, replicationFactor: 1}",
            ),
            "spec.partitions",
        ),
        (cluster("none", "{brokers: 0}"), "spec.brokers"),
        (
            cluster(
                "twins",
                "{brokers: 1, listeners: [{name: PLAIN, port: 9092}, {name: PLAIN, port: 9093}]}",
            ),
            "listener names and ports must be unique",
        ),
        (
            cluster("derived", "{brokers: 1, config: {broker.id: \"7\"}}"),
            "unsupported broker config key",
        ),
        (
            cluster("typo", "{brokers: 1, brokerz: 2}"),
            "unknown field \"spec.brokerz\"",
        ),
    ];
    for (manifest, why) in &refused {
        let out = env.apply_result(manifest).await;
        assert!(!out.ok, "accepted:\n{manifest}");
        assert!(
            out.stderr.contains(why),
            "refusal of\n{manifest}\nsays:\n{}",
            out.stderr
        );
    }
    for (kind, name) in [
        ("kafkatopic", "zero"),
        ("kafkacluster", "none"),
        ("kafkacluster", "twins"),
        ("kafkacluster", "derived"),
        ("kafkacluster", "typo"),
    ] {
        let out = env.kubectl(&["get", kind, name, "-n", NS]).await;
        assert!(
            !out.ok && out.stderr.contains("NotFound"),
            "{kind}/{name} was stored"
        );
    }

    // Valid for the schema, invalid for the operator: conditions and Warning Events.
    env.apply(&cluster(
        "brotli",
        "{brokers: 1, config: {compression.type: brotli}}",
    ))
    .await;
    reported(&env, "KafkaCluster", "brotli", "Ready", "InvalidSpec").await;
    let sts = env
        .kubectl(&["get", "statefulset", "brotli-broker", "-n", NS])
        .await;
    assert!(!sts.ok, "no brokers for an invalid spec");
    env.apply(&topic(
        "orphan",
        "{clusterRef: nowhere, partitions: 1, replicationFactor: 1}",
    ))
    .await;
    reported(&env, "KafkaTopic", "orphan", "Ready", "ClusterNotFound").await;
    env.apply(&topic("unsafe", "{clusterRef: brotli, partitions: 1, replicationFactor: 1, config: {min.insync.replicas: \"2\"}}")).await;
    reported(&env, "KafkaTopic", "unsafe", "Ready", "InvalidConfig").await;
    let phase = env
        .kubectl_ok(&[
            "get",
            "kafkatopic",
            "unsafe",
            "-n",
            NS,
            "-o",
            "jsonpath={.status.phase}",
        ])
        .await;
    assert_eq!(phase, "InvalidConfig");

    // Nothing crashed: every operator replica still runs its first process and is healthy.
    for pod in operator_pods(&env, 2).await {
        assert_eq!(
            pod["status"]["containerStatuses"][0]["restartCount"], 0,
            "{}",
            pod["metadata"]["name"]
        );
        let (code, _) = http_get(&format!("{}:8080", pod_ip(&pod)), "/healthz")
            .await
            .expect("GET /healthz");
        assert_eq!(code, 200);
    }
}
