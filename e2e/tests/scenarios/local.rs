//! The local driver: each environment is a `tributary_e2e::local::LocalCluster` (API server,
//! workload controllers, kubelet stand-in) in a temporary directory. The shared one runs on a
//! runtime of its own, since every test has its own; the process watchdog removes it when the
//! test binary exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::OnceCell;
use tributary_e2e::kubelet;
use tributary_e2e::local::{LocalCluster, LocalConfig};
use tributary_e2e::tools;

use crate::env::{Backend, Env, Signal};
use crate::support::tools::Tools;

/// A local control plane and its directory.
pub(crate) struct Local {
    cluster: LocalCluster,
    /// Removed with a fresh environment; the shared one's is left to the watchdog.
    _dir: Option<tempfile::TempDir>,
}

impl Local {
    /// Signals the process group of the container (the kubelet stand-in's own processes).
    pub(crate) fn signal(&self, namespace: &str, pod: &str, container: &str, signal: Signal) {
        let kubelet = self.cluster.kubelet().expect("the kubelet runs");
        let signal = match signal {
            Signal::Kill => kubelet::Signal::KILL,
            Signal::Stop => kubelet::Signal::STOP,
            Signal::Cont => kubelet::Signal::CONT,
        };
        assert!(
            kubelet.signal(namespace, pod, container, signal),
            "{namespace}/{pod} has no running {container} process"
        );
    }

    pub(crate) async fn stop(self) {
        self.cluster.shutdown().await;
    }
}

/// Starts a control plane in a new temporary directory.
async fn start(keep: bool) -> Env {
    tools::build_binaries()
        .await
        .expect("build tributary-broker and tributary-operator");
    let dir = tempfile::Builder::new()
        .prefix("tributary-e2e-")
        .tempdir()
        .expect("temp dir");
    let watchdog = PathBuf::from(env!("CARGO_BIN_EXE_tributary-e2e"));
    let mut config = LocalConfig::new(dir.path().to_owned(), Some(watchdog));
    config.remove_state_dir_at_exit = true;
    let cluster = LocalCluster::start(config)
        .await
        .expect("start the local control plane");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("HOME");
    let tools = Tools {
        kubeconfig: cluster.kubeconfig().to_owned(),
        home,
    };
    let dir = if keep {
        let _ = dir.keep();
        None
    } else {
        Some(dir)
    };
    Env {
        tools,
        backend: Backend::Local(Box::new(Local { cluster, _dir: dir })),
    }
}

/// A control plane of the calling scenario's own.
pub(crate) async fn fresh() -> Env {
    start(false).await
}

/// The shared control plane with the chart installed, started by the first scenario that asks
/// on a runtime that outlives every test.
pub(crate) async fn shared() -> Arc<Env> {
    static SHARED: OnceCell<Arc<Env>> = OnceCell::const_new();
    SHARED
        .get_or_init(|| async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("shared-control-plane".into())
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    rt.block_on(async move {
                        let _ = tx.send(start(true).await);
                        std::future::pending::<()>().await;
                    });
                })
                .expect("spawn the shared control plane's thread");
            let env = rx.await.expect("the shared control plane started");
            env.install_chart(&[]).await;
            Arc::new(env)
        })
        .await
        .clone()
}

/// Every file under `dir`, relative to it, sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>, depth: usize) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
            if path.is_dir() && depth < 8 {
                walk(root, &path, out, depth + 1);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out, 0);
    out.sort();
    out
}
