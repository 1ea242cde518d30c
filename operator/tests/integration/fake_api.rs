//! The in-memory API keeps the Kubernetes semantics the operator depends on, and operator
//! replicas elect exactly one leader through it.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt};
use serde_json::json;
use tributary_crds::KafkaTopic;
use tributary_e2e::FakeApiServer;
use tributary_operator::leader::LeaderElector;

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": { "k": value } }))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let server = FakeApiServer::new();
    server.create_namespace("ns");
    let api: Api<ConfigMap> = Api::namespaced(server.client("ns"), "ns");
    let created = api
        .create(&PostParams::default(), &cm("c", "1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut first = created.clone();
    first.data = Some([("k".to_owned(), "2".to_owned())].into());
    api.replace("c", &PostParams::default(), &first)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stale = created;
    stale.data = Some([("k".to_owned(), "3".to_owned())].into());
    match api.replace("c", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let rv = json!({ "metadata": { "resourceVersion": "1" }, "data": { "k": "4" } });
    assert!(api
        .patch("c", &PatchParams::default(), &Patch::Merge(&rv))
        .await
        .is_err());
}

#[tokio::test]
async fn status_is_a_separate_subresource_and_spec_changes_bump_generation() {
    let server = FakeApiServer::new();
    server.create_namespace("ns");
    let crds: Api<CustomResourceDefinition> = Api::all(server.client("ns"));
    crds.create(&PostParams::default(), &KafkaTopic::crd())
        .await
        .unwrap_or_else(|e| panic!("install the KafkaTopic CRD: {e}"));
    let api: Api<KafkaTopic> = Api::namespaced(server.client("ns"), "ns");
    let t: KafkaTopic = serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic", "metadata": { "name": "t" },
        "spec": { "clusterRef": "c", "partitions": 1, "replicationFactor": 1 },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &t)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Status through the main resource is ignored...
    let p = json!({ "status": { "leaderlessPartitions": 5 } });
    let after = api
        .patch("t", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(after.status.is_none());
    // ...and written through /status without touching generation.
    let after = api
        .patch_status("t", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.status.map(|s| s.leaderless_partitions), Some(5));
    assert_eq!(after.metadata.generation, Some(1));
    let grow = json!({ "spec": { "partitions": 2 } });
    let after = api
        .patch("t", &PatchParams::default(), &Patch::Merge(&grow))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.metadata.generation, Some(2));
}

#[tokio::test]
async fn one_leader_at_a_time_and_release_hands_over() {
    let server = FakeApiServer::new();
    server.create_namespace("ns");
    let a = LeaderElector::new(
        server.client("ns"),
        "ns",
        "op",
        "a",
        Duration::from_secs(30),
    );
    let b = LeaderElector::new(
        server.client("ns"),
        "ns",
        "op",
        "b",
        Duration::from_secs(30),
    );
    assert!(a
        .try_acquire_or_renew()
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(
        !b.try_acquire_or_renew()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "standby must not take a live lease"
    );
    assert!(
        a.try_acquire_or_renew()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "leader renews"
    );
    a.release().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        b.try_acquire_or_renew()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "standby takes over after release"
    );
    assert!(!a
        .try_acquire_or_renew()
        .await
        .unwrap_or_else(|e| panic!("{e}")));
}

#[tokio::test]
async fn a_restarted_replica_waits_out_its_old_lease_and_the_watching_standby_takes_it_first() {
    let server = FakeApiServer::new();
    server.create_namespace("ns");
    let elector = |id: &str| {
        LeaderElector::new(server.client("ns"), "ns", "op", id, Duration::from_secs(1))
            .standby_grace(Duration::from_millis(500))
    };
    async fn take(e: &LeaderElector) -> bool {
        e.try_acquire_or_renew()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
    let first = elector("a");
    let standby = elector("b");
    assert!(take(&first).await);
    assert!(!take(&standby).await, "the standby watches the live Lease");
    assert!(take(&first).await, "the leader renews");
    assert!(!take(&standby).await, "the standby sees the renewal");
    // The leader's process dies; its pod restarts it under the same identity.
    drop(first);
    let restarted = elector("a");
    assert!(
        !take(&restarted).await,
        "a new process does not take over its previous incarnation's live Lease"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        !take(&restarted).await,
        "a process that just started waits a renew interval longer"
    );
    assert!(
        take(&standby).await,
        "the standby takes the Lease once it saw no renewal for its duration"
    );
    assert!(!take(&restarted).await);
}
