//! Real kubectl's workload commands against the API server with its workload controllers
//! and a stand-in kubelet that makes pods Ready: `run`, `scale` (through the scale
//! subresource), and `rollout status|restart|undo|history` of Deployments (their ReplicaSets'
//! revision annotations) and StatefulSets (their ControllerRevisions), with the outcomes a
//! real cluster gives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tributary_e2e::controllers::{Controllers, ControllersConfig};

use super::cluster::Cluster;
use super::kubectl::write;
use crate::support::kubelet::{ready_node, test_kubelet};
use crate::support::wait_until;

const NS: &str = "apps";

/// A cluster whose workloads roll out: controllers, a Ready node and pods made Ready.
struct Workloads {
    c: Cluster,
    _controllers: Controllers,
    _volumes: tempfile::TempDir,
    /// Whether the stand-in kubelet makes pods Ready.
    ready: Arc<AtomicBool>,
    kubelet: tokio::task::JoinHandle<()>,
}

impl Drop for Workloads {
    fn drop(&mut self) {
        self.kubelet.abort();
    }
}

impl std::ops::Deref for Workloads {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.c
    }
}

async fn workloads() -> Workloads {
    let c = Cluster::start(NS).await;
    ready_node(&c.client).await;
    let volumes = tempfile::tempdir().expect("volumes dir");
    let controllers = Controllers::start(
        &c.server,
        ControllersConfig {
            volumes_dir: volumes.path().to_owned(),
        },
    );
    let ready = Arc::new(AtomicBool::new(true));
    let kubelet = tokio::spawn(test_kubelet(c.server.clone(), NS, ready.clone()));
    Workloads {
        c,
        ready,
        _controllers: controllers,
        _volumes: volumes,
        kubelet,
    }
}

const STATEFUL_SET: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: registry.example/db:1}]}
";

/// `kubectl get` of one field of `what` (a jsonpath).
async fn field(w: &Workloads, what: &str, path: &str) -> String {
    let jsonpath = format!("jsonpath={path}");
    w.kubectl_ok(&["get", what, "-o", &jsonpath]).await
}

/// The revisions `kubectl rollout history` lists.
async fn history(w: &Workloads, what: &str) -> Vec<String> {
    let out = w.kubectl_ok(&["rollout", "history", what]).await;
    let mut lines = out.lines().skip_while(|l| !l.starts_with("REVISION"));
    assert!(lines.next().is_some(), "{out}");
    lines
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Waits with `kubectl rollout status` (bounded by its timeout) for `what` to roll out.
async fn rolled_out(w: &Workloads, what: &str) -> String {
    w.kubectl_ok(&["rollout", "status", what, "--timeout=60s"])
        .await
}

/// Creates Deployment `web` (two replicas of `web:1`) and waits for it to roll out; what
/// `kubectl rollout status` printed.
async fn web_rolled_out(w: &Workloads) -> String {
    w.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.example/web:1",
        "--replicas=2",
    ])
    .await;
    rolled_out(w, "deployment/web").await
}

/// Revision 2 of `what` (printed by kubectl as `printed`) sets container `name`'s image to
/// `<name>:2`; `kubectl rollout restart` then makes revision 3; each rolls out.
async fn new_image_then_restart(w: &Workloads, what: &str, printed: &str, name: &str) {
    let image = format!("{name}=registry.example/{name}:2");
    w.kubectl_ok(&["set", "image", what, &image]).await;
    rolled_out(w, what).await;
    let out = w.kubectl_ok(&["rollout", "restart", what]).await;
    assert_eq!(out.trim(), format!("{printed} restarted"));
    rolled_out(w, what).await;
    assert_eq!(history(w, what).await, ["1", "2", "3"]);
}

/// Asserts that both pods of the workload carry `label` with `value` (are of that revision).
async fn all_pods_at(w: &Workloads, label: &str, value: &str) {
    let path = format!("{{.items[*].metadata.labels.{label}}}");
    let pods = field(w, "pods", &path).await;
    assert_eq!(pods.split_whitespace().collect::<Vec<_>>(), [value; 2]);
}

/// `kubectl rollout undo --to-revision=1` after revisions 3 and 4 of `what` (printed by
/// kubectl as `printed`): revision 1's template (image `<image>:1`) becomes revision 5.
async fn undo_to_the_first_revision(w: &Workloads, what: &str, printed: &str, image: &str) {
    w.kubectl_ok(&["rollout", "undo", what, "--to-revision=1"])
        .await;
    rolled_out(w, what).await;
    assert_eq!(history(w, what).await, ["3", "4", "5"]);
    let five = w
        .kubectl_ok(&["rollout", "history", what, "--revision=5"])
        .await;
    assert!(
        five.contains(&format!("{printed} with revision #5"))
            && five.contains(&format!("Image:\tregistry.example/{image}:1")),
        "{five}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_run_creates_the_pod_it_describes() {
    let w = workloads().await;
    let out = w
        .kubectl_ok(&[
            "run",
            "solo",
            "--image=registry.example/web:1",
            "--labels=app=solo,tier=front",
            "--env=MODE=fast",
            "--port=8080",
            "--restart=Never",
            "--",
            "--listen=:8080",
        ])
        .await;
    assert_eq!(out.trim(), "pod/solo created");
    let got = field(
        &w,
        "pod/solo",
        "{.metadata.labels.app},{.metadata.labels.tier} {.spec.restartPolicy} \
         {.spec.containers[0].image} {.spec.containers[0].args[0]} \
         {.spec.containers[0].env[0].value} {.spec.containers[0].ports[0].containerPort}",
    )
    .await;
    assert_eq!(
        got,
        "solo,front Never registry.example/web:1 --listen=:8080 fast 8080"
    );
    // It is scheduled and run like any other pod.
    w.kubectl_ok(&["wait", "pod/solo", "--for=condition=Ready", "--timeout=60s"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_resizes_deployments_and_stateful_sets_through_the_scale_subresource() {
    let w = workloads().await;
    w.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.example/web:1",
        "--replicas=1",
    ])
    .await;
    let sts = write(&w, "sts.yaml", STATEFUL_SET);
    w.kubectl_ok(&["apply", "-f", &sts]).await;
    rolled_out(&w, "deployment/web").await;
    rolled_out(&w, "statefulset/db").await;

    let out = w
        .kubectl_ok(&["scale", "deployment/web", "statefulset/db", "--replicas=3"])
        .await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["deployment.apps/web scaled", "statefulset.apps/db scaled"]
    );
    rolled_out(&w, "deployment/web").await;
    rolled_out(&w, "statefulset/db").await;
    assert_eq!(
        field(
            &w,
            "deployment/web",
            "{.spec.replicas}/{.status.readyReplicas}"
        )
        .await,
        "3/3"
    );
    let pods = w
        .kubectl_ok(&["get", "pods", "-l", "app=db", "-o", "name"])
        .await;
    assert_eq!(
        pods.lines().collect::<Vec<_>>(),
        ["pod/db-0", "pod/db-1", "pod/db-2"]
    );
    // A precondition on the current size is checked against the scale subresource.
    let refused = w
        .kubectl(&[
            "scale",
            "statefulset/db",
            "--current-replicas=2",
            "--replicas=1",
        ])
        .await;
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("Expected replicas to be 2, was 3"),
        "{}",
        refused.stderr
    );
    w.kubectl_ok(&[
        "scale",
        "statefulset/db",
        "--current-replicas=3",
        "--replicas=1",
    ])
    .await;
    rolled_out(&w, "statefulset/db").await;
    let scale = w
        .kubectl_ok(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/apps/statefulsets/db/scale",
        ])
        .await;
    let scale: serde_json::Value = serde_json::from_str(&scale).expect("a Scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["replicas"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_restarts_undoes_and_lists_a_deployments_revisions() {
    let w = workloads().await;
    let out = web_rolled_out(&w).await;
    assert!(
        out.trim_end()
            .ends_with("deployment \"web\" successfully rolled out"),
        "{out}"
    );
    // restart: a new revision whose template differs only by the restartedAt annotation.
    new_image_then_restart(&w, "deployment/web", "deployment.apps/web", "web").await;
    let restarted = field(
        &w,
        "deployment/web",
        "{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    )
    .await;
    assert!(!restarted.is_empty());
    let hash = field(&w, "rs", "{.items[?(@.metadata.annotations.deployment\\.kubernetes\\.io/revision==\"3\")].metadata.labels.pod-template-hash}").await;
    all_pods_at(&w, "pod-template-hash", &hash).await;

    // undo: back to revision 2's template, whose ReplicaSet becomes revision 4.
    let out = w.kubectl_ok(&["rollout", "undo", "deployment/web"]).await;
    assert_eq!(out.trim(), "deployment.apps/web rolled back");
    rolled_out(&w, "deployment/web").await;
    assert_eq!(history(&w, "deployment/web").await, ["1", "3", "4"]);
    assert_eq!(
        field(&w, "deployment/web", "{.spec.template.spec.containers[0].image} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}").await,
        "registry.example/web:2 4"
    );
    assert_eq!(
        field(&w, "rs", "{.items[?(@.metadata.annotations.deployment\\.kubernetes\\.io/revision==\"4\")].metadata.annotations.deployment\\.kubernetes\\.io/revision-history}").await,
        "2"
    );
    assert_eq!(
        w.kubectl_ok(&["get", "rs", "-o", "name"])
            .await
            .lines()
            .count(),
        3,
        "no ReplicaSet is made for a template one already has"
    );
    undo_to_the_first_revision(&w, "deployment/web", "deployment.apps/web", "web").await;
    let same = w
        .kubectl_ok(&["rollout", "undo", "deployment/web", "--to-revision=5"])
        .await;
    assert_eq!(
        same.trim(),
        "deployment.apps/web skipped rollback (current template already matches revision 5)"
    );
    let missing = w
        .kubectl(&["rollout", "undo", "deployment/web", "--to-revision=9"])
        .await;
    assert!(!missing.ok);
    assert!(
        missing
            .stderr
            .contains("unable to find specified revision 9 in history"),
        "{}",
        missing.stderr
    );
    // The change cause annotated on the Deployment is the newest revision's in the history.
    w.kubectl_ok(&[
        "annotate",
        "deployment/web",
        "kubernetes.io/change-cause=back to web:1",
    ])
    .await;
    let line = wait_until("the change cause in the rollout history", || async {
        let out = w
            .kubectl_ok(&["rollout", "history", "deployment/web"])
            .await;
        out.lines()
            .find(|l| l.starts_with('5') && l.contains("back to web:1"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    })
    .await;
    assert_eq!(line, "5 back to web:1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_restarts_undoes_and_lists_a_stateful_sets_revisions() {
    let w = workloads().await;
    let sts = write(&w, "sts.yaml", STATEFUL_SET);
    w.kubectl_ok(&["apply", "-f", &sts]).await;
    let out = rolled_out(&w, "statefulset/db").await;
    assert!(
        out.trim_end()
            .ends_with("partitioned roll out complete: 2 new pods have been updated..."),
        "{out}"
    );
    new_image_then_restart(&w, "statefulset/db", "statefulset.apps/db", "db").await;
    let update = field(&w, "statefulset/db", "{.status.updateRevision}").await;
    all_pods_at(&w, "controller-revision-hash", &update).await;

    // undo: revision 2's template again, its ControllerRevision now revision 4.
    let out = w.kubectl_ok(&["rollout", "undo", "statefulset/db"]).await;
    assert_eq!(out.trim(), "statefulset.apps/db rolled back");
    rolled_out(&w, "statefulset/db").await;
    assert_eq!(history(&w, "statefulset/db").await, ["1", "3", "4"]);
    let template = field(
        &w,
        "statefulset/db",
        "{.spec.template.spec.containers[0].image} {.spec.template.metadata.annotations}",
    )
    .await;
    assert_eq!(template.trim(), "registry.example/db:2");
    let update = field(&w, "statefulset/db", "{.status.updateRevision}").await;
    assert_eq!(
        field(&w, &format!("controllerrevision/{update}"), "{.revision}").await,
        "4"
    );
    all_pods_at(&w, "controller-revision-hash", &update).await;

    undo_to_the_first_revision(&w, "statefulset/db", "statefulset.apps/db", "db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_fails_when_the_rollout_does_not_finish_in_time() {
    let w = workloads().await;
    w.ready.store(false, Ordering::SeqCst);
    w.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.example/web:1",
    ])
    .await;
    let out = w
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=2s"])
        .await;
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stderr.contains("timed out waiting for the condition"),
        "{}",
        out.stderr
    );
    w.ready.store(true, Ordering::SeqCst);
    rolled_out(&w, "deployment/web").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_pause_holds_template_changes_until_resume() {
    let w = workloads().await;
    web_rolled_out(&w).await;
    let out = w.kubectl_ok(&["rollout", "pause", "deployment/web"]).await;
    assert_eq!(out.trim(), "deployment.apps/web paused");
    w.kubectl_ok(&[
        "set",
        "image",
        "deployment/web",
        "web=registry.example/web:2",
    ])
    .await;
    // The controller has seen the change (observedGeneration) and made no ReplicaSet for it.
    wait_until("the paused Deployment's change to be observed", || async {
        let seen = field(
            &w,
            "deployment/web",
            "{.metadata.generation} {.status.observedGeneration}",
        )
        .await;
        let (generation, observed) = seen.split_once(' ')?;
        (generation == observed).then_some(())
    })
    .await;
    assert_eq!(replica_sets(&w).await, 1, "no rollout while paused");
    let progressing = "{.status.conditions[?(@.type==\"Progressing\")].status} {.status.conditions[?(@.type==\"Progressing\")].reason}";
    assert_eq!(
        field(&w, "deployment/web", progressing).await,
        "Unknown DeploymentPaused"
    );
    assert_eq!(history(&w, "deployment/web").await, ["1"]);
    let out = w.kubectl_ok(&["rollout", "resume", "deployment/web"]).await;
    assert_eq!(out.trim(), "deployment.apps/web resumed");
    rolled_out(&w, "deployment/web").await;
    assert_eq!(replica_sets(&w).await, 2);
    assert_eq!(history(&w, "deployment/web").await, ["1", "2"]);
    assert_eq!(
        field(&w, "pods", "{.items[*].spec.containers[0].image}").await,
        "registry.example/web:2 registry.example/web:2"
    );
}

/// How many ReplicaSets `kubectl get rs` lists.
async fn replica_sets(w: &Workloads) -> usize {
    w.kubectl_ok(&["get", "rs", "-o", "name"])
        .await
        .lines()
        .count()
}
