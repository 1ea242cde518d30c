//! The local control plane in one value: the API server served over HTTP with a kubeconfig,
//! the workload controllers, a kubelet stand-in running pods as local processes, and the
//! node's Service networking (node ports and load balancers). What `tributary-e2e up` and
//! the e2e scenarios' local driver start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apiserver::Served;
use crate::controllers::network::{NetworkConfig, ServiceNetwork};
use crate::controllers::{Controllers, ControllersConfig};
use crate::kubeconfig::{self, Credentials};
use crate::kubelet::{ImageTable, Kubelet, KubeletConfig, MAX_CONTAINER_RESTART_PERIOD};
use crate::FakeApiServer;

/// Name of the one node.
pub const NODE_NAME: &str = "tributary-e2e";
/// Its zone label (`topology.kubernetes.io/zone`).
pub const ZONE: &str = "local";

/// What to start.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// Where the kubeconfig, volumes, pod directories and logs go.
    pub state_dir: PathBuf,
    /// Which binary each image runs.
    pub images: ImageTable,
    /// The `tributary-e2e` binary, run as the process watchdog (see
    /// [`crate::kubelet::watchdog`]); None leaves only the kubelet's drop to kill processes.
    pub watchdog: Option<PathBuf>,
    /// Default namespace of the kubeconfig's context.
    pub namespace: String,
    /// Port of the API server on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Longest grace period each pod gets at shutdown.
    pub shutdown_grace: Duration,
    /// The kubelet's restart back-off cap (see [`KubeletConfig`]).
    pub max_container_restart_period: Duration,
    /// Have the watchdog remove the whole state directory (not only the pods' directories)
    /// when the process that started the cluster exits: for tests, whose shared control plane
    /// is never dropped.
    pub remove_state_dir_at_exit: bool,
}

impl LocalConfig {
    /// Defaults: the chart's images from `target/debug`, a watchdog from `watchdog`, the
    /// `default` namespace, any port, 10 s shutdown grace.
    pub fn new(state_dir: PathBuf, watchdog: Option<PathBuf>) -> Self {
        LocalConfig {
            state_dir,
            images: ImageTable::tributary(&crate::tools::target_dir().join("debug")),
            watchdog,
            namespace: "default".to_owned(),
            port: 0,
            shutdown_grace: Duration::from_secs(10),
            max_container_restart_period: MAX_CONTAINER_RESTART_PERIOD,
            remove_state_dir_at_exit: false,
        }
    }
}

/// A running local control plane.
pub struct LocalCluster {
    server: FakeApiServer,
    served: Option<Served>,
    controllers: Option<Controllers>,
    kubelet: Option<Kubelet>,
    network: Option<ServiceNetwork>,
    kubeconfig: PathBuf,
    state_dir: PathBuf,
}

impl LocalCluster {
    /// Serves the API, writes the kubeconfig and starts the controllers, the kubelet and the
    /// Service networking on the kubelet's node IP.
    pub async fn start(config: LocalConfig) -> crate::Result<LocalCluster> {
        let server = FakeApiServer::new();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], config.port));
        let served = server
            .serve_on(addr)
            .await
            .map_err(|source| crate::Error::Bind { addr, source })?;
        let kubeconfig = config.state_dir.join("kubeconfig");
        kubeconfig::write(
            &kubeconfig,
            &served.endpoint(),
            &config.namespace,
            &Credentials::Token(server.admin_token()),
        )?;
        let controllers = Controllers::start(
            &server,
            ControllersConfig {
                volumes_dir: config.state_dir.join("volumes"),
            },
        );
        let kubelet = Kubelet::start(
            &server,
            KubeletConfig {
                node_name: NODE_NAME.to_owned(),
                zone: ZONE.to_owned(),
                state_dir: config.state_dir.clone(),
                images: config.images,
                api_url: served.url(),
                watchdog: config.watchdog,
                watchdog_removes: config
                    .remove_state_dir_at_exit
                    .then(|| config.state_dir.clone()),
                shutdown_grace: config.shutdown_grace,
                max_container_restart_period: config.max_container_restart_period,
            },
        )
        .await?;
        let network = ServiceNetwork::start(&server, NetworkConfig::for_node(kubelet.node_ip()));
        Ok(LocalCluster {
            server,
            served: Some(served),
            controllers: Some(controllers),
            kubelet: Some(kubelet),
            network: Some(network),
            kubeconfig,
            state_dir: config.state_dir,
        })
    }

    /// The API server (for in-process clients and direct reads).
    pub fn server(&self) -> &FakeApiServer {
        &self.server
    }

    /// The kubeconfig that points kubectl, helm and our binaries at it.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Where volumes, pods and logs live.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        self.served.as_ref().map(Served::url).unwrap_or_default()
    }

    /// The kubelet stand-in (process signals, pod directories, logs).
    pub fn kubelet(&self) -> Option<&Kubelet> {
        self.kubelet.as_ref()
    }

    /// Stops every pod (gracefully, within the shutdown grace), the Service networking, the
    /// controllers and the server.
    pub async fn shutdown(mut self) {
        if let Some(k) = self.kubelet.take() {
            k.shutdown().await;
        }
        if let Some(n) = self.network.take() {
            n.stop().await;
        }
        if let Some(c) = self.controllers.take() {
            c.stop().await;
        }
        if let Some(s) = self.served.take() {
            s.shutdown().await;
        }
    }
}
