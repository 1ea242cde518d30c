//! The KafkaCluster decision: what its status should say, from what the operator observed.
//! Pure, so "invalid spec gives a condition" and "ready when every broker is" are unit tests.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use tributary_crds::cluster::{AdvertisedAddress, BrokerStatus, ListenerAddress, ListenerStatus};
use tributary_crds::conditions::{set_condition, DEGRADED, PROGRESSING, READY};
use tributary_crds::ids::kafka_id_from_uid;
use tributary_crds::listener::{external_bootstrap_name, ListenerType};
use tributary_crds::{KafkaCluster, KafkaClusterStatus, KafkaTopic};

use crate::builders::{Names, CONFIG_HASH_ANNOTATION};

/// Everything the status is computed from.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// The cluster as read.
    pub cluster: &'a KafkaCluster,
    /// Its names.
    pub names: &'a Names,
    /// Hash of the config the operator rendered (None when the spec is invalid).
    pub config_hash: Option<&'a str>,
    /// Why the spec cannot be applied, if it cannot.
    pub spec_error: Option<&'a str>,
    /// The broker StatefulSet, if it exists.
    pub stateful_set: Option<&'a StatefulSet>,
    /// Broker pods.
    pub pods: &'a [Pod],
    /// Brokers the controller role sees renewing their Leases.
    pub live_brokers: &'a BTreeSet<i32>,
    /// KafkaTopics of this cluster.
    pub topics: &'a [KafkaTopic],
    /// Node name to rack, for rack-aware clusters.
    pub node_racks: &'a BTreeMap<String, String>,
    /// Identity of the operator replica acting as controller.
    pub controller: &'a str,
    /// The producer-id ConfigMap.
    pub producer_ids: &'a ProducerIds,
    /// The external listeners' Services as last applied (node ports and load-balancer
    /// ingress as Kubernetes filled them in).
    pub external_services: &'a [Service],
}

/// What became of the cluster's producer-id ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProducerIds {
    /// Not looked at (the spec is invalid, nothing was applied).
    Unknown,
    /// It exists (created now or before).
    Present(String),
    /// It was created once and has since been deleted: not recreated, since a fresh counter
    /// would hand out ids producers already use.
    Missing(String),
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Where clients bootstrap: the bootstrap Service's DNS name, or, when the first listener
/// advertises pod IPs (clients that do not resolve cluster DNS), the brokers' pod IPs (the
/// Service name until a broker has one).
fn bootstrap_servers(
    cluster: &KafkaCluster,
    names: &Names,
    pods: &BTreeMap<String, &Pod>,
    port: i32,
) -> String {
    let dns = names.bootstrap_servers(port);
    let advertise = cluster.spec.listeners.first().map(|l| l.advertise);
    if advertise != Some(AdvertisedAddress::PodIp) {
        return dns;
    }
    let ips: Vec<String> = (0..cluster.spec.brokers)
        .filter_map(|id| pods.get(&names.broker_pod(id)))
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|ip| format!("{ip}:{port}"))
        .collect();
    if ips.is_empty() {
        dns
    } else {
        ips.join(",")
    }
}

/// Where each listener's clients bootstrap (Strimzi's `status.listeners`).
fn listener_statuses(
    cluster: &KafkaCluster,
    names: &Names,
    pods: &BTreeMap<String, &Pod>,
    external: &[Service],
) -> Vec<ListenerStatus> {
    let bootstrap_service = |listener: &str| {
        let name = external_bootstrap_name(&names.cluster, listener);
        external
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name.as_str()))
    };
    cluster
        .spec
        .listeners
        .iter()
        .map(|l| {
            let (type_, addresses) = match l.type_ {
                ListenerType::Internal => {
                    let servers = if l.advertise == AdvertisedAddress::PodIp {
                        pod_ips(cluster, names, pods, l.port)
                    } else {
                        Vec::new()
                    };
                    let addresses = if servers.is_empty() {
                        vec![ListenerAddress {
                            host: format!("{}.{}.svc", names.bootstrap(), names.namespace),
                            port: l.port,
                        }]
                    } else {
                        servers
                    };
                    ("internal", addresses)
                }
                ListenerType::NodePort => {
                    let node_port = bootstrap_service(&l.name)
                        .and_then(|s| s.spec.as_ref()?.ports.as_ref()?.first()?.node_port);
                    let mut hosts: Vec<String> = (0..cluster.spec.brokers)
                        .filter_map(|id| pods.get(&names.broker_pod(id)))
                        .filter_map(|p| p.status.as_ref()?.host_ip.clone())
                        .collect();
                    hosts.sort();
                    hosts.dedup();
                    let addresses = node_port.map_or_else(Vec::new, |port| {
                        hosts
                            .into_iter()
                            .map(|host| ListenerAddress { host, port })
                            .collect()
                    });
                    ("nodeport", addresses)
                }
                ListenerType::LoadBalancer => {
                    let addresses = bootstrap_service(&l.name)
                        .and_then(|s| s.status.as_ref()?.load_balancer.as_ref()?.ingress.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|i| i.ip.or(i.hostname))
                        .map(|host| ListenerAddress { host, port: l.port })
                        .collect();
                    ("loadbalancer", addresses)
                }
            };
            let bootstrap_servers = (!addresses.is_empty()).then(|| {
                addresses
                    .iter()
                    .map(|a| format!("{}:{}", a.host, a.port))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            ListenerStatus {
                name: l.name.clone(),
                type_: type_.to_owned(),
                addresses,
                bootstrap_servers,
            }
        })
        .collect()
}

/// The brokers' pod IPs with `port`, for listeners advertising pod IPs.
fn pod_ips(
    cluster: &KafkaCluster,
    names: &Names,
    pods: &BTreeMap<String, &Pod>,
    port: i32,
) -> Vec<ListenerAddress> {
    (0..cluster.spec.brokers)
        .filter_map(|id| pods.get(&names.broker_pod(id)))
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|host| ListenerAddress { host, port })
        .collect()
}

/// Computes the cluster's status.
pub fn compute(o: Observed<'_>) -> KafkaClusterStatus {
    let mut status = observed_status(&o);
    let generation = o.cluster.metadata.generation;
    // compute() only runs when not paused, so a resumed cluster drops the condition.
    crate::pause::set_paused(&mut status.conditions, false, generation);
    if let Some(err) = o.spec_error {
        set_invalid_spec(&mut status.conditions, err, generation);
        return status;
    }
    set_readiness(&mut status, o.cluster.spec.brokers, generation);
    set_degraded(&mut status, o.producer_ids, generation);
    status
}

/// The status fields that report what was observed; the conditions as they were.
fn observed_status(o: &Observed<'_>) -> KafkaClusterStatus {
    let cluster = o.cluster;
    let old = cluster.status.clone().unwrap_or_default();
    let pods: BTreeMap<String, &Pod> = o.pods.iter().map(|p| (p.name_any(), p)).collect();
    let current_hash = o.config_hash.map(str::to_owned).or(old.config_hash.clone());
    let brokers: Vec<BrokerStatus> = (0..cluster.spec.brokers)
        .map(|id| broker_status(o, &pods, id, current_hash.as_deref()))
        .collect();
    let ready_brokers = i32::try_from(
        brokers
            .iter()
            .filter(|b| b.ready && b.config_in_sync)
            .count(),
    )
    .unwrap_or(0);
    let listener_port = cluster.spec.listeners.first().map_or(9092, |l| l.port);
    KafkaClusterStatus {
        observed_generation: cluster.metadata.generation,
        conditions: old.conditions.clone(),
        replicas: o
            .stateful_set
            .and_then(|s| s.status.as_ref())
            .map_or(0, |s| s.replicas),
        ready_brokers,
        brokers,
        bootstrap_servers: Some(bootstrap_servers(cluster, o.names, &pods, listener_port)),
        listeners: listener_statuses(cluster, o.names, &pods, o.external_services),
        cluster_id: cluster
            .metadata
            .uid
            .as_deref()
            .and_then(|u| kafka_id_from_uid(u).ok()),
        controller: Some(o.controller.to_owned()),
        offline_partitions: topic_sum(o.topics, |s| s.leaderless_partitions),
        under_replicated_partitions: topic_sum(o.topics, |s| s.under_replicated_partitions),
        label_selector: Some(o.names.selector_string()),
        config_hash: current_hash,
        producer_ids: match o.producer_ids {
            ProducerIds::Unknown => old.producer_ids.clone(),
            ProducerIds::Present(name) | ProducerIds::Missing(name) => Some(name.clone()),
        },
        // The reconciler replaces it with what the roll step decided.
        roll: old.roll.clone(),
        // The reconciler replaces it with what applying the registry found.
        schema_registry: old.schema_registry.clone(),
        // The reconciler replaces it with the levels it finalized.
        features: old.features.clone(),
    }
}

/// Broker `id` as its pod shows it: ready, running the rendered config (`current_hash`),
/// registered with the controller role, and on which rack.
fn broker_status(
    o: &Observed<'_>,
    pods: &BTreeMap<String, &Pod>,
    id: i32,
    current_hash: Option<&str>,
) -> BrokerStatus {
    let pod_name = o.names.broker_pod(id);
    let pod = pods.get(&pod_name);
    let pod_hash = pod.and_then(|p| p.annotations().get(CONFIG_HASH_ANNOTATION).cloned());
    let node = pod
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.node_name.clone());
    BrokerStatus {
        id,
        pod: pod_name,
        ready: pod.is_some_and(|p| pod_ready(p)),
        image: pod
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.containers.iter().find(|c| c.name == "broker"))
            .and_then(|c| c.image.clone()),
        config_in_sync: pod_hash.is_some() && pod_hash.as_deref() == current_hash,
        registered: o.live_brokers.contains(&id),
        rack: node.and_then(|n| o.node_racks.get(&n).cloned()),
    }
}

/// The sum of one count over the topics' statuses.
fn topic_sum(topics: &[KafkaTopic], f: fn(&tributary_crds::KafkaTopicStatus) -> i32) -> i32 {
    topics.iter().filter_map(|t| t.status.as_ref()).map(f).sum()
}

/// An invalid spec: not ready, not progressing, degraded, all saying why.
fn set_invalid_spec(conds: &mut Vec<Condition>, err: &str, generation: Option<i64>) {
    set_condition(conds, READY, false, "InvalidSpec", err, generation);
    set_condition(
        conds,
        PROGRESSING,
        false,
        "InvalidSpec",
        "fix the spec to continue",
        generation,
    );
    set_condition(conds, DEGRADED, true, "InvalidSpec", err, generation);
}

/// Ready and stable once all `want` brokers are ready and up to date; otherwise progressing,
/// by a rolling update if some broker runs an older config.
fn set_readiness(status: &mut KafkaClusterStatus, want: i32, generation: Option<i64>) {
    let ready_brokers = status.ready_brokers;
    let conds = &mut status.conditions;
    if ready_brokers == want {
        set_condition(
            conds,
            READY,
            true,
            "AllBrokersReady",
            format!("{want}/{want} brokers ready"),
            generation,
        );
        set_condition(conds, PROGRESSING, false, "Stable", "", generation);
        return;
    }
    let stale = status.brokers.iter().filter(|b| !b.config_in_sync).count();
    let reason = if stale > 0 {
        "RollingUpdate"
    } else {
        "BrokersStarting"
    };
    let msg = format!("{ready_brokers}/{want} brokers ready and up to date");
    set_condition(
        conds,
        READY,
        false,
        "BrokersNotReady",
        msg.clone(),
        generation,
    );
    set_condition(conds, PROGRESSING, true, reason, msg, generation);
}

/// Degraded by the worst of: a deleted producer-id ConfigMap, offline partitions,
/// under-replicated partitions; otherwise healthy.
fn set_degraded(
    status: &mut KafkaClusterStatus,
    producer_ids: &ProducerIds,
    generation: Option<i64>,
) {
    let (degraded, reason, msg) = if let ProducerIds::Missing(name) = producer_ids {
        let msg = format!(
            "ConfigMap {name} (producer ids) was deleted; recreate it with {} above every producer id in use",
            tributary_crds::registration::NEXT_PRODUCER_ID_KEY
        );
        (true, "ProducerIdsMissing", msg)
    } else if status.offline_partitions > 0 {
        let msg = format!("{} partitions have no leader", status.offline_partitions);
        (true, "OfflinePartitions", msg)
    } else if status.under_replicated_partitions > 0 {
        let msg = format!(
            "{} partitions are under-replicated",
            status.under_replicated_partitions
        );
        (true, "UnderReplicatedPartitions", msg)
    } else {
        (false, "Healthy", String::new())
    };
    set_condition(
        &mut status.conditions,
        DEGRADED,
        degraded,
        reason,
        msg,
        generation,
    );
}

/// Condition type reporting the prometheus-operator objects of `spec.monitoring`.
pub const MONITORING: &str = "Monitoring";
/// Reason (and Event reason) when the monitoring.coreos.com CRDs are not installed.
pub const MONITORING_UNAVAILABLE: &str = "MonitoringUnavailable";

/// What became of the PodMonitor and PrometheusRule this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitoringOutcome {
    /// Neither is asked for (any earlier ones were deleted).
    Disabled,
    /// Every requested object was applied.
    Applied,
    /// The prometheus-operator CRDs are not served; the message says which resource.
    Unavailable(String),
}

/// Records `outcome` in the `Monitoring` condition (removed when monitoring is off).
pub fn set_monitoring(
    conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    outcome: &MonitoringOutcome,
    generation: Option<i64>,
) {
    match outcome {
        MonitoringOutcome::Disabled => conditions.retain(|c| c.type_ != MONITORING),
        MonitoringOutcome::Applied => set_condition(
            conditions,
            MONITORING,
            true,
            "Applied",
            "PodMonitor/PrometheusRule applied",
            generation,
        ),
        MonitoringOutcome::Unavailable(msg) => set_condition(
            conditions,
            MONITORING,
            false,
            MONITORING_UNAVAILABLE,
            msg.clone(),
            generation,
        ),
    }
}

/// Reason of the `Progressing` condition while a scale-down waits for replicas to move.
pub const DRAINING_BROKERS: &str = "DrainingBrokers";
/// Reason of `Progressing` = False when the brokers a scale-down removes cannot be drained.
pub const SCALE_DOWN_BLOCKED: &str = "ScaleDownBlocked";
/// Reason of the `Progressing` condition while partition reassignments move replicas.
pub const REBALANCING: &str = "Rebalancing";

/// Sets `Progressing` from the replica moves: a scale-down that cannot drain its brokers
/// (`stuck` partitions would fall below their replication factor) is refused with
/// [`SCALE_DOWN_BLOCKED`]; one that can is [`DRAINING_BROKERS`]; other moves in progress are
/// [`REBALANCING`]. Nothing moving leaves the condition as the rest of the status set it.
pub fn set_moves(
    conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    draining: &std::collections::BTreeSet<i32>,
    moves: &super::rebalance::RebalancePlan,
    generation: Option<i64>,
) {
    let (progressing, reason, msg) = if !draining.is_empty() && !moves.stuck.is_empty() {
        let shown: Vec<&str> = moves.stuck.iter().take(10).map(String::as_str).collect();
        (
            false,
            SCALE_DOWN_BLOCKED,
            format!(
                "brokers {draining:?} cannot be removed: partitions {} (of {}) would have fewer \
                 replicas than their topic's replication factor on the brokers left; raise \
                 spec.brokers again or lower those topics' replicationFactor",
                shown.join(", "),
                moves.stuck.len()
            ),
        )
    } else if !draining.is_empty() {
        (
            true,
            DRAINING_BROKERS,
            format!(
                "scale-down waits until replicas move off brokers {draining:?} ({} reassignments \
                 in progress)",
                moves.in_progress + moves.moves.len()
            ),
        )
    } else if moves.in_progress + moves.moves.len() > 0 {
        (
            true,
            REBALANCING,
            format!(
                "{} partition reassignments in progress, {} waiting for their turn",
                moves.in_progress + moves.moves.len(),
                moves.deferred
            ),
        )
    } else {
        return;
    };
    set_condition(
        conditions,
        PROGRESSING,
        progressing,
        reason,
        msg,
        generation,
    );
}
