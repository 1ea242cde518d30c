//! The kubelet stand-in with real processes: `/bin/sh` as a container image, pods bound to its
//! node by hand. Environment expansion and the downward API, volume paths rewritten in args and
//! ConfigMap files, pod IPs, probes, logs, restarts with back-off, graceful deletion, and no
//! process outliving the kubelet.

#[path = "../support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_e2e::apiserver::Served;
use tributary_e2e::kubelet::{
    running, Image, ImageTable, Kubelet, KubeletConfig, MAX_CONTAINER_RESTART_PERIOD,
};
use tributary_e2e::FakeApiServer;

use crate::support::{raw, wait_until};

const NS: &str = "node";

/// A control plane with one kubelet that runs `test/sh` images as `/bin/sh`.
struct Node {
    server: FakeApiServer,
    client: Client,
    kubelet: Option<Kubelet>,
    _served: Served,
    _dir: tempfile::TempDir,
}

async fn node() -> Node {
    node_with(MAX_CONTAINER_RESTART_PERIOD).await
}

/// As [`node`], with the kubelet's restart back-off capped at `max_restart_period`.
async fn node_with(max_restart_period: Duration) -> Node {
    let server = FakeApiServer::new();
    server.create_namespace(NS);
    let served = server.serve().await.expect("serve");
    let dir = tempfile::tempdir().expect("state dir");
    let mut images = ImageTable::default();
    images.insert(
        "test/sh",
        Image {
            binary: PathBuf::from("/bin/sh"),
            entrypoint: "/bin/sh".into(),
            cmd: Vec::new(),
        },
    );
    let kubelet = Kubelet::start(
        &server,
        KubeletConfig {
            node_name: "node-1".into(),
            zone: "zone-a".into(),
            state_dir: dir.path().to_owned(),
            images,
            api_url: served.url(),
            watchdog: Some(PathBuf::from(env!("CARGO_BIN_EXE_tributary-e2e"))),
            watchdog_removes: None,
            shutdown_grace: Duration::from_secs(5),
            max_container_restart_period: max_restart_period,
        },
    )
    .await
    .expect("start the kubelet");
    Node {
        client: server.client(NS),
        server,
        kubelet: Some(kubelet),
        _served: served,
        _dir: dir,
    }
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

/// A pod bound to node-1 running `script` with `sh -c`.
fn pod(name: &str, script: &str, extra: Value) -> Pod {
    let mut p = json!({"metadata": {"name": name, "labels": {"idx": "7"}}, "spec": {
        "nodeName": "node-1",
        "containers": [{"name": "main", "image": "test/sh:1", "command": ["/bin/sh", "-c", script]}]}});
    merge(&mut p, extra);
    typed(p)
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// `GET http://<addr><path>`'s body.
async fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_with_its_expanded_env_and_rewritten_volume_paths_on_its_ip_and_turns_ready_on_its_probe(
) {
    let n = node().await;
    let cms: Api<ConfigMap> = Api::namespaced(n.client.clone(), NS);
    cms.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": "conf"},
        "data": {"app.conf": "data_dir=/var/lib/app/data\n"}})),
    )
    .await
    .expect("configmap");
    let script = "env > /var/lib/app/env; cp /etc/app/app.conf /var/lib/app/; \
                  exec python3 -m http.server --bind $(POD_IP) 8000 --directory /var/lib/app";
    let pods: Api<Pod> = Api::namespaced(n.client.clone(), NS);
    pods.create(&PostParams::default(), &pod("web", script, json!({"spec": {
        "volumes": [{"name": "conf", "configMap": {"name": "conf"}}, {"name": "data", "emptyDir": {}}],
        "containers": [{"name": "main", "image": "test/sh:1", "command": ["/bin/sh", "-c", script],
            "env": [
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "INDEX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['idx']"}}},
                {"name": "GREETING", "value": "hello from $(INDEX) at $(POD_IP) in $(NOWHERE)"}],
            "volumeMounts": [{"name": "conf", "mountPath": "/etc/app"}, {"name": "data", "mountPath": "/var/lib/app"}],
            "readinessProbe": {"httpGet": {"path": "/env", "port": 8000}, "periodSeconds": 1}}]}})))
        .await
        .expect("pod");
    let ready = wait_until("the pod to be Ready", || async {
        let p = pods.get("web").await.ok()?;
        let s = p.status.clone()?;
        let ready = s
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (ready && s.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await;
    let status = ready.status.expect("status");
    let ip = status.pod_ip.expect("pod IP");
    assert!(
        ip.starts_with("127.0.") && !ip.ends_with(".1"),
        "a loopback pod IP: {ip}"
    );
    let cs = &status.container_statuses.expect("container statuses")[0];
    assert!(
        cs.ready && cs.started == Some(true) && cs.restart_count == 0,
        "{cs:?}"
    );
    let addr = format!("{ip}:8000");
    let env = get(&addr, "/env").await.expect("GET /env");
    assert!(
        env.contains(&format!("GREETING=hello from 7 at {ip} in $(NOWHERE)")),
        "{env}"
    );
    assert!(
        env.contains("HOSTNAME=web") && env.contains("KUBECONFIG="),
        "{env}"
    );
    let conf = get(&addr, "/app.conf").await.expect("GET /app.conf");
    let data_dir = conf
        .trim()
        .strip_prefix("data_dir=")
        .expect("rewritten config");
    assert!(
        data_dir.ends_with("/volumes/data/data") && !data_dir.starts_with("/var/lib/app"),
        "{conf}"
    );
    let logs = raw(
        &n.client,
        "GET",
        &format!("/api/v1/namespaces/{NS}/pods/web/log"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(logs.status, 200);
    assert!(
        logs.text.contains("GET /app.conf"),
        "the container's output: {}",
        logs.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_container_is_restarted_at_once_then_backs_off() {
    let n = node().await;
    let pods: Api<Pod> = Api::namespaced(n.client.clone(), NS);
    pods.create(
        &PostParams::default(),
        &pod("crash", "echo starting; exit 3", json!({})),
    )
    .await
    .expect("pod");
    let cs = wait_until("CrashLoopBackOff after two runs", || async {
        let p = pods.get("crash").await.ok()?;
        let cs = p.status?.container_statuses?.into_iter().next()?;
        let waiting = cs.state.as_ref()?.waiting.as_ref()?.reason.clone()?;
        (cs.restart_count == 2 && waiting == "CrashLoopBackOff").then_some(cs)
    })
    .await;
    let last = cs
        .last_state
        .and_then(|s| s.terminated)
        .expect("the last termination");
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    let phase = pods
        .get("crash")
        .await
        .expect("pod")
        .status
        .and_then(|s| s.phase);
    assert_eq!(
        phase.as_deref(),
        Some("Running"),
        "a restarting pod is Running"
    );
}

/// With the default cap the fourth restart would come 10 + 20 + 40 s after the first run,
/// past the 30 s deadline of `wait_until`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_back_off_capped_at_one_second_restarts_a_crashing_container_every_second() {
    let n = node_with(Duration::from_secs(1)).await;
    let pods: Api<Pod> = Api::namespaced(n.client.clone(), NS);
    pods.create(&PostParams::default(), &pod("crash", "exit 3", json!({})))
        .await
        .expect("pod");
    let waiting = wait_until("a fifth run after four restarts", || async {
        let p = pods.get("crash").await.ok()?;
        let cs = p.status?.container_statuses?.into_iter().next()?;
        let waiting = cs.state.as_ref()?.waiting.as_ref()?.message.clone()?;
        (cs.restart_count >= 4).then_some(waiting)
    })
    .await;
    assert!(
        waiting.starts_with("back-off 1s"),
        "the kubelet's message: {waiting}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_sends_sigterm_then_sigkill_after_the_grace_period_then_removes_the_pod() {
    let n = node().await;
    let kubelet = n.kubelet.as_ref().expect("kubelet");
    let pods: Api<Pod> = Api::namespaced(n.client.clone(), NS);
    pods.create(
        &PostParams::default(),
        &pod("polite", "exec sleep 300", json!({})),
    )
    .await
    .expect("pod");
    pods.create(
        &PostParams::default(),
        &pod(
            "stubborn",
            "trap '' TERM; exec sleep 300",
            json!({"spec": {"terminationGracePeriodSeconds": 2}}),
        ),
    )
    .await
    .expect("pod");
    let pids = wait_until("both processes", || async {
        Some((
            kubelet.pid(NS, "polite", "main")?,
            kubelet.pid(NS, "stubborn", "main")?,
        ))
    })
    .await;
    for (name, pid, min, max) in [("polite", pids.0, 0, 2), ("stubborn", pids.1, 2, 8)] {
        let start = Instant::now();
        pods.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
        wait_until(&format!("{name} to be gone"), || async {
            pods.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(min) && took < Duration::from_secs(max),
            "{name} took {took:?}"
        );
        assert!(!running(pid), "{name}'s process {pid} outlived its pod");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_outlives_the_kubelet() {
    let mut n = node().await;
    let pods: Api<Pod> = Api::namespaced(n.client.clone(), NS);
    pods.create(
        &PostParams::default(),
        &pod("sleeper", "trap '' TERM; exec sleep 300", json!({})),
    )
    .await
    .expect("pod");
    let kubelet = n.kubelet.take().expect("kubelet");
    let pid = wait_until("the process", || async {
        kubelet.pid(NS, "sleeper", "main")
    })
    .await;
    drop(kubelet);
    wait_until("the process to be killed", || async {
        (!running(pid)).then_some(())
    })
    .await;
}

/// Whom `token` authenticates as, or the refusal's HTTP code.
async fn whoami(server: &FakeApiServer, token: &str) -> Result<String, u16> {
    let reviews: Api<SelfSubjectReview> = Api::all(server.client_with_token(NS, Some(token)));
    match reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(r) => Ok(r
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .unwrap_or_default()),
        Err(kube::Error::Api(s)) => Err(s.code),
        Err(e) => panic!("SelfSubjectReview: {e}"),
    }
}

/// The running pod `name`'s directory, once its containers started.
async fn started_pod_dir(n: &Node, name: &str) -> PathBuf {
    let pods: Api<Pod> = Api::namespaced(n.client.clone(), NS);
    wait_until(&format!("pod {name} to run"), || async {
        let p = pods.get(name).await.ok()?;
        let running = p.status?.phase.as_deref() == Some("Running");
        let kubelet = n.kubelet.as_ref()?;
        running.then(|| kubelet.pod_dir(NS, name)).flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_gets_its_service_account_token_which_the_kubelet_rotates() {
    let n = node().await;
    let accounts: Api<ServiceAccount> = Api::namespaced(n.client.clone(), NS);
    accounts
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "reader"}})),
        )
        .await
        .expect("service account");
    let script =
        "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; exec sleep 600";
    let pods: Api<Pod> = Api::namespaced(n.client.clone(), NS);
    pods.create(
        &PostParams::default(),
        &pod(
            "reader",
            script,
            json!({"spec": {"serviceAccountName": "reader"}}),
        ),
    )
    .await
    .expect("pod");
    let dir = started_pod_dir(&n, "reader").await;
    let token_file = dir.join("volumes/kubernetes.io~projected/kube-api-access/token");
    let first = std::fs::read_to_string(&token_file).expect("the projected token");
    assert_eq!(
        whoami(&n.server, &first).await,
        Ok("system:serviceaccount:node:reader".to_owned())
    );
    let kubeconfig = std::fs::read_to_string(dir.join("kubeconfig")).expect("kubeconfig");
    assert!(
        kubeconfig.contains(&format!("tokenFile: {}", token_file.display()))
            && !kubeconfig.contains("as:"),
        "{kubeconfig}"
    );
    // The token's directory is where the container looks for it.
    let logs = wait_until("the container's output", || async {
        let path = format!("/api/v1/namespaces/{NS}/pods/reader/log");
        let logs = raw(&n.client, "GET", &path, &[], Vec::new()).await;
        logs.text.contains(NS).then_some(logs.text)
    })
    .await;
    assert_eq!(logs.trim(), NS);

    // Just past 80% of the kubelet's 3607 s lifetime (2886 s), it holds a new token.
    n.server.clock().advance(Duration::from_secs(2887));
    let second = wait_until("the token to be rotated", || async {
        let now = std::fs::read_to_string(&token_file).ok()?;
        (now != first).then_some(now)
    })
    .await;
    assert_eq!(
        whoami(&n.server, &second).await,
        Ok("system:serviceaccount:node:reader".to_owned())
    );

    // Both are bound to the pod: gone with it.
    pods.delete("reader", &DeleteParams::default().grace_period(1))
        .await
        .expect("delete");
    wait_until("the pod to be removed", || async {
        pods.get_opt("reader").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(whoami(&n.server, &second).await, Err(401));
    assert_eq!(whoami(&n.server, &first).await, Err(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_whose_service_account_does_not_automount_gets_no_token() {
    let n = node().await;
    let accounts: Api<ServiceAccount> = Api::namespaced(n.client.clone(), NS);
    accounts
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": "quiet"}, "automountServiceAccountToken": false})),
        )
        .await
        .expect("service account");
    let pods: Api<Pod> = Api::namespaced(n.client.clone(), NS);
    pods.create(
        &PostParams::default(),
        &pod(
            "quiet",
            "exec sleep 600",
            json!({"spec": {"serviceAccountName": "quiet"}}),
        ),
    )
    .await
    .expect("pod");
    let dir = started_pod_dir(&n, "quiet").await;
    assert!(!dir.join("volumes/kubernetes.io~projected").exists());
    let kubeconfig = std::fs::read_to_string(dir.join("kubeconfig")).expect("kubeconfig");
    assert!(
        !kubeconfig.contains("token"),
        "no credentials, so system:anonymous: {kubeconfig}"
    );
    // The pod's own setting wins over its account's.
    pods.create(
        &PostParams::default(),
        &pod(
            "loud",
            "exec sleep 600",
            json!({"spec": {"serviceAccountName": "quiet", "automountServiceAccountToken": true}}),
        ),
    )
    .await
    .expect("pod");
    let dir = started_pod_dir(&n, "loud").await;
    assert!(dir
        .join("volumes/kubernetes.io~projected/kube-api-access/token")
        .exists());
}
