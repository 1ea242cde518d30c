//! The workload controllers of kube-controller-manager, the scheduler and a volume
//! provisioner, as clients of the API server (writes go through its REST semantics: defaults,
//! resourceVersion conflicts, watch events, garbage collection):
//!
//! - [`deployment`]: Deployments through ReplicaSets (pod-template-hash, Recreate and
//!   RollingUpdate with maxSurge/maxUnavailable, revision annotations, history limit, status
//!   with observedGeneration, replica counts and the Available/Progressing conditions that
//!   `kubectl rollout status` and helm's readiness checks read);
//! - [`replicaset`]: pods for ReplicaSets (generateName, deletion order of surplus pods,
//!   status with ready/available counts);
//! - [`statefulset`]: pods `<set>-<ordinal>` with stable identity (hostname, subdomain, the
//!   `apps.kubernetes.io/pod-index` and `statefulset.kubernetes.io/pod-name` labels),
//!   OrderedReady and Parallel management, RollingUpdate with partition and OnDelete through
//!   ControllerRevisions, PersistentVolumeClaims from volumeClaimTemplates and their
//!   retention policy (owner references, as the real controller sets them), and status;
//! - [`volumes`]: a default StorageClass, dynamic provisioning of a host directory per claim
//!   (a PersistentVolume bound to it), pvc-protection, and reclaiming released volumes;
//! - [`endpoints`]: EndpointSlices for Services with selectors (Prometheus' service
//!   discovery reads them);
//! - [`scheduler`]: binds pending pods to a Ready node that fits their nodeSelector once
//!   their claims are bound;
//! - [`network`]: kube-proxy's and a bare-metal load balancer's parts for NodePort and
//!   LoadBalancer Services (listeners on the node IP and on loopback ingress IPs forwarding to
//!   ready endpoints); it runs per node, as [`network::ServiceNetwork`], next to the kubelet.
//!
//! They run as one level-triggered loop: every change to an object they read (and a
//! one-second tick, for time-based rules such as minReadySeconds) starts a pass that reads
//! everything afresh and corrects what differs; a write that conflicts is retried by the
//! next pass, as a real controller requeues.

pub mod deployment;
pub mod endpoints;
mod events;
pub(crate) mod meta;
pub mod network;
pub mod replicaset;
pub mod scheduler;
pub mod statefulset;
pub mod volumes;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::FakeApiServer;

/// The resources whose changes start a pass (Leases and Events change often and matter to
/// none of the controllers).
const WATCHED: &[&str] = &[
    "/pods",
    "apps/replicasets",
    "apps/deployments",
    "apps/statefulsets",
    "apps/controllerrevisions",
    "/persistentvolumeclaims",
    "/persistentvolumes",
    "storage.k8s.io/storageclasses",
    "/services",
    "discovery.k8s.io/endpointslices",
    "/nodes",
    "*",
];

/// Longest wait between passes: time-based rules (minReadySeconds, progress deadlines,
/// unschedulable pods) are looked at again this often.
const TICK: Duration = Duration::from_secs(1);

/// Where the controllers keep what lives outside the API.
#[derive(Clone, Debug)]
pub struct ControllersConfig {
    /// Parent of the host directories provisioned for PersistentVolumeClaims (one
    /// `pvc-<uid>` directory per claim, removed when a `Delete` volume is reclaimed).
    pub volumes_dir: PathBuf,
}

/// Everything one pass reads, listed at its start.
pub(crate) struct Snapshot {
    pub(crate) now: Timestamp,
    pub(crate) pods: Vec<Pod>,
    pub(crate) replica_sets: Vec<ReplicaSet>,
    pub(crate) deployments: Vec<Deployment>,
    pub(crate) stateful_sets: Vec<StatefulSet>,
    pub(crate) revisions: Vec<ControllerRevision>,
    pub(crate) claims: Vec<PersistentVolumeClaim>,
    pub(crate) volumes: Vec<PersistentVolume>,
    pub(crate) classes: Vec<StorageClass>,
    pub(crate) services: Vec<Service>,
    pub(crate) slices: Vec<EndpointSlice>,
    pub(crate) nodes: Vec<Node>,
}

async fn list<K>(client: &Client) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items)
}

impl Snapshot {
    async fn read(client: &Client) -> Result<Snapshot, kube::Error> {
        Ok(Snapshot {
            now: Timestamp::now(),
            pods: list(client).await?,
            replica_sets: list(client).await?,
            deployments: list(client).await?,
            stateful_sets: list(client).await?,
            revisions: list(client).await?,
            claims: list(client).await?,
            volumes: list(client).await?,
            classes: list(client).await?,
            services: list(client).await?,
            slices: list(client).await?,
            nodes: list(client).await?,
        })
    }
}

#[cfg(test)]
impl Snapshot {
    /// A snapshot of `pods`, `claims` and `nodes` only, for the controllers' unit tests.
    pub(crate) fn of(pods: Vec<Pod>, claims: Vec<PersistentVolumeClaim>, nodes: Vec<Node>) -> Self {
        Snapshot {
            now: Timestamp::now(),
            pods,
            replica_sets: Vec::new(),
            deployments: Vec::new(),
            stateful_sets: Vec::new(),
            revisions: Vec::new(),
            claims,
            volumes: Vec::new(),
            classes: Vec::new(),
            services: Vec::new(),
            slices: Vec::new(),
            nodes,
        }
    }
}

/// The running controllers; dropping this stops them.
pub struct Controllers {
    task: Option<JoinHandle<()>>,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Controllers {
    /// Starts the controllers against `server` (in-process client).
    pub fn start(server: &FakeApiServer, config: ControllersConfig) -> Controllers {
        let client = server.client("default");
        let mut changes = server.changes();
        let task = tokio::spawn(async move {
            volumes::install_default_class(&client).await;
            loop {
                pass(&client, &config).await;
                if !next_pass(&mut changes, WATCHED).await {
                    return;
                }
            }
        });
        Controllers { task: Some(task) }
    }

    /// Stops the controllers and waits until they have.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Waits until the next pass is due: a change to one of the `watched` resources (after a
/// pause that lets a burst of writes land, dropping the burst's queued changes) or [`TICK`];
/// false once the server is gone.
async fn next_pass(changes: &mut crate::apiserver::Changes, watched: &[&str]) -> bool {
    let changed = async {
        loop {
            match changes.next().await {
                Some(resource) if watched.contains(&resource.as_str()) => return true,
                Some(_) => {}
                None => return false,
            }
        }
    };
    let woke = tokio::select! {
        change = changed => change,
        () = tokio::time::sleep(TICK) => true,
    };
    if woke {
        tokio::time::sleep(Duration::from_millis(10)).await;
        changes.drain();
    }
    woke
}

/// One pass of every controller over a fresh snapshot.
async fn pass(client: &Client, config: &ControllersConfig) {
    let snap = match Snapshot::read(client).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("controllers: cannot read the cluster: {e}");
            return;
        }
    };
    scheduler::sync(client, &snap).await;
    volumes::sync(client, &snap, &config.volumes_dir).await;
    deployment::sync(client, &snap).await;
    replicaset::sync(client, &snap).await;
    statefulset::sync(client, &snap).await;
    endpoints::sync(client, &snap).await;
}

/// Logs a failed write; the next pass retries it.
pub(crate) fn logged<T>(what: &str, r: Result<T, kube::Error>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::debug!("{what}: conflict, retried next pass");
            None
        }
        Err(e) => {
            tracing::debug!("{what}: {e}");
            None
        }
    }
}
