//! The controller role's loop, run only by the operator replica holding the leader Lease.
//!
//! One task observes: it watches broker Leases (stamping each renewal with this process's
//! monotonic clock as it arrives, so a slow decision pass never makes a live broker look
//! silent), KafkaPartitions, and the topics and clusters whose configs allow unclean election.
//! Another decides: after any change, when the next Lease would expire, or when a cluster's
//! leader imbalance check is due, it plans every partition ([`super::plan::plan`]: failover,
//! election requests, auto leader rebalancing) and hands the work to the
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

use super::balance::{imbalanced_brokers, is_imbalanced, BalanceConfig, Led};
use super::cache::{key_of, PartitionCache, PartitionKey};
use super::election::{unclean_enabled, Change};
use super::liveness::{BrokerKey, BrokerView, Incarnations, Liveness};
use super::plan::{plan, Answer, Inputs, Plan};
use super::writer::{write_all, Outcome, Planned};
use crate::context::Context;
use crate::metrics::ClusterCounts;
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
        liveness: Liveness::new(),
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
        started: Instant::now(),
        last_checks: BTreeMap::new(),
        next_check: None,
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
    /// When this replica became the active controller (the first imbalance checks follow it).
    started: Instant,
    /// When each cluster's leader imbalance was last checked.
    last_checks: BTreeMap<(String, String), Instant>,
    /// The earliest imbalance check due, to wake up for.
    next_check: Option<Instant>,
}

/// Everything one pass planned with, kept for planning again after conflicts.
struct Pass {
    views: BTreeMap<(String, String), (BrokerView, Incarnations)>,
    unclean: BTreeMap<PartitionKey, bool>,
    /// Partitions this pass's imbalance checks picked for their preferred leader.
    rebalance: BTreeSet<PartitionKey>,
    planned: Vec<Planned>,
    /// Offline and imbalanced partitions after the pass's plans, per cluster.
    counts: BTreeMap<(String, String), ClusterCounts>,
    live: BTreeSet<BrokerKey>,
}

impl Pass {
    fn replan(&self, p: &KafkaPartition) -> Plan {
        let Some((view, known)) = self.views.get(&(
            p.namespace().unwrap_or_default(),
            p.spec.cluster_ref.clone(),
        )) else {
            return Plan::default();
        };
        let key = key_of(p);
        plan(&Inputs {
            replicas: &p.spec.replicas,
            status: p.status.as_ref(),
            brokers: view,
            known,
            unclean: self.unclean.get(&key).copied().unwrap_or(false),
            rebalance: self.rebalance.contains(&key),
            request: p.election_request(),
            reassigning: p.spec.is_reassigning().then_some(&p.spec),
        })
    }
}

impl Decider<'_> {
    async fn run(mut self, notify: &Notify, stop: watch::Receiver<bool>) {
        loop {
            let next_expiry = lock(self.observed).liveness.next_expiry(Instant::now());
            let deadline = [next_expiry, self.next_check]
                .into_iter()
                .flatten()
                .min()
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
                &|p: &KafkaPartition| pass.replan(p),
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

    /// Plans every partition from one consistent snapshot, running the imbalance check of
    /// each cluster whose check is due.
    fn plan(&mut self, now: Instant) -> Pass {
        let observed = self.observed;
        let o = lock(observed);
        let mut pass = Pass {
            views: BTreeMap::new(),
            unclean: BTreeMap::new(),
            rebalance: BTreeSet::new(),
            planned: Vec::new(),
            counts: BTreeMap::new(),
            live: o.liveness.live(now),
        };
        let mut by_cluster: BTreeMap<(String, String), Vec<Arc<KafkaPartition>>> = BTreeMap::new();
        for p in o.partitions.current() {
            if p.metadata.deletion_timestamp.is_none() {
                let cluster = (
                    p.namespace().unwrap_or_default(),
                    p.spec.cluster_ref.clone(),
                );
                by_cluster.entry(cluster).or_default().push(p);
            }
        }
        self.next_check = None;
        self.last_checks.retain(|c, _| by_cluster.contains_key(c));
        for (cluster, partitions) in by_cluster {
            let view = o.liveness.view(&cluster.0, &cluster.1, now);
            let known = o.liveness.incarnations(&cluster.0, &cluster.1);
            let kafka_cluster = self
                .clusters
                .get(&ObjectRef::new(&cluster.1).within(&cluster.0));
            let picked = self.check_balance(&cluster, kafka_cluster.as_deref(), &partitions, now);
            let counts = pass.counts.entry(cluster.clone()).or_default();
            for p in partitions {
                let key = key_of(&p);
                let topic = p
                    .owner_references()
                    .iter()
                    .find(|r| r.kind == KafkaTopic::kind(&()))
                    .and_then(|r| self.topics.get(&ObjectRef::new(&r.name).within(&cluster.0)));
                let unclean = unclean_enabled(topic.as_deref(), kafka_cluster.as_deref());
                let rebalance = p.spec.replicas.first().is_some_and(|b| picked.contains(b));
                let planned = plan(&Inputs {
                    replicas: &p.spec.replicas,
                    status: p.status.as_ref(),
                    brokers: &view,
                    known: &known,
                    unclean,
                    rebalance,
                    request: p.election_request(),
                    reassigning: p.spec.is_reassigning().then_some(&p.spec),
                });
                let status = planned
                    .decision
                    .as_ref()
                    .map(|d| &d.status)
                    .or(p.status.as_ref());
                if status.is_none_or(|s| s.leader < 0) {
                    counts.offline += 1;
                }
                if p.spec.is_reassigning() && planned.replicas.is_none() {
                    counts.reassigning += 1;
                }
                if is_imbalanced(Led {
                    replicas: &p.spec.replicas,
                    status,
                }) {
                    counts.imbalanced += 1;
                }
                pass.unclean.insert(key.clone(), unclean);
                if rebalance {
                    pass.rebalance.insert(key);
                }
                if !planned.is_empty() {
                    pass.planned.push(Planned {
                        base: p,
                        plan: planned,
                    });
                }
            }
            pass.views.insert(cluster, (view, known));
        }
        // Leadership first: those writes end unavailability; ISR shrinks can wait.
        pass.planned.sort_by_key(|p| !p.plan.is_election());
        pass
    }

    /// Runs `cluster`'s leader imbalance check if it is due: the brokers whose preferred
    /// partitions should move back to them (none when balancing is off or not due). Schedules
    /// the next check.
    fn check_balance(
        &mut self,
        cluster: &(String, String),
        kafka_cluster: Option<&KafkaCluster>,
        partitions: &[Arc<KafkaPartition>],
        now: Instant,
    ) -> BTreeSet<i32> {
        let config = kafka_cluster.map_or_else(BalanceConfig::default, |c| {
            BalanceConfig::of(&c.spec.config)
        });
        if !config.enabled {
            self.last_checks.remove(cluster);
            return BTreeSet::new();
        }
        let last = self.last_checks.get(cluster).copied();
        let mut picked = BTreeSet::new();
        if now >= config.next_check(self.started, last) {
            self.last_checks.insert(cluster.clone(), now);
            let led = partitions.iter().map(|p| Led {
                replicas: &p.spec.replicas,
                status: p.status.as_ref(),
            });
            picked = imbalanced_brokers(led, config.percentage);
            if !picked.is_empty() {
                // Debug: a dead preferred broker stays over the threshold at every check; the
                // moves themselves are counted and published as Events.
                tracing::debug!(namespace = %cluster.0, cluster = %cluster.1, brokers = ?picked, percentage = config.percentage,
                    "leader imbalance above the threshold; moving leadership back where the preferred replica may lead");
            }
        }
        let next = config.next_check(self.started, self.last_checks.get(cluster).copied());
        self.next_check = Some(self.next_check.map_or(next, |n| n.min(next)));
        picked
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
            .set_controller_gauges(&by_cluster, &pass.counts);
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

    /// Folds the outcomes into the cache, the metrics, per-topic Events and the answers to
    /// election requests (Events on the KafkaPartitions).
    async fn record(&self, outcomes: Vec<Outcome>) {
        let Absorbed { by_topic, answered } = self.absorb(outcomes);
        for changes in by_topic.into_values() {
            changes.publish(self.ctx).await;
        }
        for (p, answer) in answered {
            let (reason, note, warning) = answer.event(p.status.as_ref());
            self.ctx
                .event(&p.object_ref(&()), reason, note, warning)
                .await;
        }
    }

    /// The cache and metrics half of [`Self::record`].
    fn absorb(&self, outcomes: Vec<Outcome>) -> Absorbed {
        let mut by_topic: BTreeMap<(String, String), TopicChanges> = BTreeMap::new();
        let mut answered = Vec::new();
        let mut o = lock(self.observed);
        for outcome in outcomes {
            let metrics = &self.ctx.metrics;
            for _ in 0..outcome.conflicts {
                metrics.controller_write("conflict");
            }
            let partition = format!("{}/{}", outcome.key.0, outcome.key.1);
            if let Some(change) = outcome.change {
                metrics.controller_write("ok");
                metrics.partition_changed(change);
            }
            if let Some(answer) = &outcome.answered {
                let (kind, result) = answer.outcome.labels();
                metrics.election_request(kind, result);
                tracing::info!(%partition, request = %answer.request, result, "answered an election request");
            }
            match &outcome.failure {
                Some(failure @ super::writer::WriteError::Refused(_)) => {
                    metrics.controller_write(failure.metric_label());
                    tracing::error!(%partition, error = %failure, "refused a decision");
                }
                Some(failure) => {
                    metrics.controller_write(failure.metric_label());
                    tracing::warn!(%partition, error = %failure, "controller write failed; deciding again next pass");
                }
                None => {}
            }
            let Some(object) = outcome.object else {
                continue;
            };
            if let Some(change) = outcome.change {
                if let Some((topic, reference)) = topic_of(&object) {
                    by_topic
                        .entry(topic)
                        .or_insert_with(|| TopicChanges::new(reference))
                        .add(&object, change);
                }
            }
            if outcome.reassigned {
                tracing::info!(%partition, replicas = ?object.spec.replicas, "reassignment completed");
                if let Some((topic, reference)) = topic_of(&object) {
                    by_topic
                        .entry(topic)
                        .or_insert_with(|| TopicChanges::new(reference))
                        .reassigned(&object);
                }
            }
            if let Some(answer) = outcome.answered {
                answered.push((object.clone(), answer));
            }
            o.partitions.wrote(object);
        }
        Absorbed { by_topic, answered }
    }
}

/// What one pass's outcomes leave to publish.
struct Absorbed {
    /// Leadership changes per topic.
    by_topic: BTreeMap<(String, String), TopicChanges>,
    /// Election requests answered, with the partition as last written.
    answered: Vec<(KafkaPartition, Answer)>,
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

/// One pass's leadership changes of one topic, published as at most four Events.
struct TopicChanges {
    reference: ObjectReference,
    elected: Vec<String>,
    preferred: Vec<String>,
    unclean: Vec<String>,
    offline: Vec<i32>,
    reassigned: Vec<String>,
}

impl TopicChanges {
    fn new(reference: ObjectReference) -> Self {
        TopicChanges {
            reference,
            elected: Vec::new(),
            preferred: Vec::new(),
            unclean: Vec::new(),
            offline: Vec::new(),
            reassigned: Vec::new(),
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
            // Reported by `reassigned`, once the spec write completed it.
            Change::Reassignment => {}
            Change::PreferredElection => self.preferred.push(entry()),
            Change::UncleanElection => self.unclean.push(entry()),
            Change::Offline => self.offline.push(p.spec.partition),
            Change::IsrShrink => {}
        }
    }

    /// A reassignment completed (its spec written): `p` as it is now.
    fn reassigned(&mut self, p: &KafkaPartition) {
        let leader = p.status.as_ref().map_or(-1, |s| s.leader);
        self.reassigned.push(format!(
            "{}→{:?} (leader {leader})",
            p.spec.partition, p.spec.replicas
        ));
    }

    async fn publish(self, ctx: &Context) {
        if !self.elected.is_empty() {
            let note = format!("leaders of partitions {}", listed(&self.elected));
            ctx.event(&self.reference, "LeadersElected", note, false)
                .await;
        }
        if !self.preferred.is_empty() {
            let note = format!(
                "leadership back to the preferred replicas of partitions {}",
                listed(&self.preferred)
            );
            ctx.event(&self.reference, "PreferredLeadersElected", note, false)
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
        if !self.reassigned.is_empty() {
            let note = format!("reassignments completed: {}", listed(&self.reassigned));
            ctx.event(&self.reference, "ReassignmentCompleted", note, false)
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
