//! The real controllers, leader election included, against the in-memory Kubernetes API: a
//! cluster and a topic are driven to Ready through resourceVersion conflicts, a partition
//! increase, a broker failure, an unsatisfiable topic and a finalizer-guarded deletion.

use crate::common;

use common::{
    create_cluster, expand_isr, merge_patch, metrics, obj, partitions_of, partitions_where, setup,
    start_operator, wait_until, SimBroker, DEADLINE, NS,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::ResourceExt;
use kube::{Api, Client};
use serde_json::json;
use tributary_crds::{IsrEntry, KafkaCluster, KafkaPartition, KafkaTopic, TopicPhase};
use tributary_e2e::FakeApiServer;
use tributary_operator::builders::CONFIG_HASH_ANNOTATION;

/// Stand-in for the kubelet and the brokers: ready pods running the StatefulSet's template,
/// StatefulSet status, and a registered, renewing broker per pod.
async fn start_brokers(client: &Client, sts: &StatefulSet, n: i32) -> Vec<SimBroker> {
    let hash = sts
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    let labels = sts.spec.selector.match_labels.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let mut brokers = Vec::new();
    for id in 0..n {
        let name = format!("demo-broker-{id}");
        let pod: Pod = obj(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "labels": labels, "annotations": { CONFIG_HASH_ANNOTATION: hash } },
            "spec": { "nodeName": format!("node-{id}"), "containers": [{ "name": "broker", "image": "tributary:test" }] },
        }));
        if let Err(e) = pods.create(&PostParams::default(), &pod).await {
            panic!("create pod: {e}");
        }
        let ready = json!({ "status": { "conditions": [{ "type": "Ready", "status": "True" }] } });
        if let Err(e) = pods
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&ready))
            .await
        {
            panic!("pod status: {e}");
        }
        brokers.push(SimBroker::start(client, id).await);
    }
    let status = json!({ "status": { "replicas": n, "readyReplicas": n, "updatedReplicas": n } });
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    if let Err(e) = sts_api
        .patch_status(
            "demo-broker",
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
    {
        panic!("sts status: {e}");
    }
    brokers
}

async fn topic_where(
    topics: &Api<KafkaTopic>,
    name: &str,
    f: impl Fn(&KafkaTopic) -> bool,
) -> Option<KafkaTopic> {
    topics.get_opt(name).await.ok().flatten().filter(|t| f(t))
}

fn phase(t: &KafkaTopic) -> Option<TopicPhase> {
    t.status.as_ref().and_then(|s| s.phase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_drives_cluster_and_topics_through_their_lifecycle() {
    let (server, client) = setup().await;
    let metrics = metrics();
    let (stop_tx, operator) = start_operator(&client, metrics.clone());

    // A three-broker cluster: the operator renders and applies its children.
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    let cluster: KafkaCluster = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": { "name": "demo" },
        "spec": { "brokers": 3, "config": { "min.insync.replicas": "2" } },
    }));
    if let Err(e) = clusters.create(&PostParams::default(), &cluster).await {
        panic!("create cluster: {e}");
    }
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let sts = wait_until("the broker StatefulSet", || async {
        sts_api.get_opt("demo-broker").await.ok().flatten()
    })
    .await;
    assert_eq!(sts.spec.replicas, Some(3));
    for (resource, name) in [
        ("/configmaps", "demo-config"),
        ("/services", "demo-brokers"),
        ("/services", "demo-bootstrap"),
        ("/serviceaccounts", "demo-broker"),
        ("rbac.authorization.k8s.io/roles", "demo-broker"),
        ("rbac.authorization.k8s.io/rolebindings", "demo-broker"),
        ("policy/poddisruptionbudgets", "demo-broker"),
    ] {
        // Applied in one reconcile, the PodDisruptionBudget after the StatefulSet.
        let child = wait_until(&format!("{resource} {name}"), || async {
            server.get(resource, NS, name)
        })
        .await;
        assert_eq!(
            child["metadata"]["ownerReferences"][0]["kind"], "KafkaCluster",
            "{name} owner"
        );
    }

    // Not ready until brokers run; then Ready with every broker listed.
    let waiting = clusters
        .get("demo")
        .await
        .unwrap_or_else(|e| panic!("get: {e}"));
    let ready_now = waiting
        .status
        .as_ref()
        .is_some_and(|s| s.ready_brokers == 3);
    assert!(!ready_now, "cluster cannot be ready before any pod exists");
    let mut brokers = start_brokers(&client, &sts, 3).await;
    // Ready follows the pods; each broker registers just after its pod turns ready, so wait
    // for the status that has seen all three.
    let ready = wait_until("cluster Ready with every broker registered", || async {
        clusters.get("demo").await.ok().filter(|c| {
            c.status.as_ref().is_some_and(|s| {
                s.ready_brokers == 3
                    && tributary_crds::conditions::is_true(&s.conditions, "Ready")
                    && s.brokers.iter().all(|b| b.registered)
            })
        })
    })
    .await;
    let status = ready.status.unwrap_or_default();
    assert_eq!(status.brokers.len(), 3);
    assert!(status
        .brokers
        .iter()
        .all(|b| b.ready && b.config_in_sync && b.registered));
    assert_eq!(status.observed_generation, ready.metadata.generation);
    assert_eq!(status.cluster_id.as_ref().map(String::len), Some(22));
    assert_eq!(status.controller.as_deref(), Some("operator-0"));
    assert_eq!(
        status.bootstrap_servers.as_deref(),
        Some("demo-bootstrap.streaming.svc:9092")
    );

    // A topic, with the first two status writes losing a resourceVersion race.
    server.fail_next_writes("tributary.dev/kafkatopics/status", 2);
    let topics: Api<KafkaTopic> = Api::namespaced(client.clone(), NS);
    let topic: KafkaTopic = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": { "name": "orders" },
        "spec": { "clusterRef": "demo", "partitions": 6, "replicationFactor": 3, "config": { "retention.ms": "1000", "compression.type": null } },
    }));
    if let Err(e) = topics.create(&PostParams::default(), &topic).await {
        panic!("create topic: {e}");
    }
    let placed = wait_until("topic provisioned", || async {
        topic_where(&topics, "orders", |t| {
            phase(t) == Some(TopicPhase::Provisioned)
                && t.status
                    .as_ref()
                    .is_some_and(|s| s.leaderless_partitions == 0)
        })
        .await
    })
    .await;
    let s = placed.status.clone().unwrap_or_default();
    assert_eq!(s.placed_partitions, 6);
    let first = partitions_of(&client, "orders").await;
    assert_eq!(first.len(), 6);
    for p in &first {
        let st = p.status.clone().unwrap_or_default();
        assert_eq!(p.spec.replicas.len(), 3);
        assert_eq!(st.leader, p.spec.replicas[0], "preferred leader elected");
        assert_eq!(
            st.isr.len(),
            3,
            "every live replica in sync from creation, as in Kafka"
        );
    }
    assert_eq!(
        s.effective_config.get("retention.ms").map(String::as_str),
        Some("1000")
    );
    assert!(
        !s.effective_config.contains_key("compression.type"),
        "null leaves the key unmanaged"
    );
    assert!(placed
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"tributary.dev/topic-data".to_owned()));
    assert!(server.conflicts() >= 2, "the injected conflicts were hit");
    assert!(
        metrics.errors("kafkatopic", "conflict") >= 2,
        "conflicts are counted and retried"
    );

    // Growing the topic keeps every existing assignment.
    let grow = json!({ "spec": { "partitions": 9 } });
    merge_patch(&topics, "orders", &grow, "grow").await;
    let grown = wait_until("9 partitions placed and led", || async {
        topic_where(&topics, "orders", |t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.placed_partitions == 9 && s.leaderless_partitions == 0)
        })
        .await
    })
    .await;
    let g = grown.status.clone().unwrap_or_default();
    let after = partitions_of(&client, "orders").await;
    assert_eq!(after.len(), 9);
    for (before, after) in first.iter().zip(&after) {
        assert_eq!(before.spec.replicas, after.spec.replicas);
    }
    assert_eq!(g.observed_generation, grown.metadata.generation);
    assert_eq!(
        grown.metadata.generation,
        Some(2),
        "spec change bumped generation"
    );

    // Partition 0's followers catch up and its leader adds them to the ISR (as a replicating
    // leader does); then the leader dies: a live in-sync replica takes over with a higher epoch.
    let name = after[0].metadata.name.clone().unwrap_or_default();
    let p0 = expand_isr(&client, &name, &brokers.iter().collect::<Vec<_>>()).await;
    let (dead, epoch) = (p0.leader, p0.leader_epoch);
    let index = brokers
        .iter()
        .position(|b| b.id == dead)
        .unwrap_or_else(|| panic!("no broker {dead}"));
    brokers.remove(index).kill().await;
    let failed_over = partitions_where(&client, "orders", 9, "leader failover", |p, s| {
        p.spec.partition != 0 || (s.leader != dead && s.leader >= 0)
    })
    .await;
    let p0 = failed_over[0].status.clone().unwrap_or_default();
    assert!(p0.leader_epoch > epoch);
    assert!(!p0.isr.iter().any(|e| e.broker_id == dead));
    brokers.push(SimBroker::start(&client, dead).await);

    // An unsatisfiable topic gets a phase and condition, not an error loop.
    let big: KafkaTopic = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": { "name": "too-wide" },
        "spec": { "clusterRef": "demo", "partitions": 1, "replicationFactor": 5 },
    }));
    if let Err(e) = topics.create(&PostParams::default(), &big).await {
        panic!("create: {e}");
    }
    let blocked = wait_until("InsufficientBrokers", || async {
        topic_where(&topics, "too-wide", |t| {
            phase(t) == Some(TopicPhase::InsufficientBrokers)
        })
        .await
    })
    .await;
    let conds = blocked.status.unwrap_or_default().conditions;
    assert!(conds
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "InsufficientBrokers"));
    let events = wait_until("an InsufficientBrokers event", || async {
        let evs = server.list("events.k8s.io/events", NS);
        evs.iter()
            .any(|e| e["reason"] == "InsufficientBrokers")
            .then_some(evs)
    })
    .await;
    assert!(events.iter().any(|e| e["reason"] == "PartitionsAssigned"));
    assert_eq!(
        metrics.errors("kafkatopic", "kube"),
        0,
        "no API errors along the way"
    );

    // Deletion waits for the brokers to drop the data.
    if let Err(e) = topics.delete("orders", &Default::default()).await {
        panic!("delete: {e}");
    }
    let deleting = wait_until("Deleting with pending brokers", || async {
        topic_where(&topics, "orders", |t| {
            phase(t) == Some(TopicPhase::Deleting)
                && t.status
                    .as_ref()
                    .and_then(|s| s.pending_deletion.as_ref())
                    .is_some_and(|p| !p.is_empty())
        })
        .await
    })
    .await;
    assert!(deleting.metadata.deletion_timestamp.is_some());
    // Each broker drops its data and removes itself, with a resourceVersion precondition.
    let rv = deleting
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let done =
        json!({ "metadata": { "resourceVersion": rv }, "status": { "pendingDeletion": [] } });
    if let Err(e) = topics
        .patch_status("orders", &PatchParams::default(), &Patch::Merge(&done))
        .await
    {
        panic!("brokers ack deletion: {e}");
    }
    wait_until("topic gone", || async {
        topics.get_opt("orders").await.ok().filter(Option::is_none)
    })
    .await;

    // Graceful shutdown releases the leader Lease.
    assert_eq!(metrics.leader.get(), 1);
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DEADLINE, operator).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!("operator did not stop cleanly: {other:?}"),
    }
    let lease = server
        .get("coordination.k8s.io/leases", NS, "tributary-operator")
        .unwrap_or_default();
    assert!(
        lease["spec"]
            .get("holderIdentity")
            .is_none_or(serde_json::Value::is_null),
        "lease released: {lease}"
    );
    assert_eq!(metrics.leader.get(), 0);
}

/// Events about KafkaCluster `demo` with `reason`.
fn cluster_events(server: &FakeApiServer, reason: &str) -> Vec<serde_json::Value> {
    server
        .list("events.k8s.io/events", NS)
        .into_iter()
        .filter(|e| e["reason"] == reason && e["regarding"]["name"] == "demo")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_reconcile_publishes_a_warning_event_and_retries() {
    let (server, client) = setup().await;
    // The first child write is refused, as if RBAC were missing.
    server.fail_next_writes_with("/serviceaccounts", 1, 403);
    let metrics = metrics();
    let (stop, operator) = start_operator(&client, metrics.clone());
    create_cluster(&client, json!({ "brokers": 1 })).await;

    let events = wait_until("a ReconcileFailed event", || async {
        let evs = cluster_events(&server, "ReconcileFailed");
        (!evs.is_empty()).then_some(evs)
    })
    .await;
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(events[0]["regarding"]["kind"], "KafkaCluster");
    let note = events[0]["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("kind kube"),
        "note names the error kind: {note}"
    );
    assert!(metrics.errors("kafkacluster", "kube") >= 1);

    // The backoff still retries, and the retry succeeds.
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    wait_until("the StatefulSet after the retry", || async {
        sts_api.get_opt("demo-broker").await.ok().flatten()
    })
    .await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}

fn paused_condition(
    c: &KafkaCluster,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Paused")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_cluster_reports_paused_and_resumes_when_the_annotation_goes() {
    let (_server, client) = setup().await;
    let metrics = metrics();
    let (stop, operator) = start_operator(&client, metrics);
    create_cluster(&client, json!({ "brokers": 1 })).await;
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    wait_until("the StatefulSet", || async {
        sts_api.get_opt("demo-broker").await.ok().flatten()
    })
    .await;

    // Pause and grow in one write: the operator acknowledges the pause, not the growth.
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    let pause = json!({
        "metadata": { "annotations": { "tributary.dev/paused": "true" } },
        "spec": { "brokers": 2 },
    });
    merge_patch(&clusters, "demo", &pause, "pause").await;
    let paused = wait_until("Paused condition", || async {
        clusters.get("demo").await.ok().filter(|c| {
            paused_condition(c).is_some_and(|p| {
                p.status == "True"
                    && p.reason == "Paused"
                    && p.observed_generation == c.metadata.generation
            })
        })
    })
    .await;
    assert_eq!(paused.metadata.generation, Some(2));
    let sts = sts_api
        .get("demo-broker")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sts.spec.replicas, Some(1), "paused: not applied");

    // Resuming clears the condition and applies the pending change.
    let resume = json!({ "metadata": { "annotations": { "tributary.dev/paused": null } } });
    merge_patch(&clusters, "demo", &resume, "resume").await;
    wait_until("resumed", || async {
        let c = clusters.get("demo").await.ok()?;
        let sts = sts_api.get("demo-broker").await.ok()?;
        (paused_condition(&c).is_none() && sts.spec.replicas == Some(2)).then_some(())
    })
    .await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}

fn condition(
    c: &KafkaCluster,
    type_: &str,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == type_)
        .cloned()
}

/// A one-broker spec with the PodMonitor and the alert rules turned on.
fn monitored_spec() -> serde_json::Value {
    json!({ "brokers": 1, "monitoring": { "serviceMonitor": true, "rules": true } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_spec_applies_pod_monitor_and_rules_and_removes_them_when_off() {
    let (server, client) = setup().await;
    let metrics = metrics();
    let (stop, operator) = start_operator(&client, metrics);
    create_cluster(&client, monitored_spec()).await;

    let pm = wait_until("the PodMonitor", || async {
        server.get("monitoring.coreos.com/podmonitors", NS, "demo-broker")
    })
    .await;
    assert_eq!(pm["metadata"]["ownerReferences"][0]["kind"], "KafkaCluster");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "admin");
    let rule = wait_until("the PrometheusRule", || async {
        server.get("monitoring.coreos.com/prometheusrules", NS, "demo-alerts")
    })
    .await;
    let alerts: Vec<&str> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["alert"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(alerts.len(), 5, "{alerts:?}");
    assert!(alerts.contains(&"TributaryLogDirNearlyFull"), "{alerts:?}");
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    wait_until("Monitoring condition True", || async {
        clusters
            .get("demo")
            .await
            .ok()
            .filter(|c| condition(c, "Monitoring").is_some_and(|m| m.status == "True"))
    })
    .await;

    let off = json!({ "spec": { "monitoring": { "serviceMonitor": false, "rules": false } } });
    merge_patch(&clusters, "demo", &off, "turn monitoring off").await;
    wait_until("monitoring objects deleted", || async {
        let pm = server.get("monitoring.coreos.com/podmonitors", NS, "demo-broker");
        let rule = server.get("monitoring.coreos.com/prometheusrules", NS, "demo-alerts");
        (pm.is_none() && rule.is_none()).then_some(())
    })
    .await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_prometheus_operator_is_reported_without_failing_the_reconcile() {
    let server = FakeApiServer::new();
    server.create_namespace(NS);
    server.unserve_group("monitoring.coreos.com");
    let client = server.client(NS);
    common::install_crds(&client).await;
    let metrics = metrics();
    let (stop, operator) = start_operator(&client, metrics.clone());
    create_cluster(&client, monitored_spec()).await;

    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    let c = wait_until("MonitoringUnavailable condition", || async {
        clusters.get("demo").await.ok().filter(|c| {
            condition(c, "Monitoring")
                .is_some_and(|m| m.status == "False" && m.reason == "MonitoringUnavailable")
        })
    })
    .await;
    assert!(c.status.is_some_and(|s| s.bootstrap_servers.is_some()));
    assert!(server.get("apps/statefulsets", NS, "demo-broker").is_some());
    wait_until("a MonitoringUnavailable event", || async {
        (!cluster_events(&server, "MonitoringUnavailable").is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        metrics.errors("kafkacluster", "kube"),
        0,
        "not a reconcile failure"
    );
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_moves_replicas_off_the_removed_brokers_by_reassignment_before_shrinking() {
    let (_server, client) = setup().await;
    let metrics = metrics();
    let (stop, operator) = start_operator(&client, metrics);
    create_cluster(&client, json!({ "brokers": 3 })).await;
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let sts = wait_until("the StatefulSet", || async {
        sts_api.get_opt("demo-broker").await.ok().flatten()
    })
    .await;
    let brokers = start_brokers(&client, &sts, 3).await;
    let incarnation = |id: i32| {
        brokers
            .iter()
            .find(|b| b.id == id)
            .map_or(0, |b| b.incarnation)
    };

    // One replica per partition, spread over all three brokers, each led.
    create_topic(&client, "events", 3, 1).await;
    let on_2 = wait_until("the partition on broker 2 to be led", || async {
        partitions_of(&client, "events")
            .await
            .into_iter()
            .find(|p| p.spec.replicas == [2] && p.status.as_ref().is_some_and(|s| s.leader == 2))
    })
    .await;
    let name = on_2.name_any();

    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    merge_patch(
        &clusters,
        "demo",
        &json!({ "spec": { "brokers": 2 } }),
        "scale down",
    )
    .await;
    let progressing = |c: &KafkaCluster, reason: &str, status: &str| {
        condition(c, "Progressing").is_some_and(|p| {
            p.status == status
                && p.reason == reason
                && p.observed_generation == c.metadata.generation
        })
    };
    wait_until("Progressing/DrainingBrokers", || async {
        clusters
            .get("demo")
            .await
            .ok()
            .filter(|c| progressing(c, "DrainingBrokers", "True"))
    })
    .await;
    // The move starts as a reassignment: the new replica is added, broker 2 stays until the
    // new one is in sync, and the StatefulSet keeps broker 2.
    let parts: Api<KafkaPartition> = Api::namespaced(client.clone(), NS);
    let moving = wait_until("a reassignment off broker 2", || async {
        parts
            .get(&name)
            .await
            .ok()
            .filter(|p| p.spec.removing_replicas == [2] && p.spec.adding_replicas.len() == 1)
    })
    .await;
    let new = moving.spec.adding_replicas[0];
    assert_eq!(moving.spec.replicas, [new, 2]);
    assert!(new == 0 || new == 1, "{:?}", moving.spec);
    let held = sts_api
        .get("demo-broker")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        held.spec.replicas,
        Some(3),
        "broker 2 still holds a replica"
    );

    // The leader (broker 2) takes the caught-up replica into the ISR, as a broker would; the
    // controller completes the move and the StatefulSet shrinks.
    let mut caught_up = moving.clone();
    if let Some(status) = caught_up.status.as_mut() {
        status.isr.push(IsrEntry {
            broker_id: new,
            broker_epoch: incarnation(new),
        });
        status.partition_epoch += 1;
    }
    if let Err(e) = parts
        .replace_status(&name, &PostParams::default(), &caught_up)
        .await
    {
        panic!("expand the ISR: {e}");
    }
    wait_until("the move completed and the StatefulSet shrunk", || async {
        let p = parts.get(&name).await.ok()?;
        let status = p.status.clone()?;
        let sts = sts_api.get("demo-broker").await.ok()?;
        let c = clusters.get("demo").await.ok()?;
        (p.spec.replicas == [new]
            && !p.spec.is_reassigning()
            && status.leader == new
            && sts.spec.replicas == Some(2)
            && !progressing(&c, "DrainingBrokers", "True"))
        .then_some(())
    })
    .await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_below_a_topics_replication_factor_is_refused_with_a_condition() {
    let (_server, client) = setup().await;
    let metrics = metrics();
    let (stop, operator) = start_operator(&client, metrics);
    create_cluster(&client, json!({ "brokers": 3 })).await;
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let sts = wait_until("the StatefulSet", || async {
        sts_api.get_opt("demo-broker").await.ok().flatten()
    })
    .await;
    let _brokers = start_brokers(&client, &sts, 3).await;
    create_topic(&client, "wide", 2, 3).await;
    wait_until("the topic's partitions to be led", || async {
        let led = partitions_of(&client, "wide")
            .await
            .iter()
            .filter(|p| p.status.as_ref().is_some_and(|s| s.leader >= 0))
            .count();
        (led == 2).then_some(())
    })
    .await;
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    merge_patch(
        &clusters,
        "demo",
        &json!({ "spec": { "brokers": 2 } }),
        "scale down",
    )
    .await;
    let blocked = wait_until("Progressing=False/ScaleDownBlocked", || async {
        let c = clusters.get("demo").await.ok()?;
        condition(&c, "Progressing")
            .filter(|p| p.status == "False" && p.reason == "ScaleDownBlocked")
    })
    .await;
    assert!(blocked.message.contains("wide-0"), "{}", blocked.message);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let held = sts_api
        .get("demo-broker")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(held.spec.replicas, Some(3), "no broker removed");
    assert!(
        partitions_of(&client, "wide")
            .await
            .iter()
            .all(|p| p.spec.replicas.len() == 3 && !p.spec.is_reassigning()),
        "nothing moved"
    );
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}

/// Creates KafkaTopic `name` of cluster `demo`.
async fn create_topic(client: &Client, name: &str, partitions: i32, rf: i32) {
    let topics: Api<KafkaTopic> = Api::namespaced(client.clone(), NS);
    let topic: KafkaTopic = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": { "name": name },
        "spec": { "clusterRef": "demo", "partitions": partitions, "replicationFactor": rf },
    }));
    if let Err(e) = topics.create(&PostParams::default(), &topic).await {
        panic!("create topic: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_monitoring_objects_are_reported_not_fatal() {
    let (server, client) = setup().await;
    // As if the operator's RBAC lacked monitoring.coreos.com.
    server.fail_next_writes_with("monitoring.coreos.com/podmonitors", 1, 403);
    let metrics = metrics();
    let (stop, operator) = start_operator(&client, metrics.clone());
    create_cluster(&client, monitored_spec()).await;
    let events = wait_until("a MonitoringUnavailable event", || async {
        let evs = cluster_events(&server, "MonitoringUnavailable");
        (!evs.is_empty()).then_some(evs)
    })
    .await;
    let note = events[0]["note"].as_str().unwrap_or_default();
    assert!(note.contains("RBAC"), "{note}");
    // The next reconcile applies it and the condition recovers.
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    wait_until("Monitoring condition True", || async {
        clusters
            .get("demo")
            .await
            .ok()
            .filter(|c| condition(c, "Monitoring").is_some_and(|m| m.status == "True"))
    })
    .await;
    assert_eq!(
        metrics.errors("kafkacluster", "kube"),
        0,
        "not a reconcile failure"
    );
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}
