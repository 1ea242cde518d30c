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
pub(crate) fn read_values(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["event"] == "record")
        .filter_map(|l| l["value"].as_str().map(str::to_owned))
        .collect()
}

/// The values of the records the Java client's producer had acknowledged (`prefix` + index).
pub(crate) fn acked_values(lines: &[Value], prefix: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["event"] == "ack")
        .filter_map(|l| l["i"].as_i64().map(|i| format!("{prefix}{i}")))
        .collect()
}

pub(crate) async fn produce(
    bootstrap: &str,
    topic: &str,
    count: usize,
    prefix: &str,
) -> Vec<Value> {
    produce_with(
        bootstrap,
        topic,
        count,
        prefix,
        &["acks=all", "enable.idempotence=true"],
    )
    .await
}

/// The Java client's `produce` of `count` records `prefix<i>` with producer settings `props`.
pub(crate) async fn produce_with(
    bootstrap: &str,
    topic: &str,
    count: usize,
    prefix: &str,
    props: &[&str],
) -> Vec<Value> {
    let count = count.to_string();
    let mut args = vec![
        "produce",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--count",
        &count,
        "--value-prefix",
        prefix,
    ];
    for prop in props {
        args.extend(["--prop", prop]);
    }
    java(&args, None).await
}

pub(crate) async fn consume_all(bootstrap: &str, topic: &str, max: usize) -> Vec<Value> {
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
pub(crate) fn positions(cluster: &Operated, topic: &str) -> Vec<(i64, i64)> {
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

/// The bytes of every running replica's log of `topic`-0 from offset 0, by broker.
pub(crate) fn logs(cluster: &Operated, topic: &str) -> Vec<(i32, bytes::Bytes)> {
    cluster
        .brokers
        .iter()
        .filter_map(|b| {
            let p = b.broker.replicas.get(topic, 0)?;
            let end = p.with_log(|log| log.log_end_offset());
            let plan = p.with_log(|log| log.read_plan(0, usize::MAX >> 1, end, true).ok())?;
            Some((b.broker.config.broker_id, plan.load().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_only_a_dead_leader_held_are_truncated_away_when_it_returns_to_a_new_leader() {
    let mut cluster = Operated::start().await;
    let bootstrap = cluster.broker(0).address.clone();
    let created = java(
        &[
            "admin",
            "--bootstrap",
            &bootstrap,
            "create-topic",
            "--topic",
            "drift",
            "--partitions",
            "1",
            "--rf",
            "3",
            "--config",
            "unclean.leader.election.enable=true",
        ],
        None,
    )
    .await;
    assert!(
        !created.iter().any(|l| l["event"] == "error"),
        "{created:?}"
    );
    let layout = served(&cluster, "drift", 1).await;
    let old_leader = i32::try_from(layout[0].1).unwrap_or(-1);
    let followers: Vec<i32> = (0..3).filter(|id| *id != old_leader).collect();
    let bootstrap = cluster.broker(old_leader).address.clone();
    let shared = produce(&bootstrap, "drift", 100, "shared").await;
    assert_eq!(count(&shared, "ack"), 100, "{shared:?}");
    wait_for_isr(&cluster, "drift-0", 3).await;
    wait_until("the followers to hold the shared records", || async {
        let all = positions(&cluster, "drift");
        (all.len() == 3 && all.iter().all(|p| *p == (100, 100))).then_some(())
    })
    .await;

    // The followers die; the controller leaves the leader alone in the ISR, and it takes
    // writes nobody copies.
    for id in &followers {
        cluster.kill(*id);
    }
    wait_for_isr(&cluster, "drift-0", 1).await;
    let lonely = produce(&bootstrap, "drift", 50, "lonely").await;
    assert_eq!(count(&lonely, "ack"), 50, "{lonely:?}");

    // The leader dies; the followers return and, unclean election allowed, one leads.
    cluster.kill(old_leader);
    for id in &followers {
        cluster.restart(*id).await;
    }
    let bootstrap = cluster.broker(followers[0]).address.clone();
    let new_leader = wait_until("a returned follower to lead", || async {
        let status = cluster
            .plane
            .api::<KafkaPartition>()
            .get("drift-0")
            .await
            .ok()?
            .status?;
        followers.contains(&status.leader).then_some(status.leader)
    })
    .await;
    let after = produce(&bootstrap, "drift", 30, "after").await;
    assert_eq!(count(&after, "ack"), 30, "{after:?}");

    // The old leader returns: its 50 lonely records go, and every replica holds the same log.
    cluster.restart(old_leader).await;
    wait_for_isr(&cluster, "drift-0", 3).await;
    let same = wait_until("every replica to hold the same 130 records", || async {
        let logs = logs(&cluster, "drift");
        let ends = positions(&cluster, "drift");
        let first = logs.first()?.1.clone();
        (logs.len() == 3
            && ends.iter().all(|p| p.0 == 130)
            && logs.iter().all(|(_, bytes)| *bytes == first))
        .then_some(first)
    })
    .await;
    assert!(!same.is_empty());
    let read = read_values(&consume_all(&bootstrap, "drift", 130).await);
    assert_eq!(read.len(), 130, "{new_leader} leads: {read:?}");
    assert!(read.iter().all(|v| !v.starts_with("lonely")));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_moves_leadership_before_each_broker_stops_and_loses_nothing() {
    let mut cluster = Operated::start().await;
    cluster.plane.create_topic("rolling", 3, 3).await;
    served(&cluster, "rolling", 3).await;
    for p in 0..3 {
        wait_for_isr(&cluster, &format!("rolling-{p}"), 3).await;
    }
    let mut acked = BTreeSet::new();
    for id in 0..3 {
        let other = (id + 1) % 3;
        let bootstrap = cluster.broker(other).address.clone();
        let prefix = format!("r{id}-");
        let lines = produce(&bootstrap, "rolling", 100, &prefix).await;
        assert_eq!(count(&lines, "ack"), 100, "{lines:?}");
        acked.extend(acked_values(&lines, &prefix));
        // The broker leaves only once it leads nothing: the controller moved its
        // leaderships to in-sync followers while it still served.
        let stopping = cluster.broker(id).broker.clone();
        cluster.stop_controlled(id).await;
        let image = stopping.metadata.image();
        let still_led = image
            .replicas_of(id)
            .filter(|(_, _, s)| s.leader == id)
            .count();
        assert_eq!(still_led, 0, "broker {id} handed every leadership over");
        drop(stopping);
        cluster.restart(id).await;
        for p in 0..3 {
            wait_for_isr(&cluster, &format!("rolling-{p}"), 3).await;
        }
    }
    let bootstrap = cluster.broker(0).address.clone();
    let read = read_values(&consume_all(&bootstrap, "rolling", 300).await);
    assert_eq!(read.len(), 300, "each record once");
    assert_eq!(read.into_iter().collect::<BTreeSet<_>>(), acked);
    cluster.stop().await;
}
