use k8s_openapi::api::coordination::v1::Lease;
use serde_json::json;
use tributary_crds::{KafkaCluster, KafkaPartition};

use super::*;

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("fixture: {e}"))
}

fn cluster(brokers: i32, status: serde_json::Value) -> KafkaCluster {
    from(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "u1"},
        "spec": {"brokers": brokers},
        "status": status,
    }))
}

fn lease(renewed: &str, annotations: serde_json::Value) -> Lease {
    from(json!({
        "metadata": {"name": "demo-broker-0", "namespace": "ns", "uid": "l1", "annotations": annotations},
        "spec": {"holderIdentity": "demo-broker-0", "leaseDurationSeconds": 9,
                 "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": renewed},
    }))
}

fn partition(leader: i32, isr: &[i32]) -> KafkaPartition {
    let isr: Vec<_> = isr
        .iter()
        .map(|b| json!({"brokerId": b, "brokerEpoch": 1}))
        .collect();
    from(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaPartition",
        "metadata": {"name": "t-0", "namespace": "ns", "uid": "p1"},
        "spec": {"clusterRef": "demo", "topic": "t", "topicId": "AAAAAAAAAAAAAAAAAAAAAA", "partition": 0,
                 "replicas": [0, 1, 2]},
        "status": {"leader": leader, "leaderEpoch": leader, "partitionEpoch": 0, "isr": isr},
    }))
}

#[test]
fn the_first_event_of_an_object_passes_and_an_unchanged_one_does_not() {
    let filter = ChangeFilter::default();
    let c = cluster(3, json!({}));
    assert!(filter.changed(&c, &cluster_placement_inputs(&c)));
    assert!(!filter.changed(&c, &cluster_placement_inputs(&c)));
}

#[test]
fn cluster_status_counts_do_not_wake_topics_but_brokers_and_racks_do() {
    let filter = ChangeFilter::default();
    let healthy = cluster(3, json!({"offlinePartitions": 0}));
    assert!(filter.changed(&healthy, &cluster_placement_inputs(&healthy)));
    let degraded = cluster(
        3,
        json!({"offlinePartitions": 4, "underReplicatedPartitions": 2}),
    );
    assert!(!filter.changed(&degraded, &cluster_placement_inputs(&degraded)));
    let grown = cluster(5, json!({"offlinePartitions": 4}));
    assert!(filter.changed(&grown, &cluster_placement_inputs(&grown)));
    let racked = cluster(
        5,
        json!({"brokers": [{"id": 0, "pod": "demo-broker-0", "ready": true, "configInSync": true, "rack": "a"}]}),
    );
    assert!(filter.changed(&racked, &cluster_placement_inputs(&racked)));
}

#[test]
fn lease_renewals_wake_nothing_and_a_new_registration_does() {
    let filter = ChangeFilter::default();
    let first = lease(
        "2026-01-01T00:00:01.000000Z",
        json!({"tributary.dev/endpoints": "a"}),
    );
    assert!(filter.changed(&first, &lease_registration_inputs(&first)));
    let renewed = lease(
        "2026-01-01T00:00:03.000000Z",
        json!({"tributary.dev/endpoints": "a"}),
    );
    assert!(!filter.changed(&renewed, &lease_registration_inputs(&renewed)));
    let moved = lease(
        "2026-01-01T00:00:05.000000Z",
        json!({"tributary.dev/endpoints": "b"}),
    );
    assert!(filter.changed(&moved, &lease_registration_inputs(&moved)));
}

#[test]
fn partition_leader_changes_wake_nothing_and_isr_changes_do() {
    let filter = ChangeFilter::default();
    let p = partition(0, &[0, 1, 2]);
    assert!(filter.changed(&p, &partition_assignment_inputs(&p)));
    let moved = partition(1, &[0, 1, 2]);
    assert!(!filter.changed(&moved, &partition_assignment_inputs(&moved)));
    let shrunk = partition(1, &[1, 2]);
    assert!(filter.changed(&shrunk, &partition_assignment_inputs(&shrunk)));
}

#[test]
fn a_recreated_object_is_new() {
    let filter = ChangeFilter::default();
    let c = cluster(3, json!({}));
    assert!(filter.changed(&c, &cluster_placement_inputs(&c)));
    let mut again = c.clone();
    again.metadata.uid = Some("u2".into());
    assert!(filter.changed(&again, &cluster_placement_inputs(&again)));
}
