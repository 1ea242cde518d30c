//! Shared by the tests that run the operator against the in-memory API server: setup, the
//! operator with fast timings, simulated brokers that register and renew their Leases as a
//! broker does, and a recorder of every KafkaPartition version the API server stored.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_crds::registration::{broker_lease_name, Registration, INCARNATION_ANNOTATION};
use tributary_crds::{
    IsrEntry, KafkaCluster, KafkaPartition, KafkaPartitionStatus, KafkaSchema, KafkaTopic,
    KafkaUser, ELECT_LEADER_ANNOTATION,
};
use tributary_operator::context::Settings;
use tributary_operator::controller::election::violations;
use tributary_operator::metrics::Metrics;

/// Namespace every test works in.
pub(crate) const NS: &str = "streaming";
/// How long a test waits for anything.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);
/// Lease duration of the simulated brokers.
pub(crate) const BROKER_LEASE: Duration = Duration::from_secs(2);
/// How often simulated brokers renew.
pub(crate) const BROKER_RENEW: Duration = Duration::from_millis(200);
/// The operator's own leader Lease duration in these tests.
pub(crate) const OPERATOR_LEASE: Duration = Duration::from_secs(2);

/// Polls `f` until it yields `Some`, failing the test with `what` after the deadline.
pub(crate) async fn wait_until<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tributary_e2e::wait_until(what, DEADLINE, f).await
}

/// Merge-patches `name`, failing the test with `what` if the API server refuses.
pub(crate) async fn merge_patch<K>(api: &Api<K>, name: &str, patch: &serde_json::Value, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if let Err(e) = api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        panic!("{what}: {e}");
    }
}

/// Installs the Tributary CRDs.
pub(crate) async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        KafkaCluster::crd(),
        KafkaTopic::crd(),
        KafkaPartition::crd(),
        KafkaUser::crd(),
        KafkaSchema::crd(),
    ] {
        if let Err(e) = crds.create(&PostParams::default(), &crd).await {
            panic!("install CRD: {e}");
        }
    }
}

/// A typed object from JSON, failing the test if it does not fit.
pub(crate) fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

/// Operator settings with timings fit for tests.
pub(crate) fn settings(identity: &str) -> Settings {
    let mut settings = Settings::new(identity, NS);
    settings.renew_interval = Duration::from_millis(200);
    settings.lease_duration = OPERATOR_LEASE;
    settings.error_backoff = Duration::from_millis(500);
    settings
}

/// Starts the whole operator as `settings` says; returns the stop switch and the task.
pub(crate) fn start_operator_with(
    client: &Client,
    metrics: Arc<Metrics>,
    settings: Settings,
) -> (
    watch::Sender<bool>,
    JoinHandle<tributary_operator::Result<()>>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(tributary_operator::run::run(
        client.clone(),
        settings,
        metrics,
        stop_rx,
    ));
    (stop_tx, task)
}

/// Starts the operator as `operator-0` with fast timings.
pub(crate) fn start_operator(
    client: &Client,
    metrics: Arc<Metrics>,
) -> (
    watch::Sender<bool>,
    JoinHandle<tributary_operator::Result<()>>,
) {
    start_operator_with(client, metrics, settings("operator-0"))
}

/// One operator replica: its metrics, stop switch and task.
pub(crate) struct Replica {
    pub(crate) metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    task: JoinHandle<tributary_operator::Result<()>>,
}

impl Replica {
    /// Starts the whole operator as `identity`, with fast timings.
    pub(crate) fn start(client: &Client, identity: &str) -> Replica {
        let metrics = metrics();
        let (stop, task) = start_operator_with(client, metrics.clone(), settings(identity));
        Replica {
            metrics,
            stop,
            task,
        }
    }

    /// Kills the replica as SIGKILL would: nothing more is written, the Lease is not released.
    /// Returns once every task of it is gone (the last reference to its metrics dropped).
    pub(crate) async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
        let metrics = self.metrics;
        wait_until("every task of the killed replica gone", || async {
            (Arc::strong_count(&metrics) == 1).then_some(())
        })
        .await;
    }

    /// Stops the replica gracefully (it releases its Lease).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(DEADLINE, self.task).await;
    }
}

/// Fresh metrics.
pub(crate) fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new().unwrap_or_else(|e| panic!("metrics: {e}")))
}

/// A server with the namespace and CRDs, and a client for it.
pub(crate) async fn setup() -> (tributary_e2e::FakeApiServer, Client) {
    let server = tributary_e2e::FakeApiServer::new();
    server.create_namespace(NS);
    let client = server.client(NS);
    install_crds(&client).await;
    (server, client)
}

/// Creates KafkaCluster `demo` from `spec`.
pub(crate) async fn create_cluster(client: &Client, spec: serde_json::Value) {
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    let cluster: KafkaCluster = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": { "name": "demo" }, "spec": spec,
    }));
    if let Err(e) = clusters.create(&PostParams::default(), &cluster).await {
        panic!("create cluster: {e}");
    }
}

/// Creates KafkaTopic `name` of cluster `demo`.
pub(crate) async fn create_topic(
    client: &Client,
    name: &str,
    partitions: i32,
    rf: i32,
    config: serde_json::Value,
) {
    let topics: Api<KafkaTopic> = Api::namespaced(client.clone(), NS);
    let topic: KafkaTopic = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": { "name": name },
        "spec": { "clusterRef": "demo", "partitions": partitions, "replicationFactor": rf, "config": config },
    }));
    if let Err(e) = topics.create(&PostParams::default(), &topic).await {
        panic!("create topic {name}: {e}");
    }
}

/// The KafkaPartitions of KafkaTopic `topic`, by partition number.
pub(crate) async fn partitions_of(client: &Client, topic: &str) -> Vec<KafkaPartition> {
    let api: Api<KafkaPartition> = Api::namespaced(client.clone(), NS);
    let mut out: Vec<KafkaPartition> = api
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list partitions: {e}"))
        .items
        .into_iter()
        .filter(|p| p.owner_references().iter().any(|o| o.name == topic))
        .collect();
    out.sort_by_key(|p| p.spec.partition);
    out
}

/// Waits until KafkaTopic `topic` has `n` partitions that all satisfy `f`; returns them.
pub(crate) async fn partitions_where(
    client: &Client,
    topic: &str,
    n: usize,
    what: &str,
    f: impl Fn(&KafkaPartition, &KafkaPartitionStatus) -> bool,
) -> Vec<KafkaPartition> {
    wait_until(what, || async {
        let ps = partitions_of(client, topic).await;
        let all = ps.len() == n
            && ps
                .iter()
                .all(|p| p.status.as_ref().is_some_and(|s| f(p, s)));
        all.then_some(ps)
    })
    .await
}

/// Adds `brokers` (at their current incarnations) to the ISR of KafkaPartition `name`, as its
/// leader does once they have caught up. Returns the status written.
pub(crate) async fn expand_isr(
    client: &Client,
    name: &str,
    brokers: &[&SimBroker],
) -> KafkaPartitionStatus {
    change_isr(client, name, |isr, _| {
        for b in brokers {
            isr.retain(|e| e.broker_id != b.id);
            isr.push(IsrEntry {
                broker_id: b.id,
                broker_epoch: b.incarnation,
            });
        }
    })
    .await
}

/// Leaves the leader of KafkaPartition `name` alone in its ISR, as a leader does when its
/// followers stop fetching. Returns the status written.
pub(crate) async fn shrink_isr_to_leader(client: &Client, name: &str) -> KafkaPartitionStatus {
    change_isr(client, name, |isr, leader| {
        isr.retain(|e| e.broker_id == leader)
    })
    .await
}

/// Changes the ISR of KafkaPartition `name` as its leader writes it: a status write with the
/// next partition epoch and a resourceVersion precondition, re-read on conflict.
async fn change_isr(
    client: &Client,
    name: &str,
    change: impl Fn(&mut Vec<IsrEntry>, i32),
) -> KafkaPartitionStatus {
    let api: Api<KafkaPartition> = Api::namespaced(client.clone(), NS);
    loop {
        let mut p = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"));
        let Some(status) = p.status.as_mut() else {
            panic!("{name} has no status whose ISR could change")
        };
        change(&mut status.isr, status.leader);
        status.partition_epoch += 1;
        let written = status.clone();
        match api.replace_status(name, &PostParams::default(), &p).await {
            Ok(_) => return written,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("ISR change of {name}: {e}"),
        }
    }
}

/// The status a preferred election makes of `from`: `preferred` leads, both epochs raised
/// once, the ISR as it was.
pub(crate) fn preferred_elected(
    from: &KafkaPartitionStatus,
    preferred: i32,
) -> KafkaPartitionStatus {
    KafkaPartitionStatus {
        leader: preferred,
        leader_epoch: from.leader_epoch + 1,
        partition_epoch: from.partition_epoch + 1,
        isr: from.isr.clone(),
    }
}

/// Asks the controller for an election of KafkaPartition `name` (`value`: the election type),
/// as a broker serving ElectLeaders or `kubectl annotate` does.
pub(crate) async fn request_election(client: &Client, name: &str, value: &str) {
    let api: Api<KafkaPartition> = Api::namespaced(client.clone(), NS);
    let patch = json!({ "metadata": { "annotations": { ELECT_LEADER_ANNOTATION: value } } });
    merge_patch(&api, name, &patch, "request an election").await;
}

/// Registers brokers `0..n` of cluster `demo` (Leases only: the controller role needs no pods).
pub(crate) async fn start_sim_brokers(client: &Client, n: i32) -> Vec<SimBroker> {
    let mut brokers = Vec::new();
    for id in 0..n {
        brokers.push(SimBroker::start(client, id).await);
    }
    brokers
}

/// Stops broker `id` of `brokers` renewing its Lease, as a crash does.
pub(crate) async fn kill_broker(brokers: &mut Vec<SimBroker>, id: i32) {
    let index = brokers
        .iter()
        .position(|b| b.id == id)
        .unwrap_or_else(|| panic!("no running broker {id}"));
    brokers.remove(index).kill().await;
}

/// Waits until KafkaPartition `name` satisfies `f`; returns it. A timeout names the last
/// status seen.
pub(crate) async fn partition_where(
    client: &Client,
    name: &str,
    what: &str,
    f: impl Fn(&KafkaPartition, &KafkaPartitionStatus) -> bool,
) -> KafkaPartition {
    let api: Api<KafkaPartition> = Api::namespaced(client.clone(), NS);
    let last = Mutex::new(None);
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(Some(p)) = api.get_opt(name).await {
                if p.status.as_ref().is_some_and(|s| f(&p, s)) {
                    return p;
                }
                *last.lock().unwrap_or_else(PoisonError::into_inner) = Some(p.status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        panic!(
            "timed out after {DEADLINE:?} waiting for {what} of {name}; last status seen: {:?}",
            last.lock().unwrap_or_else(PoisonError::into_inner)
        )
    })
}

/// Events with `reason` about the object named `name`.
pub(crate) fn events_about(
    server: &tributary_e2e::FakeApiServer,
    name: &str,
    reason: &str,
) -> Vec<serde_json::Value> {
    server
        .list("events.k8s.io/events", NS)
        .into_iter()
        .filter(|e| e["reason"] == reason && e["regarding"]["name"] == name)
        .collect()
}

/// A broker as the controller sees one: it registers (a new incarnation, by a conditional
/// write) and renews its Lease every [`BROKER_RENEW`], stamping `renewTime` with its own clock
/// shifted by `skew`.
pub(crate) struct SimBroker {
    /// Broker id.
    pub(crate) id: i32,
    /// The incarnation it registered.
    pub(crate) incarnation: i64,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    client: Client,
}

impl SimBroker {
    /// Registers broker `id` of cluster `demo` and starts renewing.
    pub(crate) async fn start(client: &Client, id: i32) -> SimBroker {
        Self::start_skewed(client, id, SignedDuration::ZERO).await
    }

    /// As [`SimBroker::start`], with the broker's clock off by `skew`.
    pub(crate) async fn start_skewed(client: &Client, id: i32, skew: SignedDuration) -> SimBroker {
        Self::run(client, id, skew, BROKER_LEASE).await
    }

    /// As [`SimBroker::start`], with a Lease duration of `lease`.
    pub(crate) async fn start_with_lease(client: &Client, id: i32, lease: Duration) -> SimBroker {
        Self::run(client, id, SignedDuration::ZERO, lease).await
    }

    async fn run(client: &Client, id: i32, skew: SignedDuration, duration: Duration) -> SimBroker {
        let api: Api<Lease> = Api::namespaced(client.clone(), NS);
        let (lease, incarnation) = register(&api, id, skew, duration).await;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut lease = lease;
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    () = tokio::time::sleep(BROKER_RENEW) => {}
                }
                if let Some(spec) = lease.spec.as_mut() {
                    spec.renew_time = Some(MicroTime(Timestamp::now() + skew));
                }
                match api
                    .replace(&lease.name_any(), &PostParams::default(), &lease)
                    .await
                {
                    Ok(l) => lease = l,
                    // Someone else wrote it (a newer incarnation): re-read; a broker that lost
                    // its registration would stop, this one keeps it simple and retries.
                    Err(_) => {
                        if let Ok(l) = api.get(&lease.name_any()).await {
                            lease = l;
                        }
                    }
                }
            }
        });
        SimBroker {
            id,
            incarnation,
            stop,
            task,
            client: client.clone(),
        }
    }

    /// Stops renewing, as a crashed or hung broker does (the Lease stays as it was).
    pub(crate) async fn kill(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Announces a controlled shutdown (the Lease annotation), still renewing.
    pub(crate) async fn announce_shutdown(&self) {
        self.annotate(
            tributary_crds::registration::SHUTTING_DOWN_ANNOTATION,
            "true",
        )
        .await;
    }

    /// Says in its Lease, as a follower's fetcher does, that broker `peer`'s process
    /// `incarnation` refused its connections.
    pub(crate) async fn report_refused(&self, peer: i32, incarnation: i64) {
        let refused = format!("{peer}@{incarnation}");
        self.annotate(tributary_crds::registration::REFUSED_ANNOTATION, &refused)
            .await;
    }

    /// Sets annotation `key` of its Lease to `value`; the renewals carry it from then on.
    async fn annotate(&self, key: &str, value: &str) {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), NS);
        let patch = json!({ "metadata": { "annotations": { key: value } } });
        merge_patch(&api, &broker_lease_name("demo", self.id), &patch, key).await;
    }
}

/// Registers broker `id` as its start-up does: a new incarnation by a conditional write.
async fn register(
    api: &Api<Lease>,
    id: i32,
    skew: SignedDuration,
    duration: Duration,
) -> (Lease, i64) {
    let name = broker_lease_name("demo", id);
    loop {
        let existing = api
            .get_opt(&name)
            .await
            .unwrap_or_else(|e| panic!("get lease: {e}"));
        let incarnation = existing
            .as_ref()
            .and_then(|l| {
                l.metadata
                    .annotations
                    .as_ref()?
                    .get(INCARNATION_ANNOTATION)?
                    .parse::<i64>()
                    .ok()
            })
            .map_or(1, |i| i + 1);
        let registration = Registration {
            id,
            host: format!("demo-broker-{id}.demo-brokers.{NS}.svc"),
            port: 9092,
            rack: None,
            incarnation,
            shutting_down: false,
            directory_epoch: None,
            listeners: Vec::new(),
            refused: Default::default(),
        };
        let now = MicroTime(Timestamp::now() + skew);
        let spec = LeaseSpec {
            holder_identity: Some(format!("demo-broker-{id}")),
            lease_duration_seconds: Some(i32::try_from(duration.as_secs()).unwrap_or(2)),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..LeaseSpec::default()
        };
        let written = match existing {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        annotations: Some(registration.annotations()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                lease.metadata.annotations = Some(registration.annotations());
                lease.spec = Some(spec);
                api.replace(&name, &PostParams::default(), &lease).await
            }
        };
        match written {
            Ok(l) => return (l, incarnation),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("register broker {id}: {e}"),
        }
    }
}

/// Every version of every KafkaPartition the API server stored while recording, from a watch.
pub(crate) struct History {
    versions: Arc<Mutex<BTreeMap<String, Vec<KafkaPartition>>>>,
    task: JoinHandle<()>,
}

impl History {
    /// Starts recording.
    pub(crate) fn record(client: &Client) -> History {
        let api: Api<KafkaPartition> = Api::namespaced(client.clone(), NS);
        let versions: Arc<Mutex<BTreeMap<String, Vec<KafkaPartition>>>> = Arc::default();
        let sink = versions.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(e) = events.next().await {
                let (watcher::Event::Apply(p) | watcher::Event::InitApply(p)) =
                    e.unwrap_or(watcher::Event::Init)
                else {
                    continue;
                };
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(p.name_any())
                    .or_default()
                    .push(p);
            }
        });
        History { versions, task }
    }

    /// Versions recorded so far.
    pub(crate) fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// The distinct statuses partition `name` went through, in order (versions that changed
    /// only metadata, such as an answered election request, repeat none).
    pub(crate) fn statuses(&self, name: &str) -> Vec<KafkaPartitionStatus> {
        let mut out: Vec<KafkaPartitionStatus> = Vec::new();
        for v in self.lock().get(name).into_iter().flatten() {
            if let Some(s) = &v.status {
                if out.last() != Some(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<KafkaPartition>>> {
        self.versions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the recording has seen partition `name` reach `status` (the watch delivers
    /// a version a moment after a read can return it).
    pub(crate) async fn wait_for(&self, name: &str, status: &KafkaPartitionStatus) {
        wait_until(&format!("{name} recorded at {status:?}"), || async {
            self.statuses(name).contains(status).then_some(())
        })
        .await;
    }

    /// Fails the test if any version broke an invariant: the leader a replica and in the ISR,
    /// epochs never going back, the partition epoch rising with every status change.
    pub(crate) fn assert_valid(&self) {
        for (name, versions) in self.lock().iter() {
            let mut previous: Option<&KafkaPartitionStatus> = None;
            for v in versions {
                let Some(status) = &v.status else { continue };
                let broken = violations(&v.spec.replicas, previous, status);
                assert!(
                    broken.is_empty(),
                    "{name} at resourceVersion {:?}: {broken:?} ({previous:?} -> {status:?})",
                    v.resource_version()
                );
                previous = Some(status);
            }
        }
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.task.abort();
    }
}
