//! fresh topic: the Java client's admin creates a topic of four partitions with three replicas
//! (cluster default min.insync.replicas 2) and, in the same process, an idempotent acks=all
//! producer with five requests in flight writes into it the moment it exists, as a Flink job's
//! setup does. Every partition starts with all three replicas in sync (partition epoch 0: the
//! ISR never had to grow), every record is acknowledged, and each is read back exactly once.

use std::collections::BTreeSet;

use serde_json::Value;
use tributary_e2e::clients::java;

use super::replicated::{three_brokers, Replicated, BROKERS};

const NS: &str = "fresh";
const CLUSTER: &str = "newborn";
const TOPIC: &str = "born-busy";
const PARTITIONS: i32 = 4;
const RECORDS: usize = 20_000;

fn events<'a>(lines: &'a [Value], event: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    lines.iter().filter(move |l| l["event"] == event)
}

pub(crate) async fn run(driver: crate::env::Driver) {
    let mut cluster = Replicated::cluster(
        driver,
        NS,
        CLUSTER,
        &three_brokers("min.insync.replicas: \"2\"", ""),
    )
    .await;
    let (count, partitions, rf) = (
        RECORDS.to_string(),
        PARTITIONS.to_string(),
        BROKERS.to_string(),
    );
    let produced = java(
        &[
            "produce",
            "--bootstrap",
            &cluster.bootstrap,
            "--topic",
            TOPIC,
            "--create-partitions",
            &partitions,
            "--create-rf",
            &rf,
            "--count",
            &count,
            "--prop",
            "acks=all",
            "--prop",
            "enable.idempotence=true",
            "--prop",
            "max.in.flight.requests.per.connection=5",
            "--prop",
            "delivery.timeout.ms=60000",
        ],
        None,
    )
    .await;
    let errors: Vec<&Value> = events(&produced, "error").collect();
    assert!(
        errors.is_empty(),
        "refused sends: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert_eq!(events(&produced, "created").count(), 1, "{produced:?}");
    assert_eq!(events(&produced, "ack").count(), RECORDS);
    cluster.log(&format!(
        "{RECORDS} records acknowledged into a topic created just before"
    ));

    cluster.topic = TOPIC;
    let states = cluster
        .wait_all("the topic's partitions", |s| {
            s.len() == usize::try_from(PARTITIONS).unwrap_or(0)
        })
        .await;
    for s in &states {
        assert_eq!(
            (s.isr.len(), s.partition_epoch),
            (3, 0),
            "partition {} started with every replica in sync and kept them: {s:?}",
            s.partition
        );
    }

    // One more than was written: the read ends at its deadline, having seen any duplicate.
    let max = (RECORDS + 1).to_string();
    let read = java(
        &[
            "consume",
            "--bootstrap",
            &cluster.bootstrap,
            "--topic",
            TOPIC,
            "--max",
            &max,
            "--timeout-ms",
            "15000",
        ],
        None,
    )
    .await;
    let values: Vec<&str> = events(&read, "record")
        .filter_map(|r| r["value"].as_str())
        .collect();
    let distinct: BTreeSet<&str> = values.iter().copied().collect();
    assert_eq!(
        (values.len(), distinct.len()),
        (RECORDS, RECORDS),
        "every record once"
    );
}
