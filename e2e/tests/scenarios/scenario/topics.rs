//! topics: a KafkaTopic applied with kubectl becomes Provisioned; the Java client produces and
//! consumes through the bootstrap address (brokers advertising their pod IPs); growing
//! `partitions` adds partitions; a config change reaches the brokers; deleting the KafkaTopic
//! removes its data from every broker's data directory.

use crate::env::{wait, Driver, Env};
use tributary_e2e::clients::java;

use super::{kafka_cluster, ready, REACT, READY};

const NS: &str = "topics";
const CLUSTER: &str = "streams";
const TOPIC: &str = "orders";

/// `KafkaCli admin --bootstrap <bootstrap> <op> --topic orders`'s JSON lines.
async fn admin(bootstrap: &str, op: &str) -> Vec<serde_json::Value> {
    java(
        &["admin", "--bootstrap", bootstrap, op, "--topic", TOPIC],
        None,
    )
    .await
}

/// The topic's partitions as the Java admin client describes them.
async fn partitions(bootstrap: &str) -> usize {
    let lines = admin(bootstrap, "describe-topics").await;
    lines
        .iter()
        .find(|l| l["event"] == "topic")
        .and_then(|l| l["partitions"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Waits until the KafkaTopic is Provisioned with `n` partitions placed, each with a leader.
async fn provisioned(env: &Env, n: usize) {
    wait(
        &format!("KafkaTopic {TOPIC} to be Provisioned with {n} partitions"),
        READY,
        || async {
            let kt = env.get_json(&["kafkatopic", TOPIC, "-n", NS]).await;
            let status = &kt["status"];
            let placed = status["placedPartitions"].as_u64() == Some(n as u64);
            let led = status["leaderlessPartitions"].as_u64() == Some(0);
            (status["phase"] == "Provisioned" && placed && led).then_some(())
        },
    )
    .await;
}

pub(crate) async fn run(driver: Driver) {
    let env = Env::shared(driver).await;
    let _namespace = env.namespace(NS).await;
    let spec = "{brokers: 3, storage: {size: 1Gi, deleteClaim: true}, \
                listeners: [{name: PLAIN, port: 9092, advertise: PodIP}]}";
    env.apply(&kafka_cluster(NS, CLUSTER, spec)).await;
    let kc = ready(&env, NS, CLUSTER).await;
    let bootstrap = kc["status"]["bootstrapServers"]
        .as_str()
        .expect("bootstrap servers")
        .to_owned();
    assert_eq!(
        bootstrap.split(',').count(),
        3,
        "the brokers' pod IPs: {bootstrap}"
    );

    let topic = |partitions: u32, retention: &str| {
        format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: {TOPIC}, namespace: {NS}}}\n\
             spec:\n  clusterRef: {CLUSTER}\n  partitions: {partitions}\n  replicationFactor: 3\n  config:\n    retention.ms: \"{retention}\"\n"
        )
    };
    env.apply(&topic(3, "3600000")).await;
    provisioned(&env, 3).await;

    let acks = java(
        &[
            "produce",
            "--bootstrap",
            &bootstrap,
            "--topic",
            TOPIC,
            "--count",
            "100",
            "--prop",
            "acks=all",
        ],
        None,
    )
    .await;
    assert_eq!(
        acks.iter().filter(|l| l["event"] == "ack").count(),
        100,
        "{acks:?}"
    );
    let records = java(
        &[
            "consume",
            "--bootstrap",
            &bootstrap,
            "--topic",
            TOPIC,
            "--max",
            "100",
            "--timeout-ms",
            "60000",
        ],
        None,
    )
    .await;
    assert_eq!(
        records.iter().filter(|l| l["event"] == "record").count(),
        100
    );

    // More partitions, a new retention: both reach the brokers.
    env.apply(&topic(6, "7200000")).await;
    provisioned(&env, 6).await;
    wait("the brokers to serve 6 partitions", REACT, || async {
        (partitions(&bootstrap).await == 6).then_some(())
    })
    .await;
    for broker in bootstrap.split(',') {
        wait(
            &format!("{broker} to report retention.ms=7200000"),
            REACT,
            || async {
                let lines = admin(broker, "describe-configs").await;
                lines
                    .iter()
                    .any(|l| l["event"] == "configs" && l["configs"]["retention.ms"] == "7200000")
                    .then_some(())
            },
        )
        .await;
    }

    // Deleting the KafkaTopic removes its partitions from every broker's data directory.
    let claims: Vec<String> = (0..3)
        .map(|i| format!("data-{CLUSTER}-broker-{i}"))
        .collect();
    let has_topic = |files: &[String]| {
        files
            .iter()
            .any(|f| f.starts_with(&format!("data/{TOPIC}-")))
    };
    for claim in &claims {
        assert!(
            has_topic(&env.claim_files(NS, claim).await),
            "{claim} holds no {TOPIC} partition"
        );
    }
    env.kubectl_ok(&[
        "delete",
        "kafkatopic",
        TOPIC,
        "-n",
        NS,
        "--wait",
        "--timeout",
        "120s",
    ])
    .await;
    for claim in &claims {
        wait(
            &format!("{TOPIC}'s data to leave {claim}"),
            REACT,
            || async { (!has_topic(&env.claim_files(NS, claim).await)).then_some(()) },
        )
        .await;
    }
}
