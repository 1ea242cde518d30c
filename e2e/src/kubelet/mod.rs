//! A stand-in for the kubelet of one node: it registers a Node, and runs every pod bound to it
//! as local processes of the binaries its images map to ([`ImageTable`]), one process group per
//! container, each pod on its own loopback IP (`127.0.S.N`: each kubelet claims a loopback /24), with the
//! command, args and environment of the spec (`$(VAR)` expansion and the downward API as the
//! kubelet does them), volumes as host directories (paths rewritten, see [`volumes`]),
//! probes, restarts with back-off, and status written to the API; a deleted pod gets SIGTERM,
//! SIGKILL after its grace period, and its Pod object is then removed.
//!
//! Not modelled: init and ephemeral containers (init containers are ignored), lifecycle
//! hooks, resource limits and requests (only the QoS class is reported), security contexts
//! (processes run as the invoking user with the host's root filesystem), images other than the
//! table's, `exec`/`grpc`/HTTPS probes, the in-cluster API address (processes get a
//! `KUBECONFIG` for the control plane instead, whose context's namespace is the pod's and whose
//! credential is the pod's projected ServiceAccount token file, see [`token`]), Service environment variables, DNS, node heartbeats and eviction, refreshing of
//! ConfigMap/Secret volumes after the pod started.

pub mod env;
pub mod images;
mod network;
mod pods;
mod probes;
mod process;
mod status;
pub mod token;
pub mod volumes;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Pod,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use tokio::task::JoinHandle;

pub use self::images::{Image, ImageTable};
pub use self::network::NoSubnet;
pub use self::pods::MAX_CONTAINER_RESTART_PERIOD;
pub use self::process::{running, watchdog};
pub use rustix::process::Signal;

use self::network::PodNetwork;
use self::pods::{Ctx, Worker};
use crate::apiserver::PodLogs;
use crate::FakeApiServer;

/// How often pods are listed even without a change.
const TICK: Duration = Duration::from_secs(1);

/// Failures starting the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// No loopback subnet is free.
    #[error(transparent)]
    Network(#[from] NoSubnet),
    /// Its directories or the watchdog could not be created.
    #[error("cannot set up the kubelet in {}: {source}", dir.display())]
    Setup {
        /// The state directory.
        dir: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The Node could not be registered.
    #[error("cannot register the Node: {0}")]
    Register(#[source] kube::Error),
}

/// The kubelet's settings.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// Node name (also its `kubernetes.io/hostname` label).
    pub node_name: String,
    /// Value of the node's `topology.kubernetes.io/zone` label (rack-aware clusters read it).
    pub zone: String,
    /// Where pod directories (`pods/`) and container logs (`logs/`) live.
    pub state_dir: PathBuf,
    /// Which binary each image runs.
    pub images: ImageTable,
    /// The API server's URL, for the kubeconfig every pod gets (which trusts the CA `server`
    /// serves with).
    pub api_url: String,
    /// The `tributary-e2e` binary, run as the watchdog that kills the pods' processes if this
    /// process dies (None: only dropping the kubelet kills them).
    pub watchdog: Option<PathBuf>,
    /// What the watchdog removes when it fires: the pods' directories by default, or this
    /// (e.g. the whole state directory of a test's control plane).
    pub watchdog_removes: Option<PathBuf>,
    /// Longest grace period given to each pod at [`Kubelet::shutdown`].
    pub shutdown_grace: Duration,
    /// The cap of a crashing container's restart back-off, the kubelet configuration's
    /// `crashLoopBackOff.maxContainerRestartPeriod` (KEP-4603; 300 s by default, at least 1 s).
    pub max_container_restart_period: Duration,
}

struct Inner {
    ctx: Arc<Ctx>,
    node_name: String,
    workers: Mutex<BTreeMap<String, Worker>>,
}

impl Inner {
    fn find<T>(&self, namespace: &str, pod: &str, f: impl FnOnce(&Worker) -> T) -> Option<T> {
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers
            .values()
            .rfind(|w| w.shared.namespace == namespace && w.shared.name == pod && !w.finished())
            .map(f)
    }
}

impl PodLogs for Inner {
    fn read(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<String> {
        let prefix = format!("{namespace}_{pod}_");
        let file = pods::log_file(&self.ctx.logs_dir, &prefix, container, previous)?;
        std::fs::read(file)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// A running kubelet; dropping it SIGKILLs every process it started.
pub struct Kubelet {
    inner: Arc<Inner>,
    task: Option<JoinHandle<()>>,
    shutdown_grace: Duration,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        self.inner.ctx.groups.kill_all();
    }
}

fn node(config: &KubeletConfig, ip: Ipv4Addr, cidr: String) -> Node {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let capacity = BTreeMap::from([
        ("cpu".to_owned(), Quantity(cpus.to_string())),
        ("memory".to_owned(), Quantity("16Gi".to_owned())),
        ("pods".to_owned(), Quantity("253".to_owned())),
    ]);
    let labels = BTreeMap::from([
        (
            "kubernetes.io/hostname".to_owned(),
            config.node_name.clone(),
        ),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), arch.to_owned()),
        (
            "topology.kubernetes.io/zone".to_owned(),
            config.zone.clone(),
        ),
    ]);
    let now = Time(status::now());
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    Node {
        metadata: ObjectMeta {
            name: Some(config.node_name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".to_owned(),
                    address: ip.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".to_owned(),
                    address: config.node_name.clone(),
                },
            ]),
            allocatable: Some(capacity.clone()),
            capacity: Some(capacity),
            conditions: Some(vec![
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                condition(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                ),
            ]),
            node_info: Some(NodeSystemInfo {
                architecture: arch.to_owned(),
                container_runtime_version: "tributary-e2e://local-processes".to_owned(),
                kubelet_version: "v1.34.0-tributary-e2e".to_owned(),
                kube_proxy_version: String::new(),
                operating_system: "linux".to_owned(),
                os_image: "host processes".to_owned(),
                kernel_version: String::new(),
                machine_id: String::new(),
                system_uuid: String::new(),
                boot_id: String::new(),
                ..NodeSystemInfo::default()
            }),
            ..NodeStatus::default()
        }),
    }
}

async fn register(client: &Client, node: &Node) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut stored = match api.create(&PostParams::default(), node).await {
        Ok(n) => n,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let mut existing = api.get(&name).await?;
            existing.spec = node.spec.clone();
            existing.metadata.labels = node.metadata.labels.clone();
            api.replace(&name, &PostParams::default(), &existing)
                .await?
        }
        Err(e) => return Err(e),
    };
    stored.status = node.status.clone();
    api.replace_status(&name, &PostParams::default(), &stored)
        .await
        .map(drop)
}

impl Kubelet {
    /// Registers the node with `server` and starts running its pods.
    pub async fn start(
        server: &FakeApiServer,
        config: KubeletConfig,
    ) -> Result<Kubelet, KubeletError> {
        let network = PodNetwork::claim()?;
        let setup = |source| KubeletError::Setup {
            dir: config.state_dir.clone(),
            source,
        };
        let pods_dir = config.state_dir.join("pods");
        let logs_dir = config.state_dir.join("logs");
        for d in [&pods_dir, &logs_dir] {
            std::fs::create_dir_all(d).map_err(setup)?;
        }
        let removes = config
            .watchdog_removes
            .clone()
            .unwrap_or_else(|| pods_dir.clone());
        let groups =
            process::Groups::new(config.watchdog.as_deref(), Some(&removes)).map_err(setup)?;
        let client = server.client("default");
        let node_ip = network.node_ip();
        register(&client, &node(&config, node_ip, network.cidr()))
            .await
            .map_err(KubeletError::Register)?;
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            node_ip,
            api: crate::kubeconfig::Endpoint {
                url: config.api_url.clone(),
                ca_pem: server.ca_pem(),
            },
            clock: server.clock(),
            images: config.images.clone(),
            pods_dir,
            logs_dir,
            network: Mutex::new(network),
            groups,
            path: std::env::var("PATH")
                .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned()),
            max_restart_period: config.max_container_restart_period,
        });
        let inner = Arc::new(Inner {
            ctx,
            node_name: config.node_name.clone(),
            workers: Mutex::new(BTreeMap::new()),
        });
        server.set_pod_logs(inner.clone());
        let task = tokio::spawn(sync_loop(inner.clone(), server.changes()));
        Ok(Kubelet {
            inner,
            task: Some(task),
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// The node's address (`127.0.S.1`).
    pub fn node_ip(&self) -> Ipv4Addr {
        self.inner.ctx.node_ip
    }

    /// The process (group leader) of `container` in pod `namespace/pod`, while it runs.
    pub fn pid(&self, namespace: &str, pod: &str, container: &str) -> Option<u32> {
        self.inner
            .find(namespace, pod, |w| w.shared.pid(container))
            .flatten()
    }

    /// Sends `signal` to the process group of `container` in pod `namespace/pod`, as a fault
    /// would (the kubelet then sees the exit and restarts it as the restart policy says);
    /// false when it does not run.
    pub fn signal(&self, namespace: &str, pod: &str, container: &str, signal: Signal) -> bool {
        self.pid(namespace, pod, container)
            .is_some_and(|pid| process::signal_group(pid, signal))
    }

    /// The host directory of the running pod `namespace/pod` (volumes under `volumes/`).
    pub fn pod_dir(&self, namespace: &str, pod: &str) -> Option<PathBuf> {
        self.inner.find(namespace, pod, |w| w.shared.dir.clone())
    }

    /// The log file of `container` in the most recent pod `namespace/pod`.
    pub fn log_file(&self, namespace: &str, pod: &str, container: &str) -> Option<PathBuf> {
        pods::log_file(
            &self.inner.ctx.logs_dir,
            &format!("{namespace}_{pod}_"),
            container,
            false,
        )
    }

    /// Stops every pod (SIGTERM, SIGKILL after at most the shutdown grace), leaving the Pod
    /// objects as a node that goes away does.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        let workers: Vec<Worker> = std::mem::take(
            &mut *self
                .inner
                .workers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
        .into_values()
        .collect();
        for w in &workers {
            w.terminate(self.shutdown_grace, false);
        }
        for w in workers {
            let _ =
                tokio::time::timeout(self.shutdown_grace + Duration::from_secs(5), w.join()).await;
        }
    }
}

/// The node's pods, read whenever pods change (and every second).
async fn sync_loop(inner: Arc<Inner>, mut changes: crate::apiserver::Changes) {
    let api: Api<Pod> = Api::all(inner.ctx.client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={}", inner.node_name));
    loop {
        match api.list(&params).await {
            Ok(list) => sync(&inner, list.items),
            Err(e) => tracing::debug!("kubelet: cannot list pods: {e}"),
        }
        let woke = tokio::select! {
            woke = async {
                loop {
                    match changes.next().await {
                        Some(r) if r == "/pods" || r == "*" => return true,
                        Some(_) => {}
                        None => return false,
                    }
                }
            } => woke,
            () = tokio::time::sleep(TICK) => true,
        };
        if !woke {
            return;
        }
        changes.drain();
    }
}

fn grace_of(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn sync(inner: &Inner, pods: Vec<Pod>) {
    let mut workers = inner.workers.lock().unwrap_or_else(PoisonError::into_inner);
    let mut seen = Vec::new();
    for pod in pods {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        seen.push(uid.clone());
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let grace = grace_of(&pod);
        match workers.get(&uid) {
            Some(w) if deleting => w.terminate(grace, true),
            Some(_) => {}
            None => {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if matches!(phase, Some("Succeeded" | "Failed")) && !deleting {
                    continue;
                }
                let w = Worker::start(inner.ctx.clone(), pod);
                if deleting {
                    w.terminate(grace, true);
                }
                workers.insert(uid, w);
            }
        }
    }
    for (uid, w) in workers.iter() {
        if !seen.contains(uid) {
            w.terminate(grace_of(&w.shared.pod), false);
        }
    }
    workers.retain(|uid, w| !w.finished() || seen.contains(uid));
}
