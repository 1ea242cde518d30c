//! Start-up: the operator applies its own CRDs when asked (so upgrading it upgrades them), and
//! an unreachable API server keeps it waiting and not ready instead of crashing it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, CustomResourceExt};
use serde_json::Value;
use tokio::sync::watch;
use tributary_crds::{KafkaCluster, KafkaPartition, KafkaSchema, KafkaTopic, KafkaUser};
use tributary_e2e::FakeApiServer;
use tributary_operator::context::Settings;
use tributary_operator::metrics::Metrics;

const NS: &str = "tributary-system";
const DEADLINE: Duration = Duration::from_secs(30);
const CRDS: &str = "apiextensions.k8s.io/customresourcedefinitions";

/// Polls `f` until it is true, failing the test with `what` after the deadline.
async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tributary_e2e::wait_until(what, DEADLINE, || {
        let done = f();
        async move { done.await.then_some(()) }
    })
    .await
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new().unwrap_or_else(|e| panic!("metrics: {e}")))
}

fn settings(apply_crds: bool) -> Settings {
    let mut s = Settings::new("operator-0", NS);
    s.renew_interval = Duration::from_millis(200);
    s.lease_duration = Duration::from_secs(2);
    s.apply_crds = apply_crds;
    s
}

fn spec_of(crd: &CustomResourceDefinition) -> Value {
    serde_json::to_value(&crd.spec).unwrap_or_else(|e| panic!("encode CRD spec: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_crds_replaces_a_stale_crd_and_installs_a_missing_one_before_leading() {
    let server = FakeApiServer::new();
    server.create_namespace(NS);
    let client = server.client(NS);
    // An older release's KafkaCluster CRD: a schema that only knew `spec`, no printer columns.
    let mut stale = KafkaCluster::crd();
    stale.spec.versions[0].schema = Some(
        serde_json::from_value(
            serde_json::json!({"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}),
        )
        .unwrap_or_else(|e| panic!("stale schema: {e}")),
    );
    stale.spec.versions[0].additional_printer_columns = None;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if let Err(e) = crds.create(&PostParams::default(), &stale).await {
        panic!("create stale CRD: {e}");
    }

    let metrics = metrics();
    let (stop_tx, stop_rx) = watch::channel(false);
    let operator = tokio::spawn(tributary_operator::run::run(
        client.clone(),
        settings(true),
        metrics.clone(),
        stop_rx,
    ));
    wait_until("the operator to lead", || async {
        metrics.is_ready() && metrics.leader.get() == 1
    })
    .await;

    for want in [
        KafkaCluster::crd(),
        KafkaTopic::crd(),
        KafkaPartition::crd(),
        KafkaUser::crd(),
        KafkaSchema::crd(),
    ] {
        let name = want.metadata.name.clone().unwrap_or_default();
        let stored = server
            .get(CRDS, "", &name)
            .unwrap_or_else(|| panic!("CRD {name} was not applied"));
        assert_eq!(stored["spec"], spec_of(&want), "CRD {name} spec");
    }
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DEADLINE, operator).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!("operator did not stop cleanly: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_apply_crds_the_operator_never_writes_crds() {
    let server = FakeApiServer::new();
    server.create_namespace(NS);
    // Installed by someone else (helm's crds/), as the operator needs them to start.
    let crds: Api<CustomResourceDefinition> = Api::all(server.client(NS));
    let by_helm = PostParams {
        field_manager: Some("helm".into()),
        ..PostParams::default()
    };
    for crd in [
        KafkaCluster::crd(),
        KafkaTopic::crd(),
        KafkaPartition::crd(),
        KafkaUser::crd(),
        KafkaSchema::crd(),
    ] {
        if let Err(e) = crds.create(&by_helm, &crd).await {
            panic!("install CRD: {e}");
        }
    }
    let metrics = metrics();
    let (stop_tx, stop_rx) = watch::channel(false);
    let operator = tokio::spawn(tributary_operator::run::run(
        server.client(NS),
        settings(false),
        metrics.clone(),
        stop_rx,
    ));
    wait_until("the operator to lead", || async {
        metrics.leader.get() == 1
    })
    .await;
    for name in [
        "kafkaclusters.tributary.dev",
        "kafkatopics.tributary.dev",
        "kafkapartitions.tributary.dev",
        "kafkausers.tributary.dev",
        "kafkaschemas.tributary.dev",
    ] {
        let crd = server
            .get(CRDS, "", name)
            .unwrap_or_else(|| panic!("{name} is gone"));
        let writers: Vec<&str> = crd["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["subresource"].is_null())
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(writers, vec!["helm"], "{name} written without --apply-crds");
    }
    // Every controller the operator runs has its reconcile series, at zero before its first
    // reconcile.
    wait_until("every controller's reconcile series", || async {
        let text = metrics.encode().unwrap_or_default();
        ["kafkacluster", "kafkatopic", "kafkauser", "kafkaschema"]
            .iter()
            .all(|c| {
                text.contains(&format!(
                    "tributary_operator_reconciles_total{{controller=\"{c}\"}}"
                ))
            })
    })
    .await;
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DEADLINE, operator).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!("operator did not stop cleanly: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_api_keeps_the_operator_waiting_and_unready_until_shutdown() {
    // A port nothing listens on: every API call fails to connect.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("bind a probe port: {e}"));
        l.local_addr()
            .unwrap_or_else(|e| panic!("local addr: {e}"))
            .port()
    };
    let url = format!("http://127.0.0.1:{port}")
        .parse()
        .unwrap_or_else(|e| panic!("url: {e}"));
    let client =
        kube::Client::try_from(kube::Config::new(url)).unwrap_or_else(|e| panic!("client: {e}"));

    let metrics = metrics();
    let (stop_tx, stop_rx) = watch::channel(false);
    let operator = tokio::spawn(tributary_operator::run::run(
        client,
        settings(true),
        metrics.clone(),
        stop_rx,
    ));
    // Several retries fit in this window (500 ms, 1 s, 2 s backoff); the operator must neither
    // exit nor claim readiness.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !operator.is_finished(),
        "operator exited while the API was unreachable"
    );
    assert!(!metrics.is_ready(), "ready without an API server");
    assert_eq!(metrics.leader.get(), 0);
    assert!(
        metrics
            .encode()
            .unwrap_or_default()
            .contains("tributary_operator_ready 0"),
        "ready gauge should read 0"
    );

    let _ = stop_tx.send(true);
    match tokio::time::timeout(Duration::from_secs(5), operator).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!("operator did not stop on shutdown while waiting: {other:?}"),
    }
}
