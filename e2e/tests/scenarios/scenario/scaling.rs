//! scaling: a cluster of three brokers under idempotent acks=all production grows to five
//! (the operator spreads replicas onto the new brokers by partition reassignments, at most
//! `rebalance.maxConcurrentMoves` in progress at any moment), shrinks back to three (replicas
//! move off brokers 3 and 4 before the StatefulSet removes them), and is refused a scale-down
//! to two (its topics have three replicas each) with a `ScaleDownBlocked` condition while
//! nothing moves. Every acknowledged record survives, none is duplicated or reordered.

use std::time::Instant;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;

use crate::env::wait;

use super::assignments::{counts, Assignments, MoveWatch};
use super::replicated::Replicated;
use super::READY;

const NS: &str = "scaling";
const CLUSTER: &str = "grow";
const TOPIC: &str = "events";
/// A second topic, so the rebalance has enough partitions to need several rounds of moves.
const BULK: &str = "bulk";
/// The bound on reassignments in progress at once.
const MAX_MOVES: usize = 2;

async fn set_brokers(cluster: &Replicated, brokers: i32) {
    let patch = format!(r#"{{"spec":{{"brokers":{brokers}}}}}"#);
    cluster.merge_patch("kafkacluster", CLUSTER, &patch).await;
}

async fn stateful_set_replicas(cluster: &Replicated) -> Option<i32> {
    let sets: Api<StatefulSet> = Api::namespaced(cluster.client(), NS);
    sets.get(&format!("{CLUSTER}-broker"))
        .await
        .ok()?
        .spec
        .replicas
}

/// The uids of brokers 0..3's pods (a new uid is a replaced pod).
async fn pod_uids(cluster: &Replicated) -> Vec<Option<String>> {
    let mut uids = Vec::new();
    for id in 0..3 {
        uids.push(cluster.pod_object(id).await.and_then(|p| p.metadata.uid));
    }
    uids
}

pub(crate) async fn run(driver: crate::env::Driver) {
    let extra = format!("rebalance: {{maxConcurrentMoves: {MAX_MOVES}}}");
    let (mut cluster, producing) =
        Replicated::producing(driver, NS, CLUSTER, TOPIC, "", &extra).await;
    cluster.topic(BULK, 6, "").await;
    cluster.topic = TOPIC;
    let assignments = Assignments::new(&cluster);

    // 3 -> 5: the new brokers start, then replicas spread onto them.
    let watch = MoveWatch::start(&assignments);
    let started = Instant::now();
    set_brokers(&cluster, 5).await;
    let spread = assignments
        .settle("replicas spread over five brokers", |all| {
            let c = counts(all);
            let (min, max) = (c.values().min(), c.values().max());
            c.len() == 5 && max.zip(min).is_some_and(|(a, b)| a - b <= 1)
        })
        .await;
    let most = watch.stop().most;
    cluster.log(&format!(
        "3 -> 5 brokers: {} partitions rebalanced to {:?} replicas per broker in {:.1} s, at most {most} \
         reassignments at once",
        spread.len(),
        counts(&spread),
        started.elapsed().as_secs_f64()
    ));
    assert!(most >= 1, "the rebalance moved replicas by reassignments");
    assert!(
        most <= MAX_MOVES,
        "at most {MAX_MOVES} moves at once, saw {most}"
    );

    // 5 -> 3: replicas leave brokers 3 and 4 first; only then does the StatefulSet shrink.
    let watch = MoveWatch::start(&assignments);
    let started = Instant::now();
    set_brokers(&cluster, 3).await;
    let drained = assignments
        .settle("replicas moved off brokers 3 and 4", |all| {
            counts(all).keys().all(|id| *id < 3)
        })
        .await;
    wait("the StatefulSet to shrink to three", READY, || async {
        (stateful_set_replicas(&cluster).await == Some(3)).then_some(())
    })
    .await;
    let most = watch.stop().most;
    cluster.log(&format!(
        "5 -> 3 brokers: {} partitions drained in {:.1} s, at most {most} reassignments at once",
        drained.len(),
        started.elapsed().as_secs_f64()
    ));
    assert!(
        most <= MAX_MOVES,
        "at most {MAX_MOVES} moves at once, saw {most}"
    );

    // 3 -> 2 cannot keep three replicas per partition: refused, nothing moves or restarts.
    let pods = pod_uids(&cluster).await;
    set_brokers(&cluster, 2).await;
    let message = wait("Progressing=False/ScaleDownBlocked", READY, || async {
        let kc = cluster
            .env
            .get_json(&["kafkacluster", CLUSTER, "-n", NS])
            .await;
        let conditions = kc["status"]["conditions"].as_array()?.clone();
        conditions
            .iter()
            .find(|c| {
                c["type"] == "Progressing"
                    && c["status"] == "False"
                    && c["reason"] == "ScaleDownBlocked"
            })
            .and_then(|c| c["message"].as_str().map(str::to_owned))
    })
    .await;
    cluster.log(&format!("3 -> 2 refused: {message}"));
    assert_eq!(stateful_set_replicas(&cluster).await, Some(3));
    let now = assignments.now().await.unwrap_or_default();
    assert!(
        now.iter().all(|p| !p.reassigning()),
        "nothing moves: {now:?}"
    );
    set_brokers(&cluster, 3).await;
    wait("the ScaleDownBlocked condition to clear", READY, || async {
        let kc = cluster
            .env
            .get_json(&["kafkacluster", CLUSTER, "-n", NS])
            .await;
        let blocked = kc["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["reason"] == "ScaleDownBlocked");
        (!blocked).then_some(())
    })
    .await;
    assert_eq!(pod_uids(&cluster).await, pods, "no broker restarted");

    let history = producing.stop().await;
    cluster.check("scaling", &history).await;
}
