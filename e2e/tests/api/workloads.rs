//! The workload controllers (`tributary_e2e::controllers`) against the in-process API server,
//! with a test kubelet that marks bound pods Running and Ready when the test lets it and
//! finishes their graceful deletion: Deployments roll out through ReplicaSets within
//! maxSurge/maxUnavailable, StatefulSets keep ordinals, order, revisions, partitions and their
//! claims' retention policy.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use tributary_e2e::controllers::{Controllers, ControllersConfig};

use crate::support::kubelet::{ready_node, test_kubelet};
use crate::support::{server, wait_until};

const NS: &str = "workloads";

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

/// The control plane of one test: the API server, its controllers, a Ready node, and a test
/// kubelet that marks pods ready while `ready` is set.
struct Plane {
    client: Client,
    ready: Arc<AtomicBool>,
    volumes: tempfile::TempDir,
    _controllers: Controllers,
    kubelet: tokio::task::JoinHandle<()>,
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.kubelet.abort();
    }
}

async fn plane() -> Plane {
    let (server, client) = server(NS);
    ready_node(&client).await;
    let volumes = tempfile::tempdir().expect("volumes dir");
    let controllers = Controllers::start(
        &server,
        ControllersConfig {
            volumes_dir: volumes.path().to_owned(),
        },
    );
    let ready = Arc::new(AtomicBool::new(true));
    let kubelet = tokio::spawn(test_kubelet(server, NS, ready.clone()));
    Plane {
        client,
        ready,
        volumes,
        _controllers: controllers,
        kubelet,
    }
}

fn live(pods: Vec<Pod>) -> Vec<Pod> {
    pods.into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn labels_of(pod: &Pod, key: &str) -> String {
    pod.labels().get(key).cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_rolls_out_through_replica_sets_within_surge_and_unavailability() {
    let p = plane().await;
    let deployments: Api<Deployment> = Api::namespaced(p.client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(p.client.clone(), NS);
    let template = |level: &str| {
        json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "web:1", "env": [{"name": "LEVEL", "value": level}]}]}})
    };
    deployments
        .create(&PostParams::default(), &typed(json!({"metadata": {"name": "web"}, "spec": {
            "replicas": 4, "selector": {"matchLabels": {"app": "web"}}, "template": template("info"),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}}})))
        .await
        .expect("deployment");
    let complete = |revision: &'static str| {
        let deployments = deployments.clone();
        move || {
            let deployments = deployments.clone();
            async move {
                let d = deployments.get("web").await.ok()?;
                let s = d.status.clone()?;
                let progressing = s
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_.as_deref() == Some("Progressing"))?;
                let available = s
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_.as_deref() == Some("Available"))?;
                let done = s.observed_generation == d.metadata.generation
                    && [
                        s.replicas,
                        s.updated_replicas,
                        s.ready_replicas,
                        s.available_replicas,
                    ] == [Some(4); 4]
                    && progressing.reason.as_deref() == Some("NewReplicaSetAvailable")
                    && available.status.as_deref() == Some("True")
                    && d.annotations()
                        .get("deployment.kubernetes.io/revision")
                        .map(String::as_str)
                        == Some(revision);
                done.then_some(d)
            }
        }
    };
    wait_until("the first rollout to complete", complete("1")).await;
    let rs: Api<ReplicaSet> = Api::namespaced(p.client.clone(), NS);
    let first = rs
        .list(&ListParams::default())
        .await
        .expect("replica sets")
        .items;
    assert_eq!(first.len(), 1);
    let hash = first[0]
        .labels()
        .get("pod-template-hash")
        .cloned()
        .expect("hash label");
    assert_eq!(first[0].name_any(), format!("web-{hash}"));

    // A new template: pods are replaced within 4 + 1 and never fewer than 4 - 1 ready.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"template": template("debug")}})),
        )
        .await
        .expect("new template");
    let rolled_out = complete("2");
    wait_until("the second rollout to complete", || {
        let pods = pods.clone();
        let check = rolled_out();
        async move {
            let all = live(pods.list(&ListParams::default()).await.ok()?.items);
            assert!(
                all.len() <= 5,
                "more than replicas + maxSurge pods: {}",
                all.len()
            );
            let running = all
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            assert!(
                running >= 3,
                "fewer than replicas - maxUnavailable running: {running}"
            );
            check.await
        }
    })
    .await;
    let sets = rs
        .list(&ListParams::default())
        .await
        .expect("replica sets")
        .items;
    let replicas: BTreeMap<String, i32> = sets
        .iter()
        .map(|r| (r.name_any(), r.spec.replicas.unwrap_or(0)))
        .collect();
    assert_eq!(replicas.len(), 2, "{replicas:?}");
    assert_eq!(
        replicas.get(&format!("web-{hash}")),
        Some(&0),
        "the old ReplicaSet is scaled down: {replicas:?}"
    );
    drop(p);
}

fn stateful_set(policy: &str, strategy: Value, image: &str) -> StatefulSet {
    typed(json!({"metadata": {"name": "db"}, "spec": {
        "replicas": 3, "serviceName": "db", "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": "db"}},
        "updateStrategy": strategy,
        "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Retain"},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": image}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}))
}

/// Pod name to its `controller-revision-hash`.
async fn revisions(pods: &Api<Pod>) -> BTreeMap<String, String> {
    live(pods.list(&ListParams::default()).await.expect("pods").items)
        .iter()
        .map(|p| (p.name_any(), labels_of(p, "controller-revision-hash")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_stateful_set_starts_pods_one_by_one_with_claims_and_updates_down_to_its_partition(
) {
    let p = plane().await;
    p.ready.store(false, Ordering::SeqCst);
    let sets: Api<StatefulSet> = Api::namespaced(p.client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(p.client.clone(), NS);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(p.client.clone(), NS);
    let rolling = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
    sets.create(
        &PostParams::default(),
        &stateful_set("OrderedReady", rolling, "db:1"),
    )
    .await
    .expect("sts");
    // The controller wrote status after creating db-0 and deciding to wait for it.
    wait_until("db-0 and a status", || async {
        let s = sets.get("db").await.ok()?.status?;
        (s.replicas == 1).then_some(())
    })
    .await;
    let names: Vec<String> = revisions(&pods).await.into_keys().collect();
    assert_eq!(names, ["db-0"], "OrderedReady waits for db-0 to be ready");
    p.ready.store(true, Ordering::SeqCst);
    let pod_list = wait_until("three ready pods", || async {
        let s = sets.get("db").await.ok()?.status?;
        (s.ready_replicas == Some(3)).then_some(())?;
        Some(live(pods.list(&ListParams::default()).await.ok()?.items))
    })
    .await;
    for pod in &pod_list {
        let name = pod.name_any();
        let ordinal = name.trim_start_matches("db-");
        assert_eq!(labels_of(pod, "apps.kubernetes.io/pod-index"), ordinal);
        assert_eq!(labels_of(pod, "statefulset.kubernetes.io/pod-name"), name);
        let spec = pod.spec.clone().expect("spec");
        assert_eq!(
            (spec.hostname.as_deref(), spec.subdomain.as_deref()),
            (Some(name.as_str()), Some("db"))
        );
        let claim = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "data")
            .and_then(|v| v.persistent_volume_claim.clone());
        assert_eq!(claim.map(|c| c.claim_name), Some(format!("data-{name}")));
    }
    wait_until("every claim bound to a provisioned directory", || async {
        let list = claims.list(&ListParams::default()).await.ok()?.items;
        let bound = list
            .iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .count();
        (bound == 3).then_some(())
    })
    .await;
    let pvs: Api<PersistentVolume> = Api::all(p.client.clone());
    let dirs: Vec<String> = pvs
        .list(&ListParams::default())
        .await
        .expect("pvs")
        .items
        .iter()
        .filter_map(|pv| pv.spec.as_ref()?.host_path.as_ref().map(|h| h.path.clone()))
        .collect();
    assert_eq!(dirs.len(), 3);
    assert!(dirs
        .iter()
        .all(|d| std::path::Path::new(d).is_dir()
            && d.starts_with(&*p.volumes.path().to_string_lossy())));

    // A new image with partition 2: only db-2 moves to the update revision.
    let before = revisions(&pods).await;
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {
        "updateStrategy": {"rollingUpdate": {"partition": 2}},
        "template": {"spec": {"containers": [{"name": "db", "image": "db:2"}]}}}})),
    )
    .await
    .expect("update");
    let status = wait_until("db-2 updated", || async {
        let s = sets.get("db").await.ok()?.status?;
        (s.updated_replicas == Some(1) && s.ready_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_ne!(status.current_revision, status.update_revision);
    let after = revisions(&pods).await;
    assert_eq!(after["db-0"], before["db-0"]);
    assert_eq!(after["db-1"], before["db-1"]);
    assert_eq!(Some(&after["db-2"]), status.update_revision.as_ref());
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})),
    )
    .await
    .expect("partition 0");
    wait_until("the rollout to complete", || async {
        let s = sets.get("db").await.ok()?.status?;
        (s.updated_replicas == Some(3)
            && s.current_revision == s.update_revision
            && s.ready_replicas == Some(3))
        .then_some(())
    })
    .await;

    // Scale to one: the highest ordinals go, and with them (whenScaled: Delete) their claims
    // and directories; db-0's claim stays when the set is deleted (whenDeleted: Retain).
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale");
    wait_until("db-1 and db-2 and their claims to be gone", || async {
        let pods_left = revisions(&pods).await.len();
        let claims_left: Vec<String> = claims
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .iter()
            .map(|c| c.name_any())
            .collect();
        (pods_left == 1 && claims_left == ["data-db-0"]).then_some(())
    })
    .await;
    wait_until("the scaled-away volumes to be reclaimed", || async {
        let left = pvs.list(&ListParams::default()).await.ok()?.items;
        (left.len() == 1
            && dirs
                .iter()
                .filter(|d| std::path::Path::new(d).exists())
                .count()
                == 1)
            .then_some(())
    })
    .await;
    sets.delete("db", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until("the pods to be gone", || async {
        revisions(&pods).await.is_empty().then_some(())
    })
    .await;
    assert!(
        claims
            .get_opt("data-db-0")
            .await
            .expect("get claim")
            .is_some(),
        "whenDeleted: Retain keeps the claim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_on_delete_stateful_set_starts_every_pod_at_once_and_updates_only_deleted_pods()
{
    let p = plane().await;
    p.ready.store(false, Ordering::SeqCst);
    let sets: Api<StatefulSet> = Api::namespaced(p.client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(p.client.clone(), NS);
    sets.create(
        &PostParams::default(),
        &stateful_set("Parallel", json!({"type": "OnDelete"}), "db:1"),
    )
    .await
    .expect("sts");
    wait_until("three pods before any is ready", || async {
        (revisions(&pods).await.len() == 3).then_some(())
    })
    .await;
    p.ready.store(true, Ordering::SeqCst);
    let before = wait_until("three ready pods", || async {
        let s = sets.get("db").await.ok()?.status?;
        (s.ready_replicas == Some(3)).then_some(())?;
        Some(revisions(&pods).await)
    })
    .await;
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {
        "template": {"spec": {"containers": [{"name": "db", "image": "db:2"}]}}}})),
    )
    .await
    .expect("update");
    let update = wait_until("a new update revision", || async {
        let s = sets.get("db").await.ok()?.status?;
        (s.update_revision != s.current_revision).then_some(s.update_revision?)
    })
    .await;
    assert_eq!(
        revisions(&pods).await,
        before,
        "OnDelete replaces nothing by itself"
    );
    pods.delete("db-1", &DeleteParams::default())
        .await
        .expect("delete db-1");
    wait_until("db-1 recreated at the update revision", || async {
        let now = revisions(&pods).await;
        (now.get("db-1") == Some(&update) && now.get("db-0") == before.get("db-0")).then_some(())
    })
    .await;
}

/// The host directory of the volume bound to claim `name`, with the claim's uid, once bound.
async fn bound_volume(
    claims: &Api<PersistentVolumeClaim>,
    pvs: &Api<PersistentVolume>,
    name: &str,
) -> Option<(String, std::path::PathBuf)> {
    let claim = claims.get(name).await.ok()?;
    if claim.metadata.deletion_timestamp.is_some()
        || claim.status.as_ref()?.phase.as_deref() != Some("Bound")
    {
        return None;
    }
    let volume = pvs
        .get(claim.spec.as_ref()?.volume_name.as_deref()?)
        .await
        .ok()?;
    let dir = volume.spec?.host_path?.path;
    Some((claim.metadata.uid?, dir.into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_set_pod_whose_claim_was_deleted_comes_back_on_a_new_empty_volume() {
    let p = plane().await;
    let sets: Api<StatefulSet> = Api::namespaced(p.client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(p.client.clone(), NS);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(p.client.clone(), NS);
    let pvs: Api<PersistentVolume> = Api::all(p.client.clone());
    sets.create(
        &PostParams::default(),
        &stateful_set("Parallel", json!({"type": "OnDelete"}), "db:1"),
    )
    .await
    .expect("sts");
    // Bound and in use: only a scheduled pod holds its claim (pvc-protection), and the claim
    // can be bound before its pod is scheduled.
    let (old_uid, old_dir) = wait_until("db-1 scheduled with its claim bound", || async {
        let pod = pods.get("db-1").await.ok()?;
        pod.spec.as_ref()?.node_name.as_ref()?;
        bound_volume(&claims, &pvs, "data-db-1").await
    })
    .await;
    std::fs::write(old_dir.join("segment"), b"old data").expect("write into the volume");

    // The claim is deleted first: db-1 still uses it, so it waits (pvc-protection).
    claims
        .delete("data-db-1", &DeleteParams::background())
        .await
        .expect("delete claim");
    let held = claims
        .get("data-db-1")
        .await
        .expect("claim held by its pod");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        old_dir.join("segment").is_file(),
        "the volume stays while in use"
    );

    // Then the pod: the StatefulSet recreates it, and it starts on a new claim and volume.
    pods.delete("db-1", &DeleteParams::default())
        .await
        .expect("delete pod");
    let (new_uid, new_dir) = wait_until("db-1 back on a new claim", || async {
        let pod = pods.get("db-1").await.ok()?;
        pod.metadata.deletion_timestamp.is_none().then_some(())?;
        pod.spec.as_ref()?.node_name.as_ref()?;
        bound_volume(&claims, &pvs, "data-db-1")
            .await
            .filter(|(uid, _)| *uid != old_uid)
    })
    .await;
    assert_ne!(new_uid, old_uid);
    assert_ne!(new_dir, old_dir);
    assert!(
        new_dir.is_dir() && !new_dir.join("segment").exists(),
        "the new volume is empty"
    );
    wait_until("the old volume reclaimed", || async {
        (!old_dir.exists()).then_some(())
    })
    .await;
}
