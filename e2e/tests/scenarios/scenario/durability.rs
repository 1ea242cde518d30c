//! durability: the leader of a replicated partition is killed with SIGKILL between two rounds
//! of acks=all writes through the Java client; the controller hands the partition to an
//! in-sync follower within the lease bound, writes go on there, the pod restarts the killed
//! broker as a new incarnation that catches up and rejoins the ISR, and every acknowledged
//! record reads back, none twice.

use std::collections::BTreeSet;

use tributary_e2e::clients::java;

use crate::env::{Driver, Signal};

use super::replicated::{three_brokers, Replicated};

const NS: &str = "durability";
const CLUSTER: &str = "vault";
const TOPIC: &str = "ledger";

/// The Java client's acks=all produce of `count` records valued `<prefix><n>`; how many were
/// acknowledged.
async fn produce(bootstrap: &str, prefix: &str, count: usize) -> usize {
    let lines = java(
        &[
            "produce",
            "--bootstrap",
            bootstrap,
            "--topic",
            TOPIC,
            "--count",
            &count.to_string(),
            "--value-prefix",
            prefix,
            "--prop",
            "acks=all",
        ],
        None,
    )
    .await;
    // The client's reasons for the records it could not write, so a failure says why.
    let errors: Vec<String> = lines
        .iter()
        .filter(|l| l["event"] == "error")
        .map(|l| format!("{} {}", l["error"], l["message"]))
        .collect();
    if let Some(first) = errors.first() {
        eprintln!(
            "durability: {} of {count} records not written; first error: {first}; last: {}",
            errors.len(),
            errors.last().map_or("", String::as_str)
        );
    }
    lines.iter().filter(|l| l["event"] == "ack").count()
}

pub(crate) async fn run(driver: Driver) {
    let mut cluster = Replicated::cluster(driver, NS, CLUSTER, &three_brokers("", "")).await;
    cluster.topic(TOPIC, 1, "").await;
    let bootstrap = cluster.bootstrap.clone();
    assert_eq!(produce(&bootstrap, "before-", 300).await, 300);
    let replicated = cluster
        .wait_partition(0, "both followers to be in sync", |s| s.fully_replicated())
        .await;
    let first = replicated.leader;

    let before = cluster.incarnation(first).await;
    cluster.signal(first, Signal::Kill).await;
    cluster
        .wait_partition(0, "an in-sync follower to lead", |s| {
            s.leader >= 0 && s.leader != first
        })
        .await;
    assert_eq!(
        produce(&bootstrap, "after-", 300).await,
        300,
        "acks=all writes succeed on the new leader"
    );
    let now = cluster.next_incarnation(first, before).await;
    cluster
        .wait_partition(
            0,
            "the returned broker to rejoin the ISR as its new incarnation",
            |s| s.isr.contains(&(first, now)) && s.fully_replicated(),
        )
        .await;

    let records = java(
        &[
            "consume",
            "--bootstrap",
            &bootstrap,
            "--topic",
            TOPIC,
            "--max",
            "600",
            "--timeout-ms",
            "60000",
        ],
        None,
    )
    .await;
    let values: Vec<String> = records
        .iter()
        .filter(|l| l["event"] == "record")
        .filter_map(|l| l["value"].as_str().map(str::to_owned))
        .collect();
    let unique: BTreeSet<&String> = values.iter().collect();
    assert_eq!(values.len(), 600, "every acknowledged record, once");
    assert_eq!(unique.len(), 600);
    for n in 0..300 {
        assert!(
            unique.contains(&format!("before-{n}")),
            "before-{n} survived the kill"
        );
    }
}
