//! Transactions v2 (KIP-890 part 2) through `dispatch`, at `transaction.version` 2: Produce
//! v12 adds its partition to the transaction, EndTxn v5 bumps the epoch the client continues
//! with, TxnOffsetCommit v5 adds the group, and everything of the previous epoch is fenced.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::*;

use super::group_wire_tests::{call, s, topic};
use super::txn_wire_tests::{
    broker, end_request, fetch_committed, init_request, markers_request, transactional_produce,
    wait_until_loaded,
};
use crate::broker::Broker;
use crate::features::TRANSACTION_VERSION;

/// UpdateFeatures of `transaction.version` to `level` (a safe downgrade when lower).
pub(super) async fn set_transaction_version(b: &Arc<Broker>, level: i16) -> i16 {
    let upgrade_type = if level >= b.features.level(TRANSACTION_VERSION) {
        1
    } else {
        2
    };
    let request =
        UpdateFeaturesRequest::default().with_feature_updates(vec![FeatureUpdateKey::default()
            .with_feature(s(TRANSACTION_VERSION))
            .with_max_version_level(level)
            .with_upgrade_type(upgrade_type)]);
    let response: UpdateFeaturesResponse = call(b, ApiKey::UpdateFeatures, 1, &request).await;
    response
        .results
        .first()
        .map_or(response.error_code, |r| r.error_code)
}

/// A broker at `transaction.version` 2.
async fn v2_broker(dir: &std::path::Path) -> Arc<Broker> {
    let b = broker(dir).await;
    assert_eq!(set_transaction_version(&b, 2).await, 0, "upgrade to 2");
    b
}

/// A new transactional producer of `id`: its producer id and epoch.
async fn init(b: &Arc<Broker>, id: &str) -> (ProducerId, i16) {
    let init: InitProducerIdResponse =
        call(b, ApiKey::InitProducerId, 5, &init_request(id, 60_000)).await;
    assert_eq!(init.error_code, 0, "InitProducerId");
    wait_until_loaded(b).await;
    (init.producer_id, init.producer_epoch)
}

/// Produce v12 of `records` transactional records of `id`'s producer to partition `index` of
/// "t", without AddPartitionsToTxn: the partition's error code.
async fn produce_v12(
    b: &Arc<Broker>,
    id: &str,
    producer: (ProducerId, i16),
    index: i32,
    records: i32,
) -> i16 {
    let request = transactional_produce(id, producer, index, records);
    let response: ProduceResponse = call(b, ApiKey::Produce, 12, &request).await;
    response.responses[0].partition_responses[0].error_code
}

/// EndTxn v5 of `id`: the error code and the producer the client continues with.
async fn end_v5(
    b: &Arc<Broker>,
    id: &str,
    producer: (ProducerId, i16),
    commit: bool,
) -> (i16, (ProducerId, i16)) {
    let request = end_request(id, producer.0, producer.1, commit);
    let response: EndTxnResponse = call(b, ApiKey::EndTxn, 5, &request).await;
    (
        response.error_code,
        (response.producer_id, response.producer_epoch),
    )
}

/// The records of partition 0 of "t" a READ_COMMITTED fetch returns from offset 0.
async fn committed_records(b: &Arc<Broker>) -> usize {
    let fetched: FetchResponse = call(b, ApiKey::Fetch, 12, &fetch_committed(0)).await;
    let data = &fetched.responses[0].partitions[0];
    let Some(mut bytes) = data.records.clone().filter(|r| !r.is_empty()) else {
        return 0;
    };
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).expect("decode");
        records.extend(set.records);
    }
    // Each aborted transaction's producer and first offset (one transaction each here).
    let aborted: Vec<(i64, i64)> = data
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    records
        .iter()
        .filter(|r| {
            let in_aborted = aborted
                .iter()
                .any(|&(pid, first)| r.producer_id == pid && r.offset >= first);
            !(r.control || r.transactional && in_aborted)
        })
        .filter(|r| r.offset < data.last_stable_offset)
        .count()
}

fn advertised_max(r: &ApiVersionsResponse, api: ApiKey) -> Option<i16> {
    r.api_keys
        .iter()
        .find(|k| k.api_key == api as i16)
        .map(|k| k.max_version)
}

#[tokio::test]
async fn api_versions_advertise_transactions_v2_only_at_level_2() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let maxima = |r: &ApiVersionsResponse| {
        [
            ApiKey::Produce,
            ApiKey::EndTxn,
            ApiKey::AddOffsetsToTxn,
            ApiKey::TxnOffsetCommit,
        ]
        .map(|api| advertised_max(r, api))
    };
    let fresh: ApiVersionsResponse =
        call(&b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert_eq!(
        maxima(&fresh),
        [Some(13), Some(5), Some(4), Some(5)],
        "a new cluster starts at level 2, as a new Kafka 4.3 cluster does"
    );
    assert_eq!(set_transaction_version(&b, 1).await, 0, "down to 1");
    let at_1: ApiVersionsResponse =
        call(&b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert_eq!(maxima(&at_1), [Some(11), Some(3), Some(3), Some(3)]);
    let end = end_request("none", ProducerId(1), 0, true);
    let refused: EndTxnResponse = call(&b, ApiKey::EndTxn, 5, &end).await;
    assert_eq!(
        refused.error_code,
        ResponseError::UnsupportedVersion.code(),
        "EndTxn v5 is not served below level 2"
    );

    assert_eq!(set_transaction_version(&b, 2).await, 0);
    let at_2: ApiVersionsResponse =
        call(&b, ApiKey::ApiVersions, 4, &ApiVersionsRequest::default()).await;
    assert_eq!(maxima(&at_2), [Some(13), Some(5), Some(4), Some(5)]);
    let tv = at_2
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == TRANSACTION_VERSION)
        .map(|f| f.max_version_level);
    assert_eq!(tv, Some(2));
    let supported = at_2
        .supported_features
        .iter()
        .find(|f| f.name.as_str() == TRANSACTION_VERSION)
        .map(|f| (f.min_version, f.max_version));
    assert_eq!(supported, Some((0, 2)));

    // Kafka's rule for a downgrade: only with a downgrade type; the table is back to level 1's.
    assert_eq!(set_transaction_version(&b, 1).await, 0, "safe downgrade");
    let back: ApiVersionsResponse =
        call(&b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert_eq!(maxima(&back), maxima(&at_1));
}

#[tokio::test]
async fn produce_v12_adds_its_partition_and_end_txn_v5_bumps_the_epoch_for_the_next_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let b = v2_broker(dir.path()).await;
    let first = init(&b, "tx").await;

    // No AddPartitionsToTxn: the produce itself adds partition 0.
    assert_eq!(produce_v12(&b, "tx", first, 0, 2).await, 0);
    let txn = b.txns.describe("tx").expect("coordinated").expect("known");
    assert!(txn.partitions.contains(&("t".to_string(), 0)));
    assert_eq!(committed_records(&b).await, 0, "open: not yet visible");

    let (code, second) = end_v5(&b, "tx", first, true).await;
    assert_eq!(code, 0);
    assert_eq!(
        second,
        (first.0, first.1 + 1),
        "the same id, the next epoch"
    );
    assert_eq!(committed_records(&b).await, 2, "the commit marker landed");
    let marker_epoch = crate::test_support::partition(&b, "t", 0)
        .producers()
        .iter()
        .find(|(p, _)| p.producer_id == first.0 .0)
        .map(|(p, _)| p.epoch);
    assert_eq!(
        marker_epoch,
        Some(second.1),
        "the marker carries the bumped epoch"
    );

    // The next transaction runs with the epoch EndTxn returned, and ends with another bump.
    assert_eq!(produce_v12(&b, "tx", second, 0, 1).await, 0);
    let (code, third) = end_v5(&b, "tx", second, false).await;
    assert_eq!((code, third), (0, (first.0, first.1 + 2)));
    assert_eq!(
        committed_records(&b).await,
        2,
        "the aborted record stays hidden"
    );
}

#[tokio::test]
async fn a_retried_end_txn_gets_the_current_epoch_and_a_delayed_older_one_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let b = v2_broker(dir.path()).await;
    let first = init(&b, "tx").await;
    assert_eq!(produce_v12(&b, "tx", first, 0, 1).await, 0);
    let (_, second) = end_v5(&b, "tx", first, true).await;

    // The client did not see the answer and sends the same EndTxn again.
    let (code, retried) = end_v5(&b, "tx", first, true).await;
    assert_eq!(
        (code, retried),
        (0, second),
        "a retry is answered as the end was"
    );
    let (code, _) = end_v5(&b, "tx", first, false).await;
    assert_eq!(
        code,
        ResponseError::InvalidTxnState.code(),
        "the other outcome is no retry"
    );

    assert_eq!(produce_v12(&b, "tx", second, 1, 1).await, 0);
    let (_, third) = end_v5(&b, "tx", second, true).await;
    assert_eq!(third.1, first.1 + 2);
    // An end two epochs old arrives late: it is fenced, with Kafka's answer.
    let (code, producer) = end_v5(&b, "tx", first, true).await;
    assert_eq!(code, ResponseError::ProducerFenced.code());
    assert_eq!(producer, (ProducerId(-1), -1));
}

#[tokio::test]
async fn an_abort_with_nothing_added_still_bumps_the_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let b = v2_broker(dir.path()).await;
    let first = init(&b, "tx").await;
    let (code, next) = end_v5(&b, "tx", first, false).await;
    assert_eq!((code, next), (0, (first.0, first.1 + 1)));
    let (code, _) = end_v5(&b, "tx", next, true).await;
    assert_eq!(
        code,
        ResponseError::InvalidTxnState.code(),
        "nothing to commit"
    );
}

#[tokio::test]
async fn writes_and_markers_of_the_epoch_before_the_end_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = v2_broker(dir.path()).await;
    let first = init(&b, "tx").await;
    assert_eq!(produce_v12(&b, "tx", first, 0, 1).await, 0);
    let (_, second) = end_v5(&b, "tx", first, true).await;

    // A delayed produce of the ended transaction's epoch.
    assert_eq!(
        produce_v12(&b, "tx", first, 0, 1).await,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert!(
        !b.txns
            .describe("tx")
            .expect("coordinated")
            .expect("known")
            .partitions
            .contains(&("t".to_string(), 0)),
        "nor did it open a transaction"
    );

    // A new transaction is open; a marker of the old epoch does not end it.
    assert_eq!(produce_v12(&b, "tx", second, 0, 1).await, 0);
    let stable = || crate::test_support::partition(&b, "t", 0).last_stable_offset();
    let held = stable();
    let stale: WriteTxnMarkersResponse = call(
        &b,
        ApiKey::WriteTxnMarkers,
        1,
        &markers_request(first.0, first.1, true, vec![0]),
    )
    .await;
    assert_ne!(stale.markers[0].topics[0].partitions[0].error_code, 0);
    assert_eq!(stable(), held, "the new transaction stays open");
    let (code, _) = end_v5(&b, "tx", second, true).await;
    assert_eq!(code, 0);
    assert_eq!(committed_records(&b).await, 2);
}

#[tokio::test]
async fn a_late_copy_of_a_v2_end_marker_does_not_end_the_next_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let b = v2_broker(dir.path()).await;
    let first = init(&b, "tx").await;
    assert_eq!(produce_v12(&b, "tx", first, 0, 1).await, 0);
    // The end's marker carries the bumped epoch, the one the next transaction writes with.
    let (_, second) = end_v5(&b, "tx", first, true).await;
    assert_eq!(produce_v12(&b, "tx", second, 0, 1).await, 0);
    let stable = || crate::test_support::partition(&b, "t", 0).last_stable_offset();
    let held = stable();
    let late_copy = |version: i8| {
        let mut request = markers_request(second.0, second.1, true, vec![0]);
        request.markers[0].transaction_version = version;
        request
    };
    let refused: WriteTxnMarkersResponse =
        call(&b, ApiKey::WriteTxnMarkers, 2, &late_copy(2)).await;
    assert_eq!(
        refused.markers[0].topics[0].partitions[0].error_code,
        ResponseError::InvalidProducerEpoch.code(),
        "a v2 marker not above the producer's epoch (KIP-1228)"
    );
    assert_eq!(stable(), held, "the next transaction stays open");
    let (code, _) = end_v5(&b, "tx", second, false).await;
    assert_eq!(code, 0);
    assert_eq!(committed_records(&b).await, 1, "only the first committed");
}

#[tokio::test]
async fn txn_offset_commit_v5_adds_the_group_and_add_offsets_v4_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let b = v2_broker(dir.path()).await;
    let offsets = |id: &str, (pid, epoch): (ProducerId, i16), group: &str, offset: i64| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_group_id(GroupId(s(group)))
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_member_id(s(""))
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(offset),
                    ]),
            ])
    };
    let committed = |group: &'static str| {
        let b = b.clone();
        async move {
            let request = OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_require_stable(true)
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic("t"))
                        .with_partition_indexes(vec![1]),
                ]));
            let r: OffsetFetchResponse = call(&b, ApiKey::OffsetFetch, 7, &request).await;
            r.topics[0].partitions[0].committed_offset
        }
    };

    // v5: no AddOffsetsToTxn; the commit adds the group's partition.
    let producer = init(&b, "tx").await;
    let code = |r: TxnOffsetCommitResponse| r.topics[0].partitions[0].error_code;
    let r: TxnOffsetCommitResponse = call(
        &b,
        ApiKey::TxnOffsetCommit,
        5,
        &offsets("tx", producer, "g5", 42),
    )
    .await;
    assert_eq!(code(r), 0);
    let (end, next) = end_v5(&b, "tx", producer, true).await;
    assert_eq!(end, 0);
    assert_eq!(committed("g5").await, 42);

    // Without the implicit add (v4), a group that was not added is refused; AddOffsetsToTxn
    // v4 adds it as before.
    let r: TxnOffsetCommitResponse = call(
        &b,
        ApiKey::TxnOffsetCommit,
        4,
        &offsets("tx", next, "g4", 7),
    )
    .await;
    assert_ne!(code(r), 0, "not in the transaction");
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(s("tx")))
        .with_producer_id(next.0)
        .with_producer_epoch(next.1)
        .with_group_id(GroupId(s("g4")));
    let added: AddOffsetsToTxnResponse = call(&b, ApiKey::AddOffsetsToTxn, 4, &add).await;
    assert_eq!(added.error_code, 0);
    let r: TxnOffsetCommitResponse = call(
        &b,
        ApiKey::TxnOffsetCommit,
        4,
        &offsets("tx", next, "g4", 7),
    )
    .await;
    assert_eq!(code(r), 0);
    let (end, _) = end_v5(&b, "tx", next, true).await;
    assert_eq!(end, 0);
    assert_eq!(committed("g4").await, 7);
}
