//! A controller killed in the middle of an election leaves nothing unsafe: two operator
//! replicas run against the in-memory API, the active one is killed (its task aborted, so it
//! neither releases its Lease nor writes again) after deciding an election but before the
//! election's writes all landed, and the standby takes over and completes the election from
//! the objects alone: a leader from the ISR, each epoch raised once.

use crate::common;

use common::{
    create_cluster, create_topic, events_about, expand_isr, kill_broker, partition_where,
    partitions_where, preferred_elected, request_election, setup, start_sim_brokers, wait_until,
    History, Replica, SimBroker,
};
use kube::ResourceExt;
use serde_json::json;
use tributary_crds::KafkaPartitionStatus;
use tributary_e2e::FakeApiServer;
use tributary_operator::controller::election::Change;

/// The KafkaPartition status subresource, as the API server's faults name it.
const STATUS: &str = "tributary.dev/kafkapartitions/status";
/// The KafkaPartition resource itself (metadata, such as the election request annotation).
const OBJECT: &str = "tributary.dev/kafkapartitions";

/// Two operator replicas, the first active; a three-broker cluster with `config`; topic
/// `orders` (one partition, RF 3) led, with every replica in its ISR.
async fn cluster(
    config: serde_json::Value,
) -> (
    FakeApiServer,
    kube::Client,
    Replica,
    Replica,
    Vec<SimBroker>,
) {
    let (server, client) = setup().await;
    let active = Replica::start(&client, "operator-0");
    wait_until("operator-0 leads", || async {
        (active.metrics.leader.get() == 1).then_some(())
    })
    .await;
    let standby = Replica::start(&client, "operator-1");
    create_cluster(&client, json!({ "brokers": 3, "config": config })).await;
    let brokers = start_sim_brokers(&client, 3).await;
    create_topic(&client, "orders", 1, 3, json!({})).await;
    partitions_where(&client, "orders", 1, "orders led", |_, s| s.leader >= 0).await;
    expand_isr(&client, "orders-0", &brokers.iter().collect::<Vec<_>>()).await;
    (server, client, active, standby, brokers)
}

/// Statuses of `orders-0` recorded since `from` (inclusive), failing unless `from` is one.
fn since(history: &History, from: &KafkaPartitionStatus) -> Vec<KafkaPartitionStatus> {
    let all = history.statuses("orders-0");
    let start = all
        .iter()
        .position(|s| s == from)
        .unwrap_or_else(|| panic!("{from:?} not in {all:?}"));
    all[start..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_holds_an_election_whose_write_never_landed_raising_each_epoch_once() {
    let (server, client, active, standby, mut brokers) = cluster(json!({})).await;
    let history = History::record(&client);
    let before = partition_where(&client, "orders-0", "in sync", |_, s| s.isr.len() == 3)
        .await
        .status
        .unwrap_or_default();

    // The active controller decides a failover, and its status write does not land.
    server.fail_next_object_writes_with(STATUS, "orders-0", usize::MAX, 503);
    kill_broker(&mut brokers, before.leader).await;
    wait_until("the active controller's election write failed", || async {
        (active.metrics.controller_writes("error") >= 1).then_some(())
    })
    .await;
    active.kill().await;
    server.fail_next_object_writes_with(STATUS, "orders-0", 0, 503);
    let after_kill = partition_where(&client, "orders-0", "unchanged", |_, _| true).await;
    assert_eq!(after_kill.status.as_ref(), Some(&before), "nothing landed");

    // The standby takes the Lease, waits one broker lease duration, and elects.
    let elected = partition_where(&client, "orders-0", "the standby's election", |_, s| {
        s.leader >= 0 && s.leader != before.leader
    })
    .await
    .status
    .unwrap_or_default();
    assert_eq!(standby.metrics.leader.get(), 1);
    assert_eq!(elected.leader_epoch, before.leader_epoch + 1);
    assert_eq!(elected.partition_epoch, before.partition_epoch + 1);
    let alive: Vec<(i32, i64)> = brokers.iter().map(|b| (b.id, b.incarnation)).collect();
    let in_isr: Vec<(i32, i64)> = elected
        .isr
        .iter()
        .map(|e| (e.broker_id, e.broker_epoch))
        .collect();
    assert_eq!(in_isr, alive, "the live ISR members, at their incarnations");
    assert!(in_isr.iter().any(|(id, _)| *id == elected.leader));
    history.wait_for("orders-0", &elected).await;
    assert_eq!(since(&history, &before), [before.clone(), elected.clone()]);
    history.assert_valid();
    // Counted once the pass's writes are all done, a moment after the object shows them.
    wait_until("the standby counted its election", || async {
        (standby.metrics.partition_changes(Change::CleanElection) >= 1).then_some(())
    })
    .await;
    assert_eq!(standby.metrics.partition_changes(Change::CleanElection), 1);
    standby.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_election_written_but_unanswered_is_answered_by_the_standby_not_held_again() {
    let off = json!({ "auto.leader.rebalance.enable": "false" });
    let (server, client, active, standby, mut brokers) = cluster(off).await;
    let name = "orders-0";
    let preferred = partition_where(&client, name, "led", |_, _| true)
        .await
        .spec
        .replicas[0];
    kill_broker(&mut brokers, preferred).await;
    partition_where(&client, name, "failover", |_, s| {
        s.leader >= 0 && s.leader != preferred
    })
    .await;
    let returned = SimBroker::start(&client, preferred).await;
    let before = expand_isr(&client, name, &[&returned]).await;
    let history = History::record(&client);

    // The active controller holds the requested election, and the answer (removing the
    // annotation) does not land before it dies. (Faults hit every writer, so the request goes in
    // while only status writes fail, and those are let through once answers fail.)
    server.fail_next_object_writes_with(STATUS, name, usize::MAX, 503);
    request_election(&client, name, "preferred").await;
    wait_until("the active controller tried to hold it", || async {
        (active.metrics.controller_writes("error") >= 1).then_some(())
    })
    .await;
    server.fail_next_object_writes_with(OBJECT, name, usize::MAX, 503);
    server.fail_next_object_writes_with(STATUS, name, 0, 503);
    let held = partition_where(&client, name, "the preferred election", |_, s| {
        s.leader == preferred
    })
    .await;
    assert_eq!(held.election_request(), Some("preferred"), "not answered");
    active.kill().await;
    server.fail_next_object_writes_with(OBJECT, name, 0, 503);

    // The standby finds the election done: it answers, and elects nothing.
    let answered = partition_where(&client, name, "the request answered", |p, _| {
        p.election_request().is_none()
    })
    .await;
    let held = held.status.unwrap_or_default();
    assert_eq!(answered.status.as_ref(), Some(&held));
    assert_eq!(held, preferred_elected(&before, preferred));
    wait_until("the standby's ElectionNotNeeded event", || async {
        events_about(&server, &answered.name_any(), "ElectionNotNeeded")
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(standby.metrics.leader.get(), 1);
    assert_eq!(
        standby.metrics.election_requests("preferred", "not_needed"),
        1
    );
    assert_eq!(
        standby.metrics.partition_changes(Change::PreferredElection),
        0
    );
    history.wait_for(name, &held).await;
    assert_eq!(since(&history, &before), [before.clone(), held]);
    history.assert_valid();
    standby.stop().await;
}
