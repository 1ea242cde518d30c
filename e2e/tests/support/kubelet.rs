//! A Ready node and a stand-in kubelet for tests that run the workload controllers without
//! processes: bound pods are marked Running and Ready while the test lets them be, and
//! terminating pods are removed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tributary_e2e::FakeApiServer;

/// Creates node `node-1` with a Ready condition, for the scheduler to bind pods to.
pub async fn ready_node(client: &Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node =
        serde_json::from_value(json!({"metadata": {"name": "node-1"}})).expect("a node");
    let mut node = nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("node");
    node.status = Some(
        serde_json::from_value(json!({"conditions": [{"type": "Ready", "status": "True"}]}))
            .expect("a node status"),
    );
    nodes
        .replace_status("node-1", &PostParams::default(), &node)
        .await
        .expect("node status");
}

/// Marks bound pods of `ns` Running and Ready (while `ready`), and deletes terminating ones.
pub async fn test_kubelet(server: FakeApiServer, ns: &str, ready: Arc<AtomicBool>) {
    let pods: Api<Pod> = Api::namespaced(server.client(ns), ns);
    loop {
        for pod in pods
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let name = pod.name_any();
            if pod.metadata.deletion_timestamp.is_some() {
                let _ = pods
                    .delete(
                        &name,
                        &DeleteParams {
                            grace_period_seconds: Some(0),
                            ..DeleteParams::default()
                        },
                    )
                    .await;
                continue;
            }
            let bound = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some();
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            if bound && ready.load(Ordering::SeqCst) && phase.as_deref() != Some("Running") {
                let status = json!({"status": {"phase": "Running", "podIP": "127.0.0.9", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                    {"type": "PodScheduled", "status": "True"}]}});
                let _ = pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
