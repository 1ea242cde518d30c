//! Transaction verification across brokers (KIP-890 part 1): the partition leader asks the
//! producer's transaction coordinator, another broker, before it appends a transactional
//! batch, so a delayed write of an aborted transaction is refused and leaves no hanging
//! transaction behind.

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
use crate::support::{kafka_call, wait_until};

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

/// Produces `records` to `partition` of [`TOPIC`] at `address`: the partition's error code.
async fn produce(
    address: &str,
    transactional_id: Option<&str>,
    partition: i32,
    records: bytes::Bytes,
) -> i16 {
    let request = ProduceRequest::default()
        .with_transactional_id(
            transactional_id.map(|id| TransactionalId(StrBytes::from_string(id.to_owned()))),
        )
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let response: ProduceResponse = kafka_call(address, ApiKey::Produce, 9, &request).await;
    response
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .map(|p| p.error_code)
        .unwrap_or_else(|| panic!("no partition in {response:?}"))
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
    let any = cluster.broker(0).address.clone();
    // Every partition of the topic led, and served by its leader.
    let leaders: Vec<i32> = wait_until("the partitions served by their leaders", || async {
        let image = cluster.broker(0).broker.metadata.image();
        let leaders: Vec<i32> = (0..3)
            .filter_map(|i| image.partition(TOPIC, i).map(|p| p.leader))
            .filter(|l| *l >= 0)
            .collect();
        let served = leaders.len() == 3
            && leaders.iter().enumerate().all(|(i, &leader)| {
                let i = i32::try_from(i).unwrap_or(0);
                cluster
                    .broker(leader)
                    .broker
                    .replicas
                    .get(TOPIC, i)
                    .is_some_and(|p| p.acts_as_leader())
            });
        served.then_some(leaders)
    })
    .await;
    // The transaction coordinator (FindCoordinator creates `__transaction_state`) once it
    // serves the id: it hands out the producer and adds a partition led by another broker.
    let (coordinator, id, epoch, added, other) =
        wait_until("a transaction coordinator serving the id", || async {
            let request = FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str(TXN_ID))
                .with_key_type(1);
            let found: FindCoordinatorResponse =
                kafka_call(&any, ApiKey::FindCoordinator, 3, &request).await;
            if found.error_code != 0 {
                return None;
            }
            let coordinator = found.node_id.0;
            let away: Vec<(i32, i32)> = leaders
                .iter()
                .enumerate()
                .map(|(i, &l)| (i32::try_from(i).unwrap_or(0), l))
                .filter(|(_, l)| *l != coordinator)
                .collect();
            assert!(
                away.len() >= 2,
                "two partitions led away from {coordinator}: {leaders:?}"
            );
            let address = cluster.broker(coordinator).address.clone();
            let init: InitProducerIdResponse = kafka_call(
                &address,
                ApiKey::InitProducerId,
                3,
                &InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(TXN_ID))))
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
                        TXN_ID,
                    )))
                    .with_v3_and_below_producer_id(ProducerId(id))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                        .with_partitions(vec![away[0].0])]),
            )
            .await;
            let added_ok = add
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| &t.results_by_partition)
                .all(|p| p.partition_error_code == 0);
            added_ok.then_some((coordinator, id, epoch, away[0], away[1]))
        })
        .await;
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
