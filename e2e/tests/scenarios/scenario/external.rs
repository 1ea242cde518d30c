//! external: a KafkaCluster with a NodePort and a LoadBalancer listener beside its internal
//! one. Clients outside the cluster bootstrap from the node's address and the bootstrap
//! Service's node port, or from the load balancer's ingress; every broker advertises its own
//! Service's address there (kcat's view of the metadata is checked against the Services), and
//! the Java client produces through one door and consumes through the other. A per-broker
//! advertised host set in the KafkaCluster reaches Metadata without restarting the broker.
//! (On kind, the LoadBalancer part needs a load-balancer implementation such as
//! cloud-provider-kind.)

use serde_json::Value;
use tributary_e2e::clients::{java, kcat_metadata, prepare_java};

use crate::env::{wait, Env};

use super::{kafka_cluster, ready, REACT, READY};

const NS: &str = "external";
const CLUSTER: &str = "edge";
const TOPIC: &str = "outside";
const BOOTSTRAP_NODE_PORT: u16 = 32_100;
const RECORDS: usize = 100;

const SPEC: &str = "{brokers: 2, storage: {size: 1Gi, deleteClaim: true}, \
    listeners: [\
      {name: PLAIN, port: 9092, advertise: PodIP}, \
      {name: NODEPORT, port: 9094, type: nodeport, configuration: {bootstrap: {nodePort: 32100}}}, \
      {name: LB, port: 9095, type: loadbalancer}], \
    config: {offsets.topic.num.partitions: \"1\", min.insync.replicas: \"1\"}}";

/// `jsonpath` of Service `name`, once it is not empty.
async fn service_field(env: &Env, name: &str, jsonpath: &str) -> String {
    let what = format!("{jsonpath} of Service {name}");
    wait(&what, REACT, || async {
        let out = env
            .kubectl(&[
                "get",
                "service",
                name,
                "-n",
                NS,
                "-o",
                &format!("jsonpath={jsonpath}"),
            ])
            .await;
        let value = out.stdout.trim().to_owned();
        (out.ok && !value.is_empty()).then_some(value)
    })
    .await
}

/// `(id, host:port)` of every broker kcat's Metadata through `bootstrap` lists, sorted.
async fn advertised(bootstrap: &str) -> Option<Vec<(i64, String)>> {
    let metadata = kcat_metadata(bootstrap).await.ok()?;
    let mut brokers: Vec<(i64, String)> = metadata["brokers"]
        .as_array()?
        .iter()
        .filter_map(|b| Some((b["id"].as_i64()?, b["name"].as_str()?.to_owned())))
        .collect();
    brokers.sort();
    Some(brokers)
}

fn count(lines: &[Value], event: &str) -> usize {
    lines.iter().filter(|l| l["event"] == event).count()
}

pub(crate) async fn run(driver: crate::env::Driver) {
    let env = Env::shared(driver).await;
    let _namespace = env.namespace(NS).await;
    env.apply(&kafka_cluster(NS, CLUSTER, SPEC)).await;
    let (_, ()) = tokio::join!(ready(&env, NS, CLUSTER), prepare_java());
    env.apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: {TOPIC}, namespace: {NS}}}\n\
         spec: {{clusterRef: {CLUSTER}, partitions: 2, replicationFactor: 2}}\n"
    ))
    .await;

    // Through the node: the node's address, and each broker's own node port.
    let pod = env
        .get_json(&["pod", &format!("{CLUSTER}-broker-0"), "-n", NS])
        .await;
    let node = pod["status"]["hostIP"]
        .as_str()
        .unwrap_or_else(|| panic!("broker pod without a hostIP: {pod}"))
        .to_owned();
    let mut expected = Vec::new();
    for id in 0..2 {
        let service = format!("{CLUSTER}-broker-{id}-nodeport");
        let port = service_field(&env, &service, "{.spec.ports[0].nodePort}").await;
        expected.push((id, format!("{node}:{port}")));
    }
    let node_bootstrap = format!("{node}:{BOOTSTRAP_NODE_PORT}");
    wait(
        "every broker advertised at its node port",
        READY,
        || async { (advertised(&node_bootstrap).await.as_ref() == Some(&expected)).then_some(()) },
    )
    .await;

    // Through the load balancer: its ingress and the listener port.
    let ingress = service_field(
        &env,
        &format!("{CLUSTER}-lb-bootstrap"),
        "{.status.loadBalancer.ingress[0].ip}",
    )
    .await;
    let lb_bootstrap = format!("{ingress}:9095");
    let mut expected_lb = Vec::new();
    for id in 0..2 {
        let service = format!("{CLUSTER}-broker-{id}-lb");
        let ip = service_field(&env, &service, "{.status.loadBalancer.ingress[0].ip}").await;
        expected_lb.push((id, format!("{ip}:9095")));
    }
    wait(
        "every broker advertised at its load balancer",
        READY,
        || async { (advertised(&lb_bootstrap).await.as_ref() == Some(&expected_lb)).then_some(()) },
    )
    .await;

    // The Java client produces through the node ports and reads back through the load balancer.
    let produced = wait(
        "the first acknowledged produce from outside",
        READY,
        || async {
            let count_arg = RECORDS.to_string();
            let lines = java(
                &[
                    "produce",
                    "--bootstrap",
                    &node_bootstrap,
                    "--topic",
                    TOPIC,
                    "--count",
                    &count_arg,
                    "--prop",
                    "acks=all",
                    "--prop",
                    "max.block.ms=15000",
                    "--prop",
                    "delivery.timeout.ms=30000",
                ],
                None,
            )
            .await;
            (count(&lines, "ack") == RECORDS).then_some(lines)
        },
    )
    .await;
    assert_eq!(count(&produced, "ack"), RECORDS);
    let max = RECORDS.to_string();
    let read = java(
        &[
            "consume",
            "--bootstrap",
            &lb_bootstrap,
            "--topic",
            TOPIC,
            "--group",
            "outsiders",
            "--max",
            &max,
            "--timeout-ms",
            "30000",
        ],
        None,
    )
    .await;
    assert_eq!(count(&read, "record"), RECORDS, "{read:?}");

    // An advertised host set in the KafkaCluster reaches clients; nothing restarts for it.
    let before = env
        .get_json(&["pod", &format!("{CLUSTER}-broker-1"), "-n", NS])
        .await;
    env.kubectl_ok(&[
        "patch",
        "kafkacluster",
        CLUSTER,
        "-n",
        NS,
        "--type=json",
        "-p",
        r#"[{"op": "add", "path": "/spec/listeners/1/configuration/brokers", "value": [{"broker": 1, "advertisedHost": "kafka-1.example.com", "advertisedPort": 443}]}]"#,
    ])
    .await;
    expected[1].1 = "kafka-1.example.com:443".to_owned();
    wait("broker 1's advertised host override", REACT, || async {
        (advertised(&node_bootstrap).await.as_ref() == Some(&expected)).then_some(())
    })
    .await;
    let after = env
        .get_json(&["pod", &format!("{CLUSTER}-broker-1"), "-n", NS])
        .await;
    assert_eq!(
        before["metadata"]["uid"], after["metadata"]["uid"],
        "the override did not restart the broker"
    );
}
