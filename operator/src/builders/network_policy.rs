//! NetworkPolicies of a cluster, in the shape Strimzi gives a Kafka cluster's: one selecting the
//! brokers and, with `spec.schemaRegistry`, one selecting the registry pods, each with one
//! ingress rule per port and nothing else let in.
//!
//! - each client listener: the peers of its `networkPolicyPeers` (unset: from anywhere), plus
//!   the brokers and the operator when the brokers replicate over it (clusters without the
//!   `REPLICATION` listener) and the registry pods when the registry reads and writes its topic
//!   through it;
//! - `REPLICATION` (9091): the cluster's brokers and the operator only. Brokers coordinate
//!   through Leases in the API server, so there is no controller port to open;
//! - the admin port (`/metrics`; kubelet probes are not subject to policies): the monitoring
//!   namespace, while the brokers publish metrics;
//! - the registry's port: the peers of `schemaRegistry.networkPolicyPeers` (unset: from
//!   anywhere), plus the brokers (schema validation), the other registry pods (forwarded
//!   writes), the operator (KafkaSchemas) and the monitoring namespace.
//!
//! A rule whose peer list comes out empty (`networkPolicyPeers: []` and nobody added) is left
//! out rather than rendered with an empty `from`, which Kubernetes reads as "from anywhere".

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tributary_crds::cluster::REPLICATION_PORT;
use tributary_crds::KafkaCluster;

use super::registry::{self, selector_labels as registry_selector_labels};
use super::registry_security::kafka_access;
use super::security::{listener_settings, uses_replication_listener};
use super::{Names, ADMIN_PORT};

/// The label Kubernetes puts on every namespace with its name; namespaces are selected by it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// `app.kubernetes.io/component` of the operator's pods (the chart sets it); the operator is
/// let in as the pods with it in the operator's namespace.
pub const OPERATOR_COMPONENT: &str = "operator";

/// The brokers' NetworkPolicy (named as the StatefulSet). `operator_namespace` is where the
/// operator runs (its pod's namespace), so its pods are let in to the replication port.
pub fn brokers(cluster: &KafkaCluster, names: &Names, operator_namespace: &str) -> NetworkPolicy {
    let spec = &cluster.spec;
    let (_, _, inter_broker) = listener_settings(spec);
    let registry_listener = spec
        .schema_registry
        .as_ref()
        .and_then(|_| kafka_access(cluster, names).ok())
        .map(|a| a.listener);
    let internal = || vec![broker_peer(names), operator_peer(operator_namespace)];
    let mut rules: Vec<NetworkPolicyIngressRule> = spec
        .listeners
        .iter()
        .filter_map(|l| {
            let mut added = Vec::new();
            if inter_broker.as_deref() == Some(l.name.as_str()) {
                added.extend(internal());
            }
            if registry_listener.as_deref() == Some(l.name.as_str()) {
                added.push(registry_peer(names));
            }
            rule(l.port, l.network_policy_peers.as_deref(), added)
        })
        .collect();
    if uses_replication_listener(spec) {
        rules.extend(rule(REPLICATION_PORT, Some(&[]), internal()));
    }
    if spec.monitoring.metrics || spec.monitoring.service_monitor {
        rules.extend(rule(
            ADMIN_PORT,
            Some(&[]),
            vec![namespace_peer(&spec.monitoring.namespace)],
        ));
    }
    policy(names.meta(names.broker()), names.selector_labels(), rules)
}

/// The registry's NetworkPolicy (named as its Deployment), when the cluster has a registry.
pub fn registry(
    cluster: &KafkaCluster,
    names: &Names,
    operator_namespace: &str,
) -> Option<NetworkPolicy> {
    let spec = cluster.spec.schema_registry.as_ref()?;
    let added = vec![
        broker_peer(names),
        registry_peer(names),
        operator_peer(operator_namespace),
        namespace_peer(&cluster.spec.monitoring.namespace),
    ];
    let rules = rule(spec.port, spec.network_policy_peers.as_deref(), added)
        .into_iter()
        .collect();
    Some(policy(
        registry::meta(names),
        registry_selector_labels(names),
        rules,
    ))
}

/// The ingress rule of `port`: from anywhere when `peers` is unset, else from `peers` and
/// `added`; `None` when that leaves nobody.
fn rule(
    port: i32,
    peers: Option<&[NetworkPolicyPeer]>,
    added: Vec<NetworkPolicyPeer>,
) -> Option<NetworkPolicyIngressRule> {
    let from = match peers {
        None => None,
        Some(peers) => {
            let mut from = peers.to_vec();
            for peer in added {
                if !from.contains(&peer) {
                    from.push(peer);
                }
            }
            if from.is_empty() {
                return None;
            }
            Some(from)
        }
    };
    Some(NetworkPolicyIngressRule {
        from,
        ports: Some(vec![NetworkPolicyPort {
            port: Some(IntOrString::Int(port)),
            protocol: Some("TCP".to_owned()),
            ..NetworkPolicyPort::default()
        }]),
    })
}

fn policy(
    metadata: ObjectMeta,
    pods: BTreeMap<String, String>,
    ingress: Vec<NetworkPolicyIngressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(match_labels(pods)),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(ingress),
            ..NetworkPolicySpec::default()
        }),
    }
}

fn match_labels(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    }
}

fn pod_peer(labels: BTreeMap<String, String>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(match_labels(labels)),
        ..NetworkPolicyPeer::default()
    }
}

/// The cluster's broker pods (in the policy's namespace).
fn broker_peer(names: &Names) -> NetworkPolicyPeer {
    pod_peer(names.selector_labels())
}

/// The cluster's registry pods.
fn registry_peer(names: &Names) -> NetworkPolicyPeer {
    pod_peer(registry_selector_labels(names))
}

/// Every pod of the namespace `namespace`.
fn namespace_peer(namespace: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(match_labels(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_owned(),
            namespace.to_owned(),
        )]))),
        ..NetworkPolicyPeer::default()
    }
}

/// The operator's pods in `namespace`.
fn operator_peer(namespace: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(match_labels(BTreeMap::from([(
            "app.kubernetes.io/component".to_owned(),
            OPERATOR_COMPONENT.to_owned(),
        )]))),
        ..namespace_peer(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    use crate::builders::test_cluster as cluster;

    fn names(c: &KafkaCluster) -> Names {
        Names::of(c).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The brokers' ingress rules as JSON, with the operator in `tributary-system`.
    fn broker_ingress(c: &KafkaCluster) -> Value {
        let p = brokers(c, &names(c), "tributary-system");
        json!(p.spec.and_then(|s| s.ingress))
    }

    fn port(port: i32) -> Value {
        json!([{"port": port, "protocol": "TCP"}])
    }

    fn brokers_peer() -> Value {
        json!({"podSelector": {"matchLabels": {
            "app.kubernetes.io/component": "broker",
            "app.kubernetes.io/instance": "demo",
            "app.kubernetes.io/name": "tributary",
        }}})
    }

    fn registry_pods() -> Value {
        json!({"podSelector": {"matchLabels": {
            "app.kubernetes.io/component": "schema-registry",
            "app.kubernetes.io/instance": "demo",
            "app.kubernetes.io/name": "tributary",
        }}})
    }

    fn operator() -> Value {
        json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tributary-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": "operator"}},
        })
    }

    fn monitoring(ns: &str) -> Value {
        json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}})
    }

    fn apps_team() -> Value {
        json!({"namespaceSelector": {"matchLabels": {"team": "apps"}}})
    }

    #[test]
    fn a_default_cluster_opens_its_listener_to_all_and_metrics_to_the_monitoring_namespace() {
        let c = cluster(json!({}));
        let p = brokers(&c, &names(&c), "tributary-system");
        assert_eq!(p.metadata.name.as_deref(), Some("demo-broker"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("kafka"));
        let spec = json!(p.spec);
        assert_eq!(
            spec["podSelector"],
            json!({"matchLabels": names(&c).selector_labels()})
        );
        assert_eq!(spec["policyTypes"], json!(["Ingress"]));
        assert_eq!(
            broker_ingress(&c),
            json!([
                {"ports": port(9092)},
                {"from": [monitoring("monitoring")], "ports": port(9644)},
            ])
        );
    }

    #[test]
    fn peers_on_the_replicating_listener_keep_the_brokers_and_the_operator_in() {
        let c = cluster(json!({"listeners": [
            {"name": "PLAIN", "port": 9092, "networkPolicyPeers": [apps_team()]},
            {"name": "OTHER", "port": 9094, "networkPolicyPeers": [apps_team()]},
        ]}));
        assert_eq!(
            broker_ingress(&c),
            json!([
                {"from": [apps_team(), brokers_peer(), operator()], "ports": port(9092)},
                {"from": [apps_team()], "ports": port(9094)},
                {"from": [monitoring("monitoring")], "ports": port(9644)},
            ])
        );
    }

    #[test]
    fn tls_and_scram_listeners_replicate_over_replication_open_to_brokers_and_operator_only() {
        let c = cluster(json!({"listeners": [
            {"name": "TLS", "port": 9093, "tls": {}, "networkPolicyPeers": [apps_team()]},
            {"name": "SCRAM", "port": 9094, "tls": {},
             "authentication": {"type": "scram-sha-512"}},
        ]}));
        assert_eq!(
            broker_ingress(&c),
            json!([
                {"from": [apps_team()], "ports": port(9093)},
                {"ports": port(9094)},
                {"from": [brokers_peer(), operator()], "ports": port(9091)},
                {"from": [monitoring("monitoring")], "ports": port(9644)},
            ])
        );
    }

    #[test]
    fn an_empty_peer_list_closes_the_port_instead_of_opening_it() {
        let c = cluster(json!({"listeners": [
            {"name": "TLS", "port": 9093, "tls": {}},
            {"name": "CLOSED", "port": 9095, "tls": {}, "networkPolicyPeers": []},
        ]}));
        let ingress = broker_ingress(&c);
        let ports: Vec<&Value> = ingress
            .as_array()
            .map(|rules| rules.iter().map(|r| &r["ports"][0]["port"]).collect())
            .unwrap_or_default();
        assert_eq!(ports, [&json!(9093), &json!(9091), &json!(9644)]);
    }

    #[test]
    fn monitoring_settings_choose_whether_and_to_whom_the_admin_port_opens() {
        let to = |monitoring: Value| {
            let ingress = broker_ingress(&cluster(json!({"monitoring": monitoring})));
            ingress
                .as_array()
                .and_then(|rules| rules.iter().find(|r| r["ports"] == port(9644)).cloned())
        };
        assert_eq!(
            to(json!({"namespace": "prometheus"})),
            Some(json!({"from": [monitoring("prometheus")], "ports": port(9644)}))
        );
        assert_eq!(to(json!({"metrics": false})), None);
        assert!(to(json!({"metrics": false, "serviceMonitor": true})).is_some());
    }

    #[test]
    fn a_registry_gets_its_own_policy_and_its_listener_lets_the_registry_in() {
        let c = cluster(json!({
            "listeners": [
                {"name": "PLAIN", "port": 9092, "networkPolicyPeers": [apps_team()]},
                {"name": "SCRAM", "port": 9094, "tls": {}, "networkPolicyPeers": [apps_team()],
                 "authentication": {"type": "scram-sha-512"}},
            ],
            "schemaRegistry": {"networkPolicyPeers": [apps_team()]},
        }));
        assert_eq!(
            broker_ingress(&c),
            json!([
                {"from": [apps_team(), registry_pods()], "ports": port(9092)},
                {"from": [apps_team()], "ports": port(9094)},
                {"from": [brokers_peer(), operator()], "ports": port(9091)},
                {"from": [monitoring("monitoring")], "ports": port(9644)},
            ])
        );
        let p = registry(&c, &names(&c), "tributary-system")
            .unwrap_or_else(|| panic!("no registry policy"));
        assert_eq!(p.metadata.name.as_deref(), Some("demo-schema-registry"));
        let spec = json!(p.spec);
        assert_eq!(
            spec["podSelector"],
            json!({"matchLabels": registry_selector_labels(&names(&c))})
        );
        assert_eq!(
            spec["ingress"],
            json!([{
                "from": [apps_team(), brokers_peer(), registry_pods(), operator(), monitoring("monitoring")],
                "ports": port(8081),
            }])
        );
    }

    #[test]
    fn a_registry_without_peers_is_open_and_a_cluster_without_one_has_no_registry_policy() {
        let open = cluster(json!({"schemaRegistry": {"port": 8085}}));
        let p = registry(&open, &names(&open), "tributary-system");
        assert_eq!(
            json!(p.and_then(|p| p.spec).and_then(|s| s.ingress)),
            json!([{"ports": port(8085)}])
        );
        let none = cluster(json!({}));
        assert_eq!(registry(&none, &names(&none), "tributary-system"), None);
    }

    #[test]
    fn the_policies_decode_as_kubernetes_network_policies_owned_by_the_cluster() {
        let c = cluster(json!({
            "listeners": [{"name": "TLS", "port": 9093, "tls": {},
                           "networkPolicyPeers": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
            "schemaRegistry": {},
        }));
        let n = names(&c);
        let rendered = [
            brokers(&c, &n, "tributary-system"),
            registry(&c, &n, "tributary-system").unwrap_or_else(|| panic!("no registry policy")),
        ];
        for policy in rendered {
            let mut value = json!(policy);
            value["apiVersion"] = json!("networking.k8s.io/v1");
            value["kind"] = json!("NetworkPolicy");
            let decoded: NetworkPolicy = serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("not a NetworkPolicy: {e}"));
            assert_eq!(decoded, policy);
            assert_eq!(
                decoded.metadata.owner_references,
                Some(vec![n.owner.clone()])
            );
        }
    }
}
