//! durability: the leader of a replicated partition is killed with SIGKILL between two rounds
//! of acks=all writes through the Java client; the controller hands the partition to an
//! in-sync follower within the lease bound, writes go on there, the pod restarts the killed
//! broker as a new incarnation that catches up and rejoins the ISR, and every acknowledged
//! record reads back, none twice.

use std::collections::BTreeSet;

use tributary_e2e::clients::java;

use crate::env::{wait, Driver, Env};

use super::{kafka_cluster, ready, READY};

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
    lines.iter().filter(|l| l["event"] == "ack").count()
}

/// The partition's status as the KafkaPartition object records it, once `accept` takes it.
async fn status(
    env: &Env,
    what: &str,
    accept: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait(what, READY, || async {
        let kp = env
            .get_json(&["kafkapartition", &format!("{TOPIC}-0"), "-n", NS])
            .await;
        let status = kp["status"].clone();
        accept(&status).then_some(status)
    })
    .await
}

/// The ISR's broker ids and incarnations.
fn isr(status: &serde_json::Value) -> Vec<(i64, i64)> {
    status["isr"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["brokerId"].as_i64()?, e["brokerEpoch"].as_i64()?)))
        .collect()
}

pub(crate) async fn run(driver: Driver) {
    let env = Env::shared(driver).await;
    env.namespace(NS).await;
    let spec = "{brokers: 3, storage: {size: 1Gi, deleteClaim: true}, \
                listeners: [{name: PLAIN, port: 9092, advertise: PodIP}]}";
    env.apply(&kafka_cluster(NS, CLUSTER, spec)).await;
    let kc = ready(&env, NS, CLUSTER).await;
    let bootstrap = kc["status"]["bootstrapServers"]
        .as_str()
        .expect("bootstrap servers")
        .to_owned();
    env.apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: {TOPIC}, namespace: {NS}}}\n\
         spec: {{clusterRef: {CLUSTER}, partitions: 1, replicationFactor: 3}}\n"
    ))
    .await;
    assert_eq!(produce(&bootstrap, "before-", 300).await, 300);
    let replicated = status(&env, "both followers to join the ISR", |s| {
        s["leader"].as_i64().is_some_and(|l| l >= 0) && isr(s).len() == 3
    })
    .await;
    let first = replicated["leader"].as_i64().unwrap_or(-1);

    let pod = format!("{CLUSTER}-broker-{first}");
    let incarnation = |lease: serde_json::Value| {
        lease["metadata"]["annotations"]["tributary.dev/incarnation"]
            .as_str()
            .and_then(|v| v.parse::<i64>().ok())
    };
    let lease_name = format!("{CLUSTER}-broker-{first}");
    let before = incarnation(env.get_json(&["lease", &lease_name, "-n", NS]).await);
    env.kill(NS, &pod, "broker").await;
    status(&env, "an in-sync follower to lead", |s| {
        s["leader"].as_i64().is_some_and(|l| l >= 0 && l != first)
    })
    .await;
    assert_eq!(
        produce(&bootstrap, "after-", 300).await,
        300,
        "acks=all writes succeed on the new leader"
    );
    let now = wait("the killed broker to register again", READY, || async {
        let now = incarnation(env.get_json(&["lease", &lease_name, "-n", NS]).await);
        now.filter(|n| Some(*n) > before)
    })
    .await;
    status(
        &env,
        "the returned broker to rejoin the ISR as its new incarnation",
        |s| isr(s).contains(&(first, now)) && isr(s).len() == 3,
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
