//! `tributary-e2e apiserver`: serves the API and prints the kubeconfig kubectl then uses.

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
