//! KafkaCluster reconcile: keep the CA and certificate Secrets current, apply the rendered
//! children, create the producer-id ConfigMap once,
//! observe pods/topics/partitions (and the brokers the controller role sees alive), take the
//! next step of a rolling update, write status, publish events on changes. An invalid spec becomes a condition and an event with a
//! slow requeue, never a crash or a hot loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tributary_crds::conditions::{is_true, READY};
use tributary_crds::config::validate_broker_config;
use tributary_crds::registration::producer_ids_name;
use tributary_crds::{
    is_paused, KafkaCluster, KafkaClusterStatus, KafkaPartition, KafkaTopic, CLUSTER_LABEL,
    PAUSE_ANNOTATION,
};

use super::certificates::ensure_certificates;
use super::features::finalize_features;
use super::moves::rebalance;
use super::rebalance::RebalancePlan;
use super::registry::{reconcile_registry, set_registry_status};
use super::rollout::{self, RollObserved};
use super::scale::scale_decision;
use super::status::{
    compute, set_monitoring, set_moves, MonitoringOutcome, Observed, ProducerIds, MONITORING,
    MONITORING_UNAVAILABLE,
};
use crate::apply::{apply, apply_dynamic, delete_dynamic_if_exists, delete_if_exists};
use crate::builders::monitoring::{self, pod_monitor_resource, prometheus_rule_resource};
use crate::builders::network_policy;
use crate::builders::{
    acls, build, client_quotas, dynamic_configs, producer_ids, scram_credentials, ClusterObjects,
    Names,
};
use crate::context::Context;
use crate::pause::{set_paused, PAUSED};
use crate::{Error, Result};

/// Label value for metrics.
pub const CONTROLLER: &str = "kafkacluster";

/// Reconciles one KafkaCluster.
pub async fn reconcile(cluster: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    if is_paused(&cluster.metadata) {
        tracing::info!(cluster = %cluster.name_any(), "paused; not reconciling");
        mark_paused(&cluster, &ctx).await?;
        return Ok(Action::await_change());
    }
    let names = Names::of(&cluster)?;
    let ns = names.namespace.as_str();
    mark_unauthorized(&cluster, &ctx).await?;
    let topics = list_topics(&ctx, &names).await?;
    let spec_error = validate_broker_config(&cluster.spec.config)
        .err()
        .map(|e| e.to_string())
        .or_else(|| crate::builders::tiered::refusal(&cluster.spec, &topics))
        .or_else(|| tributary_crds::features::check_pinned(&cluster.spec.features).err());
    let partitions = list_partitions(&ctx, &names).await?;
    let running = get_stateful_set(&ctx, &names)
        .await?
        .and_then(|s| s.spec.replicas);
    let scale = scale_decision(running, cluster.spec.brokers, &partitions);
    let applied = match &spec_error {
        None => apply_spec(&ctx, &cluster, &names, scale.replicas).await?,
        // Keep whatever runs now; do not roll brokers onto a config they would reject.
        Some(_) => Applied::nothing(),
    };

    // The levels stay where they are while the spec is invalid.
    let features = match &spec_error {
        None => finalize_features(&ctx, &cluster, &names).await?,
        Some(_) => None,
    };

    // Like the brokers, the registry keeps what runs while the spec is invalid.
    let registry = match &spec_error {
        None => Some(reconcile_registry(&ctx, &cluster, &names).await?),
        Some(_) => None,
    };

    let sts = get_stateful_set(&ctx, &names).await?;
    let pods = list_pods(&ctx, &names).await?;
    let roll = rollout::step(
        &ctx,
        RollObserved {
            cluster: &cluster,
            names: &names,
            stateful_set: sts.as_ref(),
            pods: &pods,
            topics: &topics,
            partitions: &partitions,
            replicas: scale.replicas,
        },
    )
    .await?;
    let live_brokers = ctx.live_brokers.of(ns, &names.cluster);
    let node_racks = node_racks(&ctx, &cluster, &pods).await;
    // Replicas move once the controller role has judged which brokers live, and not during
    // a roll (its ISR checks assume the replica sets hold still).
    let moves = match ctx.live_brokers.judged(ns, &names.cluster) {
        Some(live) if spec_error.is_none() && !roll.rolling => {
            rebalance(&ctx, &cluster, &topics, &partitions, &live).await
        }
        _ => RebalancePlan::default(),
    };

    let mut status = compute(Observed {
        cluster: &cluster,
        names: &names,
        config_hash: applied.objects.as_ref().map(|o| o.config_hash.as_str()),
        spec_error: spec_error.as_deref(),
        stateful_set: sts.as_ref(),
        pods: &pods,
        live_brokers: &live_brokers,
        topics: &topics,
        node_racks: &node_racks,
        controller: &ctx.settings.identity,
        producer_ids: &applied.producer_ids,
        external_services: &applied.external,
    });
    let generation = cluster.metadata.generation;
    if spec_error.is_none() {
        set_moves(&mut status.conditions, &scale.draining, &moves, generation);
    }
    if features.is_some() {
        status.features = features;
    }
    status.roll = roll.roll.clone();
    roll.set_condition(&mut status.conditions, generation);
    if let Some(outcome) = &registry {
        set_registry_status(&mut status, outcome, generation);
    }
    if let Some(outcome) = &applied.monitoring {
        set_monitoring(&mut status.conditions, outcome, generation);
        publish_monitoring(&ctx, &cluster, outcome).await;
    }
    set_tiered_storage(&ctx, &cluster, &names, &mut status.conditions).await;
    let missing = ctx.missing_permissions();
    crate::permissions::set_authorized(&mut status.conditions, &missing, generation);
    publish_changes(&ctx, &cluster, &status, spec_error.as_deref()).await;
    write_status(&ctx, &cluster, &names, &status).await?;
    Ok(next_action(NextCheck {
        invalid_spec: spec_error.is_some(),
        ready: is_true(&status.conditions, READY),
        rolling: roll.rolling,
        draining: !scale.draining.is_empty(),
        moving: moves.in_progress + moves.moves.len() > 0,
    }))
}

/// What the reconcile found that decides how soon to look again.
#[derive(Clone, Copy, Debug)]
struct NextCheck {
    /// The spec is invalid (nothing was applied).
    invalid_spec: bool,
    /// The cluster's `Ready` condition is True.
    ready: bool,
    /// A rolling update is under way.
    rolling: bool,
    /// Brokers are draining before a scale-down.
    draining: bool,
    /// Reassignments are in progress or were just started.
    moving: bool,
}

/// How soon to reconcile again: slowly for an invalid spec, soon while the cluster changes
/// under the operator (roll, drain, moves), otherwise sooner while not ready.
fn next_action(check: NextCheck) -> Action {
    let secs = match check {
        NextCheck {
            invalid_spec: true, ..
        } => 300,
        // Topic status changes also wake us; this is the fallback.
        // A restarted broker's new registration in its Lease wakes us; this is the fallback
        // while a roll waits for a broker to come back (pods are not watched).
        NextCheck { rolling: true, .. } => 2,
        NextCheck { draining: true, .. } => 5,
        // Partition changes wake us when a reassignment completes; this is the fallback.
        NextCheck { moving: true, .. } => 5,
        NextCheck { ready: true, .. } => 60,
        NextCheck { ready: false, .. } => 10,
    };
    Action::requeue(Duration::from_secs(secs))
}

/// What applying a valid spec produced, for the status.
struct Applied {
    /// The rendered children (`None` when the spec is invalid and nothing was applied).
    objects: Option<ClusterObjects>,
    /// What became of the PodMonitor and PrometheusRule.
    monitoring: Option<MonitoringOutcome>,
    /// The producer-id ConfigMap.
    producer_ids: ProducerIds,
    /// The external listeners' Services as applied.
    external: Vec<Service>,
}

impl Applied {
    /// Nothing applied (the spec is invalid).
    fn nothing() -> Self {
        Applied {
            objects: None,
            monitoring: None,
            producer_ids: ProducerIds::Unknown,
            external: Vec::new(),
        }
    }
}

/// Renders the cluster for `replicas` brokers and writes it: certificates, children, the
/// producer-id ConfigMap, the shared objects and monitoring.
async fn apply_spec(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
    replicas: i32,
) -> Result<Applied> {
    // Rendered for the brokers that run, not the count asked for: a scale-down still
    // draining (or refused) must not change the brokers' configuration (the internal topics'
    // replication factor follows the broker count) and roll them.
    let mut running = cluster.clone();
    running.spec.brokers = replicas;
    let objects = build(&running)?;
    // Before the StatefulSet: broker pods wait for the Secrets they mount.
    ensure_certificates(ctx, cluster, names, SystemTime::now()).await?;
    // Before the pods too: none runs without its policy.
    let policy = network_policy::brokers(cluster, names, &ctx.settings.lease_namespace);
    apply::<NetworkPolicy>(&ctx.client, &policy).await?;
    let external = apply_children(ctx, names, &objects).await?;
    let producer_ids = ensure_producer_ids(ctx, cluster, names).await?;
    ensure_shared(ctx, names).await?;
    let monitoring = apply_monitoring(ctx, cluster, names, &objects).await?;
    Ok(Applied {
        objects: Some(objects),
        monitoring: Some(monitoring),
        producer_ids,
        external,
    })
}

/// The broker StatefulSet, if it exists.
async fn get_stateful_set(ctx: &Context, names: &Names) -> Result<Option<StatefulSet>> {
    let ns = names.namespace.as_str();
    Api::<StatefulSet>::namespaced(ctx.client.clone(), ns)
        .get_opt(&names.broker())
        .await
        .map_err(|e| Error::kube(format!("get StatefulSet {ns}/{}", names.broker()), e))
}

/// The KafkaTopics of this cluster.
async fn list_topics(ctx: &Context, names: &Names) -> Result<Vec<KafkaTopic>> {
    let ns = names.namespace.as_str();
    Ok(Api::<KafkaTopic>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("list kafkatopics in {ns}"), e))?
        .items
        .into_iter()
        .filter(|t| t.spec.cluster_ref == names.cluster)
        .collect())
}

/// The KafkaPartitions labelled with this cluster.
async fn list_partitions(ctx: &Context, names: &Names) -> Result<Vec<KafkaPartition>> {
    let ns = names.namespace.as_str();
    Ok(Api::<KafkaPartition>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{CLUSTER_LABEL}={}", names.cluster)))
        .await
        .map_err(|e| Error::kube(format!("list kafkapartitions in {ns}"), e))?
        .items)
}

/// The broker pods.
async fn list_pods(ctx: &Context, names: &Names) -> Result<Vec<Pod>> {
    let ns = names.namespace.as_str();
    let selector = ListParams::default().labels(&names.selector_string());
    Ok(Api::<Pod>::namespaced(ctx.client.clone(), ns)
        .list(&selector)
        .await
        .map_err(|e| Error::kube(format!("list pods in {ns}"), e))?
        .items)
}

/// Writes the fields of `status` that differ from the cluster's (a merge patch), if any do.
async fn write_status(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
    status: &KafkaClusterStatus,
) -> Result<()> {
    let old = cluster.status.clone().unwrap_or_default();
    if old == *status {
        return Ok(());
    }
    let ns = names.namespace.as_str();
    let patch = serde_json::json!({
        "status": crate::apply::merge_patch(&serde_json::json!(old), &serde_json::json!(status)),
    });
    Api::<KafkaCluster>::namespaced(ctx.client.clone(), ns)
        .patch_status(
            &names.cluster,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| {
            Error::kube(
                format!("update status of KafkaCluster {ns}/{}", names.cluster),
                e,
            )
        })?;
    Ok(())
}

/// Writes the `Authorized` condition naming what the operator may not do, before any step
/// those permissions could make fail: otherwise a reconcile ending on a 403 would never reach
/// the status it is meant to explain. Nothing is written when the condition already says so.
async fn mark_unauthorized(cluster: &KafkaCluster, ctx: &Context) -> Result<()> {
    let missing = ctx.missing_permissions();
    if missing.is_empty() {
        return Ok(());
    }
    let old = cluster.status.clone().unwrap_or_default().conditions;
    let mut conditions = old.clone();
    crate::permissions::set_authorized(&mut conditions, &missing, cluster.metadata.generation);
    if conditions == old {
        return Ok(());
    }
    patch_conditions(cluster, ctx, &conditions).await
}

/// Replaces the cluster's status conditions (a merge patch of `status.conditions` alone).
async fn patch_conditions(
    cluster: &KafkaCluster,
    ctx: &Context,
    conditions: &[Condition],
) -> Result<()> {
    let ns = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let patch = serde_json::json!({ "status": { "conditions": conditions } });
    Api::<KafkaCluster>::namespaced(ctx.client.clone(), &ns)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("update status of KafkaCluster {ns}/{name}"), e))?;
    Ok(())
}

/// Sets the `Paused` condition (once per generation) and says so in an Event.
async fn mark_paused(cluster: &KafkaCluster, ctx: &Context) -> Result<()> {
    let mut status = cluster.status.clone().unwrap_or_default();
    let was_paused = is_true(&status.conditions, PAUSED);
    if !set_paused(&mut status.conditions, true, cluster.metadata.generation) {
        return Ok(());
    }
    patch_conditions(cluster, ctx, &status.conditions).await?;
    if !was_paused {
        let note =
            format!("{PAUSE_ANNOTATION} is set; changes are not applied until it is removed");
        ctx.event(&cluster.object_ref(&()), PAUSED, note, false)
            .await;
    }
    Ok(())
}

/// Applies the cluster's children; returns the external listeners' Services as applied.
async fn apply_children(ctx: &Context, names: &Names, o: &ClusterObjects) -> Result<Vec<Service>> {
    let c = &ctx.client;
    apply::<ServiceAccount>(c, &o.service_account).await?;
    apply::<Role>(c, &o.role).await?;
    apply::<RoleBinding>(c, &o.role_binding).await?;
    apply::<ConfigMap>(c, &o.config_map).await?;
    apply::<Service>(c, &o.headless_service).await?;
    apply::<Service>(c, &o.bootstrap_service).await?;
    let external = apply_external_services(ctx, names, &o.external_services).await?;
    apply::<StatefulSet>(c, &o.stateful_set).await?;
    match &o.pod_disruption_budget {
        Some(pdb) => {
            apply::<PodDisruptionBudget>(c, pdb).await?;
        }
        None => {
            delete_if_exists::<PodDisruptionBudget>(c, &names.namespace, &names.broker()).await?
        }
    }
    Ok(external)
}

/// Applies the external listeners' Services and deletes the ones no listener or broker needs
/// any more (a removed listener, a broker scaled away); returns them as applied.
async fn apply_external_services(
    ctx: &Context,
    names: &Names,
    wanted: &[Service],
) -> Result<Vec<Service>> {
    let c = &ctx.client;
    let mut applied = Vec::with_capacity(wanted.len());
    for service in wanted {
        applied.push(apply::<Service>(c, service).await?);
    }
    let api: Api<Service> = Api::namespaced(c.clone(), &names.namespace);
    let existing = api
        .list_metadata(&ListParams::default().labels(&names.external_services_selector()))
        .await
        .map_err(|e| Error::kube("list external listener Services", e))?;
    for service in existing {
        let name = service.name_any();
        if !wanted
            .iter()
            .any(|w| w.metadata.name.as_deref() == Some(&name))
        {
            delete_if_exists::<Service>(c, &names.namespace, &name).await?;
        }
    }
    Ok(applied)
}

/// Creates the producer-id ConfigMap if it was never created; never writes it otherwise (the
/// brokers own its counter). One that disappears after creation is reported, not recreated.
async fn ensure_producer_ids(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
) -> Result<ProducerIds> {
    let ns = names.namespace.as_str();
    let name = producer_ids_name(&names.cluster);
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let exists = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("get ConfigMap {ns}/{name}"), e))?
        .is_some();
    let created_before = cluster
        .status
        .as_ref()
        .and_then(|s| s.producer_ids.as_deref())
        == Some(name.as_str());
    if exists {
        return Ok(ProducerIds::Present(name));
    }
    if created_before {
        let reported = cluster.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == tributary_crds::conditions::DEGRADED && c.reason == "ProducerIdsMissing"
            })
        });
        if !reported {
            let note = format!(
                "ConfigMap {name} was deleted; not recreating it at 0, which would reuse producer ids"
            );
            ctx.event(&cluster.object_ref(&()), "ProducerIdsMissing", note, true)
                .await;
        }
        return Ok(ProducerIds::Missing(name));
    }
    match api
        .create(&PostParams::default(), &producer_ids(names))
        .await
    {
        Ok(_) => {
            let note = format!("created ConfigMap {name} for producer-id blocks");
            ctx.event(&cluster.object_ref(&()), "ProducerIdsCreated", note, false)
                .await;
            Ok(ProducerIds::Present(name))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(ProducerIds::Present(name)),
        Err(e) => Err(Error::kube(format!("create ConfigMap {ns}/{name}"), e)),
    }
}

/// Creates the objects the brokers share their ACLs, cluster-wide dynamic configs, SCRAM
/// credentials and client quotas in, where missing;
/// never writes them otherwise (the brokers own their contents).
async fn ensure_shared(ctx: &Context, names: &Names) -> Result<()> {
    let ns = names.namespace.as_str();
    create_once(ctx, ns, &acls(names)).await?;
    create_once(ctx, ns, &dynamic_configs(names)).await?;
    create_once(ctx, ns, &client_quotas(names)).await?;
    create_once(ctx, ns, &scram_credentials(names)).await
}

/// Creates `object` unless an object of its name exists.
async fn create_once<K>(ctx: &Context, ns: &str, object: &K) -> Result<()>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let what = || format!("{} {ns}/{name}", K::kind(&()));
    let exists = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("get {}", what()), e))?
        .is_some();
    if exists {
        return Ok(());
    }
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::kube(format!("create {}", what()), e)),
    }
}

/// Applies the requested PodMonitor/PrometheusRule and deletes unrequested ones (only if the
/// status says some were managed, so clusters without monitoring make no calls). A 404 means
/// the prometheus-operator CRDs are not installed, a 403 that the operator may not manage
/// them: both are reported, never fatal for the cluster.
async fn apply_monitoring(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
    o: &ClusterObjects,
) -> Result<MonitoringOutcome> {
    let c = &ctx.client;
    let ns = names.namespace.as_str();
    let managed_before = cluster
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == MONITORING));
    let wanted = [
        (pod_monitor_resource(), &o.pod_monitor, names.broker()),
        (
            prometheus_rule_resource(),
            &o.prometheus_rule,
            monitoring::prometheus_rule_name(names),
        ),
    ];
    let mut outcome = MonitoringOutcome::Disabled;
    for (resource, obj, name) in wanted {
        let what = format!("{} {ns}/{name}", resource.kind);
        match obj {
            Some(obj) => match apply_dynamic(c, &resource, obj).await {
                Ok(_) => {
                    if outcome == MonitoringOutcome::Disabled {
                        outcome = MonitoringOutcome::Applied;
                    }
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    outcome = MonitoringOutcome::Unavailable(format!(
                        "{}/{} is not served (install the prometheus-operator CRDs); {what} not created",
                        resource.group, resource.version
                    ));
                }
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    outcome = MonitoringOutcome::Unavailable(format!(
                        "the operator may not manage {}.{} (grant it in its RBAC); {what} not created",
                        resource.plural, resource.group
                    ));
                }
                Err(e) => return Err(Error::kube(format!("apply {what}"), e)),
            },
            None if managed_before => {
                if let Err(e) = delete_dynamic_if_exists(c, &resource, ns, &name).await {
                    tracing::warn!(error = %e, "cannot delete {what}; leaving it");
                }
            }
            None => {}
        }
    }
    Ok(outcome)
}

/// A Warning Event when monitoring first turns out to be unavailable.
async fn publish_monitoring(ctx: &Context, cluster: &KafkaCluster, outcome: &MonitoringOutcome) {
    let MonitoringOutcome::Unavailable(msg) = outcome else {
        return;
    };
    let already = cluster.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == MONITORING && c.reason == MONITORING_UNAVAILABLE)
    });
    if !already {
        ctx.event(
            &cluster.object_ref(&()),
            MONITORING_UNAVAILABLE,
            msg.clone(),
            true,
        )
        .await;
    }
}

/// Rack of each broker's node, when rack awareness is on. Unreadable nodes just have no rack
/// (placement then treats the broker as rackless) rather than failing the reconcile.
async fn node_racks(
    ctx: &Context,
    cluster: &KafkaCluster,
    pods: &[Pod],
) -> BTreeMap<String, String> {
    let mut racks = BTreeMap::new();
    let Some(rack) = &cluster.spec.rack else {
        return racks;
    };
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    for node_name in pods
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
    {
        match nodes.get_opt(&node_name).await {
            Ok(Some(node)) => {
                if let Some(value) = node.labels().get(&rack.topology_key) {
                    racks.insert(node_name, value.clone());
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(node = %node_name, error = %e, "cannot read node for its rack label")
            }
        }
    }
    racks
}

/// The `TieredStorage` condition: whether the credentials Secret the brokers mount exists with
/// its keys (removed without `spec.tieredStorage`). A failed read leaves the condition as it
/// was: it informs, and must not stop the rest of the reconcile.
async fn set_tiered_storage(
    ctx: &Context,
    cluster: &KafkaCluster,
    names: &Names,
    conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
) {
    use crate::builders::tiered::{credentials_condition, TIERED_STORAGE_CONDITION};
    let wanted = cluster
        .spec
        .tiered_storage
        .as_ref()
        .and_then(|t| t.credentials_secret.as_ref());
    let secret = match wanted {
        Some(wanted) => {
            let ns = names.namespace.as_str();
            let api = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(ctx.client.clone(), ns);
            match api.get_opt(&wanted.name).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(%error, secret = %wanted.name, "cannot read the tiered storage credentials Secret");
                    return;
                }
            }
        }
        None => None,
    };
    match credentials_condition(&cluster.spec, secret.as_ref()) {
        Some(c) => tributary_crds::conditions::set_condition(
            conditions,
            TIERED_STORAGE_CONDITION,
            c.ok,
            c.reason,
            c.message,
            cluster.metadata.generation,
        ),
        None => conditions.retain(|c| c.type_ != TIERED_STORAGE_CONDITION),
    }
}

async fn publish_changes(
    ctx: &Context,
    cluster: &KafkaCluster,
    new: &tributary_crds::KafkaClusterStatus,
    spec_error: Option<&str>,
) {
    let old = cluster.status.clone().unwrap_or_default();
    let reference = cluster.object_ref(&());
    if let Some(err) = spec_error {
        let was_invalid = old
            .conditions
            .iter()
            .any(|c| c.type_ == READY && c.reason == "InvalidSpec");
        if !was_invalid {
            ctx.event(&reference, "InvalidSpec", err.to_owned(), true)
                .await;
        }
        return;
    }
    if old.config_hash.is_some() && old.config_hash != new.config_hash {
        let note = format!(
            "broker config changed (hash {}); rolling brokers",
            new.config_hash.clone().unwrap_or_default()
        );
        ctx.event(&reference, "ConfigChanged", note, false).await;
    }
    let was_ready = is_true(&old.conditions, READY);
    let ready = is_true(&new.conditions, READY);
    if ready && !was_ready {
        ctx.event(
            &reference,
            "Ready",
            format!("{} brokers ready", new.ready_brokers),
            false,
        )
        .await;
    } else if was_ready && !ready {
        ctx.event(
            &reference,
            "NotReady",
            format!("{} brokers ready", new.ready_brokers),
            true,
        )
        .await;
    }
}

/// Counts the failure, publishes a Warning Event (at most one per backoff period), and backs
/// off; conflicts retry quickly because they only mean someone else wrote first.
pub fn error_policy(cluster: Arc<KafkaCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(CONTROLLER, error);
    tracing::warn!(cluster = %cluster.name_any(), %error, "reconcile failed");
    ctx.report_failure(cluster.object_ref(&()), error);
    match error {
        Error::Conflict { .. } => Action::requeue(Duration::from_millis(500)),
        _ => Action::requeue(ctx.settings.error_backoff),
    }
}
