//! What the replication scenarios (durability, failure, rolling, freeze) share: a cluster of
//! three brokers advertising their pod IPs (so clients on this machine reach them), a
//! replicated topic, the leadership and ISR of its partitions as the KafkaPartition objects
//! record them, the brokers' incarnations from their Leases, and the client-history workload
//! with the checks every such scenario makes.
//!
//! Partition and Lease states are polled through a `kube::Client` rather than kubectl: the
//! scenarios poll every 50 ms while brokers and a Java producer share two cores.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use serde_json::Value;
use tributary_e2e::clients::prepare_java;
use tributary_e2e::history::{
    check, read_back, Attempt, GroupReader, History, Outcome, Producing, Report, Workload,
};

use crate::env::{wait, Driver, Env, Namespace, Signal};

use super::{kafka_cluster, ready, READY};

/// Brokers in every replication scenario's cluster.
pub(crate) const BROKERS: i32 = 3;
/// Partitions of the topic the failure scenarios write to: each broker leads one.
pub(crate) const PARTITIONS: i32 = 3;
/// Records a second the failure scenarios' producer sends: steady, and well within what two
/// cores sustain next to three brokers.
pub(crate) const RATE: f64 = 200.0;
/// The failure scenarios' topic settings: acks=all needs two replicas in sync.
const MIN_ISR_2: &str = "min.insync.replicas: \"2\"";
/// How long a read-back of a history topic may take.
const READ_BACK: Duration = Duration::from_secs(60);

/// The spec of a cluster of [`BROKERS`] brokers advertising their pod IPs, with broker
/// settings `config` and `extra` (further `key: value` entries of the config and of the
/// spec, or empty). The internal offsets topic gets three partitions: a consumer group reads
/// in every failure scenario, and Kafka's fifty would multiply what the scenarios move.
pub(crate) fn three_brokers(config: &str, extra: &str) -> String {
    let entries = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!(", {s}")
        }
    };
    let (config, extra) = (entries(config), entries(extra));
    format!(
        "{{brokers: {BROKERS}, storage: {{size: 1Gi, deleteClaim: true}}, \
         listeners: [{{name: PLAIN, port: 9092, advertise: PodIP}}], \
         config: {{offsets.topic.num.partitions: \"3\"{config}}}{extra}}}"
    )
}

/// Short broker Leases (renewed every second, dead after three): failovers in the scenarios
/// take seconds, as they would with Kafka's own session timeouts scaled down.
pub(crate) const SHORT_LEASES: &str =
    "coordination: {leaseDurationSeconds: 3, renewIntervalSeconds: 1}";

/// A KafkaTopic manifest.
fn kafka_topic(
    namespace: &str,
    name: &str,
    cluster: &str,
    partitions: i32,
    replication_factor: i32,
    config: &str,
) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec: {{clusterRef: {cluster}, partitions: {partitions}, replicationFactor: {replication_factor}, config: {{{config}}}}}\n"
    )
}

/// One partition's recorded state (`KafkaPartition.status`).
#[derive(Clone, Debug)]
pub(crate) struct PartitionState {
    /// The partition index.
    pub(crate) partition: i32,
    /// The leader, or -1.
    pub(crate) leader: i32,
    /// The leader epoch.
    pub(crate) leader_epoch: i64,
    /// The partition epoch: raised by every change of the status after the first.
    pub(crate) partition_epoch: i64,
    /// ISR members: (broker id, incarnation).
    pub(crate) isr: Vec<(i32, i64)>,
}

impl PartitionState {
    fn from_object(obj: &DynamicObject) -> Option<PartitionState> {
        let int = |v: &Value| v.as_i64().and_then(|n| i32::try_from(n).ok());
        let status = &obj.data["status"];
        Some(PartitionState {
            partition: int(&obj.data["spec"]["partition"])?,
            leader: int(&status["leader"])?,
            leader_epoch: status["leaderEpoch"].as_i64()?,
            partition_epoch: status["partitionEpoch"].as_i64()?,
            isr: status["isr"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| Some((int(&e["brokerId"])?, e["brokerEpoch"].as_i64()?)))
                .collect(),
        })
    }

    /// The ISR's broker ids.
    pub(crate) fn isr_ids(&self) -> Vec<i32> {
        self.isr.iter().map(|(id, _)| *id).collect()
    }

    /// Whether `broker` is in the ISR (at any incarnation).
    pub(crate) fn in_sync(&self, broker: i32) -> bool {
        self.isr.iter().any(|(id, _)| *id == broker)
    }

    /// Whether every broker is in the ISR.
    pub(crate) fn fully_replicated(&self) -> bool {
        self.leader >= 0 && self.isr.len() == usize::try_from(BROKERS).unwrap_or(0)
    }
}

/// Reads one topic's KafkaPartition objects.
#[derive(Clone)]
pub(crate) struct PartitionSampler {
    api: Api<DynamicObject>,
    topic: &'static str,
}

impl PartitionSampler {
    /// The topic's partitions as recorded now, by index (those with a status; none when the
    /// API cannot be read this time).
    pub(crate) async fn partitions(&self) -> Vec<PartitionState> {
        let Ok(list) = self.api.list(&ListParams::default()).await else {
            return Vec::new();
        };
        let mut states: Vec<PartitionState> = list
            .items
            .iter()
            .filter(|o| o.data["spec"]["topic"] == self.topic)
            .filter_map(PartitionState::from_object)
            .collect();
        states.sort_by_key(|s| s.partition);
        states
    }
}

/// A scenario's cluster and topic, with a client to watch them.
pub(crate) struct Replicated {
    pub(crate) env: Arc<Env>,
    pub(crate) ns: &'static str,
    pub(crate) cluster: &'static str,
    pub(crate) topic: &'static str,
    /// Every broker's address (the Ready cluster's `status.bootstrapServers`).
    pub(crate) bootstrap: String,
    client: Client,
    /// When the scenario started, for [`Replicated::log`].
    started: Instant,
    /// A consumer group member reading the topic while the producer writes, judged by
    /// [`Replicated::check`].
    group: Mutex<Option<GroupReader>>,
    /// Deletes the scenario's namespace, and with it the cluster, when the scenario ends.
    _namespace: Namespace,
}

impl Replicated {
    /// Creates namespace `ns` with KafkaCluster `cluster` of `spec` (see [`three_brokers`]),
    /// waiting until it is Ready. The shared environment: these scenarios only add objects.
    pub(crate) async fn cluster(
        driver: Driver,
        ns: &'static str,
        cluster: &'static str,
        spec: &str,
    ) -> Replicated {
        let started = Instant::now();
        let env = Env::shared(driver).await;
        let namespace = env.namespace(ns).await;
        env.apply(&kafka_cluster(ns, cluster, spec)).await;
        // javac runs while the brokers start.
        let (kc, ()) = tokio::join!(ready(&env, ns, cluster), prepare_java());
        eprintln!(
            "{ns}: {:5.1} s: cluster {cluster} ready",
            started.elapsed().as_secs_f64()
        );
        let bootstrap = kc["status"]["bootstrapServers"]
            .as_str()
            .expect("a Ready cluster lists its bootstrap servers")
            .to_owned();
        let client = env.client().await;
        Replicated {
            env,
            ns,
            cluster,
            topic: "",
            bootstrap,
            client,
            started,
            group: Mutex::new(None),
            _namespace: namespace,
        }
    }

    /// Starts a consumer group member reading the topic (group `<topic>-readers`) until
    /// [`Replicated::check`].
    pub(crate) async fn start_group(&self) {
        let reader = GroupReader::start(
            &self.bootstrap,
            self.topic,
            &format!("{}-readers", self.topic),
        )
        .await;
        *self.group.lock().unwrap_or_else(PoisonError::into_inner) = Some(reader);
    }

    /// What the failure scenarios start from: cluster `cluster` in namespace `ns` with
    /// [`SHORT_LEASES`], broker settings `config` and `extra` spec entries, topic `topic` of [`PARTITIONS`] partitions
    /// with min.insync.replicas 2, and the idempotent acks=all producer at [`RATE`], past its
    /// first 400 acknowledgements.
    pub(crate) async fn producing(
        driver: Driver,
        ns: &'static str,
        cluster: &'static str,
        topic: &'static str,
        config: &str,
        extra: &str,
    ) -> (Replicated, Producing) {
        let extra = if extra.is_empty() {
            SHORT_LEASES.to_owned()
        } else {
            format!("{SHORT_LEASES}, {extra}")
        };
        let mut replicated =
            Replicated::cluster(driver, ns, cluster, &three_brokers(config, &extra)).await;
        replicated.topic(topic, PARTITIONS, MIN_ISR_2).await;
        let producing = replicated.workload(RATE).start().await;
        replicated.start_group().await;
        producing.wait_for_acks(400, READY).await;
        replicated.log("producing");
        (replicated, producing)
    }

    /// Creates KafkaTopic `topic` (replication factor [`BROKERS`], `partitions`, `config` as
    /// `key: value` entries) and waits until every partition is led with all brokers in sync.
    pub(crate) async fn topic(&mut self, topic: &'static str, partitions: i32, config: &str) {
        self.apply_topic(topic, partitions, BROKERS, config).await;
        self.wait_all("every partition to be led with all brokers in sync", |s| {
            s.len() == usize::try_from(partitions).unwrap_or(0)
                && s.iter().all(PartitionState::fully_replicated)
        })
        .await;
        self.log(&format!("topic {topic} ready"));
    }

    /// Applies KafkaTopic `topic` (`partitions`, `replication_factor`, `config` as `key: value`
    /// entries) and makes it the scenario's topic, without waiting for it.
    pub(crate) async fn apply_topic(
        &mut self,
        topic: &'static str,
        partitions: i32,
        replication_factor: i32,
        config: &str,
    ) {
        self.topic = topic;
        self.env
            .apply(&kafka_topic(
                self.ns,
                topic,
                self.cluster,
                partitions,
                replication_factor,
                config,
            ))
            .await;
    }

    /// The topic's partitions as recorded now, by index (those with a status).
    pub(crate) async fn partitions(&self) -> Vec<PartitionState> {
        self.sampler().partitions().await
    }

    /// Something that reads the topic's partitions without borrowing the scenario's state
    /// (for background tasks).
    pub(crate) fn sampler(&self) -> PartitionSampler {
        PartitionSampler {
            api: self.partition_objects(),
            topic: self.topic,
        }
    }

    /// The namespace's KafkaPartition objects.
    pub(crate) fn partition_objects(&self) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: "tributary.dev".into(),
            version: "v1alpha1".into(),
            api_version: "tributary.dev/v1alpha1".into(),
            kind: "KafkaPartition".into(),
            plural: "kafkapartitions".into(),
        };
        Api::namespaced_with(self.client.clone(), self.ns, &resource)
    }

    /// Merge-patches object `name` of `kind` in the scenario's namespace with `patch` (JSON),
    /// as `kubectl patch --type merge` does.
    pub(crate) async fn merge_patch(&self, kind: &str, name: &str, patch: &str) {
        self.env
            .kubectl_ok(&[
                "patch", kind, name, "-n", self.ns, "--type", "merge", "-p", patch,
            ])
            .await;
    }

    /// The scenario's Kubernetes client.
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// Polls the partitions until `accept` takes them; fails the scenario after [`READY`].
    pub(crate) async fn wait_all(
        &self,
        what: &str,
        accept: impl Fn(&[PartitionState]) -> bool,
    ) -> Vec<PartitionState> {
        wait(what, READY, || async {
            let states = self.partitions().await;
            accept(&states).then_some(states)
        })
        .await
    }

    /// Polls partition `p` until `accept` takes it.
    pub(crate) async fn wait_partition(
        &self,
        p: i32,
        what: &str,
        accept: impl Fn(&PartitionState) -> bool,
    ) -> PartitionState {
        wait(what, READY, || async {
            self.partitions()
                .await
                .into_iter()
                .find(|s| s.partition == p)
                .filter(&accept)
        })
        .await
    }

    /// Waits until the cluster's `status.bootstrapServers` lists the brokers' current pod
    /// IPs, and takes it: pods replaced by a roll have new IPs, so the old list leads nowhere.
    pub(crate) async fn refresh_bootstrap(&mut self) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), self.ns);
        self.bootstrap = wait(
            "the cluster's bootstrap servers to list the brokers' new pod IPs",
            READY,
            || async {
                let kc = self
                    .env
                    .get_json(&["kafkacluster", self.cluster, "-n", self.ns])
                    .await;
                let listed = kc["status"]["bootstrapServers"].as_str()?.to_owned();
                let mut current = Vec::new();
                for id in 0..BROKERS {
                    let pod = api.get_opt(&self.pod(id)).await.ok()??;
                    current.push(format!("{}:9092", pod.status?.pod_ip?));
                }
                let mut listed_sorted: Vec<&str> = listed.split(',').collect();
                listed_sorted.sort_unstable();
                current.sort();
                (listed_sorted == current).then_some(listed)
            },
        )
        .await;
    }

    /// Prints `what` with the time since the scenario started (shown with `--nocapture`), so
    /// a run tells where its time went.
    pub(crate) fn log(&self, what: &str) {
        eprintln!(
            "{}: {:5.1} s: {what}",
            self.ns,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Broker `id`'s Kafka address (its pod IP: the listener advertises it).
    pub(crate) async fn address(&self, id: i32) -> String {
        let ip = self
            .pod_object(id)
            .await
            .and_then(|p| p.status?.pod_ip)
            .unwrap_or_else(|| panic!("broker {id}'s pod has an IP"));
        format!("{ip}:9092")
    }

    /// Sends `signal` to broker `id`'s process.
    pub(crate) async fn signal(&self, id: i32, signal: Signal) {
        self.env
            .signal(self.ns, &self.pod(id), "broker", signal)
            .await;
    }

    /// Broker `id`'s pod.
    pub(crate) fn pod(&self, id: i32) -> String {
        format!("{}-broker-{id}", self.cluster)
    }

    /// Broker `id`'s pod object, if it exists.
    pub(crate) async fn pod_object(&self, id: i32) -> Option<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), self.ns);
        api.get_opt(&self.pod(id)).await.ok().flatten()
    }

    /// Broker `id`'s Lease, if it exists.
    pub(crate) async fn lease(&self, id: i32) -> Option<Lease> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), self.ns);
        api.get_opt(&format!("{}-broker-{id}", self.cluster))
            .await
            .ok()
            .flatten()
    }

    /// Broker `id`'s current incarnation, as its Lease announces it.
    pub(crate) async fn incarnation(&self, id: i32) -> Option<i64> {
        incarnation(&self.lease(id).await?)
    }

    /// Waits until broker `id` registers an incarnation above `before`; returns it.
    pub(crate) async fn next_incarnation(&self, id: i32, before: Option<i64>) -> i64 {
        wait(
            &format!("broker {id} to register a new incarnation"),
            READY,
            || async { self.incarnation(id).await.filter(|n| Some(*n) > before) },
        )
        .await
    }

    /// An idempotent acks=all workload on the topic: `rate` records a second until stopped,
    /// spread over the partitions by the client. Values of 100 bytes: the client's sticky
    /// partitioner moves on after a batch's worth of bytes (16 KiB), so no partition holds
    /// every new record for long while its leader is gone.
    pub(crate) fn workload(&self, rate: f64) -> Workload {
        let mut w = Workload::new(&self.bootstrap, self.topic);
        w.count = None;
        w.rate = Some(rate);
        w.value_size = 100;
        w
    }

    /// Reads the topic back and checks `history` against it; fails the scenario on any
    /// anomaly (lost, duplicated, reordered, never acknowledged) or any record left
    /// unacknowledged, and prints the report with the longest wait between two acks.
    pub(crate) async fn check(&self, name: &str, history: &History) -> Report {
        self.check_with(name, history, Vec::new()).await
    }

    /// [`Replicated::check`], with `others`: sends of other clients to the topic (probes)
    /// that the history checker judges with the producer's, though they need not succeed.
    pub(crate) async fn check_with(
        &self,
        name: &str,
        history: &History,
        others: Vec<Attempt>,
    ) -> Report {
        assert_only_retriable_errors(history);
        let reads = read_back(&self.bootstrap, self.topic, READ_BACK).await;
        let mut all = history.clone();
        all.attempts.extend(others);
        let report = check(&all, &reads);
        let gap = history.longest_ack_gap().unwrap_or_default();
        eprintln!(
            "{name}: {report}\n{name}: longest wait between acknowledgements: {:.2} s; {} sends \
             retried by the client after retriable errors, none failed",
            gap.as_secs_f64(),
            history.retries
        );
        report.assert_clean();
        // The checker allows reads of sends whose outcome was unknown; here none may be read:
        // the producer's sends all end acknowledged, and a probe refused must not surface.
        assert_eq!(
            report.indefinite_read, 0,
            "records never acknowledged were read: {report}"
        );
        assert_eq!(
            history.acked(),
            history.attempts.len(),
            "every record is acknowledged in the end: {report}"
        );
        let group = self
            .group
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(group) = group {
            let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
            for r in &reads {
                let end = ends.entry(r.position.partition).or_default();
                *end = (*end).max(r.position.offset + 1);
            }
            let seen = group.stop_at(&ends, READ_BACK).await;
            let problems = seen.check(&all, &ends);
            eprintln!(
                "{name}: the consumer group read {} records in {} assignments ({} commits refused by a rebalance)",
                seen.reads.len(),
                seen.assignments,
                seen.failed_commits
            );
            assert!(problems.is_empty(), "the consumer group: {problems:?}");
        }
        report
    }
}

/// Waits until the producer has `RATE` (a second's worth) more acknowledgements than now:
/// production goes on.
pub(crate) async fn acks_go_on(producing: &Producing) {
    let now = producing.acked();
    producing.wait_for_acks(now + RATE as u64, READY).await;
}

/// A Lease's incarnation annotation.
pub(crate) fn incarnation(lease: &Lease) -> Option<i64> {
    lease
        .metadata
        .annotations
        .as_ref()?
        .get("tributary.dev/incarnation")?
        .parse()
        .ok()
}

/// Fails the scenario if any send ended in an error. The Java producer retries retriable
/// errors (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, timeouts, disconnects) within its
/// delivery timeout without reporting them, and fails a send at once on any other: with a
/// delivery timeout longer than any stall, a send that ends in no error saw only retriable
/// ones. Each failure is listed with its exception class.
pub(crate) fn assert_only_retriable_errors(history: &History) {
    let failed: Vec<String> = history
        .attempts
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Failed { error, definite } => Some(format!(
                "{}: {error} ({})",
                a.id,
                if *definite { "definite" } else { "indefinite" }
            )),
            _ => None,
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} sends ended in an error, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
}
