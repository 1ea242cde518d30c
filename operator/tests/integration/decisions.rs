//! Pure reconcile decisions: invalid specs give a condition (and a phase), never an error.

use std::collections::{BTreeMap, BTreeSet};

use tributary_crds::conditions::{is_true, DEGRADED, READY};
use tributary_crds::{IsrEntry, KafkaCluster, KafkaPartitionStatus, KafkaTopic, TopicPhase};
use tributary_operator::builders::Names;
use tributary_operator::cluster::status::{compute, Observed, ProducerIds};
use tributary_operator::topic::partitions::PartitionChanges;
use tributary_operator::topic::plan::{plan, TopicInput, TopicPlan};

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

/// Plans `t` with `partitions` as read, failing the test on a build error.
fn planned(
    t: &KafkaTopic,
    c: Option<&KafkaCluster>,
    partitions: &[tributary_crds::KafkaPartition],
) -> TopicPlan {
    plan(TopicInput {
        topic: t,
        cluster: c,
        partitions,
        others: &[],
    })
    .unwrap_or_else(|e| panic!("plan: {e}"))
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
        live_brokers: &BTreeSet::new(),
        topics: &[],
        node_racks: &BTreeMap::new(),
        controller: "op-0",
        producer_ids: &ProducerIds::Unknown,
        external_services: &[],
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
        live_brokers: &BTreeSet::new(),
        topics: &[],
        node_racks: &BTreeMap::new(),
        controller: "op-0",
        producer_ids: &ProducerIds::Unknown,
        external_services: &[],
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
    let p = planned(&t, Some(&c), &[]);
    assert_eq!(p.status.phase, Some(TopicPhase::InvalidConfig));
    assert_eq!(
        p.partitions,
        PartitionChanges::default(),
        "nothing is placed for an invalid topic"
    );
    assert_eq!(p.status.placed_partitions, 0);
    assert_eq!(p.events.first().map(|e| e.reason), Some("InvalidConfig"));
}

#[test]
fn min_isr_above_replication_factor_is_invalid() {
    let c = cluster(serde_json::json!({ "brokers": 3 }));
    let t = topic(serde_json::json!({
        "clusterRef": "demo", "partitions": 1, "replicationFactor": 2,
        "config": { "min.insync.replicas": "3" },
    }));
    let p = planned(&t, Some(&c), &[]);
    assert_eq!(p.status.phase, Some(TopicPhase::InvalidConfig));
}

#[test]
fn topic_without_cluster_is_pending_and_repeating_the_plan_is_quiet() {
    let t = topic(
        serde_json::json!({ "clusterRef": "missing", "partitions": 1, "replicationFactor": 1 }),
    );
    let first = planned(&t, None, &[]);
    assert_eq!(first.status.phase, Some(TopicPhase::Pending));
    assert_eq!(first.events.len(), 1);
    let mut again = t.clone();
    again.status = Some(first.status.clone());
    let second = planned(&again, None, &[]);
    assert_eq!(
        second.status, first.status,
        "a second reconcile changes nothing"
    );
    assert!(second.events.is_empty(), "and publishes no event");
}

#[test]
fn a_topic_becomes_one_partition_object_each_and_is_ready_once_the_controller_leads_them() {
    let c = cluster(serde_json::json!({ "brokers": 3 }));
    let t =
        topic(serde_json::json!({ "clusterRef": "demo", "partitions": 3, "replicationFactor": 2 }));
    let first = planned(&t, Some(&c), &[]);
    assert_eq!(first.status.phase, Some(TopicPhase::Provisioned));
    assert_eq!(first.partitions.create.len(), 3);
    assert_eq!(
        (
            first.status.placed_partitions,
            first.status.leaderless_partitions
        ),
        (3, 3),
        "no leader until the controller gives one"
    );
    assert!(!is_true(&first.status.conditions, READY));
    assert_eq!(first.status.topic_id.as_ref().map(String::len), Some(22));
    assert_eq!(
        first.events.first().map(|e| e.reason),
        Some("PartitionsAssigned")
    );

    // The controller leads them; one has lost a follower.
    let mut led = first.partitions.create.clone();
    for p in &mut led {
        let isr = if p.spec.partition == 1 {
            &p.spec.replicas[..1]
        } else {
            &p.spec.replicas[..]
        };
        p.status = Some(KafkaPartitionStatus {
            leader: p.spec.replicas[0],
            isr: isr
                .iter()
                .map(|&broker_id| IsrEntry {
                    broker_id,
                    broker_epoch: 1,
                })
                .collect(),
            ..KafkaPartitionStatus::default()
        });
    }
    let mut again = t.clone();
    again.status = Some(first.status.clone());
    let second = planned(&again, Some(&c), &led);
    assert_eq!(
        second.partitions,
        PartitionChanges::default(),
        "nothing moves"
    );
    assert_eq!(
        (
            second.status.placed_partitions,
            second.status.leaderless_partitions,
            second.status.under_replicated_partitions
        ),
        (3, 0, 1)
    );
    assert!(is_true(&second.status.conditions, READY));
    assert!(is_true(&second.status.conditions, DEGRADED));
    assert!(second.events.is_empty());
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
            live_brokers: &BTreeSet::new(),
            topics: &[],
            node_racks: &BTreeMap::new(),
            controller: "op-0",
            producer_ids: &ProducerIds::Unknown,
            external_services: &[],
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

#[test]
fn listener_statuses_give_each_listeners_bootstrap_addresses_as_strimzi_reports_them() {
    use k8s_openapi::api::core::v1::{Pod, Service};
    let c = cluster(serde_json::json!({
        "brokers": 2,
        "listeners": [
            { "name": "PLAIN", "port": 9092 },
            { "name": "NODES", "port": 9094, "type": "nodeport" },
            { "name": "LB", "port": 9095, "type": "loadbalancer" },
        ],
    }));
    let names = Names::of(&c).unwrap_or_else(|e| panic!("{e}"));
    let pod = |id: i32, host: &str| -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": names.broker_pod(id), "namespace": "ns" },
            "status": { "hostIP": host, "podIP": format!("10.0.0.{id}") },
        }))
        .unwrap_or_else(|e| panic!("pod: {e}"))
    };
    let service = |json: serde_json::Value| -> Service {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("service: {e}"))
    };
    let external = [
        service(serde_json::json!({
            "metadata": { "name": tributary_crds::listener::external_bootstrap_name(&names.cluster, "NODES") },
            "spec": { "type": "NodePort", "ports": [{ "port": 9094, "nodePort": 31_000 }] },
        })),
        service(serde_json::json!({
            "metadata": { "name": tributary_crds::listener::external_bootstrap_name(&names.cluster, "LB") },
            "spec": { "type": "LoadBalancer", "ports": [{ "port": 9095 }] },
            "status": { "loadBalancer": { "ingress": [{ "ip": "192.0.2.7" }] } },
        })),
    ];
    let pods = [pod(0, "198.51.100.2"), pod(1, "198.51.100.1")];
    let status = compute(Observed {
        cluster: &c,
        names: &names,
        config_hash: Some("abc"),
        spec_error: None,
        stateful_set: None,
        pods: &pods,
        live_brokers: &BTreeSet::new(),
        topics: &[],
        node_racks: &BTreeMap::new(),
        controller: "op-0",
        producer_ids: &ProducerIds::Unknown,
        external_services: &external,
    });
    let listed: Vec<(String, String, Option<String>)> = status
        .listeners
        .iter()
        .map(|l| (l.name.clone(), l.type_.clone(), l.bootstrap_servers.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (
                "PLAIN".to_owned(),
                "internal".to_owned(),
                Some(format!("{}.ns.svc:9092", names.bootstrap()))
            ),
            (
                "NODES".to_owned(),
                "nodeport".to_owned(),
                Some("198.51.100.1:31000,198.51.100.2:31000".to_owned())
            ),
            (
                "LB".to_owned(),
                "loadbalancer".to_owned(),
                Some("192.0.2.7:9095".to_owned())
            ),
        ]
    );
    // Before Kubernetes has given the load balancer an address, there is none to report.
    let status = compute(Observed {
        cluster: &c,
        names: &names,
        config_hash: Some("abc"),
        spec_error: None,
        stateful_set: None,
        pods: &pods,
        live_brokers: &BTreeSet::new(),
        topics: &[],
        node_racks: &BTreeMap::new(),
        controller: "op-0",
        producer_ids: &ProducerIds::Unknown,
        external_services: &external[..1],
    });
    assert!(
        status.listeners[2].addresses.is_empty() && status.listeners[2].bootstrap_servers.is_none()
    );
}
