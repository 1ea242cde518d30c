//! The real `tributary-operator` binary against the served API through a kubeconfig: it
//! takes its leader Lease, installs the CRDs (`--apply-crds`) and reconciles a KafkaCluster.

use std::process::Stdio;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::Api;
use serde_json::{json, Value};
use tributary_e2e::tools;

use super::cluster::Cluster;
use crate::support::{dynamic, wait_until};

const NS: &str = "tributary-system";

/// `target/debug/tributary-operator`, built first when missing or older than its sources
/// (`cargo test --workspace` and `make build` build it; `cargo test -p tributary-e2e` may not).
async fn operator_binary() -> std::path::PathBuf {
    tools::build_binaries().await.expect("build the operator");
    tools::debug_binary("tributary-operator")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_operator_takes_its_lease_installs_the_crds_and_reconciles_through_a_kubeconfig() {
    let bin = operator_binary().await;
    let c = Cluster::start(NS).await;
    let mut operator = c
        .command(&bin)
        .args([
            "--apply-crds",
            "--lease-duration-seconds",
            "4",
            "--renew-interval-seconds",
            "1",
        ])
        .env("POD_NAME", "operator-0")
        .env("POD_NAMESPACE", NS)
        .env("METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tributary-operator");

    let leases: Api<Lease> = Api::namespaced(c.client.clone(), NS);
    wait_until("the operator to hold its leader Lease", || async {
        let lease = leases.get_opt("tributary-operator").await.ok().flatten()?;
        let holder = lease.spec?.holder_identity?;
        (holder == "operator-0").then_some(())
    })
    .await;
    for name in ["kafkaclusters.tributary.dev", "kafkatopics.tributary.dev"] {
        let crd = wait_until(&format!("CRD {name}"), || async {
            c.server
                .get("apiextensions.k8s.io/customresourcedefinitions", "", name)
        })
        .await;
        let managers: Vec<&str> = crd["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert!(
            managers.contains(&"tributary-operator"),
            "{name} applied by the operator: {managers:?}"
        );
        let established = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c: &Value| c["type"] == "Established" && c["status"] == "True");
        assert!(established, "{name} established");
    }

    let gvk = GroupVersionKind::gvk("tributary.dev", "v1alpha1", "KafkaCluster");
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        c.client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, "kafkaclusters"),
    );
    let cluster = dynamic(
        json!({"apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "demo"}, "spec": {"brokers": 3}}),
    );
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .expect("create cluster");
    let sts: Api<StatefulSet> = Api::namespaced(c.client.clone(), NS);
    let sts = wait_until("the broker StatefulSet", || async {
        sts.get_opt("demo-broker").await.ok().flatten()
    })
    .await;
    assert_eq!(sts.spec.replicas, Some(3));
    let owner = sts.metadata.owner_references.unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.kind.as_str()), Some("KafkaCluster"));

    if let Some(id) = operator.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &id.to_string()])
            .status()
            .await;
    }
    let out = tokio::time::timeout(crate::support::DEADLINE, operator.wait())
        .await
        .expect("the operator stops on SIGTERM")
        .expect("wait");
    assert!(out.success(), "operator exit: {out:?}");
}
