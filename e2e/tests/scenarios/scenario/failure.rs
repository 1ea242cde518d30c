//! failure: a partition leader's process is SIGKILLed in the middle of idempotent acks=all
//! production (the Java client at a steady rate, every send's outcome recorded) to a topic of
//! three partitions, replication factor 3, min.insync.replicas 2. The controller hands each
//! partition the dead broker led to an in-sync follower once it knows the process gone (its
//! followers' connections refused, its restart's new incarnation, or its Lease expired), production
//! resumes, the kubelet restarts the container and the broker, a new incarnation, catches up
//! and rejoins every ISR. The history checker then finds nothing lost, duplicated, reordered
//! or read without an acknowledgement, and every record acknowledged.

use std::time::{Duration, Instant};

use crate::env::{Driver, Signal};

use super::replicated::{acks_go_on, Replicated};

const NS: &str = "failure";
const CLUSTER: &str = "crash";
const TOPIC: &str = "events";
/// How long acknowledgements may stop across the failover: at worst the 3 s Lease, the
/// controller's reaction and the client's metadata refresh, with room for a loaded machine.
const ACK_GAP_BOUND: Duration = Duration::from_secs(12);

pub(crate) async fn run(driver: Driver) {
    let (cluster, producing) = Replicated::producing(driver, NS, CLUSTER, TOPIC, "", "").await;

    let before = cluster.partitions().await;
    let victim = before[0].leader;
    let led: Vec<_> = before.iter().filter(|s| s.leader == victim).collect();
    let incarnation = cluster.incarnation(victim).await;
    let restarts = restart_count(&cluster, victim).await;
    cluster.signal(victim, Signal::Kill).await;
    let killed = Instant::now();

    let after = cluster
        .wait_all(
            "in-sync followers to lead every partition the killed broker led",
            |now| {
                led.iter().all(|old| {
                    now.iter().any(|s| {
                        s.partition == old.partition
                            && s.leader != victim
                            && old.in_sync(s.leader)
                            && s.leader_epoch > old.leader_epoch
                    })
                })
            },
        )
        .await;
    cluster.log(&format!(
        "broker {victim} killed; its {} partition(s) failed over in {:.1} s",
        led.len(),
        killed.elapsed().as_secs_f64()
    ));
    assert!(after.iter().all(|s| s.leader != victim));
    acks_go_on(&producing).await;
    cluster.log("acknowledgements go on");

    let returned = cluster.next_incarnation(victim, incarnation).await;
    cluster
        .wait_all(
            "the restarted broker to rejoin every ISR as its new incarnation",
            |now| {
                now.len() == before.len()
                    && now
                        .iter()
                        .all(|s| s.fully_replicated() && s.isr.contains(&(victim, returned)))
            },
        )
        .await;
    cluster.log(&format!(
        "broker {victim} is back in every ISR as incarnation {returned}"
    ));
    assert!(
        restart_count(&cluster, victim).await > restarts,
        "the kubelet restarted the killed container in its pod"
    );

    let history = producing.stop().await;
    cluster.check("failure", &history).await;
    let gap = history.longest_ack_gap().unwrap_or_default();
    assert!(
        gap < ACK_GAP_BOUND,
        "acknowledgements stopped for {gap:?} across the failover (bound {ACK_GAP_BOUND:?})"
    );
}

/// How often broker `id`'s container was restarted in its pod.
async fn restart_count(cluster: &Replicated, id: i32) -> i32 {
    cluster
        .pod_object(id)
        .await
        .and_then(|p| {
            p.status?
                .container_statuses?
                .first()
                .map(|c| c.restart_count)
        })
        .unwrap_or(0)
}
