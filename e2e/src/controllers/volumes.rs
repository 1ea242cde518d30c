//! Persistent volumes: a default StorageClass whose provisioner makes one host directory per
//! claim (a PersistentVolume `pvc-<claim uid>` with that `hostPath`, bound to the claim both
//! ways, as the PV controller and an external provisioner do), the `kubernetes.io/pvc-protection`
//! finalizer (a claim in use by a pod is deleted only after the pod), and reclaiming volumes
//! whose claim is gone (`Delete`: the directory and the PersistentVolume are removed; `Retain`:
//! the volume becomes Released and keeps its data).
//!
//! Claims of other StorageClasses stay Pending, as they would without their provisioner.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec,
    PersistentVolumeStatus,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::meta;
use super::{logged, Snapshot};

/// The provisioner of the default StorageClass.
pub const PROVISIONER: &str = "tributary.dev/host-path";
/// Name of the default StorageClass.
pub const DEFAULT_CLASS: &str = "standard";
/// Annotation marking the default StorageClass.
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// Finalizer holding a claim while a pod uses it.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

/// Creates the default StorageClass (as a cluster's addons do); it may already exist.
pub(crate) async fn install_default_class(client: &Client) {
    let class = StorageClass {
        metadata: ObjectMeta {
            name: Some(DEFAULT_CLASS.to_owned()),
            annotations: Some(BTreeMap::from([(
                DEFAULT_CLASS_ANNOTATION.to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        provisioner: PROVISIONER.to_owned(),
        reclaim_policy: Some("Delete".to_owned()),
        volume_binding_mode: Some("Immediate".to_owned()),
        ..StorageClass::default()
    };
    let api: Api<StorageClass> = Api::all(client.clone());
    if let Err(e) = api.create(&PostParams::default(), &class).await {
        tracing::debug!("default StorageClass: {e}");
    }
}

/// One pass: provision and bind claims, protect claims in use, reclaim released volumes.
pub(crate) async fn sync(client: &Client, snap: &Snapshot, dir: &Path) {
    for claim in &snap.claims {
        let ns = meta::namespace(&claim.metadata);
        let name = meta::name(&claim.metadata);
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let finalizers = claim.metadata.finalizers.clone().unwrap_or_default();
        let protected = finalizers.iter().any(|f| f == PVC_PROTECTION);
        if meta::terminating(&claim.metadata) {
            if protected && !in_use(snap, ns, name) {
                let kept: Vec<&String> =
                    finalizers.iter().filter(|f| *f != PVC_PROTECTION).collect();
                let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": claim.metadata.resource_version}});
                logged(
                    &format!("release claim {ns}/{name}"),
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await,
                );
            }
            continue;
        }
        if !protected {
            let mut with = finalizers.clone();
            with.push(PVC_PROTECTION.to_owned());
            let patch = json!({"metadata": {"finalizers": with, "resourceVersion": claim.metadata.resource_version}});
            logged(
                &format!("protect claim {ns}/{name}"),
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await,
            );
            continue;
        }
        provision(client, snap, claim, dir).await;
    }
    reclaim(client, snap, dir).await;
}

/// Whether a scheduled pod that has not finished uses claim `name`. As in Kubernetes'
/// pvc-protection controller, a pod not yet scheduled does not hold the claim: the scheduler
/// leaves it pending while the claim is being deleted (see `scheduler`), so a StatefulSet pod
/// recreated after its claim's deletion gets the new, empty claim instead of keeping the old.
fn in_use(snap: &Snapshot, ns: &str, name: &str) -> bool {
    snap.pods.iter().any(|p| {
        meta::namespace(&p.metadata) == ns
            && p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty())
            && !matches!(meta::phase(p), "Succeeded" | "Failed")
            && p.spec
                .iter()
                .flat_map(|s| s.volumes.iter().flatten())
                .any(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .is_some_and(|c| c.claim_name == name)
                })
    })
}

/// The class a claim asks for (the default class when it names none).
fn class_of<'a>(snap: &'a Snapshot, claim: &PersistentVolumeClaim) -> Option<&'a StorageClass> {
    let asked = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref());
    snap.classes.iter().find(|c| match asked {
        Some(name) => meta::name(&c.metadata) == name,
        None => c
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
            .is_some_and(|v| v == "true"),
    })
}

/// Gives an unbound claim of our class a host directory and a PersistentVolume, then binds
/// the claim to it; each step is skipped when already done, so a pass cut short resumes.
async fn provision(client: &Client, snap: &Snapshot, claim: &PersistentVolumeClaim, dir: &Path) {
    if is_bound(claim) {
        return;
    }
    let Some(class) = class_of(snap, claim).filter(|c| c.provisioner == PROVISIONER) else {
        return;
    };
    let pv_name = volume_name(claim);
    let path = dir.join(&pv_name);
    if let Err(e) = std::fs::create_dir_all(&path) {
        tracing::warn!("cannot provision {}: {e}", path.display());
        return;
    }
    let exists = snap
        .volumes
        .iter()
        .any(|v| meta::name(&v.metadata) == pv_name);
    if !exists && !create_bound_volume(client, &host_path_volume(claim, class, &path)).await {
        return;
    }
    bind_claim(client, claim, &pv_name, meta::name(&class.metadata)).await;
}

/// Whether the claim is already bound (then there is nothing to provision).
fn is_bound(claim: &PersistentVolumeClaim) -> bool {
    claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

/// The volume's name, from the claim's uid as external provisioners name it, so a claim
/// recreated under the same name gets a fresh volume.
fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", meta::uid(&claim.metadata))
}

/// The storage the claim requests, which its volume offers and its status reports.
fn requested_capacity(spec: &PersistentVolumeClaimSpec) -> BTreeMap<String, Quantity> {
    spec.resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap_or_default()
}

/// The PersistentVolume for a claim: its directory at `path`, already pointing at the claim
/// (so no other claim can take it), with the class's reclaim policy.
fn host_path_volume(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    path: &Path,
) -> PersistentVolume {
    let spec = claim.spec.clone().unwrap_or_default();
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(volume_name(claim)),
            annotations: Some(BTreeMap::from([(
                "pv.kubernetes.io/provisioned-by".to_owned(),
                PROVISIONER.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes.clone(),
            capacity: Some(requested_capacity(&spec)),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("PersistentVolumeClaim".to_owned()),
                namespace: Some(meta::namespace(&claim.metadata).to_owned()),
                name: Some(meta::name(&claim.metadata).to_owned()),
                uid: Some(meta::uid(&claim.metadata).to_owned()),
                ..ObjectReference::default()
            }),
            host_path: Some(HostPathVolumeSource {
                path: path.to_string_lossy().into_owned(),
                type_: Some("Directory".to_owned()),
            }),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".to_owned()),
            ),
            storage_class_name: Some(meta::name(&class.metadata).to_owned()),
            volume_mode: spec.volume_mode.clone(),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    }
}

/// Creates the volume and marks it Bound (the API server ignores status on create); false
/// when it could not be created, so the claim is not bound to a volume that is not there.
async fn create_bound_volume(client: &Client, pv: &PersistentVolume) -> bool {
    let pv_api: Api<PersistentVolume> = Api::all(client.clone());
    let pv_name = meta::name(&pv.metadata);
    let Some(mut done) = logged(
        &format!("provision {pv_name}"),
        pv_api.create(&PostParams::default(), pv).await,
    ) else {
        return false;
    };
    done.status = Some(PersistentVolumeStatus {
        phase: Some("Bound".to_owned()),
        ..PersistentVolumeStatus::default()
    });
    logged(
        &format!("status of {pv_name}"),
        pv_api
            .replace_status(pv_name, &PostParams::default(), &done)
            .await,
    );
    true
}

/// Binds the claim to volume `pv_name` with the annotations the PV controller writes, then
/// reports it Bound with the volume's capacity (what pods and `kubectl get pvc` wait for).
async fn bind_claim(client: &Client, claim: &PersistentVolumeClaim, pv_name: &str, class: &str) {
    let ns = meta::namespace(&claim.metadata);
    let name = meta::name(&claim.metadata);
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let patch = json!({
        "metadata": {"annotations": {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.kubernetes.io/storage-provisioner": PROVISIONER,
        }},
        "spec": {"volumeName": pv_name, "storageClassName": class},
    });
    let Some(mut patched) = logged(
        &format!("bind claim {ns}/{name}"),
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    ) else {
        return;
    };
    let spec = claim.spec.clone().unwrap_or_default();
    patched.status = Some(PersistentVolumeClaimStatus {
        phase: Some("Bound".to_owned()),
        access_modes: spec.access_modes.clone(),
        capacity: Some(requested_capacity(&spec)),
        ..PersistentVolumeClaimStatus::default()
    });
    logged(
        &format!("status of claim {ns}/{name}"),
        api.replace_status(name, &PostParams::default(), &patched)
            .await,
    );
}

/// Volumes whose claim is gone: removed with their directory (`Delete`) or Released.
async fn reclaim(client: &Client, snap: &Snapshot, dir: &Path) {
    let pv_api: Api<PersistentVolume> = Api::all(client.clone());
    for pv in &snap.volumes {
        let Some(spec) = pv.spec.as_ref() else {
            continue;
        };
        let Some(claim_uid) = spec.claim_ref.as_ref().and_then(|c| c.uid.as_deref()) else {
            continue;
        };
        if snap
            .claims
            .iter()
            .any(|c| meta::uid(&c.metadata) == claim_uid)
        {
            continue;
        }
        let name = meta::name(&pv.metadata);
        if spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete") {
            if let Some(path) = spec.host_path.as_ref().map(|h| PathBuf::from(&h.path)) {
                // Only what this provisioner made, never another host path.
                if path.parent() == Some(dir) {
                    if let Err(e) = std::fs::remove_dir_all(&path) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!("cannot delete {}: {e}", path.display());
                            continue;
                        }
                    }
                }
            }
            logged(
                &format!("delete {name}"),
                pv_api.delete(name, &DeleteParams::default()).await,
            );
        } else if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Released") {
            let mut released = pv.clone();
            released.status = Some(PersistentVolumeStatus {
                phase: Some("Released".to_owned()),
                ..PersistentVolumeStatus::default()
            });
            logged(
                &format!("release {name}"),
                pv_api
                    .replace_status(name, &PostParams::default(), &released)
                    .await,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod_using(claim: &str, node: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "demo-broker-1", "namespace": "kafka"},
            "spec": {"nodeName": node, "containers": [],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]},
            "status": {"phase": "Pending"},
        }))
        .expect("pod")
    }

    #[test]
    fn only_a_scheduled_pod_holds_its_claim() {
        let pending = Snapshot::of(vec![pod_using("data-1", None)], Vec::new(), Vec::new());
        assert!(!in_use(&pending, "kafka", "data-1"));
        let scheduled = Snapshot::of(
            vec![pod_using("data-1", Some("node-0"))],
            Vec::new(),
            Vec::new(),
        );
        assert!(in_use(&scheduled, "kafka", "data-1"));
        assert!(!in_use(&scheduled, "kafka", "data-2"));
        assert!(!in_use(&scheduled, "other", "data-1"));
    }

    #[test]
    fn a_provisioned_volume_is_reserved_for_its_claim_with_the_class_policy() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "kafka", "uid": "u1"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .expect("claim");
        let class = StorageClass {
            metadata: ObjectMeta {
                name: Some("keep".to_owned()),
                ..ObjectMeta::default()
            },
            provisioner: PROVISIONER.to_owned(),
            reclaim_policy: Some("Retain".to_owned()),
            ..StorageClass::default()
        };
        let pv = host_path_volume(&claim, &class, Path::new("/volumes/pvc-u1"));
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-u1"));
        let spec = pv.spec.expect("spec");
        let claim_ref = spec.claim_ref.expect("claim ref");
        assert_eq!(claim_ref.uid.as_deref(), Some("u1"));
        assert_eq!(claim_ref.namespace.as_deref(), Some("kafka"));
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("keep"));
        assert_eq!(
            spec.capacity.expect("capacity").get("storage"),
            Some(&Quantity("1Gi".to_owned()))
        );
        assert_eq!(spec.host_path.expect("host path").path, "/volumes/pvc-u1");
    }
}
