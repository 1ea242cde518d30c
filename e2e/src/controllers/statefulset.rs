//! The StatefulSet controller: pods `<set>-<ordinal>` (from `spec.ordinals.start`) with stable
//! identity (hostname, the governing Service as subdomain, the `apps.kubernetes.io/pod-index`,
//! `statefulset.kubernetes.io/pod-name` and `controller-revision-hash` labels), created and
//! removed one at a time in ordinal order (OrderedReady) or all at once (Parallel); revisions
//! as ControllerRevisions `<set>-<hash>` (holding the patch that replaces the template, which
//! `kubectl rollout undo` applies; a template of an older revision again makes that revision
//! the newest, so `kubectl rollout history` lists what a cluster lists), rolled out highest ordinal first down to the
//! partition (RollingUpdate, waiting for each updated pod to be Running and Ready) or only when
//! pods are deleted (OnDelete); one PersistentVolumeClaim `<template>-<pod>` per
//! volumeClaimTemplate and ordinal, created before its pod and kept or deleted as
//! `persistentVolumeClaimRetentionPolicy` says (through owner references on the claims, so the
//! garbage collector deletes them: the set's for `whenDeleted: Delete`, the condemned pod's for
//! `whenScaled: Delete`); and status (replicas, ready, available, current and updated
//! replicas, currentRevision, updateRevision, observedGeneration).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use super::meta::{self, available, controlled_by, owner_ref, ready};
use super::{logged, Snapshot};

/// Pod label with the ControllerRevision a pod was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Pod label with the pod's name (a Service can select one pod by it).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Pod label with the pod's ordinal (Kubernetes 1.28+).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// One pass over every StatefulSet.
pub(crate) async fn sync(client: &Client, snap: &Snapshot) {
    for set in &snap.stateful_sets {
        if !meta::terminating(&set.metadata) {
            Sync::new(client, snap, set).run().await;
        }
    }
}

/// The name of claim `template` for pod `pod`.
pub fn claim_name(template: &str, pod: &str) -> String {
    format!("{template}-{pod}")
}

fn pod_revision(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map_or("", String::as_str)
}

/// Running, Ready and not being deleted: what ordered operations wait for.
/// What a ControllerRevision of the set holds, as the real controller writes it: a
/// strategic merge patch that replaces the template, which `kubectl rollout undo` applies.
fn revision_data(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_default();
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// Whether `r` is older than the newest of the set's revisions `owned`, so that the set
/// having its template again is a roll back to it.
fn rolled_back_to(r: &ControllerRevision, owned: &[&ControllerRevision]) -> bool {
    let newest = owned.iter().filter_map(|o| o.revision).max().unwrap_or(0);
    r.revision.unwrap_or(0) < newest
}

fn healthy(pod: &Pod) -> bool {
    ready(pod) && !meta::terminating(&pod.metadata)
}

/// One StatefulSet's sync.
struct Sync<'a> {
    client: &'a Client,
    snap: &'a Snapshot,
    set: &'a StatefulSet,
    ns: &'a str,
    name: &'a str,
    /// Pods the set controls, by ordinal.
    pods: BTreeMap<i32, &'a Pod>,
}

impl<'a> Sync<'a> {
    fn new(client: &'a Client, snap: &'a Snapshot, set: &'a StatefulSet) -> Self {
        let ns = meta::namespace(&set.metadata);
        let name = meta::name(&set.metadata);
        let uid = meta::uid(&set.metadata);
        let prefix = format!("{name}-");
        let pods = snap
            .pods
            .iter()
            .filter(|p| meta::namespace(&p.metadata) == ns && controlled_by(&p.metadata, uid))
            .filter_map(|p| {
                let ordinal = meta::name(&p.metadata)
                    .strip_prefix(&prefix)?
                    .parse()
                    .ok()?;
                Some((ordinal, p))
            })
            .collect();
        Sync {
            client,
            snap,
            set,
            ns,
            name,
            pods,
        }
    }

    fn pod_api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), self.ns)
    }

    async fn run(&self) {
        let spec = &self.set.spec;
        let replicas = spec.replicas.unwrap_or(1);
        let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
        let end = start + replicas;
        let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
        let Some((update_revision, revisions)) = self.revisions().await else {
            return;
        };
        let current_revision = self
            .set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.clone())
            .filter(|r| revisions.contains_key(r))
            .unwrap_or_else(|| update_revision.clone());
        self.claims(start, end).await;
        let mut waiting = false;
        // Pods in range: create the missing, replace the failed, in order unless Parallel.
        for ordinal in start..end {
            if waiting && !parallel {
                break;
            }
            match self.pods.get(&ordinal) {
                None => {
                    let revision =
                        self.revision_for(ordinal, start, &current_revision, &update_revision);
                    let template = revisions
                        .get(&revision)
                        .cloned()
                        .or_else(|| Some(spec.template.clone()));
                    if let Some(t) = template {
                        self.create_pod(ordinal, &t, &revision).await;
                    }
                    waiting = true;
                }
                Some(pod)
                    if matches!(meta::phase(pod), "Failed" | "Succeeded")
                        && !meta::terminating(&pod.metadata) =>
                {
                    self.delete_pod(pod).await;
                    waiting = true;
                }
                Some(pod) => waiting |= !healthy(pod),
            }
        }
        // Condemned pods (scaled away), highest ordinal first.
        let condemned: Vec<&Pod> = self
            .pods
            .iter()
            .rev()
            .filter(|(o, _)| **o < start || **o >= end)
            .map(|(_, p)| *p)
            .collect();
        for pod in condemned {
            if waiting && !parallel {
                break;
            }
            if meta::terminating(&pod.metadata) {
                waiting = true;
                continue;
            }
            self.delete_pod(pod).await;
            waiting = true;
        }
        if !waiting || parallel {
            self.roll(spec, start, end, &update_revision).await;
        }
        self.write_status(spec, &current_revision, &update_revision)
            .await;
    }

    /// The revision a new pod of `ordinal` is created from (the real controller's
    /// `newVersionedStatefulSetPod`).
    fn revision_for(&self, ordinal: i32, start: i32, current: &str, update: &str) -> String {
        let Some(strategy) = self.set.spec.update_strategy.as_ref() else {
            return update.to_owned();
        };
        if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
            return update.to_owned();
        }
        let limit = match strategy.rolling_update.as_ref() {
            Some(r) => r.partition.unwrap_or(0),
            None => self
                .set
                .status
                .as_ref()
                .and_then(|s| s.current_replicas)
                .unwrap_or(0),
        };
        if ordinal < start + limit {
            current.to_owned()
        } else {
            update.to_owned()
        }
    }

    /// Ensures the ControllerRevision of the current template exists, prunes old ones, and
    /// returns its name with the templates of every revision.
    async fn revisions(&self) -> Option<(String, BTreeMap<String, PodTemplateSpec>)> {
        let spec = &self.set.spec;
        let uid = meta::uid(&self.set.metadata);
        let owned: Vec<&ControllerRevision> = self
            .snap
            .revisions
            .iter()
            .filter(|r| meta::namespace(&r.metadata) == self.ns && controlled_by(&r.metadata, uid))
            .collect();
        let mut templates: BTreeMap<String, PodTemplateSpec> = owned
            .iter()
            .filter_map(|r| {
                let t = r.data.0.pointer("/spec/template")?.clone();
                Some((
                    meta::name(&r.metadata).to_owned(),
                    serde_json::from_value(t).ok()?,
                ))
            })
            .collect();
        let update = format!("{}-{}", self.name, meta::hash(&spec.template));
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), self.ns);
        let next = owned.iter().filter_map(|r| r.revision).max().unwrap_or(0) + 1;
        let existing = owned.iter().find(|r| meta::name(&r.metadata) == update);
        if let Some(r) = existing.filter(|r| rolled_back_to(r, &owned)) {
            // The template of an older revision again (`kubectl rollout undo`): it becomes
            // the newest, as the real controller's UpdateControllerRevision makes it.
            let patch = json!({"revision": next});
            logged(
                &format!("revision of ControllerRevision {}/{update}", self.ns),
                api.patch(
                    meta::name(&r.metadata),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await,
            )?;
        }
        if !templates.contains_key(&update) {
            let labels = spec.selector.match_labels.clone();
            let revision = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(update.clone()),
                    namespace: Some(self.ns.to_owned()),
                    labels,
                    owner_references: owner_ref(self.set, true).map(|r| vec![r]),
                    ..ObjectMeta::default()
                },
                data: RawExtension(revision_data(&spec.template)),
                revision: Some(next),
            };
            logged(
                &format!("create ControllerRevision {}/{update}", self.ns),
                api.create(&PostParams::default(), &revision).await,
            )?;
            templates.insert(update.clone(), spec.template.clone());
        }
        let limit = usize::try_from(spec.revision_history_limit.unwrap_or(10)).unwrap_or(10);
        let in_use: Vec<&str> = self.pods.values().map(|p| pod_revision(p)).collect();
        let current = self
            .set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.as_deref());
        let mut idle: Vec<&ControllerRevision> = owned
            .into_iter()
            .filter(|r| {
                let n = meta::name(&r.metadata);
                n != update && Some(n) != current && !in_use.contains(&n)
            })
            .collect();
        if idle.len() > limit {
            idle.sort_by_key(|r| r.revision);
            for r in &idle[..idle.len() - limit] {
                let n = meta::name(&r.metadata);
                logged(
                    &format!("prune ControllerRevision {n}"),
                    api.delete(n, &DeleteParams::default()).await,
                );
            }
        }
        Some((update, templates))
    }

    async fn create_pod(&self, ordinal: i32, template: &PodTemplateSpec, revision: &str) {
        let spec = &self.set.spec;
        let pod_name = format!("{}-{ordinal}", self.name);
        let template_meta = template.metadata.clone().unwrap_or_default();
        let mut labels = template_meta.labels.clone().unwrap_or_default();
        labels.insert(REVISION_LABEL.to_owned(), revision.to_owned());
        labels.insert(POD_NAME_LABEL.to_owned(), pod_name.clone());
        labels.insert(POD_INDEX_LABEL.to_owned(), ordinal.to_string());
        let mut pod_spec = template.spec.clone().unwrap_or_default();
        pod_spec.hostname = Some(pod_name.clone());
        pod_spec.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
        let mut volumes = pod_spec.volumes.take().unwrap_or_default();
        for claim in spec.volume_claim_templates.iter().flatten() {
            let template_name = meta::name(&claim.metadata);
            volumes.retain(|v| v.name != template_name);
            volumes.push(Volume {
                name: template_name.to_owned(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(template_name, &pod_name),
                    read_only: None,
                }),
                ..Volume::default()
            });
        }
        pod_spec.volumes = (!volumes.is_empty()).then_some(volumes);
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(pod_name.clone()),
                namespace: Some(self.ns.to_owned()),
                labels: Some(labels),
                annotations: template_meta.annotations.clone(),
                owner_references: owner_ref(self.set, true).map(|r| vec![r]),
                ..ObjectMeta::default()
            },
            spec: Some(pod_spec),
            status: None,
        };
        match self.pod_api().create(&PostParams::default(), &pod).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                // As the real controller's event.
                let message = format!(
                    "create Pod {pod_name} in StatefulSet {} failed error: {}",
                    self.name,
                    super::events::refusal(&e)
                );
                super::events::warn(
                    self.client,
                    self.set,
                    "statefulset-controller",
                    "FailedCreate",
                    message,
                )
                .await;
            }
        }
    }

    async fn delete_pod(&self, pod: &Pod) {
        let n = meta::name(&pod.metadata);
        logged(
            &format!("delete pod {}/{n}", self.ns),
            self.pod_api().delete(n, &DeleteParams::default()).await,
        );
    }

    /// RollingUpdate: deletes the highest-ordinal pod not at the update revision (down to the
    /// partition) once every pod above it is healthy; its replacement comes from the update
    /// revision.
    async fn roll(
        &self,
        spec: &k8s_openapi::api::apps::v1::StatefulSetSpec,
        start: i32,
        end: i32,
        update: &str,
    ) {
        let strategy = spec.update_strategy.as_ref();
        if strategy
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate")
            != "RollingUpdate"
        {
            return;
        }
        let partition = strategy
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0);
        for ordinal in (start + partition.max(0)..end).rev() {
            let Some(pod) = self.pods.get(&ordinal) else {
                return;
            };
            if pod_revision(pod) != update && !meta::terminating(&pod.metadata) {
                self.delete_pod(pod).await;
                return;
            }
            if !healthy(pod) {
                return;
            }
        }
    }

    /// Creates missing claims of the pods in range and sets every claim's owner references as
    /// the retention policy asks.
    async fn claims(&self, start: i32, end: i32) {
        let spec = &self.set.spec;
        let templates = spec.volume_claim_templates.as_deref().unwrap_or_default();
        if templates.is_empty() {
            return;
        }
        let policy = spec.persistent_volume_claim_retention_policy.as_ref();
        let delete_with_set = policy.and_then(|p| p.when_deleted.as_deref()) == Some("Delete");
        let delete_scaled = policy.and_then(|p| p.when_scaled.as_deref()) == Some("Delete");
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), self.ns);
        let existing: BTreeMap<&str, &PersistentVolumeClaim> = self
            .snap
            .claims
            .iter()
            .filter(|c| meta::namespace(&c.metadata) == self.ns)
            .map(|c| (meta::name(&c.metadata), c))
            .collect();
        let set_uid = meta::uid(&self.set.metadata);
        let highest = self
            .pods
            .keys()
            .copied()
            .max()
            .unwrap_or(end - 1)
            .max(end - 1);
        for template in templates {
            let template_name = meta::name(&template.metadata);
            for ordinal in start..=highest {
                let pod_name = format!("{}-{ordinal}", self.name);
                let name = claim_name(template_name, &pod_name);
                let in_range = ordinal < end;
                let pod = self.pods.get(&ordinal).copied();
                let mut owners: Vec<OwnerReference> = Vec::new();
                if delete_with_set {
                    owners.extend(owner_ref(self.set, false));
                }
                if delete_scaled && !in_range {
                    owners.extend(pod.and_then(|p| owner_ref(p, false)));
                }
                match existing.get(name.as_str()) {
                    None if in_range => {
                        let mut labels = template.metadata.labels.clone().unwrap_or_default();
                        labels.extend(spec.selector.match_labels.clone().unwrap_or_default());
                        let claim = PersistentVolumeClaim {
                            metadata: ObjectMeta {
                                name: Some(name.clone()),
                                namespace: Some(self.ns.to_owned()),
                                labels: Some(labels),
                                annotations: template.metadata.annotations.clone(),
                                owner_references: (!owners.is_empty()).then_some(owners),
                                ..ObjectMeta::default()
                            },
                            spec: template.spec.clone(),
                            status: None,
                        };
                        logged(
                            &format!("create claim {}/{name}", self.ns),
                            api.create(&PostParams::default(), &claim).await,
                        );
                    }
                    None => {}
                    Some(claim) if meta::terminating(&claim.metadata) => {}
                    Some(_) if delete_scaled && !in_range && pod.is_none() => {
                        logged(
                            &format!("delete claim {}/{name} of a scaled-down pod", self.ns),
                            api.delete(&name, &DeleteParams::default()).await,
                        );
                    }
                    Some(claim) => {
                        let pod_uid = pod.map(|p| meta::uid(&p.metadata));
                        let mut refs: Vec<OwnerReference> = claim
                            .metadata
                            .owner_references
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|r| r.uid != set_uid && Some(r.uid.as_str()) != pod_uid)
                            .collect();
                        refs.extend(owners);
                        if refs != claim.metadata.owner_references.clone().unwrap_or_default() {
                            let patch = json!({"metadata": {"ownerReferences": refs}});
                            logged(
                                &format!("owners of claim {}/{name}", self.ns),
                                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                                    .await,
                            );
                        }
                    }
                }
            }
        }
    }

    async fn write_status(
        &self,
        spec: &k8s_openapi::api::apps::v1::StatefulSetSpec,
        current: &str,
        update: &str,
    ) {
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let pods: Vec<&Pod> = self.pods.values().copied().collect();
        let count = |f: &dyn Fn(&Pod) -> bool| {
            i32::try_from(pods.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
        };
        let live = |p: &Pod| !meta::terminating(&p.metadata);
        let mut status = StatefulSetStatus {
            observed_generation: self.set.metadata.generation,
            replicas: count(&|_| true),
            ready_replicas: Some(count(&healthy)),
            available_replicas: Some(count(&|p| {
                live(p) && available(p, min_ready, self.snap.now)
            })),
            current_replicas: Some(count(&|p| live(p) && pod_revision(p) == current)),
            updated_replicas: Some(count(&|p| live(p) && pod_revision(p) == update)),
            current_revision: Some(current.to_owned()),
            update_revision: Some(update.to_owned()),
            collision_count: Some(0),
            conditions: self.set.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        if rolling
            && status.updated_replicas == Some(status.replicas)
            && status.ready_replicas == Some(status.replicas)
        {
            status.current_revision = Some(update.to_owned());
            status.current_replicas = status.updated_replicas;
        }
        if self.set.status.as_ref() == Some(&status) {
            return;
        }
        let mut updated = self.set.clone();
        updated.status = Some(status);
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), self.ns);
        logged(
            &format!("status of StatefulSet {}/{}", self.ns, self.name),
            api.replace_status(self.name, &PostParams::default(), &updated)
                .await,
        );
    }
}
