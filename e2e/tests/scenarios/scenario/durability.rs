//! durability: the leader of a replicated partition is killed with SIGKILL between two rounds
//! of acks=all writes through the Java client; its pod restarts it as a new incarnation, the
//! controller gives the partition back to it (the last member of the ISR) and every
//! acknowledged record reads back, none twice.

use std::collections::BTreeSet;

use tributary_e2e::clients::java;

use crate::env::{wait, Driver, Env};

use super::{kafka_cluster, ready, REACT, READY};

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

/// The partition's leader as the KafkaPartition object records it, once it has one.
async fn leader(env: &Env) -> i64 {
    wait("ledger-0 to have a leader", REACT, || async {
        let kp = env
            .get_json(&["kafkapartition", &format!("{TOPIC}-0"), "-n", NS])
            .await;
        kp["status"]["leader"].as_i64().filter(|l| *l >= 0)
    })
    .await
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
    let first = leader(&env).await;
    assert_eq!(produce(&bootstrap, "before-", 300).await, 300);

    let pod = format!("{CLUSTER}-broker-{first}");
    let incarnation = |lease: serde_json::Value| {
        lease["metadata"]["annotations"]["tributary.dev/incarnation"]
            .as_str()
            .and_then(|v| v.parse::<i64>().ok())
    };
    let lease_name = format!("{CLUSTER}-broker-{first}");
    let before = incarnation(env.get_json(&["lease", &lease_name, "-n", NS]).await);
    env.kill(NS, &pod, "broker").await;
    wait("the killed broker to register again", READY, || async {
        let now = incarnation(env.get_json(&["lease", &lease_name, "-n", NS]).await);
        (now > before).then_some(())
    })
    .await;
    assert_eq!(
        produce(&bootstrap, "after-", 300).await,
        300,
        "acks=all writes succeed once the restarted leader leads again"
    );
    assert_eq!(leader(&env).await, first, "the last ISR member leads again");

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
