//! A served control plane and the real tools pointed at it through a kubeconfig, each test in
//! its own HOME (kubectl's discovery cache, helm's config) so runs never share state.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;
use tributary_e2e::apiserver::Served;
use tributary_e2e::{kubeconfig, tools, FakeApiServer};

/// What a finished command printed.
pub(crate) struct Output {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The control plane of one test.
pub(crate) struct Cluster {
    pub(crate) server: FakeApiServer,
    pub(crate) client: kube::Client,
    /// Serving for as long as the test holds the cluster.
    _served: Served,
    pub(crate) home: tempfile::TempDir,
}

/// A tool the test command installs; missing is a failure, never a skip.
pub(crate) fn tool(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run .ci/install-tools.sh (make tools) first",
        path.display()
    );
    path
}

impl Cluster {
    /// Serves a fresh API server with namespace `ns` and writes the kubeconfig.
    pub(crate) async fn start(ns: &str) -> Cluster {
        let server = FakeApiServer::new();
        server.create_namespace(ns);
        let served = server.serve().await.expect("serve the API");
        let home = tempfile::tempdir().expect("temp HOME");
        kubeconfig::write(&home.path().join("kubeconfig"), &served.url(), ns).expect("kubeconfig");
        let client = server.client(ns);
        Cluster {
            server,
            client,
            _served: served,
            home,
        }
    }

    /// The kubeconfig's path.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.home.path().join("kubeconfig")
    }

    /// A command for `program` with this cluster's kubeconfig and HOME.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.home.path())
            .env_remove("XDG_CACHE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .current_dir(tools::repo_root())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, program: PathBuf, args: &[&str]) -> Output {
        let out = self
            .command(&tool(program))
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl.
    pub(crate) async fn kubectl(&self, args: &[&str]) -> Output {
        self.run(tools::kubectl(), args).await
    }

    /// Runs kubectl, failing the test unless it succeeds; returns its stdout.
    pub(crate) async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs helm, failing the test unless it succeeds; returns its stdout.
    pub(crate) async fn helm_ok(&self, args: &[&str]) -> String {
        let out = self.run(tools::helm(), args).await;
        assert!(
            out.ok,
            "helm {args:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }
}

/// The first line of `table` whose first column is `name`, split into columns.
pub(crate) fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

/// The trimmed stdout of a finished command, failing the test unless it succeeded.
pub(crate) fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
