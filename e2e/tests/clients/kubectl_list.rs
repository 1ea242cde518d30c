//! Real kubectl applying `kind: List` files, which it validates itself against the server's
//! OpenAPI v2 document before sending each item: a List of several kinds is applied, as is
//! what `kubectl get -o yaml` prints, and unknown fields are refused under strict validation
//! (a custom resource's by kubectl from the document, a built-in kind's by the server).

use super::cluster::Cluster;
use super::kubectl::write;

const NS: &str = "default";

const LIST: &str = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings}
  data: {mode: fast}
- apiVersion: v1
  kind: Service
  metadata: {name: web}
  spec:
    selector: {app: web}
    ports: [{port: 80, targetPort: 8080}]
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web}
  spec:
    replicas: 2
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec: {containers: [{name: web, image: registry.example/web:1}]}
- apiVersion: tributary.dev/v1alpha1
  kind: KafkaTopic
  metadata: {name: orders}
  spec: {clusterRef: demo, partitions: 3, replicationFactor: 1}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_a_list_of_several_kinds_and_what_get_prints_as_a_list() {
    let c = Cluster::start(NS).await;
    c.kubectl_ok(&["apply", "-f", "crds/"]).await;
    let list = write(&c, "list.yaml", LIST);
    let out = c.kubectl_ok(&["apply", "-f", &list]).await;
    for applied in [
        "configmap/settings created",
        "service/web created",
        "deployment.apps/web created",
        "kafkatopic.tributary.dev/orders created",
    ] {
        assert!(out.contains(applied), "{out}");
    }
    let got = c
        .kubectl_ok(&[
            "get",
            "cm/settings",
            "svc/web",
            "deploy/web",
            "kt/orders",
            "-o",
            "jsonpath={range .items[*]}{.kind}/{.metadata.name} {end}",
        ])
        .await;
    assert_eq!(
        got.trim(),
        "ConfigMap/settings Service/web Deployment/web KafkaTopic/orders"
    );
    // What `kubectl get deploy,svc -o yaml` prints applies back, on a real cluster too.
    let exported = c.kubectl_ok(&["get", "deploy,svc,kt", "-o", "yaml"]).await;
    assert!(exported.contains("kind: List"), "{exported}");
    let path = write(&c, "exported.yaml", &exported);
    c.kubectl_ok(&["delete", "deploy/web", "kt/orders"]).await;
    let out = c.kubectl_ok(&["apply", "-f", &path]).await;
    assert!(
        out.contains("deployment.apps/web created")
            && out.contains("kafkatopic.tributary.dev/orders created")
            && out.contains("service/web"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_refuses_unknown_fields_in_a_list_under_strict_validation() {
    let c = Cluster::start(NS).await;
    c.kubectl_ok(&["apply", "-f", "crds/"]).await;
    let topic = LIST.replace("replicationFactor: 1}", "replicationFactor: 1, bogus: 1}");
    let path = write(&c, "topic.yaml", &topic);
    let refused = c.kubectl(&["apply", "-f", &path]).await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused.stderr.contains(
            "ValidationError(KafkaTopic.spec): unknown field \"bogus\" in dev.tributary.v1alpha1.KafkaTopic.spec"
        ),
        "{}",
        refused.stderr
    );
    // kubectl validated the whole List before sending any of it.
    let none = c.kubectl_ok(&["get", "cm,svc,deploy", "-o", "name"]).await;
    assert!(
        !none.contains("settings") && !none.contains("web"),
        "{none}"
    );
    // Without validation kubectl sends it and the server drops the unknown field.
    c.kubectl_ok(&["apply", "--validate=false", "-f", &path])
        .await;
    let deployment = LIST.replace("replicas: 2", "replicas: 2\n    bogus: 1");
    let path = write(&c, "deployment.yaml", &deployment);
    let refused = c.kubectl(&["apply", "-f", &path]).await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("strict decoding error: unknown field \"spec.bogus\""),
        "{}",
        refused.stderr
    );
}
