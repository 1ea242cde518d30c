//! Real kubectl: apply (client-side and server-side), get with printer columns, describe,
//! patch, wait, get --watch, delete, and refusals of invalid objects.

use std::process::Stdio;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::cluster::{row, succeeded, tool, Cluster};
use crate::support::{next_line, publish_event, wait_until, DEADLINE};

const NS: &str = "default";

fn kafka(client: &kube::Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("tributary.dev", "v1alpha1", kind);
    Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// Writes the status the operator would for KafkaCluster `demo`.
async fn cluster_status(c: &Cluster, ready: bool) {
    let status = json!({"status": {
        "readyBrokers": if ready { 3 } else { 1 },
        "bootstrapServers": "demo-bootstrap.default.svc:9092",
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
            "reason": if ready { "AllBrokersReady" } else { "BrokersStarting" }, "message": "",
            "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }});
    kafka(&c.client, "KafkaCluster", "kafkaclusters")
        .patch_status("demo", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status");
}

async fn with_examples() -> Cluster {
    let c = Cluster::start(NS).await;
    c.kubectl_ok(&["apply", "-f", "crds/"]).await;
    c.kubectl_ok(&[
        "apply",
        "-f",
        "examples/kafka-cluster.yaml",
        "-f",
        "examples/kafka-topic.yaml",
    ])
    .await;
    c
}

/// Writes a manifest into the test's HOME and returns its path.
pub(crate) fn write(c: &Cluster, name: &str, text: &str) -> String {
    let path = c.home.path().join(name);
    std::fs::write(&path, text).expect("write manifest");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_crds_and_examples_and_prints_their_printer_columns() {
    let c = with_examples().await;
    cluster_status(&c, true).await;
    let out = c.kubectl_ok(&["get", "kafkaclusters,kafkatopics"]).await;
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header
            .split_whitespace()
            .eq(["NAME", "BROKERS", "READY", "STATUS", "AGE"]),
        "{out}"
    );
    assert_eq!(
        &row(&out, "kafkacluster.tributary.dev/demo")[1..4],
        ["3", "3", "AllBrokersReady"]
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().eq([
            "NAME",
            "CLUSTER",
            "PARTITIONS",
            "REPLICATION",
            "FACTOR",
            "LEADERLESS",
            "UNDER",
            "REPLICATED",
            "PHASE",
            "AGE"
        ])),
        "{out}"
    );
    assert_eq!(
        &row(&out, "kafkatopic.tributary.dev/orders")[1..4],
        ["demo", "12", "3"]
    );
    let wide = c.kubectl_ok(&["get", "kc", "demo", "-o", "wide"]).await;
    assert!(
        wide.contains("BOOTSTRAP") && wide.contains("demo-bootstrap.default.svc:9092"),
        "{wide}"
    );
    let name = c.kubectl_ok(&["get", "kt", "-o", "name"]).await;
    assert_eq!(name.trim(), "kafkatopic.tributary.dev/orders");
    let jsonpath = c
        .kubectl_ok(&[
            "get",
            "kafkatopic",
            "orders",
            "-o",
            "jsonpath={.spec.deletionPolicy}/{.spec.config.cleanup\\.policy}",
        ])
        .await;
    assert_eq!(jsonpath, "Delete/delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_owns_fields_and_reports_conflicts_until_forced() {
    let c = Cluster::start(NS).await;
    c.kubectl_ok(&["apply", "--server-side", "-f", "crds/"])
        .await;
    c.kubectl_ok(&["apply", "--server-side", "-f", "examples/kafka-topic.yaml"])
        .await;
    let managers = c
        .kubectl_ok(&[
            "get",
            "kt",
            "orders",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}:{.metadata.managedFields[*].operation}",
        ])
        .await;
    assert_eq!(managers, "kubectl:Apply");
    c.kubectl_ok(&[
        "patch",
        "kt",
        "orders",
        "--type=merge",
        "-p",
        r#"{"spec":{"partitions":20}}"#,
    ])
    .await;
    let grown = std::fs::read_to_string(
        tributary_e2e::tools::repo_root().join("examples/kafka-topic.yaml"),
    )
    .expect("example")
    .replace("partitions: 12", "partitions: 24");
    let path = write(&c, "topic.yaml", &grown);
    let conflict = c.kubectl(&["apply", "--server-side", "-f", &path]).await;
    assert!(!conflict.ok);
    assert!(
        conflict
            .stderr
            .contains("Apply failed with 1 conflict: conflict with \"kubectl-patch\"")
            && conflict.stderr.contains(".spec.partitions"),
        "{}",
        conflict.stderr
    );
    c.kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", &path])
        .await;
    let partitions = c
        .kubectl_ok(&["get", "kt", "orders", "-o", "jsonpath={.spec.partitions}"])
        .await;
    assert_eq!(partitions, "24");
    // Client-side apply of the cluster, then migrating it to server-side apply.
    c.kubectl_ok(&["apply", "-f", "examples/kafka-cluster.yaml"])
        .await;
    c.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        "examples/kafka-cluster.yaml",
    ])
    .await;
    let managers = c
        .kubectl_ok(&[
            "get",
            "kc",
            "demo",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert!(
        managers.split_whitespace().any(|m| m == "kubectl"),
        "{managers}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_is_refused_invalid_kafka_topics_and_clusters_as_a_real_api_server_refuses_them() {
    let c = with_examples().await;
    let topic = |spec: &str| {
        format!("apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: bad}}\nspec: {spec}\n")
    };
    let cases = [
        (topic("{clusterRef: demo, partitions: 0, replicationFactor: 1}"),
         "spec.partitions: Invalid value: 0: spec.partitions in body should be greater than or equal to 1"),
        (topic("{clusterRef: demo, partitions: 1, replicationFactor: 1, config: {\"log.bogus\": \"1\"}}"),
         "spec.config: Invalid value: \"object\": unsupported topic config key"),
        (topic("{clusterRef: demo, partitions: 1, replicationFactor: 1, surprise: true}"),
         "strict decoding error: unknown field \"spec.surprise\""),
        (topic("{clusterRef: demo, partitions: 1, replicationFactor: 1, deletionPolicy: Shred}"),
         "spec.deletionPolicy: Unsupported value: \"Shred\": supported values: \"Delete\", \"Retain\""),
        ("apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {name: bad}\nspec: {brokers: 3, config: {\"log.bogus\": \"1\"}}\n".to_owned(),
         "The KafkaCluster \"bad\" is invalid"),
        ("apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {name: bad}\nspec: {brokers: 0}\n".to_owned(),
         "spec.brokers: Invalid value: 0: spec.brokers in body should be greater than or equal to 1"),
    ];
    for (i, (manifest, want)) in cases.iter().enumerate() {
        let path = write(&c, &format!("bad-{i}.yaml"), manifest);
        let out = c.kubectl(&["apply", "-f", &path]).await;
        assert!(
            !out.ok && out.stderr.contains(want),
            "case {i}: want {want:?}, got:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    // Transition rules: partitions only grow, on update.
    let shrink = c
        .kubectl(&[
            "patch",
            "kt",
            "orders",
            "--type=merge",
            "-p",
            r#"{"spec":{"partitions":2}}"#,
        ])
        .await;
    assert!(
        !shrink.ok && shrink.stderr.contains("partitions can only increase"),
        "{}",
        shrink.stderr
    );
    let none = c.kubectl_ok(&["get", "kt,kc", "-o", "name"]).await;
    assert!(!none.contains("/bad"), "nothing invalid was stored: {none}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_shows_a_kafka_cluster_with_its_events() {
    let c = with_examples().await;
    let cluster = kafka(&c.client, "KafkaCluster", "kafkaclusters")
        .get("demo")
        .await
        .expect("cluster");
    let kind = GroupVersionKind::gvk("tributary.dev", "v1alpha1", "KafkaCluster");
    let reference = cluster.object_ref(&ApiResource::from_gvk_with_plural(&kind, "kafkaclusters"));
    publish_event(
        &c.client,
        &reference,
        kube::runtime::events::EventType::Warning,
        "BrokersStarting",
        "1 of 3 brokers ready",
    )
    .await;
    let out = c.kubectl_ok(&["describe", "kafkacluster", "demo"]).await;
    assert!(
        out.contains("Name:         demo") && out.contains("Brokers:"),
        "{out}"
    );
    let events = out.split("Events:").nth(1).unwrap_or_default();
    assert!(
        events.contains("Warning")
            && events.contains("BrokersStarting")
            && events.contains("1 of 3 brokers ready"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patch_merges_a_deployments_containers_by_name() {
    let c = Cluster::start(NS).await;
    let manifest = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
      "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]}, {"name": "side", "image": "side:1"}]}}}}"#;
    let path = write(&c, "web.json", manifest);
    c.kubectl_ok(&["apply", "-f", &path]).await;
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"app:2"}]}}}}"#,
    ])
    .await;
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#,
    ])
    .await;
    let d: Deployment = Api::namespaced(c.client.clone(), NS)
        .get("web")
        .await
        .expect("deployment");
    let images: Vec<String> = d
        .spec
        .template
        .spec
        .map(|s| s.containers.into_iter().filter_map(|c| c.image).collect())
        .unwrap_or_default();
    assert_eq!(images, vec!["app:2", "side:1"]);
    assert_eq!(d.spec.replicas, Some(2));
    // Re-applying the manifest restores the image kubectl applied and keeps the replicas it never set.
    c.kubectl_ok(&["apply", "-f", &path]).await;
    let image = c
        .kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image} {.spec.replicas}",
        ])
        .await;
    assert_eq!(image, "app:1 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_returns_once_the_cluster_reports_ready() {
    let c = with_examples().await;
    cluster_status(&c, false).await;
    let wait = c
        .command(&tool(tributary_e2e::tools::kubectl()))
        .args([
            "wait",
            "--for=condition=Ready",
            "kafkacluster/demo",
            "--timeout=60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl wait");
    cluster_status(&c, true).await;
    let out = tokio::time::timeout(DEADLINE, wait.wait_with_output())
        .await
        .expect("kubectl wait returns")
        .expect("output");
    assert_eq!(
        succeeded(&out),
        "kafkacluster.tributary.dev/demo condition met"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_every_change_to_the_topics() {
    let c = with_examples().await;
    let mut watch = c
        .command(&tool(tributary_e2e::tools::kubectl()))
        .args(["get", "kafkatopics", "--watch", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let topics = kafka(&c.client, "KafkaTopic", "kafkatopics");
    let first = next_line(&mut lines).await;
    assert!(
        first.split_whitespace().eq([
            "EVENT",
            "NAME",
            "CLUSTER",
            "PARTITIONS",
            "REPLICATION",
            "FACTOR",
            "LEADERLESS",
            "UNDER",
            "REPLICATED",
            "PHASE",
            "AGE"
        ]),
        "{first}"
    );
    assert_eq!(
        next_line(&mut lines)
            .await
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>(),
        ["ADDED", "orders", "demo", "12"]
    );
    for partitions in [13, 14] {
        let grow = json!({"spec": {"partitions": partitions}});
        topics
            .patch("orders", &PatchParams::default(), &Patch::Merge(&grow))
            .await
            .expect("grow");
        let line = next_line(&mut lines).await;
        assert_eq!(
            line.split_whitespace().take(4).collect::<Vec<_>>(),
            ["MODIFIED", "orders", "demo", &partitions.to_string()],
            "{line}"
        );
    }
    topics
        .delete("orders", &Default::default())
        .await
        .expect("delete");
    assert!(next_line(&mut lines).await.starts_with("DELETED"));
    let _ = watch.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_waits_for_finalizers_and_removes_what_it_names() {
    let c = with_examples().await;
    let topics = kafka(&c.client, "KafkaTopic", "kafkatopics");
    let hold = json!({"metadata": {"finalizers": ["tributary.dev/topic-data"]}});
    topics
        .patch("orders", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .expect("finalizer");
    let delete = c
        .command(&tool(tributary_e2e::tools::kubectl()))
        .args(["delete", "kafkatopic", "orders", "--timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl delete");
    let deleting = wait_until("the topic to be marked deleted", || async {
        topics
            .get("orders")
            .await
            .ok()
            .filter(|t| t.metadata.deletion_timestamp.is_some())
    })
    .await;
    assert!(deleting.metadata.finalizers.is_some());
    let release = json!({"metadata": {"finalizers": null}});
    topics
        .patch("orders", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .expect("release");
    let out = tokio::time::timeout(DEADLINE, delete.wait_with_output())
        .await
        .expect("returns")
        .expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("kafkatopic.tributary.dev \"orders\" deleted"));
    c.kubectl_ok(&["delete", "-f", "examples/kafka-cluster.yaml"])
        .await;
    c.kubectl_ok(&["delete", "-f", "crds/"]).await;
    let left: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "crds", "-o", "json"]).await).expect("json");
    let names: Vec<&str> = left["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with("tributary.dev")),
        "{names:?}"
    );
}
