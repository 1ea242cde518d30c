//! A recorder of a replicated cluster's brokers (their pods and Leases) and partitions,
//! sampled every 100 ms in the background, so a scenario can check after the fact in which
//! order things happened (a broker left only once it led nothing; one broker was down at a
//! time) rather than racing the cluster with assertions while it changes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::Api;
use tokio::task::JoinHandle;

use super::replicated::{incarnation, PartitionState, Replicated, BROKERS};

/// How often the cluster is sampled.
const PERIOD: Duration = Duration::from_millis(100);
/// Lease annotation a broker sets when its controlled shutdown begins.
const SHUTTING_DOWN: &str = "tributary.dev/shutting-down";

/// One broker's registration as its Lease shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Registration {
    /// Whether a broker holds the Lease (a stopping broker clears the holder).
    pub(crate) held: bool,
    /// Whether it announced a controlled shutdown.
    pub(crate) shutting_down: bool,
    /// Its incarnation.
    pub(crate) incarnation: Option<i64>,
}

/// One broker's pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PodState {
    /// The pod's uid: a new one is a new pod.
    pub(crate) uid: String,
    /// Running and Ready.
    pub(crate) ready: bool,
    /// Being deleted.
    pub(crate) terminating: bool,
}

/// The cluster at one moment.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    /// When, since the recording started.
    pub(crate) at: Duration,
    /// Broker id → its Lease (absent: no Lease).
    pub(crate) leases: BTreeMap<i32, Registration>,
    /// Broker id → its pod (absent: no pod).
    pub(crate) pods: BTreeMap<i32, PodState>,
    /// The topic's partitions.
    pub(crate) partitions: Vec<PartitionState>,
}

impl Sample {
    /// The partitions `broker` leads.
    pub(crate) fn led_by(&self, broker: i32) -> Vec<i32> {
        self.partitions
            .iter()
            .filter(|p| p.leader == broker)
            .map(|p| p.partition)
            .collect()
    }

    /// Brokers whose pod is missing, terminating or not Ready.
    pub(crate) fn down(&self) -> Vec<i32> {
        (0..BROKERS)
            .filter(|id| self.pods.get(id).is_none_or(|p| p.terminating || !p.ready))
            .collect()
    }
}

/// The recording in progress.
pub(crate) struct Timeline {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: JoinHandle<()>,
}

impl Timeline {
    /// Starts sampling `cluster`.
    pub(crate) fn start(cluster: &Replicated) -> Timeline {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let into = samples.clone();
        let pods: Api<Pod> = Api::namespaced(cluster.client(), cluster.ns);
        let leases: Api<Lease> = Api::namespaced(cluster.client(), cluster.ns);
        let prefix = format!("{}-broker-", cluster.cluster);
        let sampler = cluster.sampler();
        let start = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                let (Ok(pod_list), Ok(lease_list)) = (
                    pods.list(&ListParams::default()).await,
                    leases.list(&ListParams::default()).await,
                ) else {
                    tokio::time::sleep(PERIOD).await;
                    continue;
                };
                let id = |name: Option<&String>| -> Option<i32> {
                    name?.strip_prefix(&prefix)?.parse().ok()
                };
                let sample = Sample {
                    at: start.elapsed(),
                    leases: lease_list
                        .items
                        .iter()
                        .filter_map(|l| Some((id(l.metadata.name.as_ref())?, registration(l))))
                        .collect(),
                    pods: pod_list
                        .items
                        .iter()
                        .filter_map(|p| Some((id(p.metadata.name.as_ref())?, pod_state(p))))
                        .collect(),
                    partitions: sampler.partitions().await,
                };
                into.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(sample);
                tokio::time::sleep(PERIOD).await;
            }
        });
        Timeline { samples, task }
    }

    /// Waits (bounded by `deadline`) until a sample satisfies `settled`, then stops: the
    /// cluster is sampled at its own pace, so the last sample may still predate what the
    /// scenario just waited for through the API.
    pub(crate) async fn stop_once(
        self,
        what: &str,
        deadline: Duration,
        settled: impl Fn(&Sample) -> bool,
    ) -> Vec<Sample> {
        let samples = self.samples.clone();
        crate::env::wait(what, deadline, || {
            let seen = samples
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .last()
                .is_some_and(&settled);
            async move { seen.then_some(()) }
        })
        .await;
        self.stop()
    }

    /// Stops sampling; the samples in order.
    pub(crate) fn stop(self) -> Vec<Sample> {
        self.task.abort();
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn registration(lease: &Lease) -> Registration {
    let spec = lease.spec.as_ref();
    Registration {
        held: spec
            .and_then(|s| s.holder_identity.as_deref())
            .is_some_and(|h| !h.is_empty()),
        shutting_down: lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SHUTTING_DOWN))
            .is_some_and(|v| v == "true"),
        incarnation: incarnation(lease),
    }
}

fn pod_state(pod: &Pod) -> PodState {
    let status = pod.status.as_ref();
    PodState {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        terminating: pod.metadata.deletion_timestamp.is_some(),
    }
}
