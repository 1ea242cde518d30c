//! The kind driver: every environment is the one kind cluster `e2e/kind/run.sh` created
//! (kubeconfig in `TRIBUTARY_E2E_KUBECONFIG`, cluster name in `TRIBUTARY_E2E_KIND_CLUSTER`),
//! with the images it built and loaded. Its tests run one at a time: a scenario that needs an
//! environment of its own gets the cluster with every release, scenario namespace and
//! Tributary CRD removed; a shared-environment scenario gets the chart installed if it is not.
//! Host clients reach pods at their pod IPs (run.sh routes the pod network to the node); a
//! container's process is signalled inside the node (`docker exec <node> kill -s KILL`, `STOP`
//! or `CONT`, the pid from `crictl inspect`), and a volume's files are listed there.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::env::{wait, Backend, Env, Signal, RELEASE, RELEASE_NS, SCENARIO_LABEL};
use crate::support::tools::Tools;

/// The kind cluster.
pub(crate) struct Kind {
    cluster: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run e2e/kind/run.sh"))
}

fn env() -> Env {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    Env {
        tools: Tools {
            kubeconfig: PathBuf::from(var("TRIBUTARY_E2E_KUBECONFIG")),
            home,
        },
        backend: Backend::Kind(Kind {
            cluster: std::env::var("TRIBUTARY_E2E_KIND_CLUSTER")
                .unwrap_or_else(|_| "tributary-e2e".to_owned()),
        }),
    }
}

async fn docker(args: &[&str]) -> String {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Kind {
    /// The node container a pod runs on.
    async fn node_of(&self, env: &Env, namespace: &str, pod: &str) -> String {
        let p = env.get_json(&["pod", pod, "-n", namespace]).await;
        p["spec"]["nodeName"]
            .as_str()
            .map_or_else(|| format!("{}-control-plane", self.cluster), str::to_owned)
    }

    /// Signals the container's main process from its node (the node's pid namespace is the
    /// container's parent, so even STOP and KILL reach the container's pid 1).
    pub(crate) async fn signal(
        &self,
        env: &Env,
        namespace: &str,
        pod: &str,
        container: &str,
        signal: Signal,
    ) {
        let node = self.node_of(env, namespace, pod).await;
        let id = docker(&[
            "exec",
            &node,
            "crictl",
            "ps",
            "-q",
            "--label",
            &format!("io.kubernetes.pod.namespace={namespace}"),
            "--label",
            &format!("io.kubernetes.pod.name={pod}"),
            "--name",
            &format!("^{container}$"),
        ])
        .await;
        let id = id
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no running {container} in {pod}"))
            .to_owned();
        let pid = docker(&[
            "exec",
            &node,
            "crictl",
            "inspect",
            "-o",
            "go-template",
            "--template",
            "{{.info.pid}}",
            &id,
        ])
        .await;
        docker(&["exec", &node, "kill", "-s", signal.name(), &pid]).await;
    }

    pub(crate) async fn files_under(&self, pv: &Value, path: &str) -> Vec<String> {
        let node = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
            ["matchExpressions"][0]["values"][0]
            .as_str()
            .map_or_else(|| format!("{}-control-plane", self.cluster), str::to_owned);
        let listing = docker(&["exec", &node, "find", path, "-mindepth", "1"]).await;
        let mut files: Vec<String> = listing
            .lines()
            .filter_map(|l| l.strip_prefix(path))
            .map(|l| l.trim_start_matches('/').to_owned())
            .collect();
        files.sort();
        files
    }
}

/// The cluster with the chart installed.
pub(crate) async fn shared() -> Env {
    let env = env();
    if !env
        .helm(&["status", RELEASE, "--namespace", RELEASE_NS])
        .await
        .ok
    {
        env.install_chart(&[]).await;
    }
    env
}

/// The cluster with everything earlier scenarios left removed: Kafka objects first (while the
/// operator still releases their finalizers), then every release, the scenario namespaces and
/// the CRDs.
pub(crate) async fn fresh() -> Env {
    let env = env();
    for kind in ["kafkatopics.tributary.dev", "kafkaclusters.tributary.dev"] {
        let _ = env
            .kubectl(&[
                "delete",
                kind,
                "--all",
                "--all-namespaces",
                "--wait",
                "--timeout",
                "120s",
            ])
            .await;
    }
    let releases = env
        .helm_ok(&["list", "--all-namespaces", "--all", "-o", "json"])
        .await;
    let releases: Value = serde_json::from_str(&releases).expect("helm list -o json");
    for r in releases.as_array().into_iter().flatten() {
        let (name, ns) = (
            r["name"].as_str().unwrap_or_default(),
            r["namespace"].as_str().unwrap_or_default(),
        );
        env.helm_ok(&[
            "uninstall",
            name,
            "--namespace",
            ns,
            "--wait",
            "--timeout",
            "120s",
        ])
        .await;
    }
    let selector = format!("{SCENARIO_LABEL}=true");
    env.kubectl_ok(&[
        "delete",
        "namespaces",
        "-l",
        &selector,
        "--wait",
        "--timeout",
        "180s",
    ])
    .await;
    let _ = env
        .kubectl(&[
            "delete",
            "namespace",
            RELEASE_NS,
            "--ignore-not-found",
            "--wait",
            "--timeout",
            "180s",
        ])
        .await;
    env.kubectl_ok(&[
        "delete",
        "crd",
        "kafkaclusters.tributary.dev",
        "kafkatopics.tributary.dev",
        "--ignore-not-found",
    ])
    .await;
    wait(
        "the Tributary CRDs to be gone",
        Duration::from_secs(60),
        || async {
            let out = env
                .kubectl(&["get", "crd", "kafkaclusters.tributary.dev"])
                .await;
            (!out.ok).then_some(())
        },
    )
    .await;
    env
}
