//! Lifecycle: finalizers and deletionTimestamp, the garbage collector's three propagation
//! policies, namespace deletion, graceful pod deletion, Events and Leases.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{json, Value};

use crate::support::{api_error, publish_event, server, wait_until};

const NS: &str = "streaming";

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

/// An owner ReplicaSet, a dependent ConfigMap that blocks its owner's deletion, and a
/// ConfigMap depending on that one.
async fn family(client: &Client) -> (Api<ReplicaSet>, Api<ConfigMap>) {
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let owner = rs_api
        .create(&PostParams::default(), &typed(json!({"metadata": {"name": "owner"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}}}})))
        .await
        .expect("owner");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let child = cms
        .create(
            &PostParams::default(),
            &typed(
                json!({"metadata": {"name": "child", "finalizers": ["test/hold"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "owner",
                "uid": owner.uid(), "blockOwnerDeletion": true, "controller": true}]}}),
            ),
        )
        .await
        .expect("child");
    cms.create(&PostParams::default(), &typed(json!({"metadata": {"name": "grandchild",
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "child", "uid": child.uid()}]}})))
        .await
        .expect("grandchild");
    (rs_api, cms)
}

async fn release(cms: &Api<ConfigMap>, name: &str) {
    let p = json!({"metadata": {"finalizers": null}});
    cms.patch(name, &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("release finalizer");
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_the_last_one_is_removed() {
    let (server, client) = server(NS);
    let cms: Api<ConfigMap> = Api::namespaced(client, NS);
    cms.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": "c", "finalizers": ["a/x", "b/y"]}})),
    )
    .await
    .expect("create");
    cms.delete("c", &DeleteParams::default())
        .await
        .expect("delete");
    let held = cms.get("c").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    let add = json!({"metadata": {"finalizers": ["a/x", "b/y", "c/z"]}});
    let e = api_error(
        cms.patch("c", &PatchParams::default(), &Patch::Merge(&add))
            .await,
    );
    assert_eq!(
        e.code, 422,
        "no new finalizers while deleting: {}",
        e.message
    );
    let one = json!({"metadata": {"finalizers": ["b/y"]}});
    cms.patch("c", &PatchParams::default(), &Patch::Merge(&one))
        .await
        .expect("drop one");
    assert!(server.get("/configmaps", NS, "c").is_some());
    release(&cms, "c").await;
    assert!(server.get("/configmaps", NS, "c").is_none());
}

#[tokio::test]
async fn background_deletion_removes_the_owner_then_its_dependents() {
    let (server, client) = server(NS);
    let (rs, cms) = family(&client).await;
    rs.delete("owner", &DeleteParams::background())
        .await
        .expect("delete");
    assert!(
        server.get("apps/replicasets", NS, "owner").is_none(),
        "owner gone at once"
    );
    let child = cms.get("child").await.expect("held by its finalizer");
    assert!(
        child.metadata.deletion_timestamp.is_some(),
        "dependent is being deleted"
    );
    release(&cms, "child").await;
    wait_until("the grandchild to be collected", || async {
        server
            .get("/configmaps", NS, "grandchild")
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_blocking_dependents_are_gone() {
    let (server, client) = server(NS);
    let (rs, cms) = family(&client).await;
    rs.delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    let owner = rs.get("owner").await.expect("owner waits");
    assert!(owner
        .finalizers()
        .contains(&"foregroundDeletion".to_owned()));
    assert!(owner.metadata.deletion_timestamp.is_some());
    assert!(
        server.get("/configmaps", NS, "grandchild").is_none(),
        "the child's own dependents go first"
    );
    release(&cms, "child").await;
    wait_until("the owner to go after its blocking dependent", || async {
        server
            .get("apps/replicasets", NS, "owner")
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_drops_their_owner_reference() {
    let (server, client) = server(NS);
    let (rs, cms) = family(&client).await;
    rs.delete("owner", &DeleteParams::orphan())
        .await
        .expect("delete");
    wait_until("the owner to go", || async {
        server
            .get("apps/replicasets", NS, "owner")
            .is_none()
            .then_some(())
    })
    .await;
    let child = cms.get("child").await.expect("orphaned, not deleted");
    assert!(child
        .metadata
        .owner_references
        .unwrap_or_default()
        .is_empty());
    assert!(child.metadata.deletion_timestamp.is_none());
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects_then_itself() {
    let (server, client) = server(NS);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    cms.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": "plain"}})),
    )
    .await
    .expect("plain");
    cms.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": "held", "finalizers": ["test/hold"]}})),
    )
    .await
    .expect("held");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.delete(NS, &DeleteParams::default())
        .await
        .expect("delete namespace");
    let ns = nss.get(NS).await.expect("terminating");
    assert_eq!(ns.status.and_then(|s| s.phase), Some("Terminating".into()));
    assert!(server.get("/configmaps", NS, "plain").is_none());
    release(&cms, "held").await;
    wait_until("the namespace to go", || async {
        server.get("/namespaces", "", NS).is_none().then_some(())
    })
    .await;
    assert!(server.get("/serviceaccounts", NS, "default").is_none());
}

#[tokio::test]
async fn pods_on_an_existing_node_are_deleted_gracefully_and_the_kubelet_finishes() {
    let (server, client) = server(NS);
    Api::<Node>::all(client.clone())
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "node-1"}})),
        )
        .await
        .expect("node");
    let pods: Api<Pod> = Api::namespaced(client, NS);
    for (name, node) in [("bound", "node-1"), ("orphan", "gone")] {
        pods.create(&PostParams::default(), &typed(json!({"metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 20, "containers": [{"name": "c", "image": "i"}]}})))
            .await
            .expect("pod");
        pods.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    let bound = pods.get("bound").await.expect("terminating");
    assert_eq!(bound.metadata.deletion_grace_period_seconds, Some(20));
    assert!(
        server.get("/pods", NS, "orphan").is_none(),
        "no kubelet would finish it"
    );
    pods.delete(
        "bound",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("kubelet");
    assert!(server.get("/pods", NS, "bound").is_none());
}

#[tokio::test]
async fn events_written_by_a_recorder_are_read_as_core_events() {
    let (_server, client) = server(NS);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let cm = cms
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "c"}})),
        )
        .await
        .expect("cm");
    publish_event(
        &client,
        &cm.object_ref(&()),
        kube::runtime::events::EventType::Normal,
        "Tested",
        "hello",
    )
    .await;
    let core: Api<Event> = Api::namespaced(client, NS);
    let selector = format!(
        "involvedObject.name=c,involvedObject.kind=ConfigMap,involvedObject.uid={}",
        cm.uid().unwrap_or_default()
    );
    let events = core
        .list(&kube::api::ListParams::default().fields(&selector))
        .await
        .expect("events");
    assert_eq!(events.items.len(), 1);
    assert_eq!(events.items[0].message.as_deref(), Some("hello"));
    assert_eq!(
        events.items[0].reporting_component.as_deref(),
        Some("tributary-test")
    );
}

#[tokio::test]
async fn lease_renewals_are_conditional_writes() {
    let (_server, client) = server(NS);
    let leases: Api<Lease> = Api::namespaced(client, NS);
    let lease = leases
        .create(&PostParams::default(), &typed(json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})))
        .await
        .expect("lease");
    let mut b = lease.clone();
    if let Some(s) = b.spec.as_mut() {
        s.holder_identity = Some("b".into());
    }
    leases
        .replace("l", &PostParams::default(), &b)
        .await
        .expect("b takes it");
    let mut a = lease;
    if let Some(s) = a.spec.as_mut() {
        s.renew_time = None;
    }
    assert_eq!(
        api_error(leases.replace("l", &PostParams::default(), &a).await).code,
        409,
        "a's renewal is stale"
    );
}
