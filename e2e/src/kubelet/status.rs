//! What the kubelet reports about a pod: the state of each container (waiting, running,
//! terminated; the previous termination; restarts; started and ready), the pod's phase and
//! conditions (PodReadyToStartContainers, Initialized, ContainersReady, Ready, PodScheduled,
//! each with the time of its last transition), its IPs, start time and QoS class.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The current time, whole seconds (as Kubernetes writes timestamps).
pub(crate) fn now() -> Timestamp {
    let t = Timestamp::now();
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// One container's state.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum State {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated {
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
        started_at: Timestamp,
        finished_at: Timestamp,
        id: String,
    },
}

impl State {
    fn to_api(&self) -> ContainerState {
        match self {
            State::Waiting { reason, message } => ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: (!message.is_empty()).then(|| message.clone()),
                }),
                ..ContainerState::default()
            },
            State::Running { started_at } => ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(*started_at)),
                }),
                ..ContainerState::default()
            },
            State::Terminated {
                exit_code,
                signal,
                reason,
                started_at,
                finished_at,
                id,
            } => ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: *exit_code,
                    signal: *signal,
                    reason: Some(reason.clone()),
                    started_at: Some(Time(*started_at)),
                    finished_at: Some(Time(*finished_at)),
                    container_id: Some(id.clone()),
                    message: None,
                }),
                ..ContainerState::default()
            },
        }
    }
}

/// What the kubelet knows of one container.
#[derive(Clone, Debug)]
pub(crate) struct ContainerView {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) state: State,
    pub(crate) last: Option<State>,
    pub(crate) restart_count: i32,
    /// The startup probe passed (or there is none) since the process started.
    pub(crate) started: bool,
    /// The readiness probe passes (or there is none) and it started.
    pub(crate) ready: bool,
    /// The running process (leader of its group).
    pub(crate) pid: Option<u32>,
    /// Will not be started again (restartPolicy).
    pub(crate) finished: bool,
}

impl ContainerView {
    /// A container waiting to be created.
    pub(crate) fn new(name: &str, image: &str) -> Self {
        ContainerView {
            name: name.to_owned(),
            image: image.to_owned(),
            state: State::Waiting {
                reason: "ContainerCreating".to_owned(),
                message: String::new(),
            },
            last: None,
            restart_count: 0,
            started: false,
            ready: false,
            pid: None,
            finished: false,
        }
    }

    fn to_api(&self) -> ContainerStatus {
        let id = match (&self.state, self.pid) {
            (State::Running { .. }, Some(pid)) => Some(format!("tributary-e2e://{pid}")),
            (State::Terminated { id, .. }, _) => Some(id.clone()),
            _ => None,
        };
        ContainerStatus {
            name: self.name.clone(),
            image: self.image.clone(),
            image_id: format!("tributary-e2e://{}", self.image),
            container_id: id,
            ready: self.ready,
            started: Some(self.started),
            restart_count: self.restart_count,
            state: Some(self.state.to_api()),
            last_state: Some(self.last.as_ref().map(State::to_api).unwrap_or_default()),
            ..ContainerStatus::default()
        }
    }
}

/// The pod as the kubelet sees it.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    pub(crate) pod_ip: Option<String>,
    /// Volumes and environment are ready: containers can start.
    pub(crate) prepared: bool,
    pub(crate) start_time: Option<Timestamp>,
    pub(crate) containers: Vec<ContainerView>,
    /// Condition type to (status, last transition).
    pub(crate) conditions: BTreeMap<&'static str, (bool, Timestamp)>,
}

impl View {
    fn condition(&mut self, type_: &'static str, status: bool, now: Timestamp) -> PodCondition {
        let entry = self.conditions.entry(type_).or_insert((status, now));
        if entry.0 != status {
            *entry = (status, now);
        }
        PodCondition {
            type_: type_.to_owned(),
            status: if status { "True" } else { "False" }.to_owned(),
            last_transition_time: Some(Time(entry.1)),
            reason: (!status && matches!(type_, "Ready" | "ContainersReady"))
                .then(|| "ContainersNotReady".to_owned()),
            ..PodCondition::default()
        }
    }

    fn phase(&self) -> &'static str {
        let all_finished =
            !self.containers.is_empty() && self.containers.iter().all(|c| c.finished);
        if all_finished {
            let failed = self
                .containers
                .iter()
                .any(|c| matches!(c.state, State::Terminated { exit_code, .. } if exit_code != 0));
            return if failed { "Failed" } else { "Succeeded" };
        }
        let began = self.containers.iter().any(|c| {
            matches!(c.state, State::Running { .. }) || c.restart_count > 0 || c.last.is_some()
        });
        if self.prepared && began {
            "Running"
        } else {
            "Pending"
        }
    }

    /// The status to write, given the pod as stored.
    pub(crate) fn status(&mut self, pod: &Pod, host_ip: &str) -> PodStatus {
        let now = now();
        let all_ready = !self.containers.is_empty() && self.containers.iter().all(|c| c.ready);
        let prepared = self.prepared;
        let conditions = vec![
            self.condition("PodReadyToStartContainers", prepared, now),
            self.condition("Initialized", true, now),
            self.condition("Ready", all_ready, now),
            self.condition("ContainersReady", all_ready, now),
            self.condition("PodScheduled", true, now),
        ];
        let ip = self.pod_ip.clone();
        PodStatus {
            phase: Some(self.phase().to_owned()),
            conditions: Some(conditions),
            host_ip: Some(host_ip.to_owned()),
            host_ips: Some(vec![HostIP {
                ip: host_ip.to_owned(),
            }]),
            pod_ip: ip.clone(),
            pod_ips: ip.map(|ip| vec![PodIP { ip }]),
            start_time: self.start_time.map(Time),
            container_statuses: Some(self.containers.iter().map(ContainerView::to_api).collect()),
            qos_class: Some(qos_class(pod).to_owned()),
            ..PodStatus::default()
        }
    }
}

/// BestEffort without requests or limits, Guaranteed when every container's limits equal its
/// requests for cpu and memory, Burstable otherwise.
fn qos_class(pod: &Pod) -> &'static str {
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let r = c.resources.clone().unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        let limits = r.limits.unwrap_or_default();
        any |= !requests.is_empty() || !limits.is_empty();
        for res in ["cpu", "memory"] {
            let limit = limits.get(res);
            let request = requests.get(res).or(limit);
            guaranteed &= limit.is_some() && request == limit;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}
