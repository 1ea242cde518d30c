//! cluster: `kubectl apply -f examples/kafka-cluster.yaml` (3 brokers) becomes Ready, with its
//! status, conditions and Events; the StatefulSet rolls out with bound claims; every broker
//! process serves the Kafka protocol (kcat: ApiVersions and Metadata, advertising its DNS
//! name, listing all three brokers and the same topics) and `/metrics`.

use crate::env::{condition, wait, Driver, Env};
use crate::support::tools::row;
use tributary_e2e::clients::{http_get, kcat_metadata};

use super::{events, name, pod_ip, ready, REACT};

const NS: &str = "cluster";

pub(crate) async fn run(driver: Driver) {
    let env = Env::shared(driver).await;
    let _namespace = env.namespace(NS).await;
    env.kubectl_ok(&["apply", "-n", NS, "-f", "examples/kafka-cluster.yaml"])
        .await;
    let kc = ready(&env, NS, "demo").await;
    let status = &kc["status"];
    assert_eq!(
        status["observedGeneration"], kc["metadata"]["generation"],
        "{status}"
    );
    assert_eq!(
        (status["replicas"].as_i64(), status["readyBrokers"].as_i64()),
        (Some(3), Some(3)),
        "{status}"
    );
    let state = |t: &str| {
        condition(&kc, t).map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
    };
    assert_eq!(
        state("Ready"),
        Some(("True".into(), "AllBrokersReady".into())),
        "{status}"
    );
    assert_eq!(
        state("Progressing").map(|s| s.0),
        Some("False".into()),
        "{status}"
    );
    assert_eq!(
        state("Degraded").map(|s| s.0),
        Some("False".into()),
        "{status}"
    );
    let brokers = status["brokers"].as_array().cloned().unwrap_or_default();
    assert_eq!(brokers.len(), 3, "{status}");
    assert!(
        brokers
            .iter()
            .all(|b| b["ready"] == true && b["configInSync"] == true),
        "{status}"
    );
    assert_eq!(
        status["bootstrapServers"], "demo-bootstrap.cluster.svc:9092",
        "DNS is the default"
    );
    let table = env.kubectl_ok(&["get", "kafkaclusters", "-n", NS]).await;
    assert_eq!(
        &row(&table, "demo")[1..4],
        ["3", "3", "AllBrokersReady"],
        "{table}"
    );
    let seen = wait("an Event about the cluster", REACT, || async {
        let e = events(&env, NS, "KafkaCluster", "demo").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert!(seen.iter().all(|(t, _, _)| t == "Normal"), "{seen:?}");

    // The StatefulSet is OnDelete (the operator rolls the brokers), which `kubectl rollout
    // status` does not follow: its status says when every replica runs the template and is
    // Ready.
    let sts = wait(
        "the broker StatefulSet's replicas to be updated and Ready",
        REACT,
        || async {
            let sts = env
                .get_json(&["statefulset", "demo-broker", "-n", NS])
                .await;
            let status = &sts["status"];
            let all = |field: &str| status[field].as_i64() == Some(3);
            (status["observedGeneration"] == sts["metadata"]["generation"]
                && all("updatedReplicas")
                && all("readyReplicas"))
            .then_some(sts)
        },
    )
    .await;
    assert_eq!(
        sts["status"]["currentRevision"], sts["status"]["updateRevision"],
        "{}",
        sts["status"]
    );
    let pods = env.pods(NS, "app.kubernetes.io/component=broker").await;
    assert_eq!(pods.len(), 3);
    let mut views = Vec::new();
    for pod in &pods {
        let pod_name = name(pod);
        let ordinal = pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"]
            .as_str()
            .expect("pod index label");
        assert_eq!(pod_name, format!("demo-broker-{ordinal}"));
        let claim = env
            .get_json(&["pvc", &format!("data-{pod_name}"), "-n", NS])
            .await;
        assert_eq!(claim["status"]["phase"], "Bound", "{pod_name}'s data claim");
        let ip = pod_ip(pod);
        let metadata = kcat_metadata(&format!("{ip}:9092"))
            .await
            .unwrap_or_else(|e| panic!("kcat -L {pod_name}: {e}"));
        let advertised = format!("{pod_name}.demo-brokers.cluster.svc:9092");
        let me = metadata["brokers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["id"].as_i64() == ordinal.parse().ok())
            .unwrap_or_else(|| panic!("broker {ordinal} not in its own metadata: {metadata}"));
        assert_eq!(me["name"], advertised.as_str(), "{metadata}");
        // One cluster: every broker lists all three, as registered through their Leases.
        let mut ids: Vec<i64> = metadata["brokers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["id"].as_i64())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2], "{pod_name} lists every broker: {metadata}");
        let mut topics: Vec<String> = metadata["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["topic"].as_str().map(str::to_owned))
            .collect();
        topics.sort_unstable();
        views.push((pod_name.to_owned(), topics));
        let (code, body) = http_get(&format!("{ip}:9644"), "/metrics")
            .await
            .expect("GET /metrics");
        assert_eq!(code, 200);
        assert!(
            body.contains("kafka_server_replicamanager_partitioncount"),
            "{pod_name} /metrics:\n{body}"
        );
    }
    assert!(
        views.windows(2).all(|w| w[0].1 == w[1].1),
        "every broker lists the same topics: {views:?}"
    );
}
