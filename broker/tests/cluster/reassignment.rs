//! Partition reassignment in cluster mode, through the Java admin client's calls that
//! `kafka-reassign-partitions.sh` makes (alterPartitionReassignments,
//! listPartitionReassignments): the broker records the move in the KafkaPartition spec
//! (`addingReplicas`/`removingReplicas`), the added broker catches up and joins the ISR, the
//! controller completes the move (leadership off a removed leader first), and the removed
//! broker deletes its replica once the spec no longer lists it. An idempotent producer at
//! acks=all runs throughout: every acknowledged record is on the new replicas, whose logs are
//! byte-identical.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use kafka_protocol::error::ResponseError;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{json, Value};
use tributary_crds::{KafkaCluster, KafkaPartition, PAUSE_ANNOTATION};
use tributary_e2e::clients::java;
use tributary_e2e::history::{check, read_back, Workload};

use crate::operated::{count, served, wait_for_isr, Operated};
use crate::replication::{consume_all, logs, produce, read_values};
use crate::support::{wait_until, CLUSTER};

/// Lets the cluster have `n` brokers with its reconciler paused: the operator's rebalancing
/// (which moves replicas onto new brokers and back to the topic's replication factor by the
/// same reassignments) holds still, so what moves is what a test moves. The controller role,
/// which completes reassignments, runs on.
async fn grow_cluster(cluster: &Operated, n: i32) {
    let clusters = cluster.plane.api::<KafkaCluster>();
    let patch = json!({
        "metadata": { "annotations": { PAUSE_ANNOTATION: "true" } },
        "spec": { "brokers": n },
    });
    clusters
        .patch(CLUSTER, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("KafkaCluster brokers {n}, paused: {e}"));
    wait_until("the KafkaCluster paused", || async {
        let c = clusters.get(CLUSTER).await.ok()?;
        let conditions = c.status.map(|s| s.conditions).unwrap_or_default();
        conditions
            .iter()
            .any(|c| c.type_ == "Paused" && c.status == "True")
            .then_some(())
    })
    .await;
}

/// Runs `KafkaCli admin <op> <args>` against `bootstrap`.
async fn admin(bootstrap: &str, op: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["admin", "--bootstrap", bootstrap, op];
    all.extend_from_slice(args);
    java(&all, None).await
}

/// Asks for partition `partition` of `topic` to move to `replicas` (`None` cancels); the
/// error class the admin client reported, if any.
async fn reassign(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
) -> Option<String> {
    let partition = partition.to_string();
    let list: Option<String> =
        replicas.map(|r| r.iter().map(i32::to_string).collect::<Vec<_>>().join(","));
    let mut args = vec!["--topic", topic, "--partition", &partition];
    if let Some(list) = &list {
        args.extend(["--replicas", list.as_str()]);
    }
    let lines = admin(bootstrap, "reassign", &args).await;
    if let Some(error) = lines.iter().find(|l| l["event"] == "error") {
        return Some(error["error"].as_str().unwrap_or("?").to_owned());
    }
    assert_eq!(count(&lines, "reassigned"), 1, "{lines:?}");
    None
}

/// The reassignments ListPartitionReassignments reports: `(partition, replicas, adding,
/// removing)`.
async fn listed(bootstrap: &str) -> Vec<(String, Vec<i64>, Vec<i64>, Vec<i64>)> {
    let lines = admin(bootstrap, "list-reassignments", &[]).await;
    assert_eq!(count(&lines, "listed"), 1, "{lines:?}");
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect()
    };
    lines
        .iter()
        .filter(|l| l["event"] == "reassignment")
        .map(|l| {
            (
                l["partition"].as_str().unwrap_or("").to_owned(),
                ids(&l["replicas"]),
                ids(&l["adding"]),
                ids(&l["removing"]),
            )
        })
        .collect()
}

/// Records every version of KafkaPartition `name` the API server stores from now on.
fn record_versions(
    cluster: &Operated,
    name: &str,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<KafkaPartition>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let events = watcher(cluster.plane.api::<KafkaPartition>(), config);
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = event {
                let _ = tx.send(p);
            }
        }
    });
    (task, rx)
}

/// The KafkaPartition `name` once `done` holds for it.
async fn partition_where(
    cluster: &Operated,
    name: &str,
    what: &str,
    done: impl Fn(&KafkaPartition) -> bool,
) -> KafkaPartition {
    let api = cluster.plane.api::<KafkaPartition>();
    wait_until(what, || async {
        api.get(name).await.ok().filter(|p| done(p))
    })
    .await
}

/// Whether broker `id` still has a directory for partition 0 of `topic`.
fn has_directory(cluster: &Operated, id: i32, topic: &str) -> bool {
    let dir = &cluster.broker(id).broker.config.data_dir;
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy() == format!("{topic}-0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_a_partition_off_its_leader_under_idempotent_production_loses_nothing() {
    let cluster = Operated::start_sized(4, |_| {}).await;
    cluster.plane.create_topic("moved", 1, 3).await;
    served(&cluster, "moved", 1).await;
    wait_for_isr(&cluster, "moved-0", 3).await;
    grow_cluster(&cluster, 4).await;
    let before = cluster
        .plane
        .api::<KafkaPartition>()
        .get("moved-0")
        .await
        .unwrap_or_else(|e| panic!("read moved-0: {e}"));
    let current = before.spec.replicas.clone();
    let leader = before.status.as_ref().map_or(-1, |s| s.leader);
    assert!(
        !current.contains(&3),
        "placed on brokers 0 to 2: {current:?}"
    );
    // {0,1,2} -> {1,2,3} as sets: the leader goes, broker 3 comes.
    let mut target: Vec<i32> = current.iter().copied().filter(|b| *b != leader).collect();
    target.push(3);
    let (recorder, mut versions) = record_versions(&cluster, "moved-0");

    let bootstrap = cluster.broker(3).address.clone();
    let mut workload = Workload::new(&bootstrap, "moved");
    workload.count = Some(3_000);
    workload.rate = Some(500.0);
    let producing = workload.start().await;
    producing.wait_for_acks(500, Duration::from_secs(60)).await;

    assert_eq!(reassign(&bootstrap, "moved", 0, Some(&target)).await, None);
    let done = partition_where(&cluster, "moved-0", "the move to complete", |p| {
        p.spec.replicas == target && !p.spec.is_reassigning()
    })
    .await;
    let status = done.status.unwrap_or_default();
    assert!(target.contains(&status.leader), "{status:?}");
    assert!(status.leader_epoch > before.status.map_or(0, |s| s.leader_epoch));
    assert_eq!(listed(&bootstrap).await, vec![], "nothing in progress");

    let history = producing.finish().await;
    let reads = read_back(&bootstrap, "moved", Duration::from_secs(60)).await;
    check(&history, &reads).assert_clean();
    assert_eq!(
        history.acked(),
        3_000,
        "every record acknowledged; the others by error: {:?}",
        history.failures()
    );

    // The removed broker deleted its replica; the new replicas hold identical logs.
    wait_until("the removed broker to delete its replica", || async {
        let gone = cluster
            .broker(leader)
            .broker
            .replicas
            .get("moved", 0)
            .is_none()
            && !has_directory(&cluster, leader, "moved");
        gone.then_some(())
    })
    .await;
    wait_until("the new replicas' logs to be identical", || async {
        let logs = logs(&cluster, "moved");
        let holders: BTreeSet<i32> = logs.iter().map(|(id, _)| *id).collect();
        let first = logs.first()?.1.clone();
        (holders == target.iter().copied().collect()
            && !first.is_empty()
            && logs.iter().all(|(_, bytes)| *bytes == first))
        .then_some(())
    })
    .await;

    // What the object went through: the move recorded as Kafka records it, and the old
    // leader leaving the ISR only once every target replica was in it (KIP-497).
    recorder.abort();
    let mut seen = Vec::new();
    while let Ok(p) = versions.try_recv() {
        seen.push(p);
    }
    assert!(
        seen.iter().any(|p| p.spec.adding_replicas == [3]
            && p.spec.removing_replicas == [leader]
            && p.spec.replicas[..3] == target[..]),
        "the KafkaPartition showed the move in progress: {:?}",
        seen.iter().map(|p| &p.spec).collect::<Vec<_>>()
    );
    for p in &seen {
        let Some(s) = &p.status else { continue };
        let isr: BTreeSet<i32> = s.isr.iter().map(|e| e.broker_id).collect();
        assert!(
            isr.iter().all(|b| p.spec.replicas.contains(b)) && isr.contains(&s.leader),
            "{p:?}"
        );
        if p.spec.is_reassigning() && !isr.contains(&leader) {
            assert!(target.iter().all(|t| isr.contains(t)), "{p:?}");
        }
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reassignments_are_listed_cancelled_refused_and_grow_the_replication_factor() {
    let mut cluster = Operated::start_sized(4, |_| {}).await;
    cluster.plane.create_topic("stuck", 1, 3).await;
    cluster.plane.create_topic("grow", 1, 1).await;
    served(&cluster, "stuck", 1).await;
    served(&cluster, "grow", 1).await;
    wait_for_isr(&cluster, "stuck-0", 3).await;
    grow_cluster(&cluster, 4).await;
    let bootstrap = cluster.broker(0).address.clone();
    let partitions = cluster.plane.api::<KafkaPartition>();

    // Broker 3 renews its Lease but replicates nothing: a move onto it stays in progress.
    cluster.isolate(3);
    let stuck = partitions
        .get("stuck-0")
        .await
        .unwrap_or_else(|e| panic!("read stuck-0: {e}"));
    let original = stuck.spec.replicas.clone();
    let removed = original[0];
    let target: Vec<i32> = vec![original[1], original[2], 3];
    assert_eq!(reassign(&bootstrap, "stuck", 0, Some(&target)).await, None);
    let moving = partitions
        .get("stuck-0")
        .await
        .unwrap_or_else(|e| panic!("read stuck-0: {e}"));
    assert_eq!(moving.spec.replicas, [original[1], original[2], 3, removed]);
    assert_eq!(moving.spec.adding_replicas, [3]);
    assert_eq!(moving.spec.removing_replicas, [removed]);
    let as_i64 = |v: &[i32]| v.iter().map(|&b| i64::from(b)).collect::<Vec<_>>();
    assert_eq!(
        listed(&bootstrap).await,
        vec![(
            "stuck-0".to_owned(),
            as_i64(&moving.spec.replicas),
            vec![3],
            vec![i64::from(removed)]
        )]
    );

    // Cancelled: back to the original replicas, nothing listed; cancelling again is refused.
    assert_eq!(reassign(&bootstrap, "stuck", 0, None).await, None);
    let back = partitions
        .get("stuck-0")
        .await
        .unwrap_or_else(|e| panic!("read stuck-0: {e}"));
    let mut sorted = back.spec.replicas.clone();
    sorted.sort_unstable();
    let mut was = original.clone();
    was.sort_unstable();
    assert_eq!(sorted, was, "{:?}", back.spec);
    assert!(!back.spec.is_reassigning());
    assert_eq!(listed(&bootstrap).await, vec![]);
    assert_eq!(
        reassign(&bootstrap, "stuck", 0, None).await.as_deref(),
        Some("NoReassignmentInProgressException")
    );

    // Invalid requests get Kafka's errors and change nothing (the Java client refuses an
    // empty list itself; the broker's check of it is a unit test).
    let invalid = "InvalidReplicaAssignmentException";
    for (replicas, partition, error) in [
        (Some(&[0, 0, 1][..]), 0, invalid),
        (Some(&[0, 1, 9][..]), 0, invalid),
        (Some(&[-1, 0][..]), 0, invalid),
        (Some(&[0, 1, 2][..]), 7, "UnknownTopicOrPartitionException"),
        (None, 7, "UnknownTopicOrPartitionException"),
    ] {
        assert_eq!(
            reassign(&bootstrap, "stuck", partition, replicas)
                .await
                .as_deref(),
            Some(error),
            "{replicas:?} of partition {partition}"
        );
    }
    let unchanged = partitions
        .get("stuck-0")
        .await
        .unwrap_or_else(|e| panic!("read stuck-0: {e}"));
    assert_eq!(unchanged.spec, back.spec);

    // v1 (KIP-860): a request that does not allow replication factor changes is refused one,
    // and the answer says what was allowed.
    let grow = partitions
        .get("grow-0")
        .await
        .unwrap_or_else(|e| panic!("read grow-0: {e}"));
    let only = grow.spec.replicas[0];
    let mut three = vec![only];
    three.extend((0..3).filter(|b| *b != only));
    assert_eq!(
        reassign_v1(&bootstrap, "grow", &three, false).await,
        (false, ResponseError::InvalidReplicationFactor.code())
    );
    let unchanged = partitions
        .get("grow-0")
        .await
        .unwrap_or_else(|e| panic!("read grow-0: {e}"));
    assert_eq!(unchanged.spec, grow.spec);

    // Replication factor 1 -> 3 on a topic with data, among the brokers that replicate.
    let acks = produce(&bootstrap, "grow", 200, "g").await;
    assert_eq!(count(&acks, "ack"), 200, "{acks:?}");
    assert_eq!(reassign(&bootstrap, "grow", 0, Some(&three)).await, None);
    let grown = partition_where(&cluster, "grow-0", "the replication factor to grow", |p| {
        p.spec.replicas == three && !p.spec.is_reassigning()
    })
    .await;
    assert_eq!(grown.status.map(|s| s.isr.len()), Some(3));
    wait_until("three identical logs of grow-0", || async {
        let logs = logs(&cluster, "grow");
        let first = logs.first()?.1.clone();
        (logs.len() == 3 && !first.is_empty() && logs.iter().all(|(_, b)| *b == first))
            .then_some(())
    })
    .await;
    let read = read_values(&consume_all(&bootstrap, "grow", 200).await);
    assert_eq!(read.len(), 200);
    cluster.stop().await;
}

/// AlterPartitionReassignments v1 moving partition 0 of `topic` onto `replicas`: the answer's
/// echo of `allow_replication_factor_change` and the partition's error code.
async fn reassign_v1(bootstrap: &str, topic: &str, replicas: &[i32], allow: bool) -> (bool, i16) {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
        TopicName,
    };
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_allow_replication_factor_change(allow)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(topic.to_string().into()))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(Some(
                    replicas.iter().map(|&b| BrokerId(b)).collect(),
                ))])]);
    let response: AlterPartitionReassignmentsResponse =
        crate::support::kafka_call(bootstrap, ApiKey::AlterPartitionReassignments, 1, &request)
            .await;
    let code = response.responses[0].partitions[0].error_code;
    (response.allow_replication_factor_change, code)
}

/// Writes `bytes` of 1 KB records to `topic` (an idempotent acks=all producer).
async fn fill(bootstrap: &str, topic: &str, bytes: u64) {
    let mut workload = Workload::new(bootstrap, topic);
    workload.count = Some(bytes / 1000);
    workload.value_size = 1000;
    let history = workload.start().await.finish().await;
    assert_eq!(
        u64::try_from(history.acked()).ok(),
        Some(bytes / 1000),
        "every record acknowledged"
    );
}

/// Sets dynamic config `key` of broker `id` to `value` (incrementalAlterConfigs, as
/// `kafka-reassign-partitions.sh --throttle` does).
async fn set_broker_config(bootstrap: &str, id: i32, key: &str, value: &str) {
    let id = id.to_string();
    let set = format!("{key}={value}");
    let lines = admin(
        bootstrap,
        "alter-configs",
        &["--broker", &id, "--set", &set],
    )
    .await;
    assert_eq!(count(&lines, "altered"), 1, "{lines:?}");
}

/// Sets topic config `key` of `topic` to `value`.
async fn set_topic_config(bootstrap: &str, topic: &str, key: &str, value: &str) {
    let set = format!("{key}={value}");
    let lines = admin(
        bootstrap,
        "alter-configs",
        &["--topic", topic, "--set", &set],
    )
    .await;
    assert_eq!(count(&lines, "altered"), 1, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replication_throttles_slow_the_copy_of_listed_replicas_to_their_rate_and_spare_the_rest() {
    let cluster = Operated::start_sized(3, |_| {}).await;
    let bootstrap = cluster.broker(0).address.clone();
    let partitions = cluster.plane.api::<KafkaPartition>();
    // The moves below raise the topics' replication factor, which the operator would undo.
    grow_cluster(&cluster, 3).await;
    // Three topics with one replica each and 1.5 MB of data: one copied under the leader's
    // throttle, one under the follower's, one freely.
    let topics = ["leader-slow", "follower-slow", "free"];
    for topic in topics {
        cluster.plane.create_topic(topic, 1, 1).await;
        served(&cluster, topic, 1).await;
        fill(&bootstrap, topic, 1_500_000).await;
    }
    let mut targets = Vec::new();
    for topic in topics {
        let p = partitions
            .get(&format!("{topic}-0"))
            .await
            .unwrap_or_else(|e| panic!("read {topic}-0: {e}"));
        let from = p.spec.replicas[0];
        targets.push((topic, from, (from + 1) % 3));
    }
    // 50 kB/s: the first fetch (1 MB, replica.fetch.max.bytes) uses the window up, so the
    // rest waits until it has passed (eleven seconds).
    let (_, leader, _) = targets[0];
    set_broker_config(
        &bootstrap,
        leader,
        "leader.replication.throttled.rate",
        "50000",
    )
    .await;
    set_topic_config(
        &bootstrap,
        "leader-slow",
        "leader.replication.throttled.replicas",
        "*",
    )
    .await;
    let (_, _, follower) = targets[1];
    set_broker_config(
        &bootstrap,
        follower,
        "follower.replication.throttled.rate",
        "50000",
    )
    .await;
    set_topic_config(
        &bootstrap,
        "follower-slow",
        "follower.replication.throttled.replicas",
        "*",
    )
    .await;

    let mut started = Vec::new();
    for (topic, from, to) in &targets {
        started.push(std::time::Instant::now());
        assert_eq!(
            reassign(&bootstrap, topic, 0, Some(&[*from, *to])).await,
            None
        );
    }
    let took = futures::future::join_all(targets.iter().zip(&started).map(|((topic, ..), at)| {
        let cluster = &cluster;
        async move {
            wait_for_isr(cluster, &format!("{topic}-0"), 2).await;
            at.elapsed()
        }
    }))
    .await;
    eprintln!("replicas in sync after {took:?} (leader-throttled, follower-throttled, free)");
    assert!(took[2] < Duration::from_secs(8), "the free copy: {took:?}");
    for (i, side) in ["leader", "follower"].iter().enumerate() {
        assert!(
            took[i] >= Duration::from_secs(9),
            "the {side}-throttled copy waited for the window: {took:?}"
        );
    }
    for topic in topics {
        wait_until(&format!("two identical logs of {topic}-0"), || async {
            let logs = logs(&cluster, topic);
            let first = logs.first()?.1.clone();
            (logs.len() == 2 && !first.is_empty() && logs.iter().all(|(_, b)| *b == first))
                .then_some(())
        })
        .await;
    }
    cluster.stop().await;
}
