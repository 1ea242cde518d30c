//! The controller role's elections beyond failover by Lease expiry, with the whole operator
//! against the in-memory API and simulated brokers: a leader a live broker reports gone (its
//! address refused the broker's connections) is failed over without waiting for its Lease,
//! leadership returns to the preferred replica once it is back in sync (auto leader
//! rebalance), and election requests (the ElectLeaders annotation) are held or refused,
//! answered with an Event and removed.

use crate::common;

use common::{
    create_cluster, create_topic, events_about, expand_isr, kill_broker, partition_where,
    partitions_where, preferred_elected, request_election, setup, shrink_isr_to_leader,
    start_sim_brokers, History, Replica, SimBroker, NS,
};
use kube::ResourceExt;
use serde_json::json;
use tributary_crds::{IsrEntry, KafkaPartition};
use tributary_e2e::FakeApiServer;
use tributary_operator::controller::election::Change;
use tributary_operator::metrics::Metrics;

/// A fresh API holding cluster `demo` with `config`, three simulated brokers, and the
/// operator.
async fn operated(
    config: serde_json::Value,
) -> (FakeApiServer, kube::Client, Replica, Vec<SimBroker>) {
    let (server, client) = setup().await;
    let operator = Replica::start(&client, "operator-0");
    create_cluster(&client, json!({ "brokers": 3, "config": config })).await;
    let brokers = start_sim_brokers(&client, 3).await;
    (server, client, operator, brokers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_a_live_broker_reports_refusing_its_connections_is_failed_over_before_its_lease_ends(
) {
    // Leases far longer than the test may wait: only the report can move the leadership.
    let lease = 10 * common::DEADLINE;
    let (_server, client) = setup().await;
    let operator = Replica::start(&client, "operator-0");
    create_cluster(&client, json!({ "brokers": 3 })).await;
    let mut brokers = Vec::new();
    for id in 0..3 {
        brokers.push(SimBroker::start_with_lease(&client, id, lease).await);
    }
    create_topic(&client, "orders", 1, 3, json!({})).await;
    let led = partitions_where(&client, "orders", 1, "led", |_, s| s.leader >= 0).await;
    let name = led[0].name_any();
    let status = expand_isr(&client, &name, &brokers.iter().collect::<Vec<_>>()).await;
    let dead = status.leader;
    let incarnation = brokers
        .iter()
        .find(|b| b.id == dead)
        .map_or(-1, |b| b.incarnation);
    kill_broker(&mut brokers, dead).await;
    let Some(reporter) = brokers.first() else {
        panic!("no live broker left to report");
    };

    reporter.report_refused(dead, incarnation).await;
    let moved = partition_where(&client, &name, "failover on the report", |_, s| {
        s.leader >= 0 && s.leader != dead
    })
    .await;
    let moved = moved.status.unwrap_or_default();
    assert_eq!(moved.leader_epoch, status.leader_epoch + 1, "{moved:?}");
    assert!(
        moved.isr.iter().all(|e| e.broker_id != dead),
        "the dead broker left the ISR: {moved:?}"
    );
    operator.stop().await;
}

/// Whether `p` carries no election request.
fn unrequested(p: &KafkaPartition) -> bool {
    p.election_request().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_returns_to_the_preferred_replica_once_it_is_back_in_sync() {
    let fast = json!({ "leader.imbalance.check.interval.seconds": "1" });
    let (server, client, operator, mut brokers) = operated(fast).await;
    create_topic(&client, "orders", 3, 3, json!({})).await;
    let led = partitions_where(&client, "orders", 3, "led by preferred replicas", |p, s| {
        s.leader == p.spec.replicas[0]
    })
    .await;
    let history = History::record(&client);
    for p in &led {
        expand_isr(&client, &p.name_any(), &brokers.iter().collect::<Vec<_>>()).await;
    }
    let name = led[0].name_any();
    let preferred = led[0].spec.replicas[0];

    // The preferred replica dies: the next in-sync replica leads.
    kill_broker(&mut brokers, preferred).await;
    let moved = partition_where(&client, &name, "failover", |_, s| {
        s.leader >= 0 && s.leader != preferred
    })
    .await;
    let moved_to = moved.status.map_or(-1, |s| s.leader);
    wait_until_imbalance(&operator.metrics, 1).await;

    // It returns as a new incarnation; once its leader has seen it catch up and re-admitted it,
    // the next imbalance check (broker ratio 1/1 > 10%) gives it its leadership back.
    let returned = SimBroker::start(&client, preferred).await;
    let expanded = expand_isr(&client, &name, &[&returned]).await;
    assert_eq!(
        expanded.leader, moved_to,
        "no move while the preferred replica was out of sync"
    );
    let back = partition_where(&client, &name, "leadership back", |_, s| {
        s.leader == preferred
    })
    .await;
    assert_eq!(
        back.status,
        Some(preferred_elected(&expanded, preferred)),
        "both epochs once, the ISR as the leader left it"
    );
    // Events go out after the outcome is counted.
    wait_for_event(&server, "orders", "PreferredLeadersElected").await;
    assert_eq!(
        operator
            .metrics
            .partition_changes(Change::PreferredElection),
        1
    );
    wait_until_imbalance(&operator.metrics, 0).await;
    if let Some(back) = &back.status {
        history.wait_for(&name, back).await;
    }
    history.assert_valid();
    let leaders: Vec<i32> = history.statuses(&name).iter().map(|s| s.leader).collect();
    assert_eq!(
        dedup(&leaders),
        [preferred, moved_to, preferred],
        "{:?}",
        history.statuses(&name)
    );
    operator.stop().await;
}

/// `v` without consecutive repeats.
fn dedup(v: &[i32]) -> Vec<i32> {
    let mut out = v.to_vec();
    out.dedup();
    out
}

async fn wait_until_imbalance(metrics: &Metrics, n: i64) {
    common::wait_until(&format!("preferred replica imbalance {n}"), || async {
        (metrics.preferred_replica_imbalance(NS, "demo") == n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_requests_are_held_or_refused_answered_and_removed() {
    let off = json!({ "auto.leader.rebalance.enable": "false" });
    let (server, client, operator, mut brokers) = operated(off).await;
    create_topic(&client, "logs", 1, 3, json!({})).await;
    create_topic(&client, "orders", 1, 3, json!({})).await;
    let history = History::record(&client);

    // Unclean: the leader of logs-0 dies alone in its ISR (its followers had fallen out), so
    // the partition goes offline (unclean.leader.election.enable is off); an unclean request
    // elects a live replica.
    partitions_where(&client, "logs", 1, "logs led", |_, s| s.leader >= 0).await;
    let dead = shrink_isr_to_leader(&client, "logs-0").await.leader;
    kill_broker(&mut brokers, dead).await;
    partition_where(&client, "logs-0", "logs-0 offline", |_, s| s.leader == -1).await;
    request_election(&client, "logs-0", "unclean").await;
    let elected = partition_where(&client, "logs-0", "unclean election", |p, s| {
        s.leader >= 0 && unrequested(p)
    })
    .await;
    let s = elected.status.unwrap_or_default();
    assert_ne!(s.leader, dead);
    assert_eq!(s.isr.len(), 1, "the new leader alone: {s:?}");
    // Events go out after the outcome is counted.
    let event = wait_for_event(&server, "logs-0", "ElectedOnRequest").await;
    assert_eq!(
        event["type"], "Warning",
        "an unclean election may lose records"
    );
    assert_eq!(
        operator.metrics.partition_changes(Change::UncleanElection),
        1
    );
    assert_eq!(operator.metrics.election_requests("unclean", "elected"), 1);
    brokers.push(SimBroker::start(&client, dead).await);

    // Move orders-0's leadership off its preferred replica and bring that replica back in sync.
    let orders = partitions_where(&client, "orders", 1, "orders led", |_, s| s.leader >= 0).await;
    let preferred = orders[0].spec.replicas[0];
    expand_isr(&client, "orders-0", &brokers.iter().collect::<Vec<_>>()).await;
    kill_broker(&mut brokers, preferred).await;
    partition_where(&client, "orders-0", "orders-0 failover", |_, s| {
        s.leader >= 0 && s.leader != preferred
    })
    .await;
    let returned = SimBroker::start(&client, preferred).await;
    let in_sync = expand_isr(&client, "orders-0", &[&returned]).await;

    // A value that names no election is removed with a Warning, changing nothing.
    request_election(&client, "orders-0", "soon").await;
    let p = partition_where(&client, "orders-0", "invalid request removed", |p, _| {
        unrequested(p)
    })
    .await;
    assert_eq!(p.status.as_ref(), Some(&in_sync));
    wait_for_event(&server, "orders-0", "InvalidElectionRequest").await;
    assert_eq!(operator.metrics.election_requests("invalid", "invalid"), 1);

    // Preferred: held although auto leader rebalancing is off.
    request_election(&client, "orders-0", "preferred").await;
    let p = partition_where(&client, "orders-0", "preferred election", |p, s| {
        s.leader == preferred && unrequested(p)
    })
    .await;
    assert_eq!(p.status, Some(preferred_elected(&in_sync, preferred)));
    wait_for_event(&server, "orders-0", "ElectedOnRequest").await;
    assert_eq!(
        operator.metrics.election_requests("preferred", "elected"),
        1
    );

    // Unclean for a partition with a leader: not needed, nothing changes.
    request_election(&client, "orders-0", "unclean").await;
    let again = partition_where(&client, "orders-0", "unclean request answered", |p, _| {
        unrequested(p)
    })
    .await;
    assert_eq!(again.status, p.status);
    wait_for_event(&server, "orders-0", "ElectionNotNeeded").await;
    assert_eq!(
        operator.metrics.election_requests("unclean", "not_needed"),
        1
    );

    // Preferred while the preferred replica is dead: refused, with why.
    returned.kill().await;
    partition_where(&client, "orders-0", "failover again", |_, s| {
        s.leader >= 0 && s.leader != preferred
    })
    .await;
    request_election(&client, "orders-0", "preferred").await;
    partition_where(&client, "orders-0", "refused request removed", |p, _| {
        unrequested(p)
    })
    .await;
    let refused = wait_for_event(&server, "orders-0", "ElectionNotPossible").await;
    let note = refused["note"].as_str().unwrap_or_default();
    assert!(
        note.contains(&format!("preferred replica {preferred} is not alive")),
        "{note}"
    );
    assert_eq!(
        operator
            .metrics
            .election_requests("preferred", "not_possible"),
        1
    );

    history.assert_valid();
    let last: Vec<IsrEntry> = history
        .statuses("orders-0")
        .last()
        .map(|s| s.isr.clone())
        .unwrap_or_default();
    assert!(!last.iter().any(|e| e.broker_id == preferred));
    operator.stop().await;
}

/// Waits for an Event with `reason` about `name`; returns the first.
async fn wait_for_event(
    server: &tributary_e2e::FakeApiServer,
    name: &str,
    reason: &str,
) -> serde_json::Value {
    common::wait_until(&format!("a {reason} event about {name}"), || async {
        events_about(server, name, reason).into_iter().next()
    })
    .await
}
