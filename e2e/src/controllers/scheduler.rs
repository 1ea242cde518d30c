//! The scheduler: binds each pending pod (no `spec.nodeName`, default scheduler) to the first
//! Ready, schedulable node whose labels match its `nodeSelector`, through the `pods/binding`
//! subresource, once every PersistentVolumeClaim it mounts is bound (volumeBindingMode
//! Immediate). Affinity, topology spread, taints and resources are not weighed: the local
//! control plane has one node. A pod that fits nowhere gets PodScheduled=False/Unschedulable.

use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::meta;
use super::{logged, Snapshot};

/// One pass over the pending pods.
pub(crate) async fn sync(client: &Client, snap: &Snapshot) {
    for pod in &snap.pods {
        let Some(spec) = pod.spec.as_ref() else {
            continue;
        };
        let scheduler = spec
            .scheduler_name
            .as_deref()
            .unwrap_or("default-scheduler");
        if spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
            || meta::terminating(&pod.metadata)
            || scheduler != "default-scheduler"
        {
            continue;
        }
        match fit(snap, pod) {
            Ok(node) => bind(client, pod, meta::name(&node.metadata)).await,
            Err(why) => unschedulable(client, pod, &why).await,
        }
    }
}

fn node_ready(node: &Node) -> bool {
    node.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)
        && node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node `pod` goes to, or why none.
fn fit<'a>(snap: &'a Snapshot, pod: &Pod) -> Result<&'a Node, String> {
    let ns = meta::namespace(&pod.metadata);
    let spec = pod.spec.as_ref().ok_or("no spec")?;
    for volume in spec.volumes.iter().flatten() {
        let Some(claim) = &volume.persistent_volume_claim else {
            continue;
        };
        let found = snap.claims.iter().find(|c| {
            meta::namespace(&c.metadata) == ns && meta::name(&c.metadata) == claim.claim_name
        });
        if found.is_some_and(|c| meta::terminating(&c.metadata)) {
            // As Kubernetes does: a pod never starts on a claim being deleted; it waits for
            // the claim's replacement (a StatefulSet recreates it with a new volume).
            return Err(format!(
                "persistentvolumeclaim \"{}\" is being deleted",
                claim.claim_name
            ));
        }
        let bound = found
            .is_some_and(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"));
        if !bound {
            return Err(format!(
                "0/{} nodes are available: pod has unbound immediate PersistentVolumeClaims.",
                snap.nodes.len()
            ));
        }
    }
    let selector = spec.node_selector.clone().unwrap_or_default();
    snap.nodes
        .iter()
        .filter(|n| node_ready(n))
        .find(|n| {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .ok_or_else(|| {
            format!(
                "0/{} nodes are available: {} node(s) didn't match Pod's node affinity/selector.",
                snap.nodes.len(),
                snap.nodes.len()
            )
        })
}

async fn bind(client: &Client, pod: &Pod, node: &str) {
    let ns = meta::namespace(&pod.metadata);
    let name = meta::name(&pod.metadata);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            kind: Some("Node".to_owned()),
            name: Some(node.to_owned()),
            ..ObjectReference::default()
        },
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    logged(
        &format!("bind pod {ns}/{name} to {node}"),
        api.create_subresource::<Binding, serde_json::Value>(
            "binding",
            name,
            &PostParams::default(),
            &binding,
        )
        .await,
    );
}

async fn unschedulable(client: &Client, pod: &Pod, why: &str) {
    let has = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.message.as_deref() == Some(why)
            })
        });
    if has {
        return;
    }
    let ns = meta::namespace(&pod.metadata);
    let name = meta::name(&pod.metadata);
    let patch = json!({"status": {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why,
        "lastProbeTime": null, "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
    }]}});
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    logged(
        &format!("mark pod {ns}/{name} unschedulable"),
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;

    fn claim(deleting: bool) -> PersistentVolumeClaim {
        let deletion = deleting.then_some("2026-01-01T00:00:00Z");
        serde_json::from_value(json!({
            "metadata": {"name": "data-1", "namespace": "kafka", "deletionTimestamp": deletion},
            "spec": {},
            "status": {"phase": "Bound"},
        }))
        .expect("claim")
    }

    #[test]
    fn a_pod_waits_while_its_claim_is_being_deleted() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "demo-broker-1", "namespace": "kafka"},
            "spec": {"containers": [],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-1"}}]},
        }))
        .expect("pod");
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "node-0"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .expect("node");
        let bound = Snapshot::of(Vec::new(), vec![claim(false)], vec![node.clone()]);
        assert_eq!(
            fit(&bound, &pod).map(|n| meta::name(&n.metadata)),
            Ok("node-0")
        );
        let deleting = Snapshot::of(Vec::new(), vec![claim(true)], vec![node]);
        let refused = fit(&deleting, &pod).map(|n| meta::name(&n.metadata));
        assert_eq!(
            refused,
            Err("persistentvolumeclaim \"data-1\" is being deleted".to_owned())
        );
        let none = Snapshot::of(Vec::new(), Vec::new(), Vec::new());
        assert!(fit(&none, &pod).is_err(), "no claim: unbound");
    }
}
