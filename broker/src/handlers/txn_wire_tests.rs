//! The transactional APIs at every served version, through `dispatch`: a transaction that
//! writes records and offsets, is seen or skipped by READ_COMMITTED fetches, and ends once.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::records::{Compression, Record};

use super::group_wire_tests::{call, s, topic};
use crate::config::{BrokerConfig, Flags};
use crate::Broker;

/// A broker whose group coordinator writes to its real `__consumer_offsets` partitions, where
/// the transactions' markers land, with topic "t" of two partitions.
pub(super) async fn broker(dir: &std::path::Path) -> Arc<Broker> {
    broker_with(dir, Flags::default()).await
}

/// [`broker`] with some settings of `flags`.
async fn broker_with(dir: &std::path::Path, flags: Flags) -> Arc<Broker> {
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.to_path_buf()),
        group_initial_rebalance_delay_ms: Some(0),
        commit_journal_bytes: flags.commit_journal_bytes.or(Some(1 << 20)),
        offsets_topic_num_partitions: flags.offsets_topic_num_partitions.or(Some(4)),
        ..flags
    })
    .expect("config");
    let broker = Broker::open(config).expect("open broker");
    crate::test_support::create_topic(&broker, "t", 2, std::collections::BTreeMap::new());
    broker
}
use crate::protocol::supported_range;
use crate::storage::test_util::{encode, record};

pub(super) fn transactional_batch(producer_id: i64, epoch: i16, records: i32) -> Bytes {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: true,
            producer_id,
            producer_epoch: epoch,
            sequence: i,
            ..record(i, None, Some("v"))
        })
        .collect();
    encode(&records, Compression::None).freeze()
}

/// A Produce of `records` transactional records of `id`'s producer to partition `index` of
/// "t".
pub(super) fn transactional_produce(
    id: &str,
    (pid, epoch): (ProducerId, i16),
    index: i32,
    records: i32,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic("t"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(index)
                    .with_records(Some(transactional_batch(pid.0, epoch, records))),
            ])])
}

/// Polls until the transaction coordinator has loaded (or migrated) its state.
pub(super) async fn wait_until_loaded(b: &crate::broker::Broker) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.txns.is_loading() {
        assert!(std::time::Instant::now() < deadline, "still loading");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// InitProducerId for a new producer of `id`.
pub(super) fn init_request(id: &str, timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// AddPartitionsToTxn (v0-3 form) of partitions of topic `t`.
fn add_request(
    id: &str,
    pid: ProducerId,
    epoch: i16,
    partitions: Vec<i32>,
) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(id)))
        .with_v3_and_below_producer_id(pid)
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(topic("t"))
                .with_partitions(partitions),
        ])
}

/// EndTxn of `id`'s producer.
pub(super) fn end_request(id: &str, pid: ProducerId, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(pid)
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

pub(super) fn fetch_committed(offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic("t"))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

fn offset_fetch(group: &str) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_require_stable(true)
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(topic("t"))
                .with_partition_indexes(vec![1]),
        ]))
}

#[tokio::test]
async fn a_transaction_at_every_version_commits_or_aborts_records_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let (min, max) = supported_range(ApiKey::EndTxn).unwrap();
    for v in min..=max {
        for commit in [true, false] {
            let txn_name = format!("tx-{v}-{commit}");
            let txn_id = s(&txn_name);
            let group = format!("g-{v}-{commit}");
            let init: InitProducerIdResponse = call(
                &b,
                ApiKey::InitProducerId,
                v,
                &init_request(&txn_name, 60_000),
            )
            .await;
            assert_eq!(init.error_code, 0, "InitProducerId v{v}");
            let (pid, epoch) = (init.producer_id, init.producer_epoch);

            let add = add_request(&txn_name, pid, epoch, vec![0, 7]);
            let added: AddPartitionsToTxnResponse =
                call(&b, ApiKey::AddPartitionsToTxn, v, &add).await;
            let codes: Vec<i16> = added.results_by_topic_v3_and_below[0]
                .results_by_partition
                .iter()
                .map(|r| r.partition_error_code)
                .collect();
            let not_attempted = ResponseError::OperationNotAttempted.code();
            let unknown = ResponseError::UnknownTopicOrPartition.code();
            assert_eq!(codes, vec![not_attempted, unknown], "v{v}: none added");
            let add = add.with_v3_and_below_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![0]),
            ]);
            let added: AddPartitionsToTxnResponse =
                call(&b, ApiKey::AddPartitionsToTxn, v, &add).await;
            let result = &added.results_by_topic_v3_and_below[0].results_by_partition[0];
            assert_eq!(result.partition_error_code, 0, "AddPartitionsToTxn v{v}");

            let start = crate::test_support::partition(&b, "t", 0).last_stable_offset();
            let produce = ProduceRequest::default()
                .with_transactional_id(Some(TransactionalId(txn_id.clone())))
                .with_acks(-1)
                .with_timeout_ms(5_000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(topic("t"))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(transactional_batch(pid.0, epoch, 3))),
                    ])]);
            let produced: ProduceResponse = call(&b, ApiKey::Produce, 11, &produce).await;
            assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

            let described = producers_of_partition_0(&b).await;
            let mine = described
                .iter()
                .find(|p| p.producer_id == pid)
                .expect("the producer is described");
            assert_eq!(
                (
                    mine.last_sequence,
                    mine.last_timestamp,
                    mine.current_txn_start_offset
                ),
                (2, 1_002, start),
                "DescribeProducers"
            );

            let fetched: FetchResponse = call(&b, ApiKey::Fetch, 11, &fetch_committed(start)).await;
            let p = &fetched.responses[0].partitions[0];
            assert_eq!(
                p.last_stable_offset, start,
                "v{v}: the open transaction holds the LSO"
            );
            assert_eq!(p.high_watermark, start + 3);
            assert_eq!(p.records.as_ref().map(Bytes::len), Some(0));

            let offsets: AddOffsetsToTxnResponse = call(
                &b,
                ApiKey::AddOffsetsToTxn,
                v,
                &AddOffsetsToTxnRequest::default()
                    .with_transactional_id(TransactionalId(txn_id.clone()))
                    .with_producer_id(pid)
                    .with_producer_epoch(epoch)
                    .with_group_id(GroupId(s(&group))),
            )
            .await;
            assert_eq!(offsets.error_code, 0, "AddOffsetsToTxn v{v}");
            let commit_offsets = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(txn_id.clone()))
                .with_group_id(GroupId(s(&group)))
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_generation_id(-1)
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(topic("t"))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(1)
                                .with_committed_offset(42)
                                .with_committed_leader_epoch(-1),
                        ]),
                ]);
            let sent: TxnOffsetCommitResponse =
                call(&b, ApiKey::TxnOffsetCommit, v, &commit_offsets).await;
            assert_eq!(
                sent.topics[0].partitions[0].error_code, 0,
                "TxnOffsetCommit v{v}"
            );
            let unstable: OffsetFetchResponse =
                call(&b, ApiKey::OffsetFetch, 7, &offset_fetch(&group)).await;
            assert_eq!(
                unstable.topics[0].partitions[0].error_code,
                ResponseError::UnstableOffsetCommit.code()
            );

            let end = end_request(&txn_name, pid, epoch, commit);
            for attempt in ["end", "retry"] {
                let ended: EndTxnResponse = call(&b, ApiKey::EndTxn, v, &end).await;
                assert_eq!(ended.error_code, 0, "EndTxn v{v} {attempt}");
            }
            let other = end.clone().with_committed(!commit);
            let wrong: EndTxnResponse = call(&b, ApiKey::EndTxn, v, &other).await;
            assert_eq!(wrong.error_code, ResponseError::InvalidTxnState.code());

            let fetched: FetchResponse = call(&b, ApiKey::Fetch, 11, &fetch_committed(start)).await;
            let p = &fetched.responses[0].partitions[0];
            assert_eq!(p.last_stable_offset, start + 4, "v{v}: records and marker");
            let aborted: Vec<i64> = p
                .aborted_transactions
                .iter()
                .flatten()
                .map(|a| a.producer_id.0)
                .collect();
            assert_eq!(aborted, if commit { vec![] } else { vec![pid.0] }, "v{v}");
            let fetched_offsets: OffsetFetchResponse =
                call(&b, ApiKey::OffsetFetch, 7, &offset_fetch(&group)).await;
            let offset = &fetched_offsets.topics[0].partitions[0];
            assert_eq!(offset.error_code, 0);
            assert_eq!(
                offset.committed_offset,
                if commit { 42 } else { -1 },
                "v{v}"
            );
        }
    }
}

#[tokio::test]
async fn transactional_writes_outside_an_open_transaction_or_from_a_fenced_epoch_fail() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let init = |timeout| init_request("tx", timeout);
    let refused: InitProducerIdResponse =
        call(&b, ApiKey::InitProducerId, 4, &init(i32::MAX)).await;
    assert_eq!(
        refused.error_code,
        ResponseError::InvalidTransactionTimeout.code()
    );
    let first: InitProducerIdResponse = call(&b, ApiKey::InitProducerId, 4, &init(60_000)).await;
    let anonymous = |epoch| {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(topic("t"))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(transactional_batch(first.producer_id.0, epoch, 1))),
                ])])
    };
    // Kafka refuses transactional data in a request that names no transactional id.
    let without_id: ProduceResponse =
        call(&b, ApiKey::Produce, 11, &anonymous(first.producer_epoch)).await;
    assert_eq!(
        without_id.responses[0].partition_responses[0].error_code,
        ResponseError::TransactionalIdAuthorizationFailed.code()
    );
    let produce = |epoch| anonymous(epoch).with_transactional_id(Some(TransactionalId(s("tx"))));
    // A partition not in the transaction: TRANSACTION_ABORTABLE from Produce v11 (KIP-890),
    // INVALID_TXN_STATE for clients older than the error.
    for (version, expected) in [
        (11, ResponseError::TransactionAbortable),
        (10, ResponseError::InvalidTxnState),
    ] {
        let outside: ProduceResponse =
            call(&b, ApiKey::Produce, version, &produce(first.producer_epoch)).await;
        assert_eq!(
            outside.responses[0].partition_responses[0].error_code,
            expected.code(),
            "Produce v{version}"
        );
    }
    let second: InitProducerIdResponse = call(&b, ApiKey::InitProducerId, 4, &init(60_000)).await;
    assert_eq!(second.producer_id, first.producer_id);
    assert_eq!(second.producer_epoch, first.producer_epoch + 1);
    let fenced: ProduceResponse =
        call(&b, ApiKey::Produce, 11, &produce(first.producer_epoch)).await;
    assert_eq!(
        fenced.responses[0].partition_responses[0].error_code,
        ResponseError::InvalidProducerEpoch.code()
    );
    let end: EndTxnResponse = call(
        &b,
        ApiKey::EndTxn,
        3,
        &end_request("tx", first.producer_id, first.producer_epoch, true),
    )
    .await;
    assert_eq!(end.error_code, ResponseError::ProducerFenced.code());
    // Clients older than KIP-588 get INVALID_PRODUCER_EPOCH for the same fencing.
    let old_end: EndTxnResponse = call(
        &b,
        ApiKey::EndTxn,
        1,
        &end_request("tx", first.producer_id, first.producer_epoch, true),
    )
    .await;
    assert_eq!(
        old_end.error_code,
        ResponseError::InvalidProducerEpoch.code()
    );

    // A retried bump (KIP-360: the producer names the epoch it had) gets the current epoch,
    // not another bump; a stale one is fenced.
    let retried = |epoch| {
        init(60_000)
            .with_producer_id(first.producer_id)
            .with_producer_epoch(epoch)
    };
    let again: InitProducerIdResponse = call(
        &b,
        ApiKey::InitProducerId,
        4,
        &retried(first.producer_epoch),
    )
    .await;
    assert_eq!(
        (again.error_code, again.producer_epoch),
        (0, second.producer_epoch)
    );
    let bumped: InitProducerIdResponse = call(
        &b,
        ApiKey::InitProducerId,
        4,
        &retried(second.producer_epoch),
    )
    .await;
    assert_eq!(bumped.producer_epoch, second.producer_epoch + 1);
    let stale: InitProducerIdResponse = call(
        &b,
        ApiKey::InitProducerId,
        4,
        &retried(first.producer_epoch),
    )
    .await;
    assert_eq!(stale.error_code, ResponseError::ProducerFenced.code());

    // A plain batch followed by a transactional one without a producer is refused whole.
    let mut records = BytesMut::from(&super::wire_tests::plain_batch()[..]);
    records.extend_from_slice(&transactional_batch(-1, -1, 1));
    let sneaky = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic("t"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records.freeze())),
            ])]);
    let refused: ProduceResponse = call(&b, ApiKey::Produce, 11, &sneaky).await;
    assert_eq!(
        refused.responses[0].partition_responses[0].error_code,
        ResponseError::InvalidRecord.code()
    );
    assert_eq!(
        crate::test_support::partition(&b, "t", 0).last_stable_offset(),
        0,
        "nothing was written, nothing is held open"
    );
}

#[tokio::test]
async fn transactions_are_listed_and_described_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let init: InitProducerIdResponse = call(
        &b,
        ApiKey::InitProducerId,
        4,
        &init_request("listed", 30_000),
    )
    .await;
    let add = add_request("listed", init.producer_id, init.producer_epoch, vec![1, 0]);
    let _: AddPartitionsToTxnResponse = call(&b, ApiKey::AddPartitionsToTxn, 3, &add).await;

    let (min, max) = supported_range(ApiKey::ListTransactions).unwrap();
    for v in min..=max {
        let all: ListTransactionsResponse = call(
            &b,
            ApiKey::ListTransactions,
            v,
            &ListTransactionsRequest::default(),
        )
        .await;
        assert_eq!(all.transaction_states.len(), 1, "v{v}");
        assert_eq!(
            all.transaction_states[0].transaction_state.as_str(),
            "Ongoing"
        );
        let filtered: ListTransactionsResponse = call(
            &b,
            ApiKey::ListTransactions,
            v,
            &ListTransactionsRequest::default()
                .with_state_filters(vec![s("CompleteCommit"), s("Sleeping")]),
        )
        .await;
        assert!(filtered.transaction_states.is_empty(), "v{v}");
        assert_eq!(filtered.unknown_state_filters, vec![s("Sleeping")]);
    }

    // v2 filters by a pattern the whole id must match (KIP-1152); empty means no filter.
    let by_pattern = |pattern: &str| {
        let request =
            ListTransactionsRequest::default().with_transactional_id_pattern(Some(s(pattern)));
        let b = b.clone();
        async move {
            let r: ListTransactionsResponse = call(&b, ApiKey::ListTransactions, 2, &request).await;
            let ids: Vec<String> = r
                .transaction_states
                .iter()
                .map(|t| t.transactional_id.to_string())
                .collect();
            (r.error_code, ids)
        }
    };
    assert_eq!(by_pattern("list.*").await, (0, vec!["listed".to_string()]));
    assert_eq!(by_pattern("").await, (0, vec!["listed".to_string()]));
    assert_eq!(
        by_pattern("list").await,
        (0, vec![]),
        "the whole id must match"
    );
    assert_eq!(
        by_pattern("list(").await,
        (ResponseError::InvalidRegularExpression.code(), vec![])
    );
    let described: DescribeTransactionsResponse = call(
        &b,
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![
            TransactionalId(s("listed")),
            TransactionalId(s("nope")),
        ]),
    )
    .await;
    let [listed, missing] = &described.transaction_states[..] else {
        panic!("two answers expected: {described:?}");
    };
    assert_eq!(listed.error_code, 0);
    assert_eq!(listed.transaction_timeout_ms, 30_000);
    assert_eq!(listed.producer_id, init.producer_id);
    assert_eq!(listed.topics[0].partitions, vec![0, 1]);
    assert_eq!(
        missing.error_code,
        ResponseError::TransactionalIdNotFound.code()
    );
}

#[tokio::test]
async fn an_exhausted_epoch_ends_the_transaction_under_the_old_id_then_moves_to_a_new_one() {
    use crate::txn::{TxnMap, TxnMetadata, TxnState};
    let dir = tempfile::tempdir().unwrap();
    let mut old = TxnMetadata::new(7, 60_000, crate::clock::now_ms());
    old.producer_epoch = i16::MAX - 1;
    old.state = TxnState::Ongoing;
    old.started_ms = old.updated_ms;
    old.partitions.insert(("t".into(), 0));
    let saved: TxnMap = [("worn".to_string(), old)].into();
    std::fs::write(
        dir.path().join("transactions.json"),
        serde_json::to_vec(&saved).unwrap(),
    )
    .unwrap();
    let b = broker(dir.path()).await;
    // The state file is moved into __transaction_state first.
    wait_until_loaded(&b).await;
    let renewed: InitProducerIdResponse =
        call(&b, ApiKey::InitProducerId, 4, &init_request("worn", 60_000)).await;
    assert_eq!(renewed.error_code, 0);
    assert_ne!(renewed.producer_id.0, 7);
    assert_eq!(renewed.producer_epoch, 0);
    // The abort marker was written under the old id and epoch.
    let fetched: FetchResponse = call(&b, ApiKey::Fetch, 11, &fetch_committed(0)).await;
    let records = fetched.responses[0].partitions[0].records.clone().unwrap();
    let marker = crate::storage::BatchView::parse(&records).unwrap();
    assert!(marker.is_control());
    assert_eq!(
        (marker.producer_id(), marker.producer_epoch()),
        (7, i16::MAX - 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transactions_of_different_ids_all_end_and_all_are_saved() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let b = b.clone();
            tokio::spawn(async move {
                let id = format!("parallel-{n}");
                let init: InitProducerIdResponse =
                    call(&b, ApiKey::InitProducerId, 4, &init_request(&id, 60_000)).await;
                let add = add_request(&id, init.producer_id, init.producer_epoch, vec![n % 2]);
                let _: AddPartitionsToTxnResponse =
                    call(&b, ApiKey::AddPartitionsToTxn, 3, &add).await;
                let end: EndTxnResponse = call(
                    &b,
                    ApiKey::EndTxn,
                    3,
                    &end_request(&id, init.producer_id, init.producer_epoch, n % 3 != 0),
                )
                .await;
                end.error_code
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 0);
    }
    // The topic holds every id's final state: no write overwrote another's.
    let saved = b.txns.state_in_log();
    assert_eq!(saved.len(), 16);
    for (id, txn) in saved {
        let n: i32 = id.trim_start_matches("parallel-").parse().unwrap();
        let want = if n % 3 != 0 {
            crate::txn::TxnState::CompleteCommit
        } else {
            crate::txn::TxnState::CompleteAbort
        };
        assert_eq!(txn.state, want, "{id}");
    }
}

/// WriteTxnMarkers for partitions `indexes` of topic `t`.
pub(super) fn markers_request(
    pid: ProducerId,
    epoch: i16,
    commit: bool,
    indexes: Vec<i32>,
) -> WriteTxnMarkersRequest {
    WriteTxnMarkersRequest::default().with_markers(vec![
        write_txn_markers_request::WritableTxnMarker::default()
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(vec![
                write_txn_markers_request::WritableTxnMarkerTopic::default()
                    .with_name(topic("t"))
                    .with_partition_indexes(indexes),
            ]),
    ])
}

/// DescribeProducers of partition 0 of `t`.
async fn producers_of_partition_0(
    b: &std::sync::Arc<crate::broker::Broker>,
) -> Vec<describe_producers_response::ProducerState> {
    let request = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(topic("t"))
            .with_partition_indexes(vec![0]),
    ]);
    let mut described: DescribeProducersResponse =
        call(b, ApiKey::DescribeProducers, 0, &request).await;
    std::mem::take(&mut described.topics[0].partitions[0].active_producers)
}

/// Starts a transaction of `id` that writes two records to partition 0 of `t`; returns its
/// producer id, epoch and first offset.
async fn open_transaction(
    b: &std::sync::Arc<crate::broker::Broker>,
    id: &str,
) -> (ProducerId, i16, i64) {
    let init: InitProducerIdResponse =
        call(b, ApiKey::InitProducerId, 4, &init_request(id, 60_000)).await;
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let added: AddPartitionsToTxnResponse = call(
        b,
        ApiKey::AddPartitionsToTxn,
        3,
        &add_request(id, pid, epoch, vec![0]),
    )
    .await;
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    let produce = transactional_produce(id, (pid, epoch), 0, 2);
    let produced: ProduceResponse = call(b, ApiKey::Produce, 11, &produce).await;
    (
        pid,
        epoch,
        produced.responses[0].partition_responses[0].base_offset,
    )
}

#[tokio::test]
async fn verify_only_answers_transaction_abortable_for_a_partition_not_in_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let (pid, epoch, _) = open_transaction(&b, "tx").await;
    let verify = AddPartitionsToTxnRequest::default().with_transactions(vec![
        add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_verify_only(true)
            .with_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![0, 1]),
            ]),
    ]);
    for version in [4, 5] {
        let answer: AddPartitionsToTxnResponse =
            call(&b, ApiKey::AddPartitionsToTxn, version, &verify).await;
        assert_eq!(answer.error_code, 0, "v{version}");
        let codes: Vec<(i32, i16)> = answer.results_by_transaction[0].topic_results[0]
            .results_by_partition
            .iter()
            .map(|p| (p.partition_index, p.partition_error_code))
            .collect();
        assert_eq!(
            codes,
            [(0, 0), (1, ResponseError::TransactionAbortable.code())],
            "v{version}: partition 0 was added, 1 was not"
        );
    }
}

#[tokio::test]
async fn idle_producers_are_forgotten_but_not_while_their_transaction_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let partition = crate::test_support::partition(&b, "t", 0);
    let idempotent: Vec<Record> = (0..2)
        .map(|i| Record {
            producer_id: 900,
            producer_epoch: 0,
            sequence: i,
            ..record(i, None, Some("v"))
        })
        .collect();
    let now = crate::clock::now_ms();
    partition
        .append(&encode(&idempotent, Compression::None), now)
        .unwrap();
    let (pid, _, _) = open_transaction(&b, "kept").await;
    // Their batches carry test timestamps of 1970: a day after now, both are idle.
    let day = 86_400_000;
    assert_eq!(partition.expire_producers(1_000, day), 0, "both active");
    assert_eq!(partition.expire_producers(now + day, day), 1);
    let left: Vec<i64> = producers_of_partition_0(&b)
        .await
        .iter()
        .map(|p| p.producer_id.0)
        .collect();
    assert_eq!(left, vec![pid.0], "the open transaction's producer stays");
}

#[tokio::test]
async fn an_admin_abort_ends_a_hanging_transaction_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let (min, max) = supported_range(ApiKey::WriteTxnMarkers).unwrap();
    for v in min..=max {
        let id = format!("hanging-{v}");
        let (pid, epoch, base) = open_transaction(&b, &id).await;
        let stable = || crate::test_support::partition(&b, "t", 0).last_stable_offset();
        assert_eq!(
            stable(),
            base,
            "v{v}: the open transaction holds READ_COMMITTED back"
        );

        // A marker older than the producer's epoch is refused; a missing partition is named.
        let stale: WriteTxnMarkersResponse = call(
            &b,
            ApiKey::WriteTxnMarkers,
            v,
            &markers_request(pid, epoch - 1, false, vec![0, 9]),
        )
        .await;
        let codes: Vec<i16> = stale.markers[0].topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            vec![
                ResponseError::InvalidProducerEpoch.code(),
                ResponseError::UnknownTopicOrPartition.code()
            ],
            "v{v}"
        );
        let aborted: WriteTxnMarkersResponse = call(
            &b,
            ApiKey::WriteTxnMarkers,
            v,
            &markers_request(pid, epoch, false, vec![0]),
        )
        .await;
        assert_eq!(aborted.markers[0].producer_id, pid);
        assert_eq!(
            aborted.markers[0].topics[0].partitions[0].error_code, 0,
            "v{v}"
        );
        assert_eq!(stable(), base + 3, "v{v}: records and marker are stable");
        let fetched: FetchResponse = call(&b, ApiKey::Fetch, 11, &fetch_committed(base)).await;
        let p = &fetched.responses[0].partitions[0];
        let aborted: Vec<(i64, i64)> = p
            .aborted_transactions
            .iter()
            .flatten()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect();
        assert_eq!(
            aborted,
            vec![(pid.0, base)],
            "v{v}: READ_COMMITTED skips them"
        );
        // The coordinator still ends its side of the transaction.
        let end: EndTxnResponse =
            call(&b, ApiKey::EndTxn, 3, &end_request(&id, pid, epoch, false)).await;
        assert_eq!(end.error_code, 0, "v{v}");
    }
}

#[tokio::test]
async fn idle_transactional_ids_expire_but_open_transactions_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let flags = crate::config::Flags {
        transactional_id_expiration_ms: Some(1),
        ..Default::default()
    };
    let b = broker_with(dir.path(), flags).await;
    let idle: InitProducerIdResponse =
        call(&b, ApiKey::InitProducerId, 4, &init_request("idle", 60_000)).await;
    let (open_pid, _, _) = open_transaction(&b, "open").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    b.txns.expire(&*b).await;
    let listed: ListTransactionsResponse = call(
        &b,
        ApiKey::ListTransactions,
        0,
        &ListTransactionsRequest::default(),
    )
    .await;
    let ids: Vec<(String, i64)> = listed
        .transaction_states
        .iter()
        .map(|t| (t.transactional_id.to_string(), t.producer_id.0))
        .collect();
    assert_eq!(ids, vec![("open".to_string(), open_pid.0)]);
    // The forgotten id starts afresh with a new producer id.
    let again: InitProducerIdResponse =
        call(&b, ApiKey::InitProducerId, 4, &init_request("idle", 60_000)).await;
    assert_eq!(again.error_code, 0);
    assert_ne!(again.producer_id, idle.producer_id);
    let saved = b.txns.state_in_log();
    assert!(saved.contains_key("open"), "{saved:?}");
}

#[tokio::test]
async fn find_coordinator_names_the_leader_of_the_ids_transaction_state_partition() {
    let dir = tempfile::tempdir().unwrap();
    let flags = crate::config::Flags {
        transaction_state_log_num_partitions: Some(7),
        ..Default::default()
    };
    let b = broker_with(dir.path(), flags).await;
    for v in 1..=6 {
        let mut req = FindCoordinatorRequest::default().with_key_type(1);
        if v >= 4 {
            req.coordinator_keys = vec![s("tx-a"), s("tx-b")];
        } else {
            req.key = s("tx-a");
        }
        let r: FindCoordinatorResponse = call(&b, ApiKey::FindCoordinator, v, &req).await;
        let found: Vec<(i16, i32)> = if v >= 4 {
            r.coordinators
                .iter()
                .map(|c| (c.error_code, c.node_id.0))
                .collect()
        } else {
            vec![(r.error_code, r.node_id.0)]
        };
        assert!(found.iter().all(|&f| f == (0, 0)), "v{v}: {found:?}");
    }
    // The first lookup created the topic as Kafka does: compacted, with the configured count.
    let topic = crate::test_support::topic(&b, crate::txn::TRANSACTION_TOPIC).expect("created");
    assert_eq!(topic.partition_count(), 7);
    assert_eq!(
        topic.configs.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );
    assert_eq!(b.txns.partition_for("tx-a"), {
        crate::coordinator::partitioner::partition_for("tx-a", 7)
    });
}
