//! fresh topic: the Java client's admin creates a topic of four partitions with three replicas
//! (cluster default min.insync.replicas 2) and, in the same process, an idempotent acks=all
//! producer with five requests in flight writes into it the moment it exists, as a Flink job's
//! setup does. Every partition starts with all three replicas in sync (partition epoch 0: the
//! ISR never had to grow), every record is acknowledged, and each is read back exactly once.
//! Then manual replica assignments through the Java admin (`NewTopic(name, assignments)`,
//! `NewPartitions.increaseTo(n, assignments)`) land in the KafkaPartition objects, and invalid
//! ones (an unknown broker, a broker twice, uneven lengths) are refused with Kafka's error.

use std::collections::BTreeSet;

use kube::api::ListParams;
use serde_json::Value;
use tributary_e2e::clients::java;

use crate::env::wait;

use super::replicated::{three_brokers, Replicated, BROKERS};
use super::REACT;

const NS: &str = "fresh";
const CLUSTER: &str = "newborn";
const TOPIC: &str = "born-busy";
const PARTITIONS: i32 = 4;
const RECORDS: usize = 20_000;
/// The topic created with manual replica assignments.
const PLACED: &str = "placed-by-hand";

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

    manual_assignments(&cluster).await;
}

/// `(partition, replicas)` of every KafkaPartition of Kafka topic `topic`, sorted.
async fn replicas_of(cluster: &Replicated, topic: &str) -> Vec<(i64, Vec<i64>)> {
    let Ok(list) = cluster
        .partition_objects()
        .list(&ListParams::default())
        .await
    else {
        return Vec::new();
    };
    let mut out: Vec<(i64, Vec<i64>)> = list
        .items
        .iter()
        .filter(|o| o.data["spec"]["topic"] == topic)
        .filter_map(|o| {
            let spec = &o.data["spec"];
            let replicas = spec["replicas"]
                .as_array()?
                .iter()
                .filter_map(Value::as_i64);
            Some((spec["partition"].as_i64()?, replicas.collect()))
        })
        .collect();
    out.sort();
    out
}

/// Runs `admin <op> --topic PLACED <args>` with the Java admin.
async fn admin(cluster: &Replicated, op: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec![
        "admin",
        op,
        "--bootstrap",
        &cluster.bootstrap,
        "--topic",
        PLACED,
    ];
    all.extend_from_slice(args);
    java(&all, None).await
}

async fn manual_assignments(cluster: &Replicated) {
    let created = admin(
        cluster,
        "create-topic",
        &["--assignments", "0=2,0,1;1=1,2,0"],
    )
    .await;
    assert_eq!(events(&created, "created").count(), 1, "{created:?}");
    let expected = vec![(0, vec![2, 0, 1]), (1, vec![1, 2, 0])];
    wait(
        "the asked replicas in the KafkaPartitions",
        REACT,
        || async { (replicas_of(cluster, PLACED).await == expected).then_some(()) },
    )
    .await;
    let grown = admin(
        cluster,
        "create-partitions",
        &["--count", "3", "--assignments", "2=0,1,2"],
    )
    .await;
    assert_eq!(events(&grown, "partitions-created").count(), 1, "{grown:?}");
    let expected = vec![(0, vec![2, 0, 1]), (1, vec![1, 2, 0]), (2, vec![0, 1, 2])];
    wait(
        "the added partition on the asked replicas",
        REACT,
        || async { (replicas_of(cluster, PLACED).await == expected).then_some(()) },
    )
    .await;
    for (op, args) in [
        (
            "create-partitions",
            ["--count", "4", "--assignments", "3=0,9,1"],
        ),
        (
            "create-partitions",
            ["--count", "4", "--assignments", "3=0,0,1"],
        ),
        (
            "create-partitions",
            ["--count", "5", "--assignments", "3=0,1,2;4=0,1"],
        ),
    ] {
        let refused = admin(cluster, op, &args).await;
        assert!(
            events(&refused, "error").any(|e| e["error"] == "InvalidReplicaAssignmentException"),
            "{args:?}: {refused:?}"
        );
    }
    assert_eq!(
        replicas_of(cluster, PLACED).await.len(),
        3,
        "nothing was added"
    );
}
