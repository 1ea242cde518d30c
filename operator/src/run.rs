//! Wiring: wait until the API answers and the CRDs are installed (applying them first with
//! `--apply-crds`), stand by until this replica holds the leader Lease, run the KafkaCluster,
//! KafkaTopic, KafkaUser and KafkaSchema controllers and the Kafka controller role while renewing it, and on shutdown
//! stop them and release the Lease.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tributary_crds::registration::clients_ca_name;
use tributary_crds::registration::parse_broker_lease_name;
use tributary_crds::{KafkaCluster, KafkaPartition, KafkaSchema, KafkaTopic, KafkaUser};

use crate::context::{Context, Settings};
use crate::leader::LeaderElector;
use crate::metrics::Metrics;
use crate::{cluster, controller, schema, topic, trigger, user, Error, Result};

/// Resolves once `rx` reports `true` (or its sender is gone).
pub async fn wait_for(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// An Api for `K` in `ns`, or in every namespace.
pub(crate) fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Fails with a hint when the CRDs are not installed (controller-rs does the same).
pub async fn check_crds(client: &Client, ns: Option<&str>) -> Result<()> {
    let one = ListParams::default().limit(1);
    api::<KafkaCluster>(client, ns)
        .list(&one)
        .await
        .map_err(|source| Error::CrdMissing {
            crd: "kafkaclusters.tributary.dev",
            source,
        })?;
    api::<KafkaTopic>(client, ns)
        .list(&one)
        .await
        .map_err(|source| Error::CrdMissing {
            crd: "kafkatopics.tributary.dev",
            source,
        })?;
    api::<KafkaPartition>(client, ns)
        .list(&one)
        .await
        .map_err(|source| Error::CrdMissing {
            crd: "kafkapartitions.tributary.dev",
            source,
        })?;
    api::<KafkaUser>(client, ns)
        .list(&one)
        .await
        .map_err(|source| Error::CrdMissing {
            crd: "kafkausers.tributary.dev",
            source,
        })?;
    api::<KafkaSchema>(client, ns)
        .list(&one)
        .await
        .map_err(|source| Error::CrdMissing {
            crd: "kafkaschemas.tributary.dev",
            source,
        })?;
    Ok(())
}

/// First delay between start-up attempts while the API is unreachable or the CRDs missing.
const STARTUP_RETRY_MIN: Duration = Duration::from_millis(500);
/// Longest delay between start-up attempts.
const STARTUP_RETRY_MAX: Duration = Duration::from_secs(30);

/// Applies the CRDs (when configured) and checks they are served, retrying with backoff while
/// the API is unreachable or the CRDs are missing. The metrics endpoint keeps serving
/// meanwhile, with `/readyz` failing. Returns `false` if shutdown came first.
pub async fn wait_until_api_ready(
    client: &Client,
    settings: &Settings,
    metrics: &Metrics,
    shutdown: watch::Receiver<bool>,
) -> bool {
    let mut delay = STARTUP_RETRY_MIN;
    loop {
        let attempt = async {
            if settings.apply_crds {
                crate::crds::apply_crds(client).await?;
            }
            check_crds(client, settings.watch_namespace.as_deref()).await
        };
        let outcome = tokio::select! {
            () = wait_for(shutdown.clone()) => return false,
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(()) => {
                metrics.set_ready(true);
                return true;
            }
            Err(e) => {
                metrics.set_ready(false);
                tracing::warn!(error = %e, retry_in = ?delay, "not ready to start the controllers");
            }
        }
        tokio::select! {
            () = wait_for(shutdown.clone()) => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(STARTUP_RETRY_MAX);
    }
}

/// Runs the operator until `shutdown` turns true.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    for controller in CONTROLLERS {
        metrics.controller_known(controller);
    }
    if !wait_until_api_ready(&client, &settings, &metrics, shutdown.clone()).await {
        return Ok(());
    }
    let elector = LeaderElector::new(
        client.clone(),
        &settings.lease_namespace,
        &settings.lease_name,
        &settings.identity,
        settings.lease_duration,
    )
    .standby_grace(settings.renew_interval);
    // Stand by until we lead.
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        match elector.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
        }
        tokio::select! {
            () = wait_for(shutdown.clone()) => return Ok(()),
            () = tokio::time::sleep(settings.renew_interval) => {}
        }
    }
    tracing::info!(identity = %settings.identity, "became leader");
    metrics.leader.set(1);

    let (stop_tx, stop_rx) = watch::channel(false);
    let ctx = Context::new(client, metrics.clone(), settings.clone());
    ctx.set_missing_permissions(missing_permissions(&ctx.client, &settings).await);
    let controllers = tokio::spawn(run_controllers(ctx, stop_rx));
    // If this future is dropped (its task aborted), the controllers must not run on without
    // anyone renewing the Lease: they stop with it, as they would with the process.
    let _abort = AbortOnDrop(controllers.abort_handle());
    let outcome = renew_until_shutdown(&elector, &settings, shutdown).await;
    let _ = stop_tx.send(true);
    if let Err(e) = controllers.await {
        tracing::warn!(error = %e, "controller task ended abnormally");
    }
    metrics.leader.set(0);
    if outcome.is_ok() {
        if let Err(e) = elector.release().await {
            tracing::warn!(error = %e, "could not release the leader Lease; it will expire");
        }
    }
    outcome
}

/// What the operator may not do of what it needs where it works (the watched namespace, or
/// its own when it watches every namespace), logged as an error naming each permission; the
/// clusters' `Authorized` condition shows it too. A review that fails is logged and taken as
/// nothing missing: the controllers' own requests will say more.
async fn missing_permissions(client: &Client, settings: &Settings) -> Vec<String> {
    let namespace = settings
        .watch_namespace
        .as_deref()
        .unwrap_or(&settings.lease_namespace);
    match crate::permissions::check(client, namespace).await {
        Ok(missing) if missing.is_empty() => missing,
        Ok(missing) => {
            tracing::error!(
                namespace,
                missing = %missing.join(", "),
                "the operator's ServiceAccount lacks permissions it needs: grant them (the chart's RBAC does) and restart the operator"
            );
            missing
        }
        Err(error) => {
            tracing::warn!(%error, "could not review the operator's own permissions");
            Vec::new()
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn renew_until_shutdown(
    elector: &LeaderElector,
    settings: &Settings,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = wait_for(shutdown.clone()) => return Ok(()),
            () = tokio::time::sleep(settings.renew_interval) => {}
        }
        match elector.try_acquire_or_renew().await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => {
                return Err(Error::LostLeadership {
                    lease: settings.lease_name.clone(),
                })
            }
            Err(e) => tracing::warn!(error = %e, "renewing the leader Lease failed"),
        }
        if last_renewed.elapsed() >= settings.lease_duration {
            return Err(Error::LostLeadership {
                lease: settings.lease_name.clone(),
            });
        }
    }
}

/// The controllers [`run_controllers`] starts, by the name their metrics carry: their
/// reconcile series exist from the operator's start, leading or not.
pub const CONTROLLERS: [&str; 4] = [
    crate::cluster::reconcile::CONTROLLER,
    crate::topic::reconcile::CONTROLLER,
    crate::user::reconcile::CONTROLLER,
    crate::schema::reconcile::CONTROLLER,
];

/// Runs the KafkaCluster, KafkaTopic, KafkaUser and KafkaSchema controllers and the
/// controller role until `stop` turns true.
pub async fn run_controllers(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    // The controller role pokes the cluster controller when a broker's liveness changes (an
    // expiry produces no watch event), so `registered` in the status follows.
    let (brokers_changed, clusters_to_refresh) = mpsc::channel::<()>(1);
    let clusters = cluster_controller(&ctx, clusters_to_refresh, &stop);
    let topics = topic_controller(&ctx, &stop);
    let users = user_controller(&ctx, &stop);
    let schemas = schema_controller(&ctx, &stop);
    let role = controller::run(ctx, brokers_changed, stop.clone());
    // kube's graceful shutdown waits for the controllers' stores to list first; a stop that
    // comes before they have (right after taking the Lease) would wait forever. So, as
    // controller-runtime's graceful shutdown timeout does, what has not finished after the
    // grace is dropped (its reconciles cancelled).
    let forced = async {
        wait_for(stop.clone()).await;
        tokio::time::sleep(CONTROLLERS_STOP_GRACE).await;
    };
    tokio::select! {
        _ = async { futures::join!(clusters, topics, users, schemas, role) } => {}
        () = forced => tracing::warn!(
            grace_s = CONTROLLERS_STOP_GRACE.as_secs(),
            "the controllers had not stopped within the grace; dropping them"
        ),
    }
}

/// The KafkaCluster controller: woken by the cluster, its children, its topics, its brokers'
/// Leases and its partitions, and by the controller role through `refresh`.
fn cluster_controller(
    ctx: &Arc<Context>,
    refresh: mpsc::Receiver<()>,
    stop: &watch::Receiver<bool>,
) -> impl Future<Output = ()> {
    let client = &ctx.client;
    let ns = ctx.settings.watch_namespace.as_deref();
    let owned =
        watcher::Config::default().labels("app.kubernetes.io/managed-by=tributary-operator");
    let (leases, partitions) = (
        trigger::ChangeFilter::default(),
        trigger::ChangeFilter::default(),
    );
    Controller::new(
        api::<KafkaCluster>(client, ns),
        watcher::Config::default().any_semantic(),
    )
    .owns(api::<StatefulSet>(client, ns), owned.clone())
    // The schema registry's pods becoming ready show in the cluster's status.
    .owns(api::<Deployment>(client, ns), owned.clone())
    .owns(api::<ConfigMap>(client, ns), owned.clone())
    .owns(api::<Service>(client, ns), owned.clone())
    // A deleted or edited CA or certificate Secret is put right at once.
    .owns(api::<Secret>(client, ns), owned)
    // Topic status feeds the offline/under-replicated counts and follows placement changes
    // (which the scale-down guard waits for).
    .watches(
        api::<KafkaTopic>(client, ns),
        watcher::Config::default(),
        |t: KafkaTopic| {
            let ns = t.namespace();
            Some(
                ObjectRef::<KafkaCluster>::new(&t.spec.cluster_ref)
                    .within(ns.as_deref().unwrap_or_default()),
            )
        },
    )
    // A broker registers or re-registers (renewals alone wake nothing: the controller role's
    // liveness judgement does, through `refresh`).
    .watches(
        api::<Lease>(client, ns),
        watcher::Config::default(),
        move |lease: Lease| {
            let ns = lease.namespace();
            let name = lease.name_any();
            let (cluster, _) = parse_broker_lease_name(&name)?;
            leases
                .changed(&lease, &trigger::lease_registration_inputs(&lease))
                .then(|| {
                    ObjectRef::<KafkaCluster>::new(cluster)
                        .within(ns.as_deref().unwrap_or_default())
                })
        },
    )
    // A reassignment completes, or a moved replica joins the ISR, in the partition objects:
    // the next move of a rebalance or drain starts then, not at the next requeue.
    .watches(
        api::<KafkaPartition>(client, ns),
        watcher::Config::default().labels(tributary_crds::CLUSTER_LABEL),
        move |p: KafkaPartition| {
            let ns = p.namespace();
            let cluster = p.labels().get(tributary_crds::CLUSTER_LABEL)?.clone();
            partitions
                .changed(&p, &trigger::partition_assignment_inputs(&p))
                .then(|| {
                    ObjectRef::<KafkaCluster>::new(&cluster)
                        .within(ns.as_deref().unwrap_or_default())
                })
        },
    )
    .reconcile_all_on(refresh)
    .graceful_shutdown_on(wait_for(stop.clone()))
    .run(cluster::reconcile, cluster::error_policy, ctx.clone())
    .for_each(|_| futures::future::ready(()))
}

/// The KafkaTopic controller: woken by the topic, its partitions and its cluster.
fn topic_controller(ctx: &Arc<Context>, stop: &watch::Receiver<bool>) -> impl Future<Output = ()> {
    let client = &ctx.client;
    let ns = ctx.settings.watch_namespace.as_deref();
    let topics = Controller::new(api::<KafkaTopic>(client, ns), watcher::Config::default());
    let store = topics.store();
    let clusters = trigger::ChangeFilter::default();
    topics
        // Leadership changes of its partitions update the topic's summary.
        .owns(
            api::<KafkaPartition>(client, ns),
            watcher::Config::default().labels(tributary_crds::CLUSTER_LABEL),
        )
        .watches(
            api::<KafkaCluster>(client, ns),
            watcher::Config::default(),
            // Only what placement reads of the cluster wakes its topics: a status write of
            // the cluster's counts (every topic creation makes two) would otherwise re-run
            // every topic's reconcile.
            move |c: KafkaCluster| {
                if clusters.changed(&c, &trigger::cluster_placement_inputs(&c)) {
                    topics_of(&store, c.namespace(), &c.name_any())
                } else {
                    Vec::new()
                }
            },
        )
        .graceful_shutdown_on(wait_for(stop.clone()))
        .run(topic::reconcile, topic::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()))
}

/// The KafkaUser controller: woken by the user, its Secret, its cluster and its cluster's
/// clients CA.
fn user_controller(ctx: &Arc<Context>, stop: &watch::Receiver<bool>) -> impl Future<Output = ()> {
    let client = &ctx.client;
    let ns = ctx.settings.watch_namespace.as_deref();
    let users = Controller::new(api::<KafkaUser>(client, ns), watcher::Config::default());
    let store = users.store();
    let clusters_store = store.clone();
    users
        // A deleted or changed user Secret is rewritten.
        .owns(
            api::<Secret>(client, ns),
            watcher::Config::default().labels(tributary_crds::CLUSTER_LABEL),
        )
        // Users waiting for their cluster (or its shared documents) go on once it is there.
        .watches(
            api::<KafkaCluster>(client, ns),
            watcher::Config::default(),
            move |c: KafkaCluster| {
                user::reconcile::users_of(&clusters_store, c.namespace(), &c.name_any())
            },
        )
        // A new or renewed clients CA: TLS users get certificates from it.
        .watches(
            api::<Secret>(client, ns),
            watcher::Config::default().labels(tributary_crds::CLUSTER_LABEL),
            move |s: Secret| match s.labels().get(tributary_crds::CLUSTER_LABEL) {
                Some(cluster) if s.name_any() == clients_ca_name(cluster) => {
                    user::reconcile::users_of(&store, s.namespace(), cluster)
                }
                _ => Vec::new(),
            },
        )
        .graceful_shutdown_on(wait_for(stop.clone()))
        .run(user::reconcile, user::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()))
}

/// The KafkaSchema controller: woken by the schema and by its cluster (a registry appears,
/// moves or becomes ready). ConfigMaps are not watched (that would cache every ConfigMap of
/// the watched namespaces): a changed `schemaFrom` key is picked up by the periodic re-check.
fn schema_controller(ctx: &Arc<Context>, stop: &watch::Receiver<bool>) -> impl Future<Output = ()> {
    let client = &ctx.client;
    let ns = ctx.settings.watch_namespace.as_deref();
    let schemas = Controller::new(api::<KafkaSchema>(client, ns), watcher::Config::default());
    let store = schemas.store();
    schemas
        .watches(
            api::<KafkaCluster>(client, ns),
            watcher::Config::default(),
            move |c: KafkaCluster| {
                schema::reconcile::schemas_of(&store, c.namespace(), &c.name_any())
            },
        )
        .graceful_shutdown_on(wait_for(stop.clone()))
        .run(schema::reconcile, schema::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()))
}

/// How long the controllers may take, once asked to stop, to finish the reconciles they
/// started.
const CONTROLLERS_STOP_GRACE: Duration = Duration::from_secs(5);

fn topics_of(
    store: &kube::runtime::reflector::Store<KafkaTopic>,
    ns: Option<String>,
    cluster: &str,
) -> Vec<ObjectRef<KafkaTopic>> {
    store
        .state()
        .iter()
        .filter(|t| t.namespace() == ns && t.spec.cluster_ref == cluster)
        .map(|t| ObjectRef::from(t.as_ref()))
        .collect()
}
