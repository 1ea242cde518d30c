//! replication factor: a topic created with one replica per partition holds acknowledged
//! records, and an idempotent acks=all producer keeps writing throughout; its KafkaTopic's `replicationFactor` goes to 3. The operator adds two replicas to
//! each partition by reassignment: they copy the log from the leader and join the ISR. Then the
//! broker that held the only copy of a partition is SIGKILLed: the partition fails over to a
//! new replica, and every acknowledged record reads back from the cluster.

use std::time::Instant;

use crate::env::{Driver, Signal};

use super::replicated::{acks_go_on, three_brokers, Replicated, BROKERS, SHORT_LEASES};
use super::READY;

const NS: &str = "replication";
const CLUSTER: &str = "widen";
const TOPIC: &str = "ledger";
const PARTITIONS: i32 = 2;
/// Records acknowledged before the change.
const RECORDS: u64 = 2_000;

pub(crate) async fn run(driver: Driver) {
    let mut cluster =
        Replicated::cluster(driver, NS, CLUSTER, &three_brokers("", SHORT_LEASES)).await;
    cluster.apply_topic(TOPIC, PARTITIONS, 1, "").await;
    let before = cluster
        .wait_all("every partition led by its single replica", |s| {
            s.len() == usize::try_from(PARTITIONS).unwrap_or(0)
                && s.iter().all(|p| p.leader >= 0 && p.isr.len() == 1)
        })
        .await;
    // Production runs throughout: the change happens under load.
    let producing = cluster.workload(500.0).start().await;
    cluster.start_group().await;
    producing.wait_for_acks(RECORDS, READY).await;
    cluster.log(&format!(
        "{RECORDS} records acknowledged at replication factor 1"
    ));

    let started = Instant::now();
    cluster
        .merge_patch("kafkatopic", TOPIC, r#"{"spec":{"replicationFactor":3}}"#)
        .await;
    cluster
        .wait_all("every partition to have three replicas in sync", |s| {
            s.len() == before.len() && s.iter().all(|p| p.fully_replicated())
        })
        .await;
    cluster.log(&format!(
        "replication factor 1 -> {BROKERS} in {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // The broker that held partition 0's only copy goes: the new replicas have the data.
    let sole = before[0].leader;
    cluster.signal(sole, Signal::Kill).await;
    cluster
        .wait_partition(0, "partition 0 to be led by a new replica", |p| {
            p.leader >= 0 && p.leader != sole
        })
        .await;
    cluster.log(&format!("broker {sole} killed; partition 0 led elsewhere"));
    acks_go_on(&producing).await;
    let history = producing.stop().await;
    cluster.check("replication factor", &history).await;
}
