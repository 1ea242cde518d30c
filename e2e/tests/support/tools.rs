//! The real `kubectl` and `helm` pointed at a control plane through a kubeconfig, each
//! environment with its own HOME (kubectl's discovery cache, helm's config) so runs never
//! share state.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;
use tributary_e2e::tools;

/// What a finished command printed.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// A tool the test command installs; missing is a failure, never a skip.
pub fn tool(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run .ci/install-tools.sh (make tools) first",
        path.display()
    );
    path
}

/// kubectl and helm for one kubeconfig.
#[derive(Clone, Debug)]
pub struct Tools {
    pub kubeconfig: PathBuf,
    pub home: PathBuf,
}

impl Tools {
    /// A command for `program` with this kubeconfig and HOME, run from the repository root.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .env_remove("XDG_CACHE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .current_dir(tools::repo_root())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `program` to completion.
    pub async fn run(&self, program: PathBuf, args: &[&str]) -> Output {
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
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.run(tools::kubectl(), args).await
    }

    /// Runs kubectl, failing the test unless it succeeds; returns its stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs helm.
    pub async fn helm(&self, args: &[&str]) -> Output {
        self.run(tools::helm(), args).await
    }

    /// Runs helm, failing the test unless it succeeds; returns its stdout.
    pub async fn helm_ok(&self, args: &[&str]) -> String {
        let out = self.helm(args).await;
        assert!(
            out.ok,
            "helm {args:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }
}

/// The first line of `table` whose first column is `name`, split into columns.
pub fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

/// The trimmed stdout of a finished command, failing the test unless it succeeded.
pub fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
