//! Kafka's ElectLeaders in cluster mode, through the Java client's admin: a broker asks the
//! controller for the election with the KafkaPartition's `tributary.dev/elect-leader`
//! annotation and answers once the controller has acted. Leadership moved away from the
//! preferred replica (a controlled stop and restart) goes back to it on request, with
//! automatic rebalancing off so that only the request moves it; asking again is answered
//! ELECTION_NOT_NEEDED, as are unclean elections of partitions that have a leader.

use kube::api::{Patch, PatchParams};
use serde_json::{json, Value};
use tributary_crds::{KafkaCluster, KafkaPartition, ELECT_LEADER_ANNOTATION};
use tributary_e2e::clients::java;

use crate::operated::{served, wait_for_isr, Operated};
use crate::support::{wait_until, CLUSTER};

/// `(partition, error)` of every partition the Java admin's `electLeaders` reported.
async fn elect_leaders(bootstrap: &str, extra: &[&str]) -> Vec<(String, Value)> {
    let mut args = vec![
        "admin",
        "--bootstrap",
        bootstrap,
        "elect-leaders",
        "--topic",
        "elect",
    ];
    args.extend_from_slice(extra);
    let lines = java(&args, None).await;
    let answers: Vec<(String, Value)> = lines
        .iter()
        .filter(|l| l["event"] == "elected")
        .map(|l| {
            (
                l["partition"].as_str().unwrap_or("").to_owned(),
                l["error"].clone(),
            )
        })
        .collect();
    assert!(!answers.is_empty(), "{lines:?}");
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_preferred_election_gives_leadership_back_to_the_preferred_replica_once() {
    let mut cluster = Operated::start().await;
    let balancing_off =
        json!({ "spec": { "config": { "auto.leader.rebalance.enable": "false" } } });
    cluster
        .plane
        .api::<KafkaCluster>()
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(&balancing_off),
        )
        .await
        .unwrap_or_else(|e| panic!("turn leader balancing off: {e}"));
    cluster.plane.create_topic("elect", 1, 3).await;
    let layout = served(&cluster, "elect", 1).await;
    let preferred = layout[0]
        .2
        .first()
        .map_or(-1, |&b| i32::try_from(b).unwrap_or(-1));
    wait_for_isr(&cluster, "elect-0", 3).await;

    // Leadership moves away: the preferred replica hands it over as it stops, comes back as a
    // new incarnation and catches up into the ISR, a follower.
    cluster.stop_controlled(preferred).await;
    cluster.restart(preferred).await;
    let partitions = cluster.plane.api::<KafkaPartition>();
    let moved = wait_until(
        "the restarted preferred replica back in the ISR, following",
        || async {
            let status = partitions.get("elect-0").await.ok()?.status?;
            let back = status
                .isr
                .iter()
                .any(|e| e.broker_id == preferred && e.broker_epoch == 2);
            (back && status.leader != preferred).then_some(status)
        },
    )
    .await;
    let other = (0..3).find(|id| *id != preferred).unwrap_or(0);
    let bootstrap = cluster.broker(other).address.clone();

    // The request returns leadership to the preferred replica and says so.
    let first = elect_leaders(&bootstrap, &[]).await;
    assert_eq!(first, vec![("elect-0".to_owned(), Value::Null)]);
    let object = partitions
        .get("elect-0")
        .await
        .unwrap_or_else(|e| panic!("read elect-0: {e}"));
    let status = object.status.unwrap_or_default();
    assert_eq!(status.leader, preferred, "{status:?}");
    assert!(status.leader_epoch > moved.leader_epoch);
    let request = object
        .metadata
        .annotations
        .unwrap_or_default()
        .remove(ELECT_LEADER_ANNOTATION);
    assert_eq!(request, None, "the controller removed the request");
    let back = served(&cluster, "elect", 1).await;
    assert_eq!(back[0].1, i64::from(preferred), "{back:?}");

    // Nothing left to do: the preferred replica leads, and a led partition needs no unclean
    // election; a partition the topic does not have is unknown.
    let second = elect_leaders(&bootstrap, &[]).await;
    assert_eq!(
        second,
        vec![("elect-0".to_owned(), json!("ElectionNotNeededException"))]
    );
    let mut unclean = elect_leaders(
        &bootstrap,
        &["--type", "unclean", "--partition", "0", "--partition", "7"],
    )
    .await;
    unclean.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        unclean,
        vec![
            ("elect-0".to_owned(), json!("ElectionNotNeededException")),
            (
                "elect-7".to_owned(),
                json!("UnknownTopicOrPartitionException")
            ),
        ]
    );
    cluster.stop().await;
}
