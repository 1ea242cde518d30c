//! reassignment: what `kafka-reassign-partitions.sh --execute` and `--list` do, through the
//! Java admin client (alterPartitionReassignments, listPartitionReassignments), moves a
//! partition of a replication-factor-2 topic off its leader onto the broker that had no
//! replica, while an idempotent acks=all producer writes throughout. The KafkaPartition
//! object shows the move in progress (`addingReplicas`/`removingReplicas`), then the new
//! replica set all in sync led by one of its members; nothing is listed in progress once
//! done, and every acknowledged record reads back.
//!
//! The cluster's automatic balancing is off (`rebalance.enabled: false`), as for anyone who
//! manages assignments with Kafka's tools: a single move leaves the replica counts uneven,
//! which the operator would otherwise even out again.

use std::time::Instant;

use serde_json::Value;
use tributary_e2e::clients::java;

use super::assignments::{Assignments, MoveWatch};
use super::replicated::{acks_go_on, three_brokers, Replicated, RATE, SHORT_LEASES};
use super::READY;

const NS: &str = "reassignment";
const CLUSTER: &str = "moves";
const TOPIC: &str = "payments";
const PARTITIONS: i32 = 3;

/// Runs `KafkaCli admin <op> <args>` against `bootstrap`: its JSON lines.
async fn admin(bootstrap: &str, op: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["admin", "--bootstrap", bootstrap, op];
    all.extend_from_slice(args);
    java(&all, None).await
}

/// The partitions ListPartitionReassignments reports in progress.
async fn listed(bootstrap: &str) -> Vec<String> {
    let lines = admin(bootstrap, "list-reassignments", &[]).await;
    assert!(
        lines.iter().any(|l| l["event"] == "listed"),
        "listPartitionReassignments answered: {lines:?}"
    );
    lines
        .iter()
        .filter(|l| l["event"] == "reassignment")
        .filter_map(|l| l["partition"].as_str().map(str::to_owned))
        .collect()
}

pub(crate) async fn run(driver: crate::env::Driver) {
    let spec = three_brokers(
        "",
        &format!("{SHORT_LEASES}, rebalance: {{enabled: false}}"),
    );
    let mut cluster = Replicated::cluster(driver, NS, CLUSTER, &spec).await;
    cluster.apply_topic(TOPIC, PARTITIONS, 2, "").await;
    let assignments = Assignments::new(&cluster);
    let before = assignments
        .settle("every partition led with both replicas in sync", |all| {
            all.len() == usize::try_from(PARTITIONS).unwrap_or(0)
                && all.iter().all(|p| p.leader >= 0)
        })
        .await;
    let name = format!("{TOPIC}-0");
    let Some(moved) = before.iter().find(|p| p.name == name) else {
        panic!("{name} exists: {before:?}");
    };
    // The leader leaves; the broker without a replica comes.
    let newcomer = (0..3)
        .find(|b| !moved.replicas.contains(b))
        .unwrap_or_else(|| panic!("two replicas on three brokers: {moved:?}"));
    let target: Vec<i64> = moved
        .replicas
        .iter()
        .copied()
        .filter(|b| *b != moved.leader)
        .chain([newcomer])
        .collect();

    let producing = cluster.workload(RATE).start().await;
    cluster.start_group().await;
    producing.wait_for_acks(400, READY).await;
    let watch = MoveWatch::start(&assignments);
    let started = Instant::now();
    let list = target
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let lines = admin(
        &cluster.bootstrap,
        "reassign",
        &["--topic", TOPIC, "--partition", "0", "--replicas", &list],
    )
    .await;
    assert!(
        lines.iter().any(|l| l["event"] == "reassigned"),
        "alterPartitionReassignments accepted: {lines:?}"
    );
    let after = assignments
        .settle(&format!("{name} moved to {target:?}"), |all| {
            all.iter()
                .any(|p| p.name == name && p.replicas == target && target.contains(&p.leader))
        })
        .await;
    let elapsed = started.elapsed();
    let seen = watch.stop();
    cluster.log(&format!(
        "{name} moved {:?} -> {target:?} in {:.1} s",
        moved.replicas,
        elapsed.as_secs_f64()
    ));
    assert!(
        seen.reassigning.iter().any(|p| p.name == name
            && p.adding == vec![newcomer]
            && p.removing == vec![moved.leader]),
        "the KafkaPartition showed the move in progress: {:?}",
        seen.reassigning
    );
    let unchanged: Vec<_> = after
        .iter()
        .filter(|p| p.name != name && p.name.starts_with(TOPIC))
        .collect();
    assert!(
        unchanged.iter().all(|p| before
            .iter()
            .any(|b| b.name == p.name && b.replicas == p.replicas)),
        "only {name} moved: {before:?} -> {after:?}"
    );
    assert_eq!(listed(&cluster.bootstrap).await, Vec::<String>::new());

    acks_go_on(&producing).await;
    let history = producing.stop().await;
    cluster.check("reassignment", &history).await;
}
