//! Pure reconcile decisions: invalid specs give a condition (and a phase), never an error.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use tributary_crds::conditions::{is_true, DEGRADED, READY};
use tributary_crds::{KafkaCluster, KafkaTopic, TopicPhase};
use tributary_operator::builders::Names;
use tributary_operator::cluster::status::{compute, Observed};
use tributary_operator::topic::plan::{plan, TopicInput};

fn cluster(spec: serde_json::Value) -> KafkaCluster {
    let mut c: KafkaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": { "name": "demo", "namespace": "ns", "uid": "0b5e2c1e-6f1a-4c3e-9d2b-7a8f9e0d1c2b", "generation": 3 },
        "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("fixture: {e}"));
    c.status = None;
    c
}

fn topic(spec: serde_json::Value) -> KafkaTopic {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": { "name": "t", "namespace": "ns", "uid": "1b5e2c1e-6f1a-4c3e-9d2b-7a8f9e0d1c2b", "generation": 1 },
        "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("fixture: {e}"))
}

#[test]
fn invalid_cluster_spec_becomes_a_degraded_condition() {
    let c = cluster(serde_json::json!({ "brokers": 3 }));
    let names = Names::of(&c).unwrap_or_else(|e| panic!("{e}"));
    let status = compute(Observed {
        cluster: &c,
        names: &names,
        config_hash: None,
        spec_error: Some("config num.io.threads=\"many\" is invalid"),
        stateful_set: None,
        pods: &[],
        leases: &[],
        topics: &[],
        node_racks: &BTreeMap::new(),
        controller: "op-0",
        now: Timestamp::now(),
    });
    assert!(is_true(&status.conditions, DEGRADED));
    assert!(!is_true(&status.conditions, READY));
    assert!(status
        .conditions
        .iter()
        .all(|c| c.reason == "InvalidSpec" && c.observed_generation == Some(3)));
    assert_eq!(status.observed_generation, Some(3));
}

#[test]
fn cluster_without_pods_is_progressing_not_ready() {
    let c = cluster(serde_json::json!({ "brokers": 3 }));
    let names = Names::of(&c).unwrap_or_else(|e| panic!("{e}"));
    let status = compute(Observed {
        cluster: &c,
        names: &names,
        config_hash: Some("abc"),
        spec_error: None,
        stateful_set: None,
        pods: &[],
        leases: &[],
        topics: &[],
        node_racks: &BTreeMap::new(),
        controller: "op-0",
        now: Timestamp::now(),
    });
    assert!(!is_true(&status.conditions, READY));
    assert!(is_true(&status.conditions, "Progressing"));
    assert_eq!(status.ready_brokers, 0);
    assert_eq!(
        status.label_selector.as_deref(),
        Some(names.selector_string().as_str())
    );
}

#[test]
fn topic_with_bad_config_value_gets_invalid_config_phase() {
    let c = cluster(serde_json::json!({ "brokers": 3 }));
    let t = topic(serde_json::json!({
        "clusterRef": "demo", "partitions": 3, "replicationFactor": 3,
        "config": { "cleanup.policy": "forever" },
    }));
    let p = plan(TopicInput {
        topic: &t,
        cluster: Some(&c),
        live_brokers: &BTreeSet::new(),
    });
    assert_eq!(p.status.phase, Some(TopicPhase::InvalidConfig));
    assert!(
        p.status.partitions.is_empty(),
        "nothing is placed for an invalid topic"
    );
    assert_eq!(p.events.first().map(|e| e.reason), Some("InvalidConfig"));
}

#[test]
fn min_isr_above_replication_factor_is_invalid() {
    let c = cluster(serde_json::json!({ "brokers": 3 }));
    let t = topic(serde_json::json!({
        "clusterRef": "demo", "partitions": 1, "replicationFactor": 2,
        "config": { "min.insync.replicas": "3" },
    }));
    let p = plan(TopicInput {
        topic: &t,
        cluster: Some(&c),
        live_brokers: &BTreeSet::new(),
    });
    assert_eq!(p.status.phase, Some(TopicPhase::InvalidConfig));
}

#[test]
fn topic_without_cluster_is_pending_and_repeating_the_plan_is_quiet() {
    let t = topic(
        serde_json::json!({ "clusterRef": "missing", "partitions": 1, "replicationFactor": 1 }),
    );
    let first = plan(TopicInput {
        topic: &t,
        cluster: None,
        live_brokers: &BTreeSet::new(),
    });
    assert_eq!(first.status.phase, Some(TopicPhase::Pending));
    assert_eq!(first.events.len(), 1);
    let mut again = t.clone();
    again.status = Some(first.status.clone());
    let second = plan(TopicInput {
        topic: &again,
        cluster: None,
        live_brokers: &BTreeSet::new(),
    });
    assert_eq!(
        second.status, first.status,
        "a second reconcile changes nothing"
    );
    assert!(second.events.is_empty(), "and publishes no event");
}

#[test]
fn new_partitions_get_preferred_leaders_when_brokers_are_live() {
    let c = cluster(serde_json::json!({ "brokers": 3 }));
    let t =
        topic(serde_json::json!({ "clusterRef": "demo", "partitions": 3, "replicationFactor": 2 }));
    let p = plan(TopicInput {
        topic: &t,
        cluster: Some(&c),
        live_brokers: &BTreeSet::from([0, 1, 2]),
    });
    assert_eq!(p.status.phase, Some(TopicPhase::Provisioned));
    assert!(p
        .status
        .partitions
        .iter()
        .all(|x| x.leader == x.replicas[0] && x.leader_epoch == 1));
    assert_eq!(p.status.leaderless_partitions, 0);
    assert_eq!(p.status.topic_id.as_ref().map(String::len), Some(22));
}

#[test]
fn bootstrap_servers_are_the_service_name_unless_the_listener_advertises_pod_ips() {
    let pod = |name: &str, ip: &str| -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": name, "namespace": "ns"},
            "status": {"podIP": ip}}),
        )
        .unwrap_or_else(|e| panic!("fixture: {e}"))
    };
    let pods = [
        pod("demo-broker-1", "10.0.0.2"),
        pod("demo-broker-0", "10.0.0.1"),
    ];
    let status_of = |c: &KafkaCluster, pods: &[k8s_openapi::api::core::v1::Pod]| {
        let names = Names::of(c).unwrap_or_else(|e| panic!("{e}"));
        compute(Observed {
            cluster: c,
            names: &names,
            config_hash: Some("h"),
            spec_error: None,
            stateful_set: None,
            pods,
            leases: &[],
            topics: &[],
            node_racks: &BTreeMap::new(),
            controller: "op-0",
            now: Timestamp::now(),
        })
    };
    let dns = cluster(serde_json::json!({ "brokers": 2 }));
    assert_eq!(
        status_of(&dns, &pods).bootstrap_servers.as_deref(),
        Some("demo-bootstrap.ns.svc:9092")
    );
    let pod_ips = cluster(serde_json::json!({ "brokers": 2,
        "listeners": [{"name": "PLAIN", "port": 9093, "advertise": "PodIP"}] }));
    assert_eq!(
        status_of(&pod_ips, &pods).bootstrap_servers.as_deref(),
        Some("10.0.0.1:9093,10.0.0.2:9093"),
        "by broker id"
    );
    assert_eq!(
        status_of(&pod_ips, &[]).bootstrap_servers.as_deref(),
        Some("demo-bootstrap.ns.svc:9093"),
        "the Service until a broker has an IP"
    );
}
