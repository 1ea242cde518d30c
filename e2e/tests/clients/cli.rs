//! `tributary-e2e apiserver`: serves the API and prints the kubeconfig kubectl then uses;
//! `tributary-e2e up` starts a cluster clients reach and `down` stops every process of it.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::cluster::{succeeded, tool};
use crate::support::next_line;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apiserver_command_serves_the_api_and_prints_its_kubeconfig() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kc/kubeconfig");
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary-e2e"))
        .args(["apiserver", "--namespace", "kube-system", "--kubeconfig"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tributary-e2e apiserver");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let printed = next_line(&mut lines).await;
    assert_eq!(
        std::path::Path::new(&printed),
        std::fs::canonicalize(&path).expect("written")
    );
    let out = tokio::process::Command::new(tool(tributary_e2e::tools::kubectl()))
        .args(["get", "serviceaccounts", "-o", "name"])
        .env("KUBECONFIG", &printed)
        .env("HOME", dir.path())
        .output()
        .await
        .expect("kubectl");
    assert_eq!(
        succeeded(&out),
        "serviceaccount/default",
        "the context's namespace is kube-system"
    );
    let _ = server.kill().await;
}

/// Processes (not zombies) whose kubeconfig lies under `dir`: the pods of a local cluster.
fn pod_processes(dir: &std::path::Path) -> Vec<u32> {
    let needle = format!("KUBECONFIG={}", dir.display());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            tributary_e2e::kubelet::running(*pid)
                && env
                    .split(|b| *b == 0)
                    .any(|v| v.starts_with(needle.as_bytes()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_starts_a_ready_cluster_clients_reach_and_down_stops_every_process_it_started() {
    tributary_e2e::tools::build_binaries()
        .await
        .expect("build the binaries");
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("up");
    let e2e = env!("CARGO_BIN_EXE_tributary-e2e");
    let mut up = tokio::process::Command::new(e2e)
        .args(["up", "--brokers", "1", "--state-dir"])
        .arg(&state)
        .env("HOME", dir.path())
        .current_dir(tributary_e2e::tools::repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tributary-e2e up");
    let mut lines = BufReader::new(up.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    for _ in 0..2 {
        match tokio::time::timeout(std::time::Duration::from_secs(240), lines.next_line()).await {
            Ok(Ok(Some(l))) => printed.push(l),
            other => panic!("up printed nothing more: {other:?}"),
        }
    }
    let bootstrap = printed[0]
        .strip_prefix("Kafka bootstrap: ")
        .expect("the bootstrap line")
        .to_owned();
    let kubeconfig = printed[1]
        .strip_prefix("kubeconfig:")
        .expect("the kubeconfig line")
        .trim()
        .to_owned();
    let out = tokio::process::Command::new("kcat")
        .args(["-L", "-J", "-b", &bootstrap])
        .output()
        .await
        .expect("kcat (install it with .ci/install-tools.sh)");
    let metadata: serde_json::Value = serde_json::from_str(&succeeded(&out)).expect("kcat JSON");
    assert_eq!(
        metadata["brokers"][0]["name"],
        bootstrap.as_str(),
        "the broker advertises its pod IP"
    );
    let out = tokio::process::Command::new(tool(tributary_e2e::tools::kubectl()))
        .args([
            "get",
            "kafkaclusters",
            "-A",
            "-o",
            "jsonpath={.items[0].status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir.path())
        .output()
        .await
        .expect("kubectl");
    assert_eq!(succeeded(&out), "True");
    assert_eq!(pod_processes(&state).len(), 3, "two operators and a broker");

    let down = tokio::process::Command::new(e2e)
        .args(["down", "--state-dir"])
        .arg(&state)
        .output()
        .await
        .expect("tributary-e2e down");
    assert_eq!(succeeded(&down), "stopped");
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), up.wait())
        .await
        .expect("up exits after down")
        .expect("wait");
    assert!(status.success(), "up: {status:?}");
    assert!(
        pod_processes(&state).is_empty(),
        "left running: {:?}",
        pod_processes(&state)
    );
}
