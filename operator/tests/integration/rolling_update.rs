//! Rolling updates against the in-memory API server with the real StatefulSet controller
//! (OnDelete): a config change with a partition at exactly min.insync.replicas holds the roll
//! with a condition, an Event and a metric naming the partition; it resumes by itself once the
//! ISR grows; brokers restart one at a time, highest id first, each waited for until it is
//! Ready and back in the ISR as its new incarnation; and an operator restart mid-roll resumes
//! from the KafkaCluster status without restarting a second broker early.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    create_cluster, create_topic, events_about, expand_isr, merge_patch, obj, partitions_where,
    setup, shrink_isr_to_leader, wait_until, Replica, SimBroker, NS,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::task::JoinHandle;
use tributary_crds::{KafkaCluster, KafkaClusterStatus};
use tributary_e2e::controllers::statefulset::REVISION_LABEL;
use tributary_e2e::controllers::{Controllers, ControllersConfig};
use tributary_operator::cluster::reconcile::CONTROLLER;
use tributary_operator::cluster::rollout::ROLLING_UPDATE;

const PARTITION: &str = "orders-0";

/// Broker `id`'s pod, if one exists and is not being deleted.
async fn live_pod(client: &Client, id: i32) -> Option<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.get_opt(&format!("demo-broker-{id}"))
        .await
        .ok()
        .flatten()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
}

/// A Ready node for the scheduler to bind the broker pods to.
async fn create_node(client: &Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = obj(json!({ "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": "node-1" } }));
    let mut node = nodes
        .create(&PostParams::default(), &node)
        .await
        .unwrap_or_else(|e| panic!("create node: {e}"));
    node.status = Some(obj(
        json!({ "conditions": [{ "type": "Ready", "status": "True" }] }),
    ));
    if let Err(e) = nodes
        .replace_status("node-1", &PostParams::default(), &node)
        .await
    {
        panic!("node status: {e}");
    }
}

/// The kubelet's part of pod deletion: a deleted pod's containers stop at once (the brokers
/// are simulated), so its deletion is finished with a zero grace period.
fn finish_deletions(client: &Client) -> JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    tokio::spawn(async move {
        loop {
            for pod in pods
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
            {
                if pod.metadata.deletion_timestamp.is_some() {
                    let now = DeleteParams {
                        grace_period_seconds: Some(0),
                        ..DeleteParams::default()
                    };
                    let _ = pods.delete(&pod.name_any(), &now).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Waits for broker `id`'s pod other than `old_uid`, marks it Ready as the kubelet would once
/// its probe passes, and returns its UID.
async fn ready_new_pod(client: &Client, id: i32, old_uid: Option<&str>) -> String {
    let pod = wait_until(&format!("a new pod for broker {id}, scheduled"), || async {
        live_pod(client, id).await.filter(|p| {
            p.metadata.uid.as_deref() != old_uid
                && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
        })
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let ready = json!({ "status": { "phase": "Running",
        "conditions": [{ "type": "Ready", "status": "True" }] } });
    if let Err(e) = pods
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&ready),
        )
        .await
    {
        panic!("ready pod {id}: {e}");
    }
    pod.metadata.uid.unwrap_or_default()
}

async fn cluster_status(client: &Client) -> KafkaClusterStatus {
    let api: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    api.get("demo")
        .await
        .ok()
        .and_then(|c| c.status)
        .unwrap_or_default()
}

fn roll_condition(status: &KafkaClusterStatus) -> Option<Condition> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == ROLLING_UPDATE)
        .cloned()
}

/// Waits until the `RollingUpdate` condition has `reason` and its message contains `text`.
async fn roll_waits(client: &Client, reason: &str, text: &str) -> Condition {
    wait_until(
        &format!("the roll to wait with {reason}: {text}"),
        || async {
            roll_condition(&cluster_status(client).await)
                .filter(|c| c.status == "True" && c.reason == reason && c.message.contains(text))
        },
    )
    .await
}

/// The brokers whose pod is not the one in `uids`.
async fn restarted(client: &Client, uids: &BTreeMap<i32, String>) -> Vec<i32> {
    let mut out = Vec::new();
    for (id, uid) in uids {
        if live_pod(client, *id)
            .await
            .and_then(|p| p.metadata.uid)
            .as_ref()
            != Some(uid)
        {
            out.push(*id);
        }
    }
    out
}

/// Lets the operator reconcile the cluster a few more times, then checks that no broker but
/// `allowed` has been restarted (its pod is the one in `uids`).
async fn nothing_else_restarts(
    client: &Client,
    operator: &Replica,
    uids: &BTreeMap<i32, String>,
    allowed: Option<i32>,
) {
    let seen = operator.metrics.reconciles(CONTROLLER);
    wait_until("a few more cluster reconciles", || async {
        (operator.metrics.reconciles(CONTROLLER) >= seen + 3).then_some(())
    })
    .await;
    let others: Vec<i32> = restarted(client, uids)
        .await
        .into_iter()
        .filter(|id| Some(*id) != allowed)
        .collect();
    assert!(others.is_empty(), "brokers {others:?} were restarted early");
}

/// Simulates broker `id`'s process after its pod was replaced: the old incarnation stops, the
/// new pod turns Ready and the broker registers as a new incarnation. Returns the new pod UID.
async fn restart_broker(
    client: &Client,
    brokers: &mut BTreeMap<i32, SimBroker>,
    uids: &BTreeMap<i32, String>,
    id: i32,
) -> String {
    if let Some(old) = brokers.remove(&id) {
        old.kill().await;
    }
    let uid = ready_new_pod(client, id, uids.get(&id).map(String::as_str)).await;
    brokers.insert(id, SimBroker::start(client, id).await);
    uid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_rolls_brokers_one_at_a_time_gated_by_min_isr_and_survives_an_operator_restart(
) {
    let (server, client) = setup().await;
    let volumes = std::env::temp_dir().join(format!("tributary-rolling-{}", std::process::id()));
    let controllers = Controllers::start(
        &server,
        ControllersConfig {
            volumes_dir: volumes.clone(),
        },
    );
    create_node(&client).await;
    let kubelet = finish_deletions(&client);
    let mut operator = Replica::start(&client, "operator-0");
    create_cluster(&client, json!({ "brokers": 3 })).await;
    let mut uids = BTreeMap::new();
    let mut brokers = BTreeMap::new();
    for id in 0..3 {
        uids.insert(id, ready_new_pod(&client, id, None).await);
        brokers.insert(id, SimBroker::start(&client, id).await);
    }
    create_topic(
        &client,
        "orders",
        1,
        3,
        json!({ "min.insync.replicas": "2" }),
    )
    .await;
    let p = partitions_where(&client, "orders", 1, "orders-0 has a leader", |_, s| {
        s.leader >= 0
    })
    .await;
    let leader = p[0].status.as_ref().map_or(-1, |s| s.leader);
    let replicas = p[0].spec.replicas.clone();
    let lagging = replicas
        .iter()
        .rev()
        .copied()
        .find(|r| *r != leader)
        .unwrap_or_else(|| panic!("RF 3 has followers: {replicas:?}"));
    let follower = replicas
        .iter()
        .copied()
        .find(|r| *r != leader && *r != lagging)
        .unwrap_or_else(|| panic!("RF 3 has two followers: {replicas:?}"));
    // ISR {leader, follower}: exactly min.insync.replicas, with `lagging` fallen out (a new
    // partition starts with all three in sync) and catching up.
    shrink_isr_to_leader(&client, PARTITION).await;
    expand_isr(&client, PARTITION, &[&brokers[&follower]]).await;

    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    let change = json!({ "spec": { "config": { "log.retention.hours": "100" } } });
    merge_patch(&clusters, "demo", &change, "change the broker config").await;

    // Blocked: restarting either ISR member would leave orders-0 below min ISR.
    let blocked = roll_waits(&client, "MinInSyncReplicas", PARTITION).await;
    assert!(
        blocked.message.contains(&format!(
            "broker {lagging} is not in the ISR of {PARTITION}"
        )),
        "{}",
        blocked.message
    );
    wait_until("a RollBlocked Event naming the partition", || async {
        events_about(&server, "demo", "RollBlocked")
            .iter()
            .any(|e| e["note"].as_str().is_some_and(|n| n.contains(PARTITION)))
            .then_some(())
    })
    .await;
    assert_eq!(
        operator
            .metrics
            .roll_waiting(NS, "demo", "MinInSyncReplicas"),
        1
    );
    nothing_else_restarts(&client, &operator, &uids, None).await;
    let roll = cluster_status(&client).await.roll;
    assert_eq!(
        roll.as_ref().map(|r| r.pending.clone()),
        Some(vec![2, 1, 0]),
        "{roll:?}"
    );

    // The ISR grows: the roll resumes by itself, highest id first.
    expand_isr(&client, PARTITION, &[&brokers[&lagging]]).await;
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    for (step, id) in [2, 1, 0].into_iter().enumerate() {
        let now = wait_until(&format!("broker {id} restarted"), || async {
            let r = restarted(&client, &uids).await;
            (!r.is_empty()).then_some(r)
        })
        .await;
        assert_eq!(now, vec![id], "one broker at a time, highest id first");
        // The status records the restart (written just after the delete).
        wait_until(
            &format!("status.roll.restarting to name broker {id}"),
            || async {
                let roll = cluster_status(&client).await.roll?;
                (roll.restarting?.id == id).then_some(())
            },
        )
        .await;
        let uid = restart_broker(&client, &mut brokers, &uids, id).await;
        // Ready and registered, but not back in the ISR: the roll waits for it.
        roll_waits(
            &client,
            "BrokerNotInSync",
            &format!("broker {id} is not in the ISR of {PARTITION}"),
        )
        .await;
        if step == 0 {
            // The operator restarts (killed, its Lease not released) mid-roll; the new one
            // picks the roll up from the status and still waits for broker 2.
            operator.kill().await;
            operator = Replica::start(&client, "operator-1");
            wait_until("the new operator reconciling", || async {
                (operator.metrics.reconciles(CONTROLLER) >= 2).then_some(())
            })
            .await;
            roll_waits(
                &client,
                "BrokerNotInSync",
                &format!("broker {id} is not in the ISR of {PARTITION}"),
            )
            .await;
        }
        nothing_else_restarts(&client, &operator, &uids, Some(id)).await;
        uids.insert(id, uid);
        expand_isr(&client, PARTITION, &[&brokers[&id]]).await;
    }

    let status = wait_until("the roll to complete", || async {
        let s = cluster_status(&client).await;
        (s.roll.is_none()
            && roll_condition(&s)
                .is_some_and(|c| c.status == "False" && c.reason == "RollComplete"))
        .then_some(s)
    })
    .await;
    assert!(status.roll.is_none());
    let revision = sts_api
        .get("demo-broker")
        .await
        .ok()
        .and_then(|s| s.status?.update_revision)
        .unwrap_or_default();
    for id in 0..3 {
        let pod = live_pod(&client, id).await;
        assert_eq!(
            pod.as_ref()
                .and_then(|p| p.labels().get(REVISION_LABEL).cloned()),
            Some(revision.clone()),
            "broker {id} runs the new revision"
        );
    }
    assert!(!events_about(&server, "demo", "RollComplete").is_empty());
    assert_eq!(
        events_about(&server, "demo", "RestartingBroker").len(),
        3,
        "each broker restarted once"
    );
    for b in brokers.into_values() {
        b.kill().await;
    }
    operator.stop().await;
    controllers.stop().await;
    kubelet.abort();
    let _ = std::fs::remove_dir_all(volumes);
}
