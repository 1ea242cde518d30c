//! Transactions across brokers. KIP-890 part 1: the partition leader asks the producer's
//! transaction coordinator, another broker, before it appends a transactional batch, so a
//! delayed write of an aborted transaction is refused and leaves no hanging transaction
//! behind, and a pipelined request never overtakes one still being verified. Part 2
//! (transactions v2): the leader adds the partition itself, and every end bumps the epoch.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use tributary_broker::partition::Partition;

use crate::operated::Operated;
use crate::support::{kafka_call, kafka_pipeline, wait_until};

const TXN_ID: &str = "late-writer";
const TOPIC: &str = "late";

/// A transactional batch of one record of producer `id`/`epoch` at `sequence`.
fn transactional(id: i64, epoch: i16, sequence: i32, value: &str) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(bytes::Bytes::from(value.to_owned())),
        headers: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap_or_else(|e| panic!("encode: {e}"));
    buf.freeze()
}

/// A transactional acks=all produce request writing `records` to partitions of `topic`.
fn produce_request(
    topic: &str,
    transactional_id: Option<&str>,
    records: Vec<(i32, bytes::Bytes)>,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_transactional_id(
            transactional_id.map(|id| TransactionalId(StrBytes::from_string(id.to_owned()))),
        )
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(
                records
                    .into_iter()
                    .map(|(index, batch)| {
                        PartitionProduceData::default()
                            .with_index(index)
                            .with_records(Some(batch))
                    })
                    .collect(),
            )])
}

/// The error codes of a produce response by partition.
fn partition_codes(response: &ProduceResponse) -> Vec<(i32, i16)> {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .map(|p| (p.index, p.error_code))
        .collect()
}

/// Produces `records` to `partition` of [`TOPIC`] at `address`: the partition's error code.
async fn produce(
    address: &str,
    transactional_id: Option<&str>,
    partition: i32,
    records: bytes::Bytes,
) -> i16 {
    let request = produce_request(TOPIC, transactional_id, vec![(partition, records)]);
    let response: ProduceResponse = kafka_call(address, ApiKey::Produce, 9, &request).await;
    partition_codes(&response)
        .first()
        .map(|(_, code)| *code)
        .unwrap_or_else(|| panic!("no partition in {response:?}"))
}

/// The leader of each of the `n` partitions of `topic`, once each serves as leader.
async fn served_leaders(cluster: &Operated, topic: &str, n: i32) -> Vec<i32> {
    wait_until(
        &format!("the partitions of {topic} served by their leaders"),
        || async {
            let image = cluster.broker(0).broker.metadata.image();
            let leaders: Vec<i32> = (0..n)
                .filter_map(|i| image.partition(topic, i).map(|p| p.leader))
                .filter(|l| *l >= 0)
                .collect();
            let served = leaders.len() == usize::try_from(n).unwrap_or(0)
                && (0..n).zip(&leaders).all(|(i, &leader)| {
                    cluster
                        .broker(leader)
                        .broker
                        .replicas
                        .get(topic, i)
                        .is_some_and(|p| p.acts_as_leader())
                });
            served.then_some(leaders)
        },
    )
    .await
}

/// A transaction begun at its coordinator: the producer it handed out and the partitions it
/// added.
struct Begun<T> {
    coordinator: i32,
    id: i64,
    epoch: i16,
    /// What `pick` chose once the coordinator was known.
    picked: T,
}

/// Finds `txn_id`'s coordinator, gets a producer id from it, and adds the partitions of
/// `topic` that `pick` chooses given the coordinator (with whatever else it returns).
async fn begin<T: Clone>(
    cluster: &Operated,
    txn_id: &'static str,
    topic: &str,
    pick: impl Fn(i32) -> (Vec<i32>, T),
) -> Begun<T> {
    let any = cluster.broker(0).address.clone();
    wait_until("a transaction coordinator serving the id", || async {
        // FindCoordinator creates `__transaction_state`.
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_static_str(txn_id))
            .with_key_type(1);
        let found: FindCoordinatorResponse =
            kafka_call(&any, ApiKey::FindCoordinator, 3, &request).await;
        if found.error_code != 0 {
            return None;
        }
        let coordinator = found.node_id.0;
        let (partitions, picked) = pick(coordinator);
        let address = cluster.broker(coordinator).address.clone();
        let init: InitProducerIdResponse = kafka_call(
            &address,
            ApiKey::InitProducerId,
            3,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(txn_id))))
                .with_transaction_timeout_ms(60_000),
        )
        .await;
        if init.error_code != 0 {
            return None;
        }
        let (id, epoch) = (init.producer_id.0, init.producer_epoch);
        let add: AddPartitionsToTxnResponse = kafka_call(
            &address,
            ApiKey::AddPartitionsToTxn,
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_static_str(
                    txn_id,
                )))
                .with_v3_and_below_producer_id(ProducerId(id))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(partitions)]),
        )
        .await;
        let added = add
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| &t.results_by_partition)
            .all(|p| p.partition_error_code == 0);
        added.then(|| Begun {
            coordinator,
            id,
            epoch,
            picked,
        })
    })
    .await
}

/// The partition `index` of [`TOPIC`] as its leader `leader` holds it.
fn led(cluster: &Operated, leader: i32, index: i32) -> Arc<Partition> {
    cluster
        .broker(leader)
        .broker
        .replicas
        .get(TOPIC, index)
        .unwrap_or_else(|| panic!("broker {leader} has no {TOPIC}-{index}"))
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delayed_write_of_an_aborted_transaction_is_refused_by_the_leader() {
    let cluster = Operated::start().await;
    cluster.plane.create_topic(TOPIC, 3, 1).await;
    let leaders = served_leaders(&cluster, TOPIC, 3).await;
    // The coordinator hands out the producer and adds a partition led by another broker.
    let begun = begin(&cluster, TXN_ID, TOPIC, |coordinator| {
        let away: Vec<(i32, i32)> = (0..)
            .zip(leaders.iter().copied())
            .filter(|(_, l)| *l != coordinator)
            .collect();
        assert!(
            away.len() >= 2,
            "two partitions led away from {coordinator}: {leaders:?}"
        );
        (vec![away[0].0], (away[0], away[1]))
    })
    .await;
    let Begun {
        coordinator,
        id,
        epoch,
        picked: (added, other),
    } = begun;
    let leader_address = |id: i32| cluster.broker(id).address.clone();
    let coordinator_address = leader_address(coordinator);

    // The ongoing transaction writes the partition it added: verified and accepted.
    let accepted = produce(
        &leader_address(added.1),
        Some(TXN_ID),
        added.0,
        transactional(id, epoch, 0, "in"),
    )
    .await;
    assert_eq!(accepted, 0, "a write of the ongoing transaction");
    // A partition it did not add is refused.
    let not_added = produce(
        &leader_address(other.1),
        Some(TXN_ID),
        other.0,
        transactional(id, epoch, 0, "outside"),
    )
    .await;
    assert_eq!(not_added, code(ResponseError::InvalidTxnState));
    // Transactional data without a transactional id is refused outright.
    let anonymous = produce(
        &leader_address(other.1),
        None,
        other.0,
        transactional(id, epoch, 0, "anonymous"),
    )
    .await;
    assert_eq!(
        anonymous,
        code(ResponseError::TransactionalIdAuthorizationFailed)
    );

    let end: EndTxnResponse = kafka_call(
        &coordinator_address,
        ApiKey::EndTxn,
        3,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_static_str(TXN_ID)))
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch)
            .with_committed(false),
    )
    .await;
    assert_eq!(end.error_code, 0, "{end:?}");
    let partition = led(&cluster, added.1, added.0);
    let settled = || {
        let high_watermark = *partition.watch_high_watermark().borrow();
        (partition.last_stable_offset() == high_watermark).then_some(high_watermark)
    };
    let before = wait_until("the abort marker to settle the partition", || async {
        settled()
    })
    .await;

    // A retry of the aborted transaction's write arriving after its marker (same producer,
    // epoch and the next sequence) must not open a transaction nobody will end.
    let late = produce(
        &leader_address(added.1),
        Some(TXN_ID),
        added.0,
        transactional(id, epoch, 1, "late"),
    )
    .await;
    assert_eq!(late, code(ResponseError::InvalidTxnState), "the late write");
    assert_eq!(
        settled(),
        Some(before),
        "no hanging transaction, nothing appended"
    );
    assert!(
        partition.producers().iter().all(|(_, open)| *open < 0),
        "no open transaction on the partition"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipelined_request_never_overtakes_one_held_in_verification() {
    const TOPIC: &str = "pipelined";
    const TXN_ID: &str = "pipelined-writer";
    let cluster = Operated::start().await;
    cluster.plane.create_topic(TOPIC, 6, 1).await;
    let leaders = served_leaders(&cluster, TOPIC, 6).await;
    // Two partitions with one leader that is not the coordinator, so a batch opening the
    // transaction on either is verified over the network.
    let begun = begin(&cluster, TXN_ID, TOPIC, |coordinator| {
        let pair = (0..6).find_map(|a: i32| {
            let leader = leaders[usize::try_from(a).unwrap_or(0)];
            let b = (a + 1..6).find(|&b| leaders[usize::try_from(b).unwrap_or(0)] == leader)?;
            (leader != coordinator).then_some((leader, a, b))
        });
        let (leader, open, opening) = pair
            .unwrap_or_else(|| panic!("two partitions led away from {coordinator}: {leaders:?}"));
        (vec![open, opening], (leader, open, opening))
    })
    .await;
    let (leader, open, opening) = begun.picked;
    let address = cluster.broker(leader).address.clone();
    let batch = |sequence: i32, value: &str| transactional(begun.id, begun.epoch, sequence, value);

    // The transaction is open on `open` once its first batch is verified and appended.
    let first = produce_request(TOPIC, Some(TXN_ID), vec![(open, batch(0, "open-0"))]);
    let response: ProduceResponse = kafka_call(&address, ApiKey::Produce, 9, &first).await;
    assert_eq!(partition_codes(&response), vec![(open, 0)]);

    // Pipelined on one connection, as the Java client sends with 5 in flight: the first
    // request also opens the transaction on `opening`, so it waits for its verification; the
    // second needs none (`open` is open) and arrives meanwhile. It must be appended after the
    // first, never checked before it (that was OUT_OF_ORDER_SEQUENCE, fatal to the client).
    let held = produce_request(
        TOPIC,
        Some(TXN_ID),
        vec![(open, batch(1, "open-1")), (opening, batch(0, "opening-0"))],
    );
    let next = produce_request(TOPIC, Some(TXN_ID), vec![(open, batch(2, "open-2"))]);
    let answers: Vec<ProduceResponse> =
        kafka_pipeline(&address, ApiKey::Produce, 9, &[held, next]).await;
    let codes: Vec<Vec<(i32, i16)>> = answers.iter().map(partition_codes).collect();
    assert_eq!(
        codes,
        vec![vec![(open, 0), (opening, 0)], vec![(open, 0)]],
        "both requests appended, in the order they were sent"
    );
    let partition = cluster
        .broker(leader)
        .broker
        .replicas
        .get(TOPIC, open)
        .unwrap_or_else(|| panic!("broker {leader} has no {TOPIC}-{open}"));
    assert_eq!(
        *partition.watch_high_watermark().borrow(),
        3,
        "three batches of one record each on {TOPIC}-{open}"
    );
    cluster.stop().await;
}

/// Sets `transaction.version` to 2 through `address` and waits until every broker advertises
/// transactions v2 (EndTxn v5).
async fn transactions_v2(cluster: &Operated) {
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    use kafka_protocol::messages::{
        ApiVersionsRequest, ApiVersionsResponse, UpdateFeaturesRequest, UpdateFeaturesResponse,
    };
    let request = UpdateFeaturesRequest::default()
        .with_timeout_ms(30_000)
        .with_feature_updates(vec![FeatureUpdateKey::default()
            .with_feature(StrBytes::from_static_str("transaction.version"))
            .with_max_version_level(2)
            .with_upgrade_type(1)]);
    let updated: UpdateFeaturesResponse = kafka_call(
        &cluster.broker(0).address,
        ApiKey::UpdateFeatures,
        1,
        &request,
    )
    .await;
    assert_eq!(updated.error_code, 0, "{updated:?}");
    for id in 0..3 {
        let address = cluster.broker(id).address.clone();
        wait_until(&format!("broker {id} to serve transactions v2"), || {
            let address = address.clone();
            async move {
                let versions: ApiVersionsResponse = kafka_call(
                    &address,
                    ApiKey::ApiVersions,
                    3,
                    &ApiVersionsRequest::default(),
                )
                .await;
                versions
                    .api_keys
                    .iter()
                    .any(|k| k.api_key == ApiKey::EndTxn as i16 && k.max_version == 5)
                    .then_some(())
            }
        })
        .await;
    }
}

/// Transactions v2 (KIP-890 part 2) across brokers: the partition leader adds the partition
/// to the transaction at its coordinator, another broker, on the first Produce v12 (no
/// AddPartitionsToTxn), and EndTxn v5 bumps the epoch, which the next transaction uses while
/// the old one's writes are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_v2_add_partitions_on_produce_and_bump_the_epoch_at_each_end() {
    const TOPIC: &str = "v2";
    const TXN_ID: &str = "v2-writer";
    let cluster = Operated::start().await;
    cluster.plane.create_topic(TOPIC, 3, 1).await;
    let leaders = served_leaders(&cluster, TOPIC, 3).await;
    transactions_v2(&cluster).await;
    // A producer id from the coordinator, and nothing added: `pick` adds no partition.
    let begun = begin(&cluster, TXN_ID, TOPIC, |coordinator| (vec![], coordinator)).await;
    let coordinator = cluster.broker(begun.coordinator).address.clone();
    let (index, leader) = (0..)
        .zip(leaders.iter().copied())
        .find(|(_, l)| *l != begun.coordinator)
        .unwrap_or_else(|| panic!("a partition led away from the coordinator: {leaders:?}"));
    let leader_address = cluster.broker(leader).address.clone();
    let produce_v12 = |epoch: i16, sequence: i32, value: &str| {
        let request = produce_request(
            TOPIC,
            Some(TXN_ID),
            vec![(index, transactional(begun.id, epoch, sequence, value))],
        );
        let address = leader_address.clone();
        async move {
            let response: ProduceResponse =
                kafka_call(&address, ApiKey::Produce, 12, &request).await;
            partition_codes(&response)[0].1
        }
    };
    let end_v5 = |epoch: i16, committed: bool| {
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_static_str(TXN_ID)))
            .with_producer_id(ProducerId(begun.id))
            .with_producer_epoch(epoch)
            .with_committed(committed);
        let address = coordinator.clone();
        async move {
            let end: EndTxnResponse = kafka_call(&address, ApiKey::EndTxn, 5, &request).await;
            (end.error_code, end.producer_id.0, end.producer_epoch)
        }
    };
    let partition = cluster
        .broker(leader)
        .broker
        .replicas
        .get(TOPIC, index)
        .unwrap_or_else(|| panic!("broker {leader} has no {TOPIC}-{index}"));
    let settled = || {
        let high_watermark = *partition.watch_high_watermark().borrow();
        (partition.last_stable_offset() == high_watermark).then_some(high_watermark)
    };

    assert_eq!(
        produce_v12(begun.epoch, 0, "first").await,
        0,
        "added on produce"
    );
    assert_eq!(
        end_v5(begun.epoch, true).await,
        (0, begun.id, begun.epoch + 1),
        "the commit bumps the epoch"
    );
    wait_until("the commit marker", || async { settled() }).await;
    // The next transaction runs on the bumped epoch; the old epoch's writes are refused.
    let bumped = begun.epoch + 1;
    assert_eq!(
        produce_v12(begun.epoch, 1, "late").await,
        code(ResponseError::InvalidProducerEpoch)
    );
    assert_eq!(produce_v12(bumped, 0, "second").await, 0);
    assert_eq!(end_v5(bumped, false).await, (0, begun.id, bumped + 1));
    wait_until("the abort marker", || async { settled() }).await;
    assert!(
        partition.producers().iter().all(|(_, open)| *open < 0),
        "no open transaction on the partition"
    );
    cluster.stop().await;
}
