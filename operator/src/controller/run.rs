//! The controller role's loop, run only by the operator replica holding the leader Lease.
//!
//! One task observes: it watches broker Leases (stamping each renewal with this process's
//! monotonic clock as it arrives, so a slow decision pass never makes a live broker look
//! silent), KafkaPartitions, and the topics and clusters whose configs allow unclean election.
//! Another decides: after any change, or when the next Lease would expire, it runs
//! [`decide`](super::election::decide) over every partition and hands the changes to the
//! [`writer`](super::writer), elections first. Nothing is decided before every watch has
//! listed once, and no broker is declared dead within one lease duration of taking over.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Resource, ResourceExt};
use tokio::sync::{watch, Notify};
use tributary_crds::{KafkaCluster, KafkaPartition, KafkaTopic, CLUSTER_LABEL};

use super::cache::{key_of, PartitionCache, PartitionKey};
use super::election::{decide, unclean_enabled, Change, Decision};
use super::liveness::{BrokerKey, BrokerView, Liveness};
use super::writer::{write_all, Outcome, Planned};
use crate::context::Context;
use crate::run::{api, wait_for};

/// Longest sleep between passes when nothing happens (a safety net; changes wake it).
const IDLE_PASS: Duration = Duration::from_secs(30);
/// Partitions named in one Event before "and N more".
const EVENT_LIST: usize = 16;

/// Which watches have listed everything once.
#[derive(Debug, Default)]
struct Synced {
    leases: bool,
    partitions: bool,
    topics: bool,
    clusters: bool,
}

impl Synced {
    fn all(&self) -> bool {
        self.leases && self.partitions && self.topics && self.clusters
    }
}

/// What the observer task maintains and the decider reads.
struct Observed {
    liveness: Liveness,
    partitions: PartitionCache,
    synced: Synced,
}

/// Runs the controller role until `stop` turns true. `clusters_changed` is poked when a
/// broker's liveness changes, so the KafkaCluster status (`registered`) follows.
pub async fn run(
    ctx: Arc<Context>,
    clusters_changed: mpsc::Sender<()>,
    stop: watch::Receiver<bool>,
) {
    let observed = Arc::new(Mutex::new(Observed {
        liveness: Liveness::new(Instant::now()),
        partitions: PartitionCache::default(),
        synced: Synced::default(),
    }));
    let notify = Arc::new(Notify::new());
    let (topics, topics_writer) = reflector::store();
    let (clusters, clusters_writer) = reflector::store();
    let observer = observe(
        &ctx,
        &observed,
        &notify,
        topics_writer,
        clusters_writer,
        stop.clone(),
    );
    let decider = Decider {
        ctx: &ctx,
        observed: &observed,
        topics,
        clusters,
        clusters_changed,
        known_live: None,
    };
    futures::join!(observer, decider.run(&notify, stop));
    ctx.live_brokers.clear();
    tracing::info!("controller role stopped");
}

/// One item from any of the watches. Topics and clusters go to reflector stores; only their
/// first complete listing matters here.
enum Seen {
    Lease(Box<Result<watcher::Event<Lease>, watcher::Error>>),
    Partition(Box<Result<watcher::Event<KafkaPartition>, watcher::Error>>),
    /// A topic or cluster event: whether it ended a (re)listing.
    Store {
        topics: bool,
        listed: Result<bool, watcher::Error>,
    },
}

fn store_event<K>(topics: bool) -> impl Fn(Result<watcher::Event<K>, watcher::Error>) -> Seen {
    move |e| Seen::Store {
        topics,
        listed: e.map(|e| matches!(e, watcher::Event::InitDone)),
    }
}

fn lock(m: &Mutex<Observed>) -> std::sync::MutexGuard<'_, Observed> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn observe(
    ctx: &Context,
    observed: &Mutex<Observed>,
    notify: &Notify,
    topics: reflector::store::Writer<KafkaTopic>,
    clusters: reflector::store::Writer<KafkaCluster>,
    stop: watch::Receiver<bool>,
) {
    let client = &ctx.client;
    let ns = ctx.settings.watch_namespace.as_deref();
    let all = watcher::Config::default();
    let leases = watcher(api::<Lease>(client, ns), all.clone())
        .default_backoff()
        .map(|e| Seen::Lease(Box::new(e)));
    let partitions = watcher(
        api::<KafkaPartition>(client, ns),
        all.clone().labels(CLUSTER_LABEL),
    )
    .default_backoff()
    .map(|e| Seen::Partition(Box::new(e)));
    let topics = reflector::reflector(topics, watcher(api::<KafkaTopic>(client, ns), all.clone()))
        .default_backoff()
        .map(store_event(true));
    let clusters = reflector::reflector(clusters, watcher(api::<KafkaCluster>(client, ns), all))
        .default_backoff()
        .map(store_event(false));
    let mut seen = stream::select_all([
        leases.boxed(),
        partitions.boxed(),
        topics.boxed(),
        clusters.boxed(),
    ]);
    loop {
        let item = tokio::select! {
            () = wait_for(stop.clone()) => return,
            item = seen.next() => item,
        };
        let Some(item) = item else { return };
        let now = Instant::now();
        let mut o = lock(observed);
        match item {
            Seen::Lease(e) => on_lease(&mut o, *e, now),
            Seen::Partition(e) => on_partition(&mut o, *e),
            Seen::Store { topics, listed } => match listed {
                Ok(true) if topics => o.synced.topics = true,
                Ok(true) => o.synced.clusters = true,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "watching topics or clusters failed; retrying")
                }
            },
        }
        drop(o);
        notify.notify_one();
    }
}

fn on_lease(o: &mut Observed, e: Result<watcher::Event<Lease>, watcher::Error>, now: Instant) {
    match e {
        Ok(watcher::Event::Init) => o.liveness.begin_relist(),
        Ok(watcher::Event::InitApply(l) | watcher::Event::Apply(l)) => {
            o.liveness
                .observe(&l.namespace().unwrap_or_default(), &l, now);
        }
        Ok(watcher::Event::InitDone) => {
            o.liveness.end_relist();
            o.synced.leases = true;
        }
        Ok(watcher::Event::Delete(l)) => o
            .liveness
            .forget(&l.namespace().unwrap_or_default(), &l.name_any()),
        Err(e) => {
            // Renewals may go unseen until the watch is back: do not count that silence.
            o.liveness.restart_grace(now);
            tracing::warn!(error = %e, "watching broker Leases failed; retrying");
        }
    }
}

fn on_partition(o: &mut Observed, e: Result<watcher::Event<KafkaPartition>, watcher::Error>) {
    match e {
        Ok(watcher::Event::Init) => o.partitions.begin_relist(),
        Ok(watcher::Event::InitApply(p) | watcher::Event::Apply(p)) => o.partitions.apply(p),
        Ok(watcher::Event::InitDone) => {
            o.partitions.end_relist();
            o.synced.partitions = true;
        }
        Ok(watcher::Event::Delete(p)) => o.partitions.delete(&p),
        Err(e) => tracing::warn!(error = %e, "watching KafkaPartitions failed; retrying"),
    }
}

/// The deciding half and what it remembers between passes.
struct Decider<'a> {
    ctx: &'a Context,
    observed: &'a Mutex<Observed>,
    topics: Store<KafkaTopic>,
    clusters: Store<KafkaCluster>,
    clusters_changed: mpsc::Sender<()>,
    /// Brokers live at the previous pass (`None` before the first), for transition Events.
    known_live: Option<BTreeSet<BrokerKey>>,
}

/// Everything one pass decided on, kept for re-deciding after conflicts.
struct Pass {
    views: BTreeMap<(String, String), BrokerView>,
    unclean: BTreeMap<PartitionKey, bool>,
    planned: Vec<Planned>,
    /// Partitions without a leader after the pass's decisions, per cluster.
    offline: BTreeMap<(String, String), i64>,
    live: BTreeSet<BrokerKey>,
}

impl Pass {
    fn redecide(&self, p: &KafkaPartition) -> Option<Decision> {
        let view = self.views.get(&(
            p.namespace().unwrap_or_default(),
            p.spec.cluster_ref.clone(),
        ))?;
        let unclean = self.unclean.get(&key_of(p)).copied().unwrap_or(false);
        decide(&p.spec.replicas, p.status.as_ref(), view, unclean)
    }
}

impl Decider<'_> {
    async fn run(mut self, notify: &Notify, stop: watch::Receiver<bool>) {
        loop {
            let deadline = {
                let o = lock(self.observed);
                o.liveness.next_expiry(Instant::now())
            }
            .map_or(IDLE_PASS, |at| {
                at.saturating_duration_since(Instant::now()) + Duration::from_millis(5)
            })
            .min(IDLE_PASS);
            tokio::select! {
                () = wait_for(stop.clone()) => return,
                () = notify.notified() => {}
                () = tokio::time::sleep(deadline) => {}
            }
            if !lock(self.observed).synced.all() {
                continue;
            }
            let started = Instant::now();
            let mut pass = self.plan(Instant::now());
            self.report_brokers(&pass).await;
            let planned = std::mem::take(&mut pass.planned);
            let writes = planned.len();
            let outcomes = write_all(
                &self.ctx.client,
                planned,
                &|p: &KafkaPartition| pass.redecide(p),
                self.ctx.settings.controller_write_concurrency,
            )
            .await;
            self.record(outcomes).await;
            if writes > 0 {
                self.ctx
                    .metrics
                    .controller_pass_finished(started.elapsed(), writes);
            }
        }
    }

    /// Decides every partition from one consistent snapshot.
    fn plan(&self, now: Instant) -> Pass {
        let o = lock(self.observed);
        let mut pass = Pass {
            views: BTreeMap::new(),
            unclean: BTreeMap::new(),
            planned: Vec::new(),
            offline: BTreeMap::new(),
            live: o.liveness.live(now),
        };
        for p in o.partitions.current() {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ns = p.namespace().unwrap_or_default();
            let cluster = (ns.clone(), p.spec.cluster_ref.clone());
            let view = pass
                .views
                .entry(cluster.clone())
                .or_insert_with(|| o.liveness.view(&ns, &cluster.1, now));
            let topic = p
                .owner_references()
                .iter()
                .find(|r| r.kind == KafkaTopic::kind(&()))
                .and_then(|r| self.topics.get(&ObjectRef::new(&r.name).within(&ns)));
            let kafka_cluster = self.clusters.get(&ObjectRef::new(&cluster.1).within(&ns));
            let unclean = unclean_enabled(topic.as_deref(), kafka_cluster.as_deref());
            let decision = decide(&p.spec.replicas, p.status.as_ref(), view, unclean);
            let leader = decision
                .as_ref()
                .map(|d| d.status.leader)
                .or(p.status.as_ref().map(|s| s.leader));
            let offline = pass.offline.entry(cluster).or_default();
            if leader.is_none_or(|l| l < 0) {
                *offline += 1;
            }
            pass.unclean.insert(key_of(&p), unclean);
            if let Some(decision) = decision {
                pass.planned.push(Planned { base: p, decision });
            }
        }
        // Leadership first: those writes end unavailability; ISR shrinks can wait.
        pass.planned
            .sort_by_key(|p| !p.decision.change.is_election());
        pass
    }

    /// Publishes the live brokers (cluster status reads them), sets the gauges, and says when
    /// a broker was declared dead or came back.
    async fn report_brokers(&mut self, pass: &Pass) {
        let mut by_cluster: BTreeMap<(String, String), BTreeSet<i32>> = BTreeMap::new();
        for k in &pass.live {
            by_cluster
                .entry((k.namespace.clone(), k.cluster.clone()))
                .or_default()
                .insert(k.id);
        }
        self.ctx
            .metrics
            .set_controller_gauges(&by_cluster, &pass.offline);
        self.ctx.live_brokers.publish(by_cluster);
        let before = self.known_live.replace(pass.live.clone());
        let Some(before) = before else {
            let _ = self.clusters_changed.try_send(());
            return;
        };
        if before == pass.live {
            return;
        }
        let _ = self.clusters_changed.try_send(());
        for (k, alive) in before
            .symmetric_difference(&pass.live)
            .map(|k| (k, pass.live.contains(k)))
        {
            let Some(cluster) = self
                .clusters
                .get(&ObjectRef::new(&k.cluster).within(&k.namespace))
            else {
                continue;
            };
            let (reason, note) = if alive {
                (
                    "BrokerReturned",
                    format!("broker {} renews its Lease again", k.id),
                )
            } else {
                (
                    "BrokerExpired",
                    format!(
                        "broker {} has not renewed its Lease for a lease duration; moving its leaderships",
                        k.id
                    ),
                )
            };
            tracing::info!(namespace = %k.namespace, cluster = %k.cluster, broker = k.id, reason);
            self.ctx
                .event(&cluster.object_ref(&()), reason, note, !alive)
                .await;
        }
    }

    /// Folds the outcomes into the cache, the metrics and per-topic Events.
    async fn record(&self, outcomes: Vec<Outcome>) {
        let by_topic = self.absorb(outcomes);
        for changes in by_topic.into_values() {
            changes.publish(self.ctx).await;
        }
    }

    /// The cache and metrics half of [`Self::record`]; returns the changes per topic.
    fn absorb(&self, outcomes: Vec<Outcome>) -> BTreeMap<(String, String), TopicChanges> {
        let mut by_topic: BTreeMap<(String, String), TopicChanges> = BTreeMap::new();
        let mut o = lock(self.observed);
        for outcome in outcomes {
            for _ in 0..outcome.conflicts() {
                self.ctx.metrics.controller_write("conflict");
            }
            match outcome {
                Outcome::Written { object, change, .. } => {
                    self.ctx.metrics.controller_write("ok");
                    self.ctx.metrics.partition_changed(change);
                    if let Some((topic, reference)) = topic_of(&object) {
                        by_topic
                            .entry(topic)
                            .or_insert_with(|| TopicChanges::new(reference))
                            .add(&object, change);
                    }
                    o.partitions.wrote(object);
                }
                Outcome::Settled { object, .. } => {
                    if let Some(object) = object {
                        o.partitions.wrote(object);
                    }
                }
                Outcome::Failed { key, error, .. } => {
                    self.ctx.metrics.controller_write("error");
                    tracing::warn!(partition = %format!("{}/{}", key.0, key.1), %error, "controller write failed; deciding again next pass");
                }
                Outcome::Refused { key, violations } => {
                    self.ctx.metrics.controller_write("refused");
                    tracing::error!(partition = %format!("{}/{}", key.0, key.1), ?violations, "refused a decision that breaks partition invariants");
                }
            }
        }
        by_topic
    }
}

/// The owning KafkaTopic of `p`, as a key and an Event reference.
fn topic_of(p: &KafkaPartition) -> Option<((String, String), ObjectReference)> {
    let owner = p
        .owner_references()
        .iter()
        .find(|r| r.kind == KafkaTopic::kind(&()))?;
    let ns = p.namespace().unwrap_or_default();
    Some((
        (ns.clone(), owner.name.clone()),
        ObjectReference {
            api_version: Some(owner.api_version.clone()),
            kind: Some(owner.kind.clone()),
            name: Some(owner.name.clone()),
            namespace: Some(ns),
            uid: Some(owner.uid.clone()),
            ..ObjectReference::default()
        },
    ))
}

/// One pass's leadership changes of one topic, published as at most three Events.
struct TopicChanges {
    reference: ObjectReference,
    elected: Vec<String>,
    unclean: Vec<String>,
    offline: Vec<i32>,
}

impl TopicChanges {
    fn new(reference: ObjectReference) -> Self {
        TopicChanges {
            reference,
            elected: Vec::new(),
            unclean: Vec::new(),
            offline: Vec::new(),
        }
    }

    fn add(&mut self, p: &KafkaPartition, change: Change) {
        let Some(s) = &p.status else { return };
        let entry = || {
            format!(
                "{}→{} (epoch {})",
                p.spec.partition, s.leader, s.leader_epoch
            )
        };
        match change {
            Change::Initial | Change::CleanElection => self.elected.push(entry()),
            Change::UncleanElection => self.unclean.push(entry()),
            Change::Offline => self.offline.push(p.spec.partition),
            Change::IsrShrink => {}
        }
    }

    async fn publish(self, ctx: &Context) {
        if !self.elected.is_empty() {
            let note = format!("leaders of partitions {}", listed(&self.elected));
            ctx.event(&self.reference, "LeadersElected", note, false)
                .await;
        }
        if !self.unclean.is_empty() {
            let note = format!(
                "unclean election (records acknowledged by the old ISR may be lost): {}",
                listed(&self.unclean)
            );
            ctx.event(&self.reference, "UncleanLeaderElection", note, true)
                .await;
        }
        if !self.offline.is_empty() {
            let names: Vec<String> = self.offline.iter().map(i32::to_string).collect();
            let note = format!(
                "partitions {} are offline: no live in-sync replica can lead",
                listed(&names)
            );
            ctx.event(&self.reference, "PartitionsOffline", note, true)
                .await;
        }
    }
}

/// The first [`EVENT_LIST`] items, then how many more.
fn listed(items: &[String]) -> String {
    let shown = items
        .iter()
        .take(EVENT_LIST)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match items.len().checked_sub(EVENT_LIST) {
        Some(more) if more > 0 => format!("{shown} and {more} more"),
        _ => shown,
    }
}
