//! install: `helm install` of charts/tributary into an empty cluster; the operator
//! Deployment's pods run, one takes the leader Lease and the CRDs are applied by the operator;
//! `kubectl get kafkaclusters,kafkatopics` prints the printer columns; `helm upgrade` rolls the
//! Deployment; `helm uninstall` removes the release.

use crate::env::{condition, wait, Driver, Env, RELEASE, RELEASE_NS};
use crate::support::tools::row;
use tributary_e2e::clients::http_get;

use super::{kafka_cluster, leader, name, operator_pods, pod_ip, ready, ONE_BROKER, REACT};

const NS: &str = "install-columns";

/// Waits (`kubectl rollout status`) until the operator Deployment has rolled out.
async fn rolled_out(env: &Env) {
    let args = [
        "rollout",
        "status",
        "deployment/tributary-operator",
        "-n",
        RELEASE_NS,
        "--timeout",
        "120s",
    ];
    env.kubectl_ok(&args).await;
}

pub(crate) async fn run(driver: Driver) {
    let env = Env::fresh(driver).await;
    env.install_chart(&[]).await;
    let list = env.helm_ok(&["list", "--namespace", RELEASE_NS]).await;
    let release = row(&list, RELEASE);
    assert!(release.contains(&"deployed") && release[2] == "1", "{list}");
    rolled_out(&env).await;
    let deployment = env
        .get_json(&["deployment", "tributary-operator", "-n", RELEASE_NS])
        .await;
    let status = &deployment["status"];
    assert_eq!(
        status["observedGeneration"], deployment["metadata"]["generation"],
        "{status}"
    );
    for field in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        assert_eq!(status[field], 2, "{field}: {status}");
    }
    assert_eq!(
        condition(&deployment, "Available").map(|c| c["status"].clone()),
        Some("True".into()),
        "{status}"
    );

    // The pods run, one leads, and says so on its /metrics (served on its pod IP).
    let pods = operator_pods(&env, 2).await;
    let names: Vec<String> = pods.iter().map(name).collect();
    let holder = leader(&env, &names).await;
    let holder_pod = pods
        .iter()
        .find(|p| name(p) == holder)
        .expect("the holder is a pod");
    let addr = format!("{}:8080", pod_ip(holder_pod));
    wait(
        "the leader's /metrics to report leadership",
        REACT,
        || async {
            let (code, body) = http_get(&addr, "/metrics").await.ok()?;
            (code == 200 && body.lines().any(|l| l == "tributary_operator_leader 1")).then_some(())
        },
    )
    .await;

    // The operator applied the CRDs (server-side, as field manager tributary-operator).
    for crd in ["kafkaclusters.tributary.dev", "kafkatopics.tributary.dev"] {
        let obj = env.get_json(&["crd", crd, "--show-managed-fields"]).await;
        let managers: Vec<&str> = obj["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(
            managers.contains(&"tributary-operator"),
            "{crd} managers: {managers:?}"
        );
        assert_eq!(
            condition(&obj, "Established").map(|c| c["status"].clone()),
            Some("True".into())
        );
    }

    // Printer columns of both kinds, with a one-broker cluster and a topic on it.
    let namespace = env.namespace(NS).await;
    env.apply(&format!(
        "{}---\napiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: events, namespace: {NS}}}\n\
         spec: {{clusterRef: columns, partitions: 3, replicationFactor: 1}}\n",
        kafka_cluster(NS, "columns", ONE_BROKER)
    ))
    .await;
    ready(&env, NS, "columns").await;
    let table = env
        .kubectl_ok(&["get", "kafkaclusters,kafkatopics", "-n", NS])
        .await;
    let headers: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("NAME"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        headers,
        vec![
            vec!["NAME", "BROKERS", "READY", "STATUS", "AGE"],
            vec![
                "NAME",
                "CLUSTER",
                "PARTITIONS",
                "REPLICATION",
                "FACTOR",
                "LEADERLESS",
                "UNDER",
                "REPLICATED",
                "PHASE",
                "AGE"
            ],
        ],
        "{table}"
    );
    assert_eq!(
        &row(&table, "kafkacluster.tributary.dev/columns")[1..4],
        ["1", "1", "AllBrokersReady"],
        "{table}"
    );
    assert_eq!(
        &row(&table, "kafkatopic.tributary.dev/events")[1..4],
        ["columns", "3", "1"],
        "{table}"
    );

    // Upgrade: one replica at a new log level (a new pod template): a new ReplicaSet rolls out.
    env.helm_ok(&[
        "upgrade",
        RELEASE,
        "charts/tributary",
        "--namespace",
        RELEASE_NS,
        "--reuse-values",
        "--set",
        "operator.replicas=1",
        "--set",
        "operator.logLevel=debug",
        "--wait",
        "--timeout",
        "180s",
    ])
    .await;
    rolled_out(&env).await;
    let list = env.helm_ok(&["list", "--namespace", RELEASE_NS]).await;
    assert_eq!(row(&list, RELEASE)[2], "2", "{list}");
    let pods = operator_pods(&env, 1).await;
    let env_of = |p: &serde_json::Value| p["spec"]["containers"][0]["env"].to_string();
    assert!(
        env_of(&pods[0]).contains("\"debug\""),
        "the new pod runs the new template"
    );
    let history = env
        .kubectl_ok(&[
            "rollout",
            "history",
            "deployment/tributary-operator",
            "-n",
            RELEASE_NS,
        ])
        .await;
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('2')),
        "{history}"
    );
    leader(&env, &[name(&pods[0])]).await;

    // Uninstall: Kafka objects first (the operator releases their finalizers), then the chart.
    env.kubectl_ok(&[
        "delete",
        "kafkatopics,kafkaclusters",
        "--all",
        "-n",
        NS,
        "--wait",
        "--timeout",
        "120s",
    ])
    .await;
    env.helm_ok(&[
        "uninstall",
        RELEASE,
        "--namespace",
        RELEASE_NS,
        "--wait",
        "--timeout",
        "120s",
    ])
    .await;
    wait("the operator's pods to be gone", REACT, || async {
        env.pods(RELEASE_NS, crate::env::OPERATOR_PODS)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let secrets = env
        .kubectl_ok(&[
            "get",
            "secrets",
            "-n",
            RELEASE_NS,
            "-l",
            "owner=helm",
            "-o",
            "name",
        ])
        .await;
    assert!(secrets.trim().is_empty(), "release secrets left: {secrets}");
    assert!(env
        .helm_ok(&["list", "--all-namespaces", "-q"])
        .await
        .trim()
        .is_empty());
    drop(namespace);
    env.stop().await;
}
