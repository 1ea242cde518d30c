//! Where a scenario runs: an [`Env`] is a cluster with a kubeconfig, the real kubectl and helm
//! pointed at it, and the few things only the driver can do (signal a container's process:
//! kill, freeze, thaw; list a volume's files). Scenarios ask for the shared environment (the chart installed
//! once, with `e2e/chart-values.yaml`) or for one of their own.

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::tools::Tools;
use crate::{kind, local};

/// The chart's release.
pub(crate) const RELEASE: &str = "tributary";
/// Its namespace.
pub(crate) const RELEASE_NS: &str = "tributary-system";
/// The values every environment installs the chart with.
pub(crate) const VALUES: &str = "e2e/chart-values.yaml";
/// Label on the namespaces scenarios create (the kind driver removes them between scenarios).
pub(crate) const SCENARIO_LABEL: &str = "tributary.dev/e2e-scenario";
/// The operator's Lease (chart default).
pub(crate) const OPERATOR_LEASE: &str = "tributary-operator";
/// Label selecting the operator's pods.
pub(crate) const OPERATOR_PODS: &str = "app.kubernetes.io/component=operator";

/// Which cluster the scenarios run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Driver {
    /// The local control plane with the kubelet stand-in.
    Local,
    /// A kind cluster (e2e/kind/run.sh).
    Kind,
}

/// A signal a scenario sends a container's process, as a fault would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGKILL: a crash; the kubelet restarts the container.
    Kill,
    /// SIGSTOP: the process freezes (a long pause, a hung machine) but keeps its sockets and
    /// its place in the pod; nothing restarts it.
    Stop,
    /// SIGCONT: a frozen process runs on, unaware of the time it lost.
    Cont,
}

impl Signal {
    /// The name `kill -s` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// Runs a scenario and reports its wall time (shown with `--nocapture`).
pub(crate) async fn timed(name: &str, scenario: impl Future<Output = ()>) {
    let start = Instant::now();
    scenario.await;
    eprintln!("scenario {name}: {:.1} s", start.elapsed().as_secs_f64());
}

/// The driver's part of an environment.
pub(crate) enum Backend {
    Local(Box<local::Local>),
    Kind(kind::Kind),
}

/// A cluster a scenario runs against.
pub(crate) struct Env {
    pub(crate) tools: Tools,
    pub(crate) backend: Backend,
}

impl Deref for Env {
    type Target = Tools;

    fn deref(&self) -> &Tools {
        &self.tools
    }
}

impl Env {
    /// The environment every scenario that only adds objects in namespaces of its own shares:
    /// the chart installed once.
    pub(crate) async fn shared(driver: Driver) -> Arc<Env> {
        match driver {
            Driver::Local => local::shared().await,
            Driver::Kind => Arc::new(kind::shared().await),
        }
    }

    /// An environment of the scenario's own, with nothing installed.
    pub(crate) async fn fresh(driver: Driver) -> Env {
        match driver {
            Driver::Local => local::fresh().await,
            Driver::Kind => kind::fresh().await,
        }
    }

    /// Stops what the environment started (a fresh local control plane's processes).
    pub(crate) async fn stop(self) {
        if let Backend::Local(l) = self.backend {
            l.stop().await;
        }
    }

    /// A Kubernetes client through the environment's kubeconfig, for scenarios that poll
    /// objects often (cheaper than a kubectl process each time). Made per call: a client
    /// belongs to the runtime that made it, and each scenario has its own.
    pub(crate) async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.kubeconfig.display()));
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("load {}: {e}", self.kubeconfig.display()));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("a Kubernetes client: {e}"))
    }

    /// `helm install`s the chart (release `tributary` in `tributary-system`) with the e2e
    /// values and `extra` arguments, waiting until it is ready.
    pub(crate) async fn install_chart(&self, extra: &[&str]) {
        let mut args = vec![
            "install",
            RELEASE,
            "charts/tributary",
            "--namespace",
            RELEASE_NS,
            "--create-namespace",
            "--values",
            VALUES,
            "--wait",
            "--timeout",
            "180s",
        ];
        args.extend_from_slice(extra);
        self.helm_ok(&args).await;
    }

    /// Creates namespace `name` (labelled as a scenario's), deleted when the returned guard
    /// drops.
    pub(crate) async fn namespace(&self, name: &str) -> Namespace {
        let manifest = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    {SCENARIO_LABEL}: \"true\"\n"
        );
        self.apply(&manifest).await;
        Namespace {
            tools: self.tools.clone(),
            name: name.to_owned(),
        }
    }

    /// `kubectl apply -f` of `manifest` (YAML).
    pub(crate) async fn apply(&self, manifest: &str) -> String {
        let out = self.apply_result(manifest).await;
        assert!(
            out.ok,
            "kubectl apply failed:\n{}{}\n{manifest}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// `kubectl apply -f` of `manifest`, whatever the outcome.
    pub(crate) async fn apply_result(&self, manifest: &str) -> crate::support::tools::Output {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), manifest).expect("write manifest");
        let path = file.path().to_string_lossy().into_owned();
        self.kubectl(&["apply", "-f", &path]).await
    }

    /// `kubectl get -o json` of one object.
    pub(crate) async fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all).await).expect("kubectl printed JSON")
    }

    /// The pods of `namespace` matching `selector`, as JSON.
    pub(crate) async fn pods(&self, namespace: &str, selector: &str) -> Vec<Value> {
        let list = self
            .get_json(&["pods", "-n", namespace, "-l", selector])
            .await;
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// SIGKILLs the process of `container` in pod `namespace/pod`, as a crash would.
    pub(crate) async fn kill(&self, namespace: &str, pod: &str, container: &str) {
        self.signal(namespace, pod, container, Signal::Kill).await;
    }

    /// Sends `signal` to the process of `container` in pod `namespace/pod`; fails the
    /// scenario if it does not run.
    pub(crate) async fn signal(&self, namespace: &str, pod: &str, container: &str, signal: Signal) {
        match &self.backend {
            Backend::Local(l) => l.signal(namespace, pod, container, signal),
            Backend::Kind(k) => k.signal(self, namespace, pod, container, signal).await,
        }
    }

    /// Every file under the volume bound to claim `namespace/claim` (paths relative to it).
    pub(crate) async fn claim_files(&self, namespace: &str, claim: &str) -> Vec<String> {
        let pvc = self.get_json(&["pvc", claim, "-n", namespace]).await;
        let pv_name = pvc["spec"]["volumeName"]
            .as_str()
            .expect("the claim is bound")
            .to_owned();
        let pv = self.get_json(&["pv", &pv_name]).await;
        let path = pv["spec"]["hostPath"]["path"]
            .as_str()
            .or_else(|| pv["spec"]["local"]["path"].as_str())
            .expect("a host-path volume")
            .to_owned();
        match &self.backend {
            Backend::Local(_) => local::files_under(std::path::Path::new(&path)),
            Backend::Kind(k) => k.files_under(&pv, &path).await,
        }
    }
}

/// A scenario's namespace. Deleted (without waiting) when the scenario ends, passed or failed:
/// the brokers of a finished scenario would otherwise keep running beside the next scenarios
/// in the shared environment, and on a 2-core machine their Lease renewals and fetches starve
/// the scenarios that run later.
#[must_use = "the namespace is deleted when this drops"]
pub(crate) struct Namespace {
    tools: Tools,
    name: String,
}

impl Namespace {
    /// Runs kubectl to completion from a destructor (no runtime to await on there).
    fn kubectl(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        std::process::Command::new(tributary_e2e::tools::kubectl())
            .args(args)
            .env("KUBECONFIG", &self.tools.kubeconfig)
            .env("HOME", &self.tools.home)
            .stdin(std::process::Stdio::null())
            .output()
    }

    /// After a failed scenario: every container's log in the namespace (and the one before
    /// its last restart) saved under `<target>/e2e-failures/<namespace>/`, and each log's last
    /// warnings and errors printed, so a failure in CI can be read from its output alone.
    fn dump_logs(&self) {
        let dir = tributary_e2e::tools::target_dir()
            .join("e2e-failures")
            .join(&self.name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("create {}: {e}", dir.display());
            return;
        }
        let pods = match self.kubectl(&["get", "pods", "-n", &self.name, "-o", "name"]) {
            Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
            Err(e) => {
                eprintln!("list pods of {}: {e}", self.name);
                return;
            }
        };
        for pod in pods.lines().filter_map(|l| l.strip_prefix("pod/")) {
            for (suffix, previous) in [("previous", true), ("current", false)] {
                let mut args = vec!["logs", "-n", &self.name, pod, "--all-containers"];
                if previous {
                    args.push("--previous");
                }
                let Ok(out) = self.kubectl(&args) else {
                    continue;
                };
                if !out.status.success() {
                    continue;
                }
                let path = dir.join(format!("{pod}.{suffix}.log"));
                let _ = std::fs::write(&path, &out.stdout);
                let text = String::from_utf8_lossy(&out.stdout);
                let notable: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                    .collect();
                eprintln!(
                    "--- {pod} ({suffix} process; whole log in {}): last warnings and errors",
                    path.display()
                );
                for line in &notable[notable.len().saturating_sub(25)..] {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        let deleted = self.kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
        match deleted {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "delete namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("delete namespace {}: {e}", self.name),
        }
    }
}

/// Polls `f` every 50 ms until it yields `Some`, failing the scenario after `deadline`.
pub(crate) async fn wait<T, F, Fut>(what: &str, deadline: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tributary_e2e::wait_until(what, deadline, f).await
}

/// The `status` of condition `type_` in an object's `status.conditions`.
pub(crate) fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}
