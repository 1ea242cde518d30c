//! scaling: a cluster of three brokers under idempotent acks=all production grows to five
//! (the operator spreads replicas onto the new brokers by partition reassignments, at most
//! `rebalance.maxConcurrentMoves` in progress at any moment), shrinks back to three (replicas
//! move off brokers 3 and 4 before the StatefulSet removes them), and is refused a scale-down
//! to two (its topics have three replicas each) with a `ScaleDownBlocked` condition while
//! nothing moves. Every acknowledged record survives, none is duplicated or reordered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::Api;
use serde_json::Value;

use crate::env::wait;

use super::replicated::Replicated;
use super::READY;

const NS: &str = "scaling";
const CLUSTER: &str = "grow";
const TOPIC: &str = "events";
/// A second topic, so the rebalance has enough partitions to need several rounds of moves.
const BULK: &str = "bulk";
/// The bound on reassignments in progress at once.
const MAX_MOVES: usize = 2;

/// One partition's assignment as its KafkaPartition records it.
#[derive(Clone, Debug)]
struct Assigned {
    replicas: Vec<i64>,
    reassigning: bool,
    isr: Vec<i64>,
}

impl Assigned {
    fn of(obj: &DynamicObject) -> Assigned {
        let ids = |v: &Value| -> Vec<i64> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect()
        };
        let spec = &obj.data["spec"];
        Assigned {
            replicas: ids(&spec["replicas"]),
            reassigning: !ids(&spec["addingReplicas"]).is_empty()
                || !ids(&spec["removingReplicas"]).is_empty(),
            isr: obj.data["status"]["isr"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["brokerId"].as_i64())
                .collect(),
        }
    }

    /// Settled, with every replica in sync.
    fn in_sync(&self) -> bool {
        let mut isr = self.isr.clone();
        let mut replicas = self.replicas.clone();
        isr.sort_unstable();
        replicas.sort_unstable();
        !self.reassigning && isr == replicas
    }
}

/// Reads every KafkaPartition of the namespace.
#[derive(Clone)]
struct Assignments(Api<DynamicObject>);

impl Assignments {
    fn new(cluster: &Replicated) -> Assignments {
        let resource = ApiResource {
            group: "tributary.dev".into(),
            version: "v1alpha1".into(),
            api_version: "tributary.dev/v1alpha1".into(),
            kind: "KafkaPartition".into(),
            plural: "kafkapartitions".into(),
        };
        Assignments(Api::namespaced_with(cluster.client(), NS, &resource))
    }

    async fn now(&self) -> Option<Vec<Assigned>> {
        let list = self.0.list(&ListParams::default()).await.ok()?;
        Some(list.items.iter().map(Assigned::of).collect())
    }

    /// Waits until every partition is settled and in sync and `accept` takes them.
    async fn settle(&self, what: &str, accept: impl Fn(&[Assigned]) -> bool) -> Vec<Assigned> {
        wait(what, READY, || async {
            let all = self.now().await?;
            (all.iter().all(Assigned::in_sync) && accept(&all)).then_some(all)
        })
        .await
    }
}

/// Replicas per broker id.
fn counts(all: &[Assigned]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for p in all {
        for r in &p.replicas {
            *counts.entry(*r).or_default() += 1;
        }
    }
    counts
}

/// Samples how many reassignments are in progress, every 100 ms, until stopped.
struct MoveWatch {
    most: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl MoveWatch {
    fn start(assignments: Assignments) -> MoveWatch {
        let most = Arc::new(Mutex::new(0));
        let into = most.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Some(all) = assignments.now().await {
                    let moving = all.iter().filter(|p| p.reassigning).count();
                    let mut most = into.lock().unwrap_or_else(PoisonError::into_inner);
                    *most = (*most).max(moving);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        MoveWatch { most, task }
    }

    /// The most reassignments seen in progress at once.
    fn stop(self) -> usize {
        self.task.abort();
        *self.most.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn set_brokers(cluster: &Replicated, brokers: i32) {
    let patch = format!(r#"{{"spec":{{"brokers":{brokers}}}}}"#);
    cluster
        .env
        .kubectl_ok(&[
            "patch",
            "kafkacluster",
            CLUSTER,
            "-n",
            NS,
            "--type",
            "merge",
            "-p",
            &patch,
        ])
        .await;
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
    let (mut cluster, producing) = Replicated::producing(driver, NS, CLUSTER, TOPIC, &extra).await;
    cluster.topic(BULK, 6, "").await;
    cluster.topic = TOPIC;
    let assignments = Assignments::new(&cluster);

    // 3 -> 5: the new brokers start, then replicas spread onto them.
    let watch = MoveWatch::start(assignments.clone());
    let started = Instant::now();
    set_brokers(&cluster, 5).await;
    let spread = assignments
        .settle("replicas spread over five brokers", |all| {
            let c = counts(all);
            let (min, max) = (c.values().min(), c.values().max());
            c.len() == 5 && max.zip(min).is_some_and(|(a, b)| a - b <= 1)
        })
        .await;
    let most = watch.stop();
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
    let watch = MoveWatch::start(assignments.clone());
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
    let most = watch.stop();
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
    assert!(now.iter().all(|p| !p.reassigning), "nothing moves: {now:?}");
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
