//! Failover under production, judged by what clients saw: leaders killed, changed three times in
//! a few seconds, cut off from the API server; followers killed right after an ack, restarted
//! with an empty disk, or cut off from their leader. Every acknowledged record survives, nothing
//! above the high watermark is ever visible, and a stale or empty replica is never elected.

use std::time::Duration;

use serde_json::Value;
use tributary_crds::{KafkaPartition, KafkaPartitionStatus};
use tributary_e2e::clients::java;
use tributary_e2e::history::{check, read_back, Producer, Workload};

use crate::operated::{count, kcat, served, wait_for_isr, Operated, LEASES};
use crate::replication::{consume_all, logs, positions, produce, produce_with, read_values};
use crate::support::wait_until;

/// The status of KafkaPartition `name`, if it has one.
async fn status(cluster: &Operated, name: &str) -> Option<KafkaPartitionStatus> {
    cluster
        .plane
        .api::<KafkaPartition>()
        .get(name)
        .await
        .ok()?
        .status
}

/// Waits until KafkaPartition `name` is led by a broker other than `old`; its status.
async fn new_leader(cluster: &Operated, name: &str, old: i32) -> KafkaPartitionStatus {
    wait_until(
        &format!("{name} led by a broker other than {old}"),
        || async {
            status(cluster, name)
                .await
                .filter(|s| s.leader >= 0 && s.leader != old)
        },
    )
    .await
}

/// Creates `topic` (one partition, three replicas) through the Java admin with `configs`.
async fn create_topic(cluster: &Operated, topic: &str, configs: &[&str]) {
    let bootstrap = cluster.broker(0).address.clone();
    let mut args = vec![
        "admin",
        "--bootstrap",
        &bootstrap,
        "create-topic",
        "--topic",
        topic,
        "--partitions",
        "1",
        "--rf",
        "3",
    ];
    for config in configs {
        args.extend(["--config", config]);
    }
    let created = java(&args, None).await;
    assert!(
        !created.iter().any(|l| l["event"] == "error"),
        "{created:?}"
    );
}

/// The error classes of the Java client's failed sends.
fn errors(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["event"] == "error")
        .filter_map(|l| l["error"].as_str().map(str::to_owned))
        .collect()
}

/// SIGKILLs the leader while `client` produces idempotently; the history must be clean, every
/// record acknowledged, and the pause between acknowledgements within the lease bound.
async fn kill_the_leader_during_production(client: Producer) {
    let mut cluster = Operated::start().await;
    cluster.plane.create_topic("history", 1, 3).await;
    let layout = served(&cluster, "history", 1).await;
    let leader = i32::try_from(layout[0].1).unwrap_or(-1);
    wait_for_isr(&cluster, "history-0", 3).await;
    let survivor = (0..3).find(|id| *id != leader).unwrap_or(0);
    let bootstrap = cluster.broker(survivor).address.clone();
    let mut workload = Workload::new(&bootstrap, "history");
    workload.count = Some(2_000);
    workload.rate = Some(400.0);
    workload.client = client;
    let producing = workload.start().await;
    producing.wait_for_acks(400, Duration::from_secs(60)).await;
    cluster.kill(leader);
    let history = producing.finish().await;
    let reads = read_back(&bootstrap, "history", Duration::from_secs(60)).await;
    check(&history, &reads).assert_clean();
    assert_eq!(
        history.acked(),
        2_000,
        "every record acknowledged after the failover"
    );
    let gap = history.longest_ack_gap().unwrap_or_default();
    println!("{client:?}: longest pause between acknowledgements across the kill: {gap:?}");
    assert!(
        gap < Duration::from_secs(15),
        "produce resumed within the lease bound: {gap:?}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_during_java_idempotent_production_loses_and_duplicates_nothing() {
    kill_the_leader_during_production(Producer::Java).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_during_librdkafka_idempotent_production_loses_and_duplicates_nothing() {
    kill_the_leader_during_production(Producer::Librdkafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_leader_changes_in_a_few_seconds_lose_nothing_and_leave_identical_replicas() {
    let mut cluster = Operated::start().await;
    cluster.plane.create_topic("kip279", 1, 3).await;
    served(&cluster, "kip279", 1).await;
    let first = wait_for_isr(&cluster, "kip279-0", 3).await;
    let mut workload = Workload::new(&cluster.bootstrap(), "kip279");
    workload.count = Some(3_000);
    workload.rate = Some(500.0);
    let producing = workload.start().await;
    producing.wait_for_acks(300, Duration::from_secs(60)).await;

    // Kill, hand over, kill: each time the old leader comes straight back as a follower, and
    // the next change starts as soon as two replicas are in sync again.
    let started = std::time::Instant::now();
    let mut leader = first.leader;
    for round in 0..3 {
        wait_until("two in-sync replicas", || async {
            status(&cluster, "kip279-0")
                .await
                .filter(|s| s.isr.len() >= 2 && s.leader >= 0)
        })
        .await;
        if round == 1 {
            cluster.stop_controlled(leader).await;
        } else {
            cluster.kill(leader);
        }
        let next = new_leader(&cluster, "kip279-0", leader).await;
        cluster.restart(leader).await;
        leader = next.leader;
    }
    println!("three leader changes took {:?}", started.elapsed());
    let last = status(&cluster, "kip279-0").await;
    assert!(
        last.map_or(0, |s| s.leader_epoch) >= first.leader_epoch + 3,
        "three new leader epochs"
    );

    let history = producing.finish().await;
    let bootstrap = cluster.broker(leader).address.clone();
    let reads = read_back(&bootstrap, "kip279", Duration::from_secs(60)).await;
    check(&history, &reads).assert_clean();
    assert_eq!(
        history.acked(),
        3_000,
        "every record acknowledged; the others by error: {:?}",
        history.failures()
    );
    wait_for_isr(&cluster, "kip279-0", 3).await;
    wait_until("every replica to hold the same log", || async {
        let logs = logs(&cluster, "kip279");
        let ends = positions(&cluster, "kip279");
        let first = logs.first()?.1.clone();
        (logs.len() == 3
            && ends.iter().all(|p| *p == ends[0])
            && logs.iter().all(|(_, bytes)| *bytes == first))
        .then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_killed_right_after_an_ack_then_made_leader_keeps_every_acknowledged_record() {
    let mut cluster = Operated::start().await;
    // Only an unclean election can make a restarted follower lead before it rejoins the ISR:
    // exactly the case where truncating to its own (stale) high watermark would lose records.
    create_topic(&cluster, "kip101", &["unclean.leader.election.enable=true"]).await;
    let layout = served(&cluster, "kip101", 1).await;
    let leader = i32::try_from(layout[0].1).unwrap_or(-1);
    let followers: Vec<i32> = (0..3).filter(|id| *id != leader).collect();
    let (follower, other) = (followers[0], followers[1]);
    wait_for_isr(&cluster, "kip101-0", 3).await;
    let bootstrap = cluster.broker(leader).address.clone();
    let acked = produce(&bootstrap, "kip101", 200, "a").await;
    assert_eq!(count(&acked, "ack"), 200, "{acked:?}");

    // Right after the ack, before it can learn the new high watermark, the follower dies;
    // then the other replicas die too, and it comes back alone.
    cluster.kill(follower);
    cluster.kill(leader);
    cluster.kill(other);
    cluster.restart(follower).await;
    let recovered = wait_until("the restarted follower's replica", || async {
        positions(&cluster, "kip101").first().map(|p| p.0)
    })
    .await;
    assert_eq!(
        recovered, 200,
        "the restarted follower kept every record it had acknowledged"
    );
    wait_until("the returned follower to lead", || async {
        status(&cluster, "kip101-0")
            .await
            .filter(|s| s.leader == follower)
    })
    .await;
    let bootstrap = cluster.broker(follower).address.clone();
    let after = produce(&bootstrap, "kip101", 30, "b").await;
    assert_eq!(count(&after, "ack"), 30, "{after:?}");
    let read = read_values(&consume_all(&bootstrap, "kip101", 230).await);
    assert_eq!(read.len(), 230, "{read:?}");

    cluster.restart(leader).await;
    cluster.restart(other).await;
    wait_for_isr(&cluster, "kip101-0", 3).await;
    wait_until("every replica to hold the same 230 records", || async {
        let logs = logs(&cluster, "kip101");
        let first = logs.first()?.1.clone();
        let ends = positions(&cluster, "kip101");
        (logs.len() == 3
            && ends.iter().all(|p| p.0 == 230)
            && logs.iter().all(|(_, b)| *b == first))
        .then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restarted_with_an_empty_disk_is_never_elected_and_catches_up_from_scratch() {
    let mut cluster = Operated::start().await;
    cluster.plane.create_topic("blank", 1, 3).await;
    let layout = served(&cluster, "blank", 1).await;
    let leader = i32::try_from(layout[0].1).unwrap_or(-1);
    let followers: Vec<i32> = (0..3).filter(|id| *id != leader).collect();
    let (blank, other) = (followers[0], followers[1]);
    wait_for_isr(&cluster, "blank-0", 3).await;
    let bootstrap = cluster.broker(leader).address.clone();
    let acked = produce(&bootstrap, "blank", 100, "a").await;
    assert_eq!(count(&acked, "ack"), 100, "{acked:?}");

    // Every replica dies, the leader last (so it is the last ISR member the controller
    // keeps); one comes back with an empty data directory.
    for (id, left) in [(blank, 2), (other, 1)] {
        cluster.kill(id);
        wait_for_isr(&cluster, "blank-0", left).await;
    }
    cluster.kill(leader);
    wait_until("the partition to go offline", || async {
        status(&cluster, "blank-0").await.filter(|s| s.leader < 0)
    })
    .await;
    cluster.wipe(blank);
    cluster.restart(blank).await;
    for _ in 0..30 {
        let now = status(&cluster, "blank-0").await;
        assert!(
            now.as_ref().is_some_and(|s| s.leader < 0),
            "an empty replica was elected: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The last leader returns and leads; the empty replica copies everything from it.
    cluster.restart(leader).await;
    let back = new_leader(&cluster, "blank-0", -1).await;
    assert_eq!(back.leader, leader);
    cluster.restart(other).await;
    wait_for_isr(&cluster, "blank-0", 3).await;
    wait_until("every replica to hold all 100 records", || async {
        let all = positions(&cluster, "blank");
        (all.len() == 3 && all.iter().all(|p| *p == (100, 100))).then_some(())
    })
    .await;
    let read = read_values(&consume_all(&cluster.broker(blank).address, "blank", 100).await);
    assert_eq!(read.len(), 100);
    cluster.stop().await;
}

/// A follower that stops fetching leaves the ISR after 10 s here: long enough for the Java
/// client to start and send while both are still in it.
fn short_replica_lag(flags: &mut tributary_broker::config::Flags) {
    flags.replica_lag_time_max_ms = Some(10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_that_stop_fetching_hold_acks_all_then_leave_the_isr_and_min_isr_refuses_writes()
{
    let mut cluster = Operated::start_tuned(short_replica_lag).await;
    create_topic(&cluster, "minisr", &["min.insync.replicas=2"]).await;
    let layout = served(&cluster, "minisr", 1).await;
    let leader = i32::try_from(layout[0].1).unwrap_or(-1);
    wait_for_isr(&cluster, "minisr-0", 3).await;
    let bootstrap = cluster.broker(leader).address.clone();
    let first = produce(&bootstrap, "minisr", 50, "a").await;
    assert_eq!(count(&first, "ack"), 50, "{first:?}");
    wait_until("every replica to hold the 50 records", || async {
        let all = positions(&cluster, "minisr");
        (all.len() == 3 && all.iter().all(|p| *p == (50, 50))).then_some(())
    })
    .await;

    // Both followers stop fetching but stay registered: only the leader can tell they lag.
    for id in (0..3).filter(|id| *id != leader) {
        cluster.isolate(id);
    }
    let once = ["acks=all", "enable.idempotence=false", "retries=0"];
    let held = {
        let bootstrap = bootstrap.clone();
        tokio::spawn(async move { produce_with(&bootstrap, "minisr", 1, "held", &once).await })
    };
    wait_until(
        "the held record to be appended above the high watermark",
        || async {
            let p = positions(&cluster, "minisr");
            (p == vec![(51, 50)]).then_some(())
        },
    )
    .await;
    let seen = kcat(
        &[
            "-C",
            "-b",
            &bootstrap,
            "-t",
            "minisr",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        "",
    )
    .await;
    assert_eq!(
        positions(&cluster, "minisr"),
        vec![(51, 50)],
        "the high watermark held while the consumer read"
    );
    assert_eq!(
        seen.lines().count(),
        50,
        "nothing above the high watermark: {seen}"
    );

    // The leader drops them after replica.lag.time.max.ms: the held write was appended but is
    // answered NOT_ENOUGH_REPLICAS_AFTER_APPEND, the next is refused, acks=1 still works.
    let held = held.await.unwrap_or_else(|e| panic!("producer task: {e}"));
    assert_eq!(
        errors(&held),
        vec!["NotEnoughReplicasAfterAppendException"],
        "{held:?}"
    );
    wait_for_isr(&cluster, "minisr-0", 1).await;
    let refused = produce_with(&bootstrap, "minisr", 1, "refused", &once).await;
    assert_eq!(
        errors(&refused),
        vec!["NotEnoughReplicasException"],
        "{refused:?}"
    );
    let leader_only = produce_with(&bootstrap, "minisr", 5, "one", &["acks=1"]).await;
    assert_eq!(count(&leader_only, "ack"), 5, "{leader_only:?}");

    for id in (0..3).filter(|id| *id != leader) {
        cluster.restart(id).await;
    }
    wait_for_isr(&cluster, "minisr-0", 3).await;
    let last = produce(&bootstrap, "minisr", 10, "z").await;
    assert_eq!(count(&last, "ack"), 10, "{last:?}");
    let read = read_values(&consume_all(&bootstrap, "minisr", 66).await);
    assert_eq!(read.len(), 66, "{read:?}");
    assert!(read.iter().any(|v| v == "held0") && !read.iter().any(|v| v == "refused0"));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_off_from_the_api_server_stops_acknowledging_before_another_is_elected() {
    let cluster = Operated::start().await;
    cluster.plane.create_topic("cut", 1, 3).await;
    let layout = served(&cluster, "cut", 1).await;
    let leader = i32::try_from(layout[0].1).unwrap_or(-1);
    wait_for_isr(&cluster, "cut-0", 3).await;
    let mut workload = Workload::new(&cluster.bootstrap(), "cut");
    workload.count = Some(2_500);
    workload.rate = Some(400.0);
    let producing = workload.start().await;
    producing.wait_for_acks(400, Duration::from_secs(60)).await;

    // The leader keeps running and serving clients, but its Lease can no longer be renewed.
    let lease = format!("demo-broker-{leader}");
    cluster
        .plane
        .server
        .fail_next_object_writes_with(LEASES, &lease, usize::MAX, 503);
    new_leader(&cluster, "cut-0", leader).await;
    assert!(
        cluster.broker(leader).broker.replicas.fence().is_fenced(),
        "the old leader had fenced itself by the time another was elected"
    );
    // Reachable again: it follows the new leader and rejoins.
    cluster
        .plane
        .server
        .fail_next_object_writes_with(LEASES, &lease, 0, 503);

    let history = producing.finish().await;
    let bootstrap = cluster.broker(leader).address.clone();
    let reads = read_back(&bootstrap, "cut", Duration::from_secs(60)).await;
    check(&history, &reads).assert_clean();
    assert_eq!(
        history.acked(),
        2_500,
        "every record acknowledged; the others by error: {:?}",
        history.failures()
    );
    wait_for_isr(&cluster, "cut-0", 3).await;
    wait_until("every replica to hold the same log", || async {
        let logs = logs(&cluster, "cut");
        let first = logs.first()?.1.clone();
        (logs.len() == 3 && logs.iter().all(|(_, b)| *b == first)).then_some(())
    })
    .await;
    cluster.stop().await;
}

/// The resource whose watch events [`a_leader_back_from_a_lapse_leads_again_only_once_it_has_seen_the_elections_it_missed`]
/// holds back.
const PARTITIONS: &str = "tributary.dev/kafkapartitions";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_back_from_a_lapse_leads_again_only_once_it_has_seen_the_elections_it_missed() {
    let cluster = Operated::start().await;
    cluster.plane.create_topic("lapse", 1, 3).await;
    let layout = served(&cluster, "lapse", 1).await;
    let leader = i32::try_from(layout[0].1).unwrap_or(-1);
    wait_for_isr(&cluster, "lapse-0", 3).await;

    // Watches of KafkaPartitions stall (as a frozen process's would), and the leader's Lease
    // cannot be renewed: the controller elects another leader the old one does not hear of.
    cluster.plane.server.hold_watches(PARTITIONS);
    let lease = format!("demo-broker-{leader}");
    cluster
        .plane
        .server
        .fail_next_object_writes_with(LEASES, &lease, usize::MAX, 503);
    let elected = new_leader(&cluster, "lapse-0", leader).await;
    let old = cluster.broker(leader);
    assert!(old.broker.replicas.fence().is_fenced());

    // Its renewals succeed again, but its image still names it the leader: it stays fenced,
    // so a write sent to it is refused rather than acknowledged and later truncated.
    cluster
        .plane
        .server
        .fail_next_object_writes_with(LEASES, &lease, 0, 503);
    wait_until("the old leader to renew its Lease again", || async {
        let renewed = cluster
            .plane
            .server
            .get(LEASES, crate::support::NS, &lease)?;
        let time = renewed["spec"]["renewTime"].as_str()?.to_owned();
        let parsed: k8s_openapi::jiff::Timestamp = time.parse().ok()?;
        (k8s_openapi::jiff::Timestamp::now()
            .duration_since(parsed)
            .as_secs_f64()
            < 0.4)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let image = old.broker.metadata.image();
    let believed = image
        .topic("lapse")
        .and_then(|t| t.partition(0))
        .map(|p| p.leader);
    assert_eq!(
        believed,
        Some(leader),
        "the stalled watch kept the election from it"
    );
    assert!(
        old.broker.replicas.fence().is_fenced(),
        "a renewal alone does not let a broker lead on an image older than the election"
    );
    let stale = produce_with(
        &old.address,
        "lapse",
        1,
        "stale",
        &[
            "acks=1",
            "enable.idempotence=false",
            "retries=0",
            "delivery.timeout.ms=5000",
            "request.timeout.ms=4000",
        ],
    )
    .await;
    assert_eq!(count(&stale, "ack"), 0, "{stale:?}");

    // The watches deliver the election: it follows the new leader and leads nothing.
    cluster.plane.server.release_watches(PARTITIONS);
    wait_until("the old leader to lift its fence", || async {
        (!old.broker.replicas.fence().is_fenced()).then_some(())
    })
    .await;
    let done = produce(&cluster.bootstrap(), "lapse", 20, "after").await;
    assert_eq!(count(&done, "ack"), 20, "{done:?}");
    wait_for_isr(&cluster, "lapse-0", 3).await;
    let read =
        read_values(&consume_all(&cluster.broker(elected.leader).address, "lapse", 20).await);
    assert_eq!(read.len(), 20, "{read:?}");
    assert!(!read.iter().any(|v| v.starts_with("stale")), "{read:?}");
    cluster.stop().await;
}

/// The broker coordinating `key` (0: a group, 1: a transactional id), asked of `address`.
async fn coordinator(address: &str, key: &str, key_type: i8) -> i32 {
    use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
    use kafka_protocol::protocol::StrBytes;
    wait_until(&format!("a coordinator for {key}"), || async {
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(key.to_owned()))
            .with_key_type(key_type);
        let response: FindCoordinatorResponse =
            crate::support::kafka_call(address, ApiKey::FindCoordinator, 3, &request).await;
        (response.error_code == 0).then_some(response.node_id.0)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_sent_to_a_transaction_survive_their_group_coordinators_kill() {
    let mut cluster = Operated::start().await;
    cluster.plane.create_topic("orders", 1, 3).await;
    served(&cluster, "orders", 1).await;
    wait_for_isr(&cluster, "orders-0", 3).await;
    let any = cluster.broker(0).address.clone();
    coordinator(&any, "billing", 0).await;
    coordinator(&any, "billing-writer", 1).await;
    let all = cluster.bootstrap();
    // The transaction sends the group's offset (10 for orders-0), then holds its end for
    // 6 s, during which the group's coordinator dies.
    let transaction = tokio::spawn(async move {
        java(
            &[
                "txn",
                "--bootstrap",
                &all,
                "--topic",
                "orders",
                "--transactional-id",
                "billing-writer",
                "--count",
                "10",
                "--offsets-group",
                "billing",
                "--offsets-topic",
                "orders",
                "--hold-ms",
                "6000",
            ],
            None,
        )
        .await
    });
    // JVM start, InitProducerId and the first transaction on a new cluster take a while. The
    // broker holding the pending offset is the group's coordinator (FindCoordinator's answer
    // may still change while the new offsets topic settles).
    let what = "the transaction's offset pending at the group coordinator";
    let group_coordinator = tributary_e2e::wait_until(what, Duration::from_secs(60), || async {
        (0..3).find(|id| {
            let groups = &cluster.broker(*id).broker.groups;
            groups.holds_txn_offset("billing", "orders", 0)
        })
    })
    .await;
    let survivor = (0..3).find(|id| *id != group_coordinator).unwrap_or(0);
    cluster.kill(group_coordinator);
    let lines = transaction
        .await
        .unwrap_or_else(|e| panic!("transaction task: {e}"));
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "txn" && l["result"] == "committed"),
        "committed after the group coordinator's kill: {lines:?}"
    );
    // The new coordinator read the offset from the log and its marker committed it.
    let address = cluster.broker(survivor).address.clone();
    wait_until(
        "the offset committed at the new group coordinator",
        || async {
            let now = coordinator(&address, "billing", 0).await;
            if now == group_coordinator {
                return None;
            }
            let fetched = cluster
                .broker(now)
                .broker
                .groups
                .fetch_offsets("billing", Some(vec![("orders".into(), vec![0])]))
                .ok()?;
            let offset = fetched.first()?.1.first()?.1.as_ref()?.offset;
            (offset == 10).then_some(())
        },
    )
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_offsets_and_an_open_transaction_survive_their_coordinators_kill() {
    let mut cluster = Operated::start().await;
    cluster.plane.create_topic("orders", 1, 3).await;
    served(&cluster, "orders", 1).await;
    wait_for_isr(&cluster, "orders-0", 3).await;
    let all = cluster.bootstrap();
    let first = produce(&all, "orders", 100, "a").await;
    assert_eq!(count(&first, "ack"), 100, "{first:?}");
    let group = |max: usize| {
        let all = all.clone();
        async move {
            let lines = java(
                &[
                    "consume",
                    "--bootstrap",
                    &all,
                    "--topic",
                    "orders",
                    "--group",
                    "billing",
                    "--max",
                    &max.to_string(),
                    "--timeout-ms",
                    "30000",
                ],
                None,
            )
            .await;
            read_values(&lines)
        }
    };
    assert_eq!(group(100).await.len(), 100);

    // The group's coordinator dies; its successor has the committed offsets. The coordinator
    // is the broker holding them, and they must be there before it dies.
    let what = "the group's offsets committed at its coordinator";
    let group_coordinator = tributary_e2e::wait_until(what, Duration::from_secs(30), || async {
        (0..3).find(|id| {
            let groups = &cluster.broker(*id).broker.groups;
            groups
                .fetch_offsets("billing", Some(vec![("orders".into(), vec![0])]))
                .ok()
                .and_then(|f| f.first()?.1.first()?.1.as_ref().map(|o| o.offset))
                == Some(100)
        })
    })
    .await;
    cluster.kill(group_coordinator);
    let all = cluster.bootstrap();
    let second = produce(&all, "orders", 20, "b").await;
    assert_eq!(count(&second, "ack"), 20, "{second:?}");
    let resumed = group(20).await;
    let expected: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    assert_eq!(
        resumed, expected,
        "the group resumed at its committed offset"
    );
    cluster.restart(group_coordinator).await;
    let deadline = Duration::from_secs(60);
    let what = "every __consumer_offsets partition back to 3 in-sync replicas";
    tributary_e2e::wait_until(what, deadline, || async {
        let list = cluster
            .plane
            .api::<KafkaPartition>()
            .list(&Default::default())
            .await
            .ok()?;
        let offsets: Vec<_> = list
            .items
            .iter()
            .filter(|p| p.spec.topic == "__consumer_offsets")
            .collect();
        let behind: Vec<_> = offsets
            .iter()
            .filter(|p| p.status.as_ref().is_none_or(|s| s.isr.len() < 3))
            .map(|p| (p.spec.partition, p.status.clone()))
            .collect();
        (!offsets.is_empty() && behind.is_empty()).then_some(())
    })
    .await;

    // A transaction is open (its records written, not committed) when its coordinator dies.
    let any = cluster.broker(0).address.clone();
    let txn_coordinator = coordinator(&any, "ledger-writer", 1).await;
    let all = cluster.bootstrap();
    let transaction = {
        let all = all.clone();
        tokio::spawn(async move {
            java(
                &[
                    "txn",
                    "--bootstrap",
                    &all,
                    "--topic",
                    "orders",
                    "--transactional-id",
                    "ledger-writer",
                    "--count",
                    "10",
                    "--hold-ms",
                    "6000",
                ],
                None,
            )
            .await
        })
    };
    wait_until(
        "the open transaction's records to be replicated",
        || async {
            let p = positions(&cluster, "orders");
            (p.len() == 3 && p.iter().all(|(end, _)| *end >= 130)).then_some(())
        },
    )
    .await;
    cluster.kill(txn_coordinator);
    let lines = transaction
        .await
        .unwrap_or_else(|e| panic!("transaction task: {e}"));
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "txn" && l["result"] == "committed"),
        "committed through the new coordinator: {lines:?}"
    );
    let survivor = (0..3).find(|id| *id != txn_coordinator).unwrap_or(0);
    let committed = java(
        &[
            "consume",
            "--bootstrap",
            &cluster.broker(survivor).address,
            "--topic",
            "orders",
            "--max",
            "130",
            "--timeout-ms",
            "30000",
            "--prop",
            "isolation.level=read_committed",
        ],
        None,
    )
    .await;
    let read = read_values(&committed);
    assert_eq!(read.len(), 130, "{read:?}");
    assert!((0..10).all(|i| read.contains(&format!("t0-{i}"))));
    cluster.stop().await;
}
