//! The Kafka admin API in cluster mode writes KafkaTopics: the request shapes, conditional
//! writes that survive conflicts, answers that wait for placement (and time out leaving the
//! object, as Kafka leaves a topic whose creation timed out), and validation before any write.
//! The test plays the operator's part (placing partitions) by hand.

use std::collections::BTreeMap;
use std::time::Duration;

use tributary_broker::metadata::{Growth, MetadataError, TopicSpec};
use tributary_crds::{KafkaPartition, KafkaTopic};

use crate::support::{wait_until, ControlPlane, RunningBroker, CLUSTER};

fn spec(name: &str, partitions: i32, replication_factor: i16) -> TopicSpec {
    TopicSpec {
        name: name.to_string(),
        partitions,
        replication_factor,
        configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        assignments: Vec::new(),
    }
}

/// Waits for KafkaTopic `object` to exist, as the operator's watch would see it.
async fn created(plane: &ControlPlane, object: &str) -> KafkaTopic {
    wait_until(&format!("KafkaTopic {object}"), || async {
        plane
            .api::<KafkaTopic>()
            .get_opt(object)
            .await
            .ok()
            .flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_writes_a_kafka_topic_and_answers_once_its_partitions_have_leaders() {
    let plane = ControlPlane::new().await;
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let b0 = RunningBroker::start(&plane, 0, dirs[0].path()).await;
    let _b1 = RunningBroker::start(&plane, 1, dirs[1].path()).await;
    wait_until("both brokers registered", || async {
        (b0.broker.metadata.image().brokers.len() == 2).then_some(())
    })
    .await;

    let admin = b0.broker.admin.clone();
    let creating = tokio::spawn(async move {
        admin
            .create_topic(spec("Orders_v1", 2, 2), Duration::from_secs(20))
            .await
    });
    // A Kafka name that is no Kubernetes name gets a readable object name and keeps the
    // real one in spec.topicName.
    let object = wait_until("the KafkaTopic", || async {
        plane
            .api::<KafkaTopic>()
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|t| t.kafka_name() == "Orders_v1")
    })
    .await;
    let name = object.metadata.name.clone().expect("name");
    assert!(name.starts_with("orders-v1-"), "{name}");
    assert_eq!(object.spec.topic_name.as_deref(), Some("Orders_v1"));
    assert_eq!(object.spec.cluster_ref, CLUSTER);
    assert_eq!(object.spec.partitions, 2);
    assert_eq!(object.spec.replication_factor, 2);
    assert_eq!(
        object.spec.config.get("cleanup.policy"),
        Some(&Some("compact".to_string()))
    );
    assert_eq!(
        object
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(tributary_crds::CLUSTER_LABEL)),
        Some(&CLUSTER.to_string())
    );
    assert!(
        !creating.is_finished(),
        "no answer before the partitions are placed"
    );

    plane.place(&name, 0, &[0, 1], 0, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !creating.is_finished(),
        "no answer while a partition is unplaced"
    );
    plane.place(&name, 1, &[1, 0], 1, 1).await;
    let topic = tokio::time::timeout(Duration::from_secs(10), creating)
        .await
        .expect("answered")
        .expect("task")
        .expect("created");
    assert_eq!(topic.partition_count(), 2);
    assert_eq!(
        topic.id.to_string(),
        object.metadata.uid.clone().expect("uid")
    );
    assert_eq!(
        topic.configs.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );

    let again = b0
        .broker
        .admin
        .create_topic(spec("Orders_v1", 2, 2), Duration::from_secs(1))
        .await;
    assert!(
        matches!(again, Err(MetadataError::TopicExists(_))),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_nobody_places_times_out_and_the_object_stays() {
    let plane = ControlPlane::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b0 = RunningBroker::start(&plane, 0, dir.path()).await;
    let timed_out = b0
        .broker
        .admin
        .create_topic(spec("late", 1, 1), Duration::from_millis(500))
        .await;
    assert!(
        matches!(timed_out, Err(MetadataError::TimedOut(_))),
        "{timed_out:?}"
    );
    created(&plane, "late").await;

    // The operator catches up later: the topic appears, as in Kafka after a timed-out create.
    plane.place("late", 0, &[0], 0, 1).await;
    wait_until("the topic", || async {
        b0.broker.metadata.image().topic("late").map(drop)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_creations_are_refused_before_anything_is_written() {
    let plane = ControlPlane::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b0 = RunningBroker::start(&plane, 0, dir.path()).await;
    let admin = &b0.broker.admin;
    let timeout = Duration::from_secs(1);
    let too_many = admin.create_topic(spec("rf", 1, 3), timeout).await;
    assert!(
        matches!(too_many, Err(MetadataError::InvalidReplicationFactor(_))),
        "one registered broker cannot hold three replicas: {too_many:?}"
    );
    let bad_config = admin
        .create_topic(
            TopicSpec {
                configs: BTreeMap::from([("retention.ms".to_string(), "soon".to_string())]),
                ..spec("cfg", 1, 1)
            },
            timeout,
        )
        .await;
    assert!(
        matches!(bad_config, Err(MetadataError::InvalidConfig(_))),
        "{bad_config:?}"
    );
    let manual = admin
        .create_topic(
            TopicSpec {
                partitions: -1,
                replication_factor: -1,
                // Broker 7 is not registered: manual assignments are checked as in Kafka.
                assignments: vec![vec![7]],
                ..spec("manual", 1, 1)
            },
            timeout,
        )
        .await;
    assert!(
        matches!(manual, Err(MetadataError::InvalidReplicaAssignment(_))),
        "{manual:?}"
    );
    let bad_name = admin.create_topic(spec("a/b", 1, 1), timeout).await;
    assert!(
        matches!(bad_name, Err(MetadataError::InvalidName(_))),
        "{bad_name:?}"
    );
    let written = plane
        .api::<KafkaTopic>()
        .list(&Default::default())
        .await
        .expect("list");
    assert!(
        written.items.is_empty(),
        "nothing written: {:?}",
        written.items
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_and_growth_are_conditional_writes_that_retry_conflicts() {
    let plane = ControlPlane::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b0 = RunningBroker::start(&plane, 0, dir.path()).await;
    plane.create_topic("events", 1, 1).await;
    plane.place("events", 0, &[0], 0, 1).await;
    wait_until("the topic", || async {
        b0.broker.metadata.image().topic("events").map(drop)
    })
    .await;

    let conflicts = plane.server.conflicts();
    plane
        .server
        .fail_next_writes("tributary.dev/kafkatopics", 2);
    b0.broker
        .admin
        .set_topic_configs(
            "events",
            BTreeMap::from([("retention.ms".to_string(), "60000".to_string())]),
            false,
            Duration::from_secs(10),
        )
        .await
        .expect("configs set despite two conflicts");
    assert!(plane.server.conflicts() >= conflicts + 2);
    let object = plane
        .api::<KafkaTopic>()
        .get("events")
        .await
        .expect("events");
    assert_eq!(
        object.spec.config,
        BTreeMap::from([("retention.ms".to_string(), Some("60000".to_string()))])
    );
    assert_eq!(
        b0.broker
            .replicas
            .get("events", 0)
            .map(|p| p.with_log(|l| l.config().retention_ms)),
        Some(60_000),
        "the replica applies the new config"
    );

    let admin = b0.broker.admin.clone();
    plane
        .server
        .fail_next_writes("tributary.dev/kafkatopics", 1);
    let growing = tokio::spawn(async move {
        admin
            .create_partitions(
                "events",
                Growth {
                    count: 3,
                    assignments: Vec::new(),
                    validate_only: false,
                },
                Duration::from_secs(20),
            )
            .await
    });
    wait_until("spec.partitions raised", || async {
        let topic = plane.api::<KafkaTopic>().get("events").await.ok()?;
        (topic.spec.partitions == 3).then_some(())
    })
    .await;
    plane.place("events", 1, &[0], 0, 1).await;
    plane.place("events", 2, &[0], 0, 1).await;
    tokio::time::timeout(Duration::from_secs(10), growing)
        .await
        .expect("answered")
        .expect("task")
        .expect("grown");
    assert!(b0.broker.replicas.get("events", 2).is_some());

    let shrink = b0
        .broker
        .admin
        .create_partitions(
            "events",
            Growth {
                count: 2,
                assignments: Vec::new(),
                validate_only: false,
            },
            Duration::from_secs(1),
        )
        .await;
    assert!(
        matches!(shrink, Err(MetadataError::InvalidPartitions(_))),
        "{shrink:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics_deletes_the_kafka_topic_and_its_partitions_go_with_it() {
    let plane = ControlPlane::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b0 = RunningBroker::start(&plane, 0, dir.path()).await;
    plane.create_topic("old", 1, 1).await;
    plane.place("old", 0, &[0], 0, 1).await;
    wait_until("the replica", || async { b0.broker.replicas.get("old", 0) }).await;
    let deleted = b0
        .broker
        .admin
        .delete_topic("old", Duration::from_secs(10))
        .await
        .expect("deleted");
    assert_eq!(deleted.name, "old");
    assert!(plane
        .api::<KafkaTopic>()
        .get_opt("old")
        .await
        .expect("get")
        .is_none());
    wait_until(
        "the garbage collector to delete the KafkaPartition",
        || async {
            plane
                .api::<KafkaPartition>()
                .get_opt("old-0")
                .await
                .ok()
                .and_then(|p| p.is_none().then_some(()))
        },
    )
    .await;
    wait_until("the replica to go", || async {
        b0.broker.replicas.get("old", 0).is_none().then_some(())
    })
    .await;
    let unknown = b0
        .broker
        .admin
        .delete_topic("old", Duration::from_secs(1))
        .await;
    assert!(
        matches!(unknown, Err(MetadataError::UnknownTopic(_))),
        "{unknown:?}"
    );
}
