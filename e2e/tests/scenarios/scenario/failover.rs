//! operator failover: with two operator replicas, SIGKILL the process holding the leader
//! Lease; the standby takes the Lease within the lease bound and reconciles the next change
//! (a new KafkaCluster gets its StatefulSet and a status naming the new controller); the
//! killed container is restarted and stands by.

use std::time::{Duration, Instant};

use crate::env::{wait, Driver, Env, OPERATOR_LEASE, RELEASE_NS};
use tributary_e2e::clients::http_get;

use super::{kafka_cluster, leader, lease_holder, name, operator_pods, pod_ip, ONE_BROKER, REACT};

const NS: &str = "failover";

pub(crate) async fn run(driver: Driver) {
    let env = Env::fresh(driver).await;
    env.install_chart(&[]).await;
    let pods = operator_pods(&env, 2).await;
    let names: Vec<String> = pods.iter().map(name).collect();
    let holder = leader(&env, &names).await;
    let standby = names
        .iter()
        .find(|n| **n != holder)
        .expect("two replicas")
        .clone();
    let lease = env
        .get_json(&["lease", OPERATOR_LEASE, "-n", RELEASE_NS])
        .await;
    let duration = lease["spec"]["leaseDurationSeconds"]
        .as_u64()
        .expect("lease duration");
    let renew = 1; // e2e/chart-values.yaml
    let namespace = env.namespace(NS).await;

    env.kill(RELEASE_NS, &holder, "operator").await;
    let killed = Instant::now();
    let took = wait("the standby to take the Lease", REACT, || async {
        (lease_holder(&env).await.as_deref() == Some(standby.as_str())).then(|| killed.elapsed())
    })
    .await;
    // It waits for the dead holder's Lease to expire, then takes it at its next attempt.
    let bound = Duration::from_secs(duration + 2 * renew + 5);
    assert!(
        took <= bound,
        "the standby took over after {took:?}, more than {bound:?}"
    );
    eprintln!(
        "failover: the standby led {:.1} s after the kill (lease {duration} s)",
        took.as_secs_f64()
    );

    // The next change is reconciled by the new leader.
    env.apply(&kafka_cluster(NS, "after", ONE_BROKER)).await;
    wait(
        "the new leader to reconcile the new cluster",
        REACT,
        || async {
            let kc = env.get_json(&["kafkacluster", "after", "-n", NS]).await;
            let observed = kc["status"]["observedGeneration"] == kc["metadata"]["generation"];
            let sts = env
                .kubectl(&["get", "statefulset", "after-broker", "-n", NS])
                .await;
            (observed && kc["status"]["controller"] == standby.as_str() && sts.ok).then_some(())
        },
    )
    .await;
    let standby_pod = pods
        .iter()
        .find(|p| name(p) == standby)
        .expect("standby pod");
    let (_, metrics) = http_get(&format!("{}:8080", pod_ip(standby_pod)), "/metrics")
        .await
        .expect("GET /metrics");
    assert!(
        metrics.lines().any(|l| l == "tributary_operator_leader 1"),
        "{metrics}"
    );

    // The killed container was restarted in its pod and stands by.
    let restarted = wait(
        "the killed operator to be restarted and ready",
        REACT,
        || async {
            let pod = env.get_json(&["pod", &holder, "-n", RELEASE_NS]).await;
            let restarts = pod["status"]["containerStatuses"][0]["restartCount"]
                .as_i64()
                .unwrap_or(0);
            let ready = pod["status"]["containerStatuses"][0]["ready"] == true;
            (restarts >= 1 && ready).then_some(pod)
        },
    )
    .await;
    let (_, metrics) = http_get(&format!("{}:8080", pod_ip(&restarted)), "/metrics")
        .await
        .expect("GET /metrics");
    assert!(
        metrics.lines().any(|l| l == "tributary_operator_leader 0"),
        "{metrics}"
    );
    drop(namespace);
    env.stop().await;
}
