//! Replication between three brokers with the operator's controllers, through real clients:
//! followers copy their leader's log and join the ISR by themselves, a SIGKILLed leader is
//! replaced by an in-sync follower holding every acknowledged record, and the killed broker
//! returns as a new incarnation, catches up and rejoins.

use std::collections::BTreeSet;

use serde_json::Value;
use tributary_crds::KafkaPartition;
use tributary_e2e::clients::java;

use crate::operated::{count, served, wait_for_isr, Operated};
use crate::support::wait_until;

/// The values of the records the Java client read.
fn read_values(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["event"] == "record")
        .filter_map(|l| l["value"].as_str().map(str::to_owned))
        .collect()
}

/// The values of the records the Java client's producer had acknowledged (`prefix` + index).
fn acked_values(lines: &[Value], prefix: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["event"] == "ack")
        .filter_map(|l| l["i"].as_i64().map(|i| format!("{prefix}{i}")))
        .collect()
}

async fn produce(bootstrap: &str, topic: &str, count: usize, prefix: &str) -> Vec<Value> {
    java(
        &[
            "produce",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--value-prefix",
            prefix,
            "--prop",
            "acks=all",
            "--prop",
            "enable.idempotence=true",
        ],
        None,
    )
    .await
}

async fn consume_all(bootstrap: &str, topic: &str, max: usize) -> Vec<Value> {
    java(
        &[
            "consume",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--max",
            &max.to_string(),
            "--timeout-ms",
            "30000",
        ],
        None,
    )
    .await
}

/// Log end and high watermark of every running broker's replica of `topic`-0.
fn positions(cluster: &Operated, topic: &str) -> Vec<(i64, i64)> {
    cluster
        .brokers
        .iter()
        .filter_map(|b| b.broker.replicas.get(topic, 0))
        .map(|p| p.with_log(|log| (log.log_end_offset(), log.high_watermark())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_leader_is_replaced_by_an_in_sync_follower_holding_every_acknowledged_record() {
    let mut cluster = Operated::start().await;
    cluster.plane.create_topic("ledger", 1, 3).await;
    let layout = served(&cluster, "ledger", 1).await;
    let leader = i32::try_from(layout[0].1).unwrap_or(-1);
    let survivor = (0..3).find(|id| *id != leader).unwrap_or(0);
    let bootstrap = cluster.broker(survivor).address.clone();

    let first = produce(&bootstrap, "ledger", 400, "a").await;
    assert_eq!(count(&first, "ack"), 400, "{first:?}");
    // Both followers join by themselves, and every replica holds the same log.
    let status = wait_for_isr(&cluster, "ledger-0", 3).await;
    assert_eq!(status.leader, leader);
    wait_until(
        "every replica to hold all 400 records as committed",
        || async {
            let all = positions(&cluster, "ledger");
            (all.len() == 3 && all.iter().all(|p| *p == (400, 400))).then_some(())
        },
    )
    .await;

    cluster.kill(leader);
    let moved = wait_until("an in-sync follower to lead", || async {
        let object = cluster
            .plane
            .api::<KafkaPartition>()
            .get("ledger-0")
            .await
            .ok()?;
        let status = object.status?;
        (status.leader >= 0 && status.leader != leader).then_some(status)
    })
    .await;
    assert!(moved.leader_epoch > status.leader_epoch);
    let second = produce(&bootstrap, "ledger", 200, "b").await;
    assert_eq!(count(&second, "ack"), 200, "{second:?}");

    // The killed broker returns as a new incarnation, catches up and rejoins the ISR.
    cluster.restart(leader).await;
    let rejoined = wait_for_isr(&cluster, "ledger-0", 3).await;
    let returned = rejoined
        .isr
        .iter()
        .find(|e| e.broker_id == leader)
        .map(|e| e.broker_epoch);
    assert_eq!(returned, Some(2), "rejoined under its new incarnation");
    wait_until("every replica to hold all 600 records", || async {
        let all = positions(&cluster, "ledger");
        (all.len() == 3 && all.iter().all(|p| p.0 == 600)).then_some(())
    })
    .await;

    let read = consume_all(&bootstrap, "ledger", 600).await;
    let read = read_values(&read);
    let acked: BTreeSet<String> = acked_values(&first, "a")
        .into_iter()
        .chain(acked_values(&second, "b"))
        .collect();
    assert_eq!(read.len(), 600, "each record once");
    assert_eq!(read.iter().cloned().collect::<BTreeSet<_>>(), acked);
    cluster.stop().await;
}
