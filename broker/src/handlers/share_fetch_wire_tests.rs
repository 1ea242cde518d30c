//! ShareFetch and ShareAcknowledge through `dispatch` on a standalone broker: a member's
//! session from open to close, records acquired under locks and handed to one member at a
//! time, acknowledgements alone or riding on a fetch, a released record delivered again to
//! another member, and the session errors clients restart on.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use uuid::Uuid;

use super::group_wire_tests::{call, s, topic};
use super::share_group_wire_tests::{broker, join, GROUP};
use super::zero_copy_tests::{file_bytes, reply, request_frame, sent_over_tcp};
use super::{Client, Reply};
use crate::broker::Broker;

const NONE: i16 = 0;
const ACCEPT: i8 = 1;
const RELEASE: i8 = 2;

/// Appends `n` records to q-0.
async fn produce(b: &Arc<Broker>, n: usize) {
    let records = crate::storage::test_util::simple(n, crate::clock::now_ms()).freeze();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic("q"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records)),
            ])]);
    let r: ProduceResponse = call(b, ApiKey::Produce, 9, &request).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, NONE);
}

/// A ShareFetch of q-0 by `member` at `epoch`, waiting up to `wait_ms`, with `acks`
/// (first, last, type) riding on it.
fn fetch(
    member: &str,
    epoch: i32,
    t: Uuid,
    wait_ms: i32,
    acks: &[(i64, i64, i8)],
) -> ShareFetchRequest {
    let batches = acks
        .iter()
        .map(|&(first, last, kind)| {
            share_fetch_request::AcknowledgementBatch::default()
                .with_first_offset(first)
                .with_last_offset(last)
                .with_acknowledge_types(vec![kind])
        })
        .collect();
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s(member)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_max_records(500)
        .with_batch_size(500)
        .with_topics(vec![share_fetch_request::FetchTopic::default()
            .with_topic_id(t)
            .with_partitions(vec![
                share_fetch_request::FetchPartition::default()
                    .with_partition_index(0)
                    .with_acknowledgement_batches(batches),
            ])])
}

/// `member` joins the share group, subscribed to q.
async fn joined(b: &Arc<Broker>, member: &str) {
    let r: ShareGroupHeartbeatResponse =
        call(b, ApiKey::ShareGroupHeartbeat, 1, &join(member)).await;
    assert_eq!(r.error_code, NONE, "{member} joins");
}

/// `member` leaves the share group.
async fn leave(b: &Arc<Broker>, member: &str) -> ShareGroupHeartbeatResponse {
    let req = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member))
        .with_member_epoch(-1);
    call(b, ApiKey::ShareGroupHeartbeat, 1, &req).await
}

async fn share_fetch(b: &Arc<Broker>, req: &ShareFetchRequest) -> ShareFetchResponse {
    call(b, ApiKey::ShareFetch, 1, req).await
}

/// The acquired ranges of q-0 in a response: (first, last, delivery count).
fn acquired(r: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.acquired_records)
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

/// q-0's partition answer.
fn partition(r: &ShareFetchResponse) -> &share_fetch_response::PartitionData {
    &r.responses[0].partitions[0]
}

async fn acknowledge(
    b: &Arc<Broker>,
    member: &str,
    epoch: i32,
    t: Uuid,
    acks: &[(i64, i64, i8)],
) -> ShareAcknowledgeResponse {
    let req = acknowledge_request(member, epoch, t, acks);
    call(b, ApiKey::ShareAcknowledge, 1, &req).await
}

/// A ShareAcknowledge of q-0 by `member` at `epoch`.
fn acknowledge_request(
    member: &str,
    epoch: i32,
    t: Uuid,
    acks: &[(i64, i64, i8)],
) -> ShareAcknowledgeRequest {
    let batches = acks
        .iter()
        .map(|&(first, last, kind)| {
            share_acknowledge_request::AcknowledgementBatch::default()
                .with_first_offset(first)
                .with_last_offset(last)
                .with_acknowledge_types(vec![kind])
        })
        .collect();
    ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s(member)))
        .with_share_session_epoch(epoch)
        .with_topics(vec![share_acknowledge_request::AcknowledgeTopic::default()
            .with_topic_id(t)
            .with_partitions(vec![
                share_acknowledge_request::AcknowledgePartition::default()
                    .with_partition_index(0)
                    .with_acknowledgement_batches(batches),
            ])])
}

#[tokio::test]
async fn records_go_to_one_member_at_a_time_and_a_released_one_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    for member in ["a", "b"] {
        joined(&b, member).await;
    }
    // The first fetch initializes the share-partition at the log end (auto.offset.reset
    // latest): nothing yet.
    let opened = share_fetch(&b, &fetch("a", 0, t, 3_000, &[])).await;
    assert_eq!(opened.error_code, NONE);
    assert_eq!(opened.acquisition_lock_timeout_ms, 30_000);
    assert!(acquired(&opened).is_empty());
    produce(&b, 3).await;

    let got = share_fetch(&b, &fetch("a", 1, t, 5_000, &[])).await;
    assert_eq!(got.error_code, NONE);
    assert_eq!(acquired(&got), [(0, 2, 1)]);
    assert!(partition(&got)
        .records
        .as_ref()
        .is_some_and(|r| !r.is_empty()));
    let other = share_fetch(&b, &fetch("b", 0, t, 200, &[])).await;
    assert!(acquired(&other).is_empty(), "a holds every record");

    let acked = acknowledge(&b, "a", 2, t, &[(0, 0, ACCEPT), (1, 2, RELEASE)]).await;
    assert_eq!(acked.error_code, NONE);
    assert_eq!(acked.responses[0].partitions[0].error_code, NONE);
    let again = share_fetch(&b, &fetch("b", 1, t, 5_000, &[])).await;
    assert_eq!(
        acquired(&again),
        [(1, 2, 2)],
        "released records, delivered a second time"
    );

    // Acknowledging what another member holds is refused.
    let stale = acknowledge(&b, "a", 3, t, &[(1, 1, ACCEPT)]).await;
    assert_eq!(
        stale.responses[0].partitions[0].error_code,
        ResponseError::InvalidRecordState.code()
    );
    // Acknowledgements ride on the next fetch.
    let riding = share_fetch(&b, &fetch("b", 2, t, 100, &[(1, 2, ACCEPT)])).await;
    assert_eq!(riding.error_code, NONE);
    assert_eq!(partition(&riding).acknowledge_error_code, NONE);
    assert!(acquired(&riding).is_empty());
}

#[tokio::test]
async fn a_closed_session_gives_back_what_its_member_held() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    joined(&b, "a").await;
    share_fetch(&b, &fetch("a", 0, t, 3_000, &[])).await;
    produce(&b, 2).await;
    assert_eq!(
        acquired(&share_fetch(&b, &fetch("a", 1, t, 5_000, &[])).await),
        [(0, 1, 1)]
    );
    let closed = share_fetch(&b, &fetch("a", -1, t, 0, &[])).await;
    assert_eq!(closed.error_code, NONE);
    assert!(acquired(&closed).is_empty());
    // Records given back by a closing session do not count as delivered (Kafka lowers
    // their delivery count again).
    let next = share_fetch(&b, &fetch("b", 0, t, 5_000, &[])).await;
    assert_eq!(acquired(&next), [(0, 1, 1)]);
    let gone = share_fetch(&b, &fetch("a", 2, t, 0, &[])).await;
    assert_eq!(gone.error_code, ResponseError::ShareSessionNotFound.code());
}

#[tokio::test]
async fn session_errors_are_answered_as_clients_expect() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    let code = |r: ShareFetchResponse| r.error_code;
    assert_eq!(
        code(share_fetch(&b, &fetch("a", 3, t, 0, &[])).await),
        ResponseError::ShareSessionNotFound.code()
    );
    assert_eq!(code(share_fetch(&b, &fetch("a", 0, t, 0, &[])).await), NONE);
    assert_eq!(
        code(share_fetch(&b, &fetch("a", 7, t, 0, &[])).await),
        ResponseError::InvalidShareSessionEpoch.code()
    );
    assert_eq!(
        code(share_fetch(&b, &fetch("a", 0, t, 0, &[(0, 0, ACCEPT)])).await),
        ResponseError::InvalidRequest.code(),
        "acknowledgements cannot open a session"
    );
    let opened_by_ack = acknowledge(&b, "a", 0, t, &[]).await;
    assert_eq!(
        opened_by_ack.error_code,
        ResponseError::InvalidShareSessionEpoch.code()
    );
    let nameless = fetch("a", 0, t, 0, &[]).with_member_id(None);
    assert_eq!(
        code(share_fetch(&b, &nameless).await),
        ResponseError::InvalidRequest.code()
    );
}

#[tokio::test]
async fn unknown_topics_and_partitions_are_answered_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    let mut req = fetch("a", 0, t, 0, &[]);
    req.topics[0].partitions[0].partition_index = 99;
    req.topics.push(
        share_fetch_request::FetchTopic::default()
            .with_topic_id(Uuid::from_u128(999))
            .with_partitions(vec![share_fetch_request::FetchPartition::default()]),
    );
    let r = share_fetch(&b, &req).await;
    assert_eq!(r.error_code, NONE);
    let mut codes: Vec<(Uuid, i32, i16)> = r
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic_id, p.partition_index, p.error_code))
        })
        .collect();
    codes.sort();
    let mut expected = vec![
        (t, 99, ResponseError::UnknownTopicOrPartition.code()),
        (
            Uuid::from_u128(999),
            0,
            ResponseError::UnknownTopicId.code(),
        ),
    ];
    expected.sort();
    assert_eq!(codes, expected);
}

#[tokio::test]
async fn a_member_leaving_its_group_keeps_its_session_for_the_acknowledgements_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    joined(&b, "a").await;
    share_fetch(&b, &fetch("a", 0, t, 3_000, &[])).await;
    produce(&b, 3).await;
    assert_eq!(
        acquired(&share_fetch(&b, &fetch("a", 1, t, 5_000, &[])).await),
        [(0, 2, 1)]
    );
    let left = leave(&b, "a").await;
    assert_eq!((left.error_code, left.member_epoch), (NONE, -1));
    // The acknowledgement it sent before leaving arrives after: it still counts.
    let acked = ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s("a")))
        .with_share_session_epoch(2)
        .with_topics(vec![share_acknowledge_request::AcknowledgeTopic::default()
            .with_topic_id(t)
            .with_partitions(vec![
                share_acknowledge_request::AcknowledgePartition::default()
                    .with_partition_index(0)
                    .with_acknowledgement_batches(vec![
                        share_acknowledge_request::AcknowledgementBatch::default()
                            .with_first_offset(0)
                            .with_last_offset(0)
                            .with_acknowledge_types(vec![1]),
                    ]),
            ])]);
    let r: ShareAcknowledgeResponse = call(&b, ApiKey::ShareAcknowledge, 1, &acked).await;
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.responses[0].partitions[0].error_code, NONE);
    // Closing its session gives back the rest, without waiting for the lock.
    let closed = share_fetch(&b, &fetch("a", -1, t, 0, &[])).await;
    assert_eq!(closed.error_code, NONE);
    joined(&b, "b").await;
    let next = share_fetch(&b, &fetch("b", 0, t, 5_000, &[])).await;
    assert_eq!(
        acquired(&next),
        [(1, 2, 1)],
        "the accepted record stays accepted"
    );
    let gone = share_fetch(&b, &fetch("a", 0, t, 0, &[])).await;
    assert_eq!(
        gone.error_code, NONE,
        "a new session of a left member opens as any"
    );
}

#[tokio::test]
async fn an_empty_share_group_is_deleted_with_its_share_partitions_state() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    joined(&b, "a").await;
    share_fetch(&b, &fetch("a", 0, t, 3_000, &[])).await;
    produce(&b, 2).await;
    assert_eq!(
        acquired(&share_fetch(&b, &fetch("a", 1, t, 5_000, &[])).await),
        [(0, 1, 1)]
    );
    let delete = || DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(GROUP))]);
    let code = |r: DeleteGroupsResponse| r.results[0].error_code;
    let busy: DeleteGroupsResponse = call(&b, ApiKey::DeleteGroups, 2, &delete()).await;
    assert_eq!(code(busy), ResponseError::NonEmptyGroup.code());
    leave(&b, "a").await;
    let deleted: DeleteGroupsResponse = call(&b, ApiKey::DeleteGroups, 2, &delete()).await;
    assert_eq!(code(deleted), NONE);
    let again: DeleteGroupsResponse = call(&b, ApiKey::DeleteGroups, 2, &delete()).await;
    assert_eq!(code(again), ResponseError::GroupIdNotFound.code());
    // A group of the same id starts afresh at the log end: the two records released when
    // a left are not the new group's.
    joined(&b, "c").await;
    let fresh = share_fetch(&b, &fetch("c", 0, t, 1_000, &[])).await;
    assert!(acquired(&fresh).is_empty(), "{:?}", acquired(&fresh));
    produce(&b, 1).await;
    assert_eq!(
        acquired(&share_fetch(&b, &fetch("c", 1, t, 5_000, &[])).await),
        [(2, 2, 1)]
    );
}

#[tokio::test]
async fn share_group_offsets_show_where_each_share_partition_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    joined(&b, "a").await;
    share_fetch(&b, &fetch("a", 0, t, 3_000, &[])).await;
    produce(&b, 3).await;
    share_fetch(&b, &fetch("a", 1, t, 5_000, &[])).await;
    let acked = acknowledge(&b, "a", 2, t, &[(0, 1, ACCEPT)]).await;
    assert_eq!(acked.responses[0].partitions[0].error_code, NONE);
    let describe = |topics: Option<
        Vec<describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic>,
    >,
                    group: &str| {
        DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(topics),
        ])
    };
    let all: DescribeShareGroupOffsetsResponse = call(
        &b,
        ApiKey::DescribeShareGroupOffsets,
        0,
        &describe(None, GROUP),
    )
    .await;
    let group = &all.groups[0];
    assert_eq!(group.error_code, NONE);
    let rows: Vec<(String, Uuid, i32, i64, i16)> = group
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    t.topic_name.to_string(),
                    t.topic_id,
                    p.partition_index,
                    p.start_offset,
                    p.error_code,
                )
            })
        })
        .collect();
    assert_eq!(
        rows,
        [("q".to_owned(), t, 0, 2, NONE)],
        "every share-partition the group has"
    );
    let named = describe(
        Some(vec![
            describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic::default()
                .with_topic_name(topic("q"))
                .with_partitions(vec![0, 1, 7]),
        ]),
        GROUP,
    );
    let some: DescribeShareGroupOffsetsResponse =
        call(&b, ApiKey::DescribeShareGroupOffsets, 0, &named).await;
    let starts: Vec<(i32, i64, i16)> = some.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.start_offset, p.error_code))
        .collect();
    assert_eq!(
        starts,
        [
            (0, 2, NONE),
            (1, -1, NONE),
            (7, -1, ResponseError::UnknownTopicOrPartition.code())
        ]
    );
    let unknown: DescribeShareGroupOffsetsResponse = call(
        &b,
        ApiKey::DescribeShareGroupOffsets,
        0,
        &describe(None, "nobody"),
    )
    .await;
    assert_eq!(
        unknown.groups[0].error_code,
        ResponseError::GroupIdNotFound.code()
    );

    // v1's lag (KIP-1226): records up to the high watermark not yet done with. Offset 2 is
    // still held, 3 to 5 arrive and only 4 is accepted: the start stays at 2, and 6 - 2 - 1.
    produce(&b, 3).await;
    assert_eq!(
        acquired(&share_fetch(&b, &fetch("a", 3, t, 5_000, &[])).await),
        [(3, 5, 1)]
    );
    let accepted = acknowledge(&b, "a", 4, t, &[(4, 4, ACCEPT)]).await;
    assert_eq!(accepted.responses[0].partitions[0].error_code, NONE);
    let lagging: DescribeShareGroupOffsetsResponse =
        call(&b, ApiKey::DescribeShareGroupOffsets, 1, &named).await;
    let lags: Vec<(i32, i64, i64)> = lagging.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.start_offset, p.lag))
        .collect();
    assert_eq!(lags, [(0, 2, 3), (1, -1, -1), (7, -1, -1)]);
}

#[tokio::test]
async fn an_idle_groups_offsets_are_altered_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    joined(&b, "a").await;
    share_fetch(&b, &fetch("a", 0, t, 3_000, &[])).await;
    produce(&b, 3).await;
    share_fetch(&b, &fetch("a", 1, t, 5_000, &[])).await;
    acknowledge(&b, "a", 2, t, &[(0, 2, ACCEPT)]).await;
    let alter = AlterShareGroupOffsetsRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(vec![
            alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic::default()
                .with_topic_name(topic("q"))
                .with_partitions(vec![
                    alter_share_group_offsets_request::AlterShareGroupOffsetsRequestPartition::default()
                        .with_partition_index(0)
                        .with_start_offset(1),
                ]),
        ]);
    let busy: AlterShareGroupOffsetsResponse =
        call(&b, ApiKey::AlterShareGroupOffsets, 0, &alter).await;
    assert_eq!(busy.error_code, ResponseError::NonEmptyGroup.code());
    leave(&b, "a").await;
    let altered: AlterShareGroupOffsetsResponse =
        call(&b, ApiKey::AlterShareGroupOffsets, 0, &alter).await;
    assert_eq!(altered.error_code, NONE);
    assert_eq!(altered.responses[0].partitions[0].error_code, NONE);
    // The group reads again from offset 1, as new deliveries.
    joined(&b, "c").await;
    let again = share_fetch(&b, &fetch("c", 0, t, 5_000, &[])).await;
    assert_eq!(acquired(&again), [(1, 2, 1)]);
    share_fetch(&b, &fetch("c", -1, t, 0, &[])).await;
    leave(&b, "c").await;

    let delete = DeleteShareGroupOffsetsRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(vec![
            delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic::default()
                .with_topic_name(topic("q")),
            delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic::default()
                .with_topic_name(topic("missing")),
        ]);
    let deleted: DeleteShareGroupOffsetsResponse =
        call(&b, ApiKey::DeleteShareGroupOffsets, 0, &delete).await;
    assert_eq!(deleted.error_code, NONE);
    let codes: Vec<i16> = deleted.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [NONE, ResponseError::UnknownTopicOrPartition.code()]);
    let describe = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_topics(None),
    ]);
    let described: DescribeShareGroupOffsetsResponse =
        call(&b, ApiKey::DescribeShareGroupOffsets, 0, &describe).await;
    assert_eq!(described.groups[0].error_code, NONE);
    assert!(
        described.groups[0].topics.is_empty(),
        "{:?}",
        described.groups[0]
    );
}

/// ShareFetch v2's RENEW acknowledgement type.
const RENEW: i8 = 4;

#[tokio::test]
async fn v2_acquires_exactly_max_records_in_record_limit_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    joined(&b, "a").await;
    share_fetch(&b, &fetch("a", 0, t, 3_000, &[])).await;
    produce(&b, 5).await;
    let limited = fetch("a", 1, t, 5_000, &[])
        .with_max_records(2)
        .with_share_acquire_mode(1);
    let r: ShareFetchResponse = call(&b, ApiKey::ShareFetch, 2, &limited).await;
    assert_eq!(
        acquired(&r),
        [(0, 1, 1)],
        "two records of the five-record batch"
    );
    // Batch-optimized (v1's only mode): the rest of the batch, past the count.
    let whole = fetch("a", 2, t, 5_000, &[]).with_max_records(1);
    let r: ShareFetchResponse = call(&b, ApiKey::ShareFetch, 2, &whole).await;
    assert_eq!(acquired(&r), [(2, 4, 1)]);
    let unknown = fetch("a", 3, t, 0, &[]).with_share_acquire_mode(7);
    let r: ShareFetchResponse = call(&b, ApiKey::ShareFetch, 2, &unknown).await;
    assert_eq!(
        r.error_code,
        ResponseError::InvalidRequest.code(),
        "an unknown mode"
    );
}

#[tokio::test]
async fn renew_keeps_the_lock_where_the_group_allows_it_and_only_from_v2() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    joined(&b, "a").await;
    share_fetch(&b, &fetch("a", 0, t, 3_000, &[])).await;
    produce(&b, 2).await;
    let got = share_fetch(&b, &fetch("a", 1, t, 5_000, &[])).await;
    assert_eq!(acquired(&got), [(0, 1, 1)]);
    let invalid_state = ResponseError::InvalidRecordState.code();

    // v1 knows no RENEW.
    let r = acknowledge(&b, "a", 2, t, &[(0, 1, RENEW)]).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::InvalidRequest.code()
    );
    // A renewal fetches nothing, so it may ask for nothing.
    let asking = fetch("a", 3, t, 0, &[(0, 1, RENEW)]).with_is_renew_ack(true);
    let r: ShareFetchResponse = call(&b, ApiKey::ShareFetch, 2, &asking).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code());

    // share.renew.acknowledge.enable is false by default (Kafka's INVALID_RECORD_STATE).
    let renew = |epoch: i32| {
        fetch("a", epoch, t, 0, &[(0, 1, RENEW)])
            .with_is_renew_ack(true)
            .with_min_bytes(0)
            .with_max_bytes(0)
            .with_max_records(0)
            .with_batch_size(0)
    };
    let r: ShareFetchResponse = call(&b, ApiKey::ShareFetch, 2, &renew(3)).await;
    assert_eq!(r.error_code, NONE);
    assert_eq!(partition(&r).acknowledge_error_code, invalid_state);

    let enable = [crate::group_configs::GroupConfigOp::Set(
        "share.renew.acknowledge.enable".into(),
        "true".into(),
    )];
    b.group_configs.alter(GROUP, &enable, false).await.unwrap();
    let r: ShareFetchResponse = call(&b, ApiKey::ShareFetch, 2, &renew(4)).await;
    assert_eq!(
        (r.error_code, partition(&r).acknowledge_error_code),
        (NONE, NONE)
    );
    assert!(acquired(&r).is_empty(), "a renewal fetches nothing");
    // Still the member's: it accepts them (ShareAcknowledge v2, which answers the lock).
    let accept = acknowledge_request("a", 5, t, &[(0, 1, ACCEPT)]);
    let r: ShareAcknowledgeResponse = call(&b, ApiKey::ShareAcknowledge, 2, &accept).await;
    assert_eq!(r.responses[0].partitions[0].error_code, NONE);
    assert_eq!(r.acquisition_lock_timeout_ms, 30_000);
}

/// A member on a plaintext connection is sent the batches it acquired from their segment files
/// (zero-copy, as Fetch's): the frame is byte for byte the one a member of another group on a
/// connection that copies gets for the same records, and over TCP every record byte goes with
/// `sendfile`.
#[tokio::test]
async fn a_plaintext_member_is_sent_its_records_from_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    let copying = Arc::new(Client::new(Arc::from("/127.0.0.1")));
    let sending = Arc::new(Client::new(Arc::from("/127.0.0.1")).sending_files(true));
    let groups = [(GROUP, &copying), ("other", &sending)];
    let in_group = |group: &str, req: ShareFetchRequest| req.with_group_id(Some(GroupId(s(group))));
    for (group, client) in groups {
        let r: ShareGroupHeartbeatResponse = call(
            &b,
            ApiKey::ShareGroupHeartbeat,
            1,
            &join("m").with_group_id(GroupId(s(group))),
        )
        .await;
        assert_eq!(r.error_code, NONE, "{group}");
        // Initializes the share-partition at the log end: nothing yet.
        let opened = in_group(group, fetch("m", 0, t, 500, &[]));
        let frame = request_frame(ApiKey::ShareFetch, 1, 1, &opened);
        assert!(
            matches!(reply(&b, client, frame).await, Reply::Frame(_)),
            "{group}"
        );
    }
    for n in [3, 1, 5, 2] {
        produce(&b, n).await;
    }
    let mut answers = Vec::new();
    for (group, client) in groups {
        let req = in_group(group, fetch("m", 1, t, 5_000, &[]));
        answers.push(reply(&b, client, request_frame(ApiKey::ShareFetch, 1, 2, &req)).await);
    }
    let (Reply::Frame(copied), Reply::Parts(parts)) = (&answers[0], &answers[1]) else {
        panic!("a frame for the copying connection, parts for the other: {answers:?}");
    };
    let mut body = copied.slice(4..);
    ResponseHeader::decode(&mut body, ApiKey::ShareFetch.response_header_version(1)).unwrap();
    let response = ShareFetchResponse::decode(&mut body, 1).unwrap();
    assert_eq!(acquired(&response), [(0, 10, 1)]);
    let records = partition(&response).records.as_ref().map_or(0, |r| r.len());
    assert!(records > 0);
    assert_eq!(
        file_bytes(parts),
        records,
        "the record set is sent from its file"
    );
    assert!(
        parts.load().unwrap() == copied,
        "loaded parts are the copy path's frame"
    );
    let (sent, counted) = sent_over_tcp(parts).await;
    assert!(sent == copied[..], "bytes sent with sendfile");
    assert_eq!(counted as usize, records, "record bytes sent from files");
}
