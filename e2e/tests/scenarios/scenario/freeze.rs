//! freeze: brokers SIGSTOPped rather than killed, during idempotent acks=all production (the
//! Java client, every send recorded) to a topic of three partitions, replication factor 3,
//! min.insync.replicas 2.
//!
//! 1. The leader of partition 0 freezes. Its Lease stops being renewed, so the controller
//!    elects an in-sync follower and drops the frozen broker from every ISR; acks=all writes
//!    go on. A Produce written to the frozen broker meanwhile (a raw probe: real clients hide
//!    the answer) waits in its socket. On SIGCONT the old leader must have fenced itself: the
//!    probe is answered NOT_LEADER_OR_FOLLOWER, nothing it acknowledges survives only there
//!    (the history would show it lost), its clients move to the new leader, whose log grows,
//!    and it rejoins the ISR as a follower.
//! 2. One follower freezes: once it leaves the ISRs, production continues on two replicas.
//!    A second freezes: one replica is in sync, below min.insync.replicas, so acks=all gets
//!    NOT_ENOUGH_REPLICAS (a probe shows it) and nothing is acknowledged. Both thaw, rejoin,
//!    and every record is acknowledged in the end, with a clean history.

use std::time::Duration;

use tributary_e2e::clients::http_get;
use tributary_e2e::history::Attempt;
use tributary_e2e::probe::{Probe, NOT_ENOUGH_REPLICAS, NOT_LEADER_OR_FOLLOWER};

use crate::env::{wait, Driver, Signal};

use super::replicated::{acks_go_on, PartitionState, Replicated, BROKERS};
use super::READY;

const NS: &str = "freeze";
const CLUSTER: &str = "icy";
const TOPIC: &str = "ticks";
/// Ids of the probes' records, far above the producer's.
const PROBE_IDS: u64 = 1_000_000_000;
/// How long a probe's answer may take once its broker runs.
const ANSWER: Duration = Duration::from_secs(10);
/// How long answers already on their way may take to reach the producer's callbacks.
const CALLBACKS: Duration = Duration::from_secs(1);
/// How long the scenario watches for acknowledgements that must not come.
const QUIET: Duration = Duration::from_secs(2);

pub(crate) async fn run(driver: Driver) {
    // No preferred-leader rebalance: the old leader must come back as a follower and stay one.
    let no_rebalance = "auto.leader.rebalance.enable: \"false\"";
    let (cluster, producing) =
        Replicated::producing(driver, NS, CLUSTER, TOPIC, no_rebalance, "").await;
    let mut probes = Vec::new();

    // 1. The leader of partition 0 freezes.
    let before = cluster.partitions().await;
    let frozen = before[0].leader;
    let mut zombie = Probe::connect(&cluster.address(frozen).await)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cluster.signal(frozen, Signal::Stop).await;
    cluster.log(&format!("broker {frozen}, leader of partition 0, frozen"));
    let after = cluster
        .wait_all(
            "in-sync followers to lead the frozen broker's partitions, without it in any ISR",
            |now| {
                now.iter().all(|s| !s.in_sync(frozen))
                    && before.iter().filter(|b| b.leader == frozen).all(|old| {
                        now.iter().any(|s| {
                            s.partition == old.partition
                                && old.in_sync(s.leader)
                                && s.leader_epoch > old.leader_epoch
                        })
                    })
            },
        )
        .await;
    let successor = after[0].leader;
    cluster.log(&format!("broker {successor} leads partition 0"));
    acks_go_on(&producing).await;
    cluster.log("acknowledgements go on");
    let id = PROBE_IDS;
    zombie
        .send(TOPIC, 0, &id.to_string(), ANSWER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let end = log_end(&cluster, successor, 0).await;
    cluster.signal(frozen, Signal::Cont).await;
    cluster.log(&format!("broker {frozen} thawed"));
    let answer = zombie
        .answer(ANSWER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answer, NOT_LEADER_OR_FOLLOWER,
        "the thawed old leader refuses a write for the partition it lost"
    );
    probes.push(Attempt::failed(id, false, "NOT_LEADER_OR_FOLLOWER"));
    cluster.log("the old leader answered NOT_LEADER_OR_FOLLOWER");
    wait(
        "the producer to move partition 0's writes to the new leader",
        READY,
        || async { (log_end(&cluster, successor, 0).await > end).then_some(()) },
    )
    .await;
    cluster.log("partition 0 grows on its new leader");
    let rejoined = cluster
        .wait_all(
            "the thawed broker to rejoin every ISR as a follower",
            |now| {
                now.iter().all(PartitionState::fully_replicated)
                    && now.iter().all(|s| s.leader != frozen)
            },
        )
        .await;

    cluster.log(&format!("broker {frozen} is a follower in every ISR"));

    // 2. Followers of partition 0 freeze, one, then the other.
    let leader = rejoined[0].leader;
    let followers: Vec<i32> = (0..BROKERS).filter(|b| *b != leader).collect();
    cluster.signal(followers[0], Signal::Stop).await;
    cluster.log(&format!("follower {} frozen", followers[0]));
    cluster
        .wait_all("the frozen follower to leave every ISR", |now| {
            now.iter()
                .all(|s| s.leader >= 0 && !s.in_sync(followers[0]) && s.isr.len() == 2)
        })
        .await;
    cluster.log(&format!("follower {} left every ISR", followers[0]));
    acks_go_on(&producing).await;
    cluster.log("acknowledgements go on");
    cluster.signal(followers[1], Signal::Stop).await;
    cluster.log(&format!("follower {} frozen", followers[1]));
    cluster
        .wait_all(
            "the last live broker to lead every partition alone",
            |now| {
                now.iter()
                    .all(|s| s.leader == leader && s.isr_ids() == [leader])
            },
        )
        .await;
    cluster.log(&format!("broker {leader} alone in every ISR"));
    // The ISR change also ends produce requests that waited on the frozen follower: a request
    // can carry a record it had copied before freezing (acknowledged now, rightly) with one it
    // never fetched (refused). Their answers are on their way; after that, nothing.
    tokio::time::sleep(CALLBACKS).await;
    let stalled = producing.acked();
    let mut below = Probe::connect(&cluster.address(leader).await)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let id = PROBE_IDS + 1;
    below
        .send(TOPIC, 0, &id.to_string(), ANSWER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        below.answer(ANSWER).await.unwrap_or_else(|e| panic!("{e}")),
        NOT_ENOUGH_REPLICAS,
        "acks=all below min.insync.replicas is refused"
    );
    probes.push(Attempt::failed(id, true, "NOT_ENOUGH_REPLICAS"));
    cluster.log("acks=all answered NOT_ENOUGH_REPLICAS");
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        producing.acked(),
        stalled,
        "nothing is acknowledged while one replica is in sync"
    );
    for f in &followers {
        cluster.signal(*f, Signal::Cont).await;
    }
    cluster.log("followers thawed, nothing acknowledged meanwhile");
    cluster
        .wait_all("the thawed followers to rejoin every ISR", |now| {
            now.iter().all(PartitionState::fully_replicated)
        })
        .await;
    cluster.log("the followers rejoined every ISR");
    acks_go_on(&producing).await;
    cluster.log("acknowledgements go on");

    let history = producing.stop().await;
    cluster.check_with("freeze", &history, probes).await;
}

/// Partition `p`'s log end offset on broker `id`, from its metrics.
async fn log_end(cluster: &Replicated, id: i32, p: i32) -> i64 {
    let addr = cluster.address(id).await.replace(":9092", ":9644");
    let (_, metrics) = http_get(&addr, "/metrics")
        .await
        .unwrap_or_else(|e| panic!("GET {addr}/metrics: {e}"));
    let partition = format!("partition=\"{p}\"");
    let topic = format!("topic=\"{TOPIC}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("kafka_log_log_logendoffset{"))
        .find(|l| l.contains(&partition) && l.contains(&topic))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(-1)
}
