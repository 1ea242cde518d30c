//! The cluster image brokers build from KafkaTopics, KafkaPartitions and Leases, and what their
//! replicas do with it: open in the role the objects give, change role when leadership moves,
//! drop their data when the topic goes, and keep following after the watch breaks.

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kube::api::{DeleteParams, PostParams};
use tributary_broker::metadata::IsrMember;
use tributary_broker::partition::Role;
use tributary_crds::{KafkaPartition, KafkaTopic, KafkaTopicStatus};

use crate::support::{kafka_call, wait_until, ControlPlane, RunningBroker, NS};

/// Kafka's LEADER_NOT_AVAILABLE.
const LEADER_NOT_AVAILABLE: i16 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_serves_the_same_image_and_hosts_its_replicas_in_their_roles() {
    let plane = ControlPlane::new().await;
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let b0 = RunningBroker::start(&plane, 0, dirs[0].path()).await;
    let b1 = RunningBroker::start(&plane, 1, dirs[1].path()).await;
    let topic = plane.create_topic("orders", 2, 2).await;
    // Known but not yet placed: still being created, as Kafka answers it, without partitions.
    wait_until("orders answered as being created", || async {
        let request = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName("orders".into()))),
        ]));
        let response: MetadataResponse =
            kafka_call(&b0.address, ApiKey::Metadata, 12, &request).await;
        let t = response.topics.first()?;
        (t.error_code == LEADER_NOT_AVAILABLE && t.partitions.is_empty()).then_some(())
    })
    .await;
    plane.place("orders", 0, &[0, 1], 0, 1).await;
    plane.place("orders", 1, &[1, 0], 1, 1).await;

    for b in [&b0, &b1] {
        // A partition enters the image when its object is created and gets its leader when the
        // status is written, a second write: wait for both.
        let image = wait_until(
            "both brokers and both placed partitions in the image",
            || async {
                let image = b.broker.metadata.image();
                (image.brokers.len() == 2
                    && image.topic("orders").is_some_and(|t| {
                        t.partition_count() == 2 && t.partitions.iter().all(|p| p.leader >= 0)
                    }))
                .then_some(image)
            },
        )
        .await;
        let orders = image.topic("orders").expect("orders");
        let uid = topic.metadata.uid.clone().expect("uid");
        assert_eq!(
            orders.id.to_string(),
            uid,
            "the topic id is the KafkaTopic's uid"
        );
        assert_eq!(orders.partitions[0].leader, 0);
        assert_eq!(orders.partitions[1].leader, 1);
        assert_eq!(orders.partitions[0].replicas, vec![0, 1]);
        assert_eq!(
            orders.partitions[0].isr,
            vec![
                IsrMember {
                    broker: 0,
                    incarnation: 1
                },
                IsrMember {
                    broker: 1,
                    incarnation: 1
                }
            ]
        );
        assert_eq!(
            image.controller_id, 0,
            "the lowest registered broker is named controller"
        );
        let b1_info = image.broker(1).expect("broker 1");
        assert_eq!(format!("{}:{}", b1_info.host, b1_info.port), b1.address);
    }
    let role = |b: &RunningBroker, p: i32| b.broker.replicas.get("orders", p).map(|r| r.role());
    wait_until("replicas opened in their roles", || async {
        (role(&b0, 0) == Some(Role::Leader { epoch: 0 })
            && role(&b0, 1)
                == Some(Role::Follower {
                    leader: 1,
                    epoch: 0,
                })
            && role(&b1, 1) == Some(Role::Leader { epoch: 0 })
            && role(&b1, 0)
                == Some(Role::Follower {
                    leader: 0,
                    epoch: 0,
                }))
        .then_some(())
    })
    .await;

    // The controller moves leadership of partition 0 to broker 1.
    let p0 = plane
        .api::<KafkaPartition>()
        .get("orders-0")
        .await
        .expect("orders-0");
    plane.set_leader(&p0, 1, 1, &[1], 1).await;
    wait_until("leadership to move within a second", || async {
        (role(&b0, 0)
            == Some(Role::Follower {
                leader: 1,
                epoch: 1,
            })
            && role(&b1, 0) == Some(Role::Leader { epoch: 1 }))
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_topic_loses_its_data_on_every_broker_and_each_broker_reports_it() {
    let plane = ControlPlane::new().await;
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let b0 = RunningBroker::start(&plane, 0, dirs[0].path()).await;
    let b1 = RunningBroker::start(&plane, 1, dirs[1].path()).await;
    plane.create_topic("gone", 1, 2).await;
    plane.place("gone", 0, &[0, 1], 0, 1).await;
    let hosted = |b: &RunningBroker| b.broker.replicas.get("gone", 0).is_some();
    wait_until("both replicas open", || async {
        (hosted(&b0) && hosted(&b1)).then_some(())
    })
    .await;
    let dir_of = |d: &tempfile::TempDir| {
        std::fs::read_dir(d.path())
            .expect("data dir")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("gone-"))
    };
    assert!(dir_of(&dirs[0]) && dir_of(&dirs[1]));

    // The operator's part of a deletion: a finalizer holds the object while brokers list
    // themselves as still holding data.
    let topics = plane.api::<KafkaTopic>();
    let mut topic = topics.get("gone").await.expect("gone");
    topic.metadata.finalizers = Some(vec![tributary_crds::topic::TOPIC_FINALIZER.to_string()]);
    let topic = topics
        .replace("gone", &PostParams::default(), &topic)
        .await
        .expect("finalizer");
    let mut with_status = topic.clone();
    with_status.status = Some(KafkaTopicStatus {
        pending_deletion: Some(vec![0, 1]),
        ..KafkaTopicStatus::default()
    });
    topics
        .replace_status("gone", &PostParams::default(), &with_status)
        .await
        .expect("status");
    topics
        .delete("gone", &DeleteParams::background())
        .await
        .expect("delete");

    wait_until("both brokers to drop the data and say so", || async {
        let pending = topics
            .get("gone")
            .await
            .ok()?
            .status?
            .pending_deletion
            .unwrap_or_default();
        (pending.is_empty() && !hosted(&b0) && !hosted(&b1)).then_some(())
    })
    .await;
    assert!(
        !dir_of(&dirs[0]) && !dir_of(&dirs[1]),
        "partition directories removed"
    );
    assert!(b0.broker.metadata.image().topic("gone").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_follows_changes_made_while_the_watch_was_broken_and_history_compacted() {
    let plane = ControlPlane::new().await;
    let served = plane.server.serve().await.expect("serve");
    let addr = served.addr();
    let mut config = kube::Config::new(served.url().parse().expect("url"));
    config.default_namespace = NS.to_string();
    config.auth_info.token = Some(plane.server.admin_token().into());
    config.root_cert = Some(vec![served.ca_der().to_vec()]);
    let client = kube::Client::try_from(config).expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    let b0 = RunningBroker::start_with(client, 0, dir.path()).await;
    plane.create_topic("before", 1, 1).await;
    plane.place("before", 0, &[0], 0, 1).await;
    wait_until("the first topic", || async {
        b0.broker.metadata.image().topic("before").map(drop)
    })
    .await;

    // The API server goes away (every watch connection closes); meanwhile a topic appears
    // and etcd compacts, so resuming from the last resourceVersion answers 410 Gone.
    served.shutdown().await;
    plane.create_topic("during", 1, 1).await;
    plane.place("during", 0, &[0], 0, 1).await;
    plane.server.compact_history();
    let _served = plane.server.serve_on(addr).await.expect("serve again");
    wait_until("the topic made while the watch was down", || async {
        let image = b0.broker.metadata.image();
        (image.partition("during", 0).is_some_and(|p| p.leader == 0)
            && image.topic("before").is_some())
        .then_some(())
    })
    .await;
    wait_until("its replica to open", || async {
        b0.broker.replicas.get("during", 0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_does_not_lead_names_the_leader_in_produce_and_fetch_answers() {
    use kafka_protocol::messages::{
        fetch_request, produce_request, ApiKey, BrokerId, FetchRequest, FetchResponse,
        ProduceRequest, ProduceResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    let plane = ControlPlane::new().await;
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let b0 = RunningBroker::start(&plane, 0, dirs[0].path()).await;
    let b1 = RunningBroker::start(&plane, 1, dirs[1].path()).await;
    plane.create_topic("orders", 1, 2).await;
    plane.place("orders", 0, &[0, 1], 0, 1).await;
    let p0 = plane
        .api::<KafkaPartition>()
        .get("orders-0")
        .await
        .expect("orders-0");
    plane.set_leader(&p0, 0, 4, &[0, 1], 1).await;
    let id = wait_until("broker 1 to follow broker 0 at epoch 4", || async {
        let replica = b1.broker.replicas.get("orders", 0)?;
        (replica.role()
            == Role::Follower {
                leader: 0,
                epoch: 4,
            })
        .then(|| replica.topic_id())
    })
    .await;
    // The leader's own answer at the end needs it to have taken epoch 4 as well.
    wait_until("broker 0 to lead at epoch 4", || async {
        let replica = b0.broker.replicas.get("orders", 0)?;
        (replica.role() == Role::Leader { epoch: 4 }).then_some(())
    })
    .await;
    let leader_port = b0.address.rsplit(':').next().and_then(|p| p.parse().ok());

    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(crate::support::records(1))),
            ])]);
    let answer: ProduceResponse = kafka_call(&b1.address, ApiKey::Produce, 11, &produce).await;
    let partition = &answer.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(partition.current_leader.leader_id, BrokerId(0));
    assert_eq!(partition.current_leader.leader_epoch, 4);
    assert_eq!(answer.node_endpoints.len(), 1);
    assert_eq!(answer.node_endpoints[0].node_id, BrokerId(0));
    assert_eq!(Some(answer.node_endpoints[0].port), leader_port);

    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic_id(id)
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let answer: FetchResponse = kafka_call(&b1.address, ApiKey::Fetch, 17, &fetch).await;
    let partition = &answer.responses[0].partitions[0];
    assert_eq!(partition.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(partition.current_leader.leader_id, BrokerId(0));
    assert_eq!(partition.current_leader.leader_epoch, 4);
    assert_eq!(answer.node_endpoints.len(), 1);
    assert_eq!(Some(answer.node_endpoints[0].port), leader_port);

    // The leader itself answers without hints.
    let answer: ProduceResponse = kafka_call(&b0.address, ApiKey::Produce, 11, &produce).await;
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
    assert!(answer.node_endpoints.is_empty());
}
