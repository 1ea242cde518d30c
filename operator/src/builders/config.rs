//! The broker config file and its hash.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::ConfigMap;
use sha2::{Digest, Sha256};
use tributary_crds::cluster::ListenerType;
use tributary_crds::KafkaCluster;

use super::{broker_registry, security, tiered, Names, ADMIN_PORT, CONFIG_FILE, DATA_DIR};

/// Settings of `KafkaCluster.spec.config` only the controller (this operator) reads: they stay
/// out of `server.properties`, so changing one does not roll every broker.
const CONTROLLER_ONLY_KEYS: [&str; 3] = [
    crate::controller::balance::AUTO_LEADER_REBALANCE,
    crate::controller::balance::IMBALANCE_PERCENTAGE,
    crate::controller::balance::CHECK_INTERVAL,
];

/// Internal topics' replication factors, which Kafka defaults to 3: a cluster of fewer brokers
/// could never create them (no group or transaction coordinator), so unless the user chose,
/// they get as many replicas as there are brokers, up to 3.
const INTERNAL_REPLICATION_KEYS: [&str; 2] = [
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
];

/// Renders `server.properties`: the user's settings (but the `CONTROLLER_ONLY_KEYS`) plus the
/// ones the operator owns. Keys are sorted so the same spec always renders the same bytes (and
/// hash).
///
/// Per-broker values (id, advertised host) cannot live in a shared file; the pod gets them from
/// the environment (`BROKER_ID` from the pod-index label, `POD_NAME`) and joins
/// `${POD_NAME}.<advertised.host.suffix>`.
pub fn server_properties(cluster: &KafkaCluster, names: &Names) -> String {
    let spec = &cluster.spec;
    let mut props: BTreeMap<String, String> = spec.config.clone();
    props.retain(|k, _| !CONTROLLER_ONLY_KEYS.contains(&k.as_str()));
    for key in INTERNAL_REPLICATION_KEYS {
        props
            .entry(key.to_owned())
            .or_insert_with(|| spec.brokers.clamp(1, 3).to_string());
    }
    let set = |p: &mut BTreeMap<String, String>, k: &str, v: String| {
        p.insert(k.to_owned(), v);
    };
    set(&mut props, "cluster.name", names.cluster.clone());
    set(&mut props, "cluster.namespace", names.namespace.clone());
    let (listeners, protocol_map, inter_broker) = security::listener_settings(spec);
    set(&mut props, "listeners", listeners);
    set(&mut props, "listener.security.protocol.map", protocol_map);
    if let Some(name) = inter_broker {
        set(&mut props, "inter.broker.listener.name", name);
    }
    let external: Vec<&str> = spec
        .listeners
        .iter()
        .filter(|l| l.type_ != ListenerType::Internal)
        .map(|l| l.name.as_str())
        .collect();
    if !external.is_empty() {
        set(&mut props, "external.listeners", external.join(","));
    }
    props.extend(security::security_properties(cluster, names));
    props.extend(tiered::properties(spec));
    for (key, value) in broker_registry::properties(cluster, names) {
        set(&mut props, key, value);
    }
    set(
        &mut props,
        "advertised.host.suffix",
        format!("{}.{}.svc", names.headless(), names.namespace),
    );
    set(&mut props, "log.dirs", format!("{DATA_DIR}/data"));
    set(&mut props, "admin.port", ADMIN_PORT.to_string());
    set(
        &mut props,
        "broker.lease.prefix",
        format!("{}-", names.broker()),
    );
    set(
        &mut props,
        "broker.lease.duration.ms",
        (i64::from(spec.coordination.lease_duration_seconds) * 1000).to_string(),
    );
    set(
        &mut props,
        "broker.lease.renew.interval.ms",
        spec.coordination.renew_interval_ms().to_string(),
    );
    let mut out = String::from(
        "# Rendered by tributary-operator from the KafkaCluster; edit the KafkaCluster instead.\n\
         # Each broker binds these ports on its pod IP (--listeners, --http-listener).\n",
    );
    for (k, v) in &props {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// Short hex SHA-256 of the rendered config.
pub fn config_hash(properties: &str) -> String {
    let digest = Sha256::digest(properties.as_bytes());
    digest.iter().take(8).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(super) fn config_map(names: &Names, properties: String) -> ConfigMap {
    ConfigMap {
        metadata: names.meta(names.config()),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_owned(), properties)])),
        ..ConfigMap::default()
    }
}
