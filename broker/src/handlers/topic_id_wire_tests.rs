//! Topics named by id (KIP-516, KIP-848): OffsetCommit and OffsetFetch v10 and Produce v13,
//! through `dispatch` and back through the response decoder. Offsets committed by id read back
//! by name and the other way round, an id the cluster does not know answers UNKNOWN_TOPIC_ID
//! and is echoed, and ACLs still go by the topic's name.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use uuid::Uuid;

use super::group_wire_tests::{broker, broker_with, call, s, topic};
use super::produce::{self, Produce};
use super::wire_tests::batch;
use super::{Client, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::protocol::served_range;

const UNKNOWN_TOPIC_ID: i16 = 100;

/// An id no topic has.
fn nobody() -> Uuid {
    Uuid::from_u128(0xdead_beef)
}

fn id_of(b: &Broker, name: &str) -> Uuid {
    crate::test_support::topic(b, name)
        .expect("the topic exists")
        .id
}

/// One topic of an OffsetCommit: by id from v10, by name before.
fn commit_topic(
    version: i16,
    name: &str,
    id: Uuid,
    offsets: &[(i32, i64)],
) -> offset_commit_request::OffsetCommitRequestTopic {
    let topic = offset_commit_request::OffsetCommitRequestTopic::default();
    let topic = if version >= 10 {
        topic.with_topic_id(id)
    } else {
        topic.with_name(self::topic(name))
    };
    topic.with_partitions(
        offsets
            .iter()
            .map(|&(partition, offset)| {
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(offset)
            })
            .collect(),
    )
}

/// Commits for group `g` (simple, no generation) at `version`.
async fn commit(
    b: &Arc<Broker>,
    version: i16,
    topics: Vec<offset_commit_request::OffsetCommitRequestTopic>,
) -> OffsetCommitResponse {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(topics);
    call(b, ApiKey::OffsetCommit, version, &request).await
}

/// Group `g`'s offsets of `partitions` of one topic (every topic when `None`) at `version`
/// (v8+): by id from v10, by name before.
async fn fetch(
    b: &Arc<Broker>,
    version: i16,
    wanted: Option<(&str, Uuid, Vec<i32>)>,
) -> offset_fetch_response::OffsetFetchResponseGroup {
    let topics = wanted.map(|(name, id, partitions)| {
        let topic = offset_fetch_request::OffsetFetchRequestTopics::default();
        let topic = if version >= 10 {
            topic.with_topic_id(id)
        } else {
            topic.with_name(self::topic(name))
        };
        vec![topic.with_partition_indexes(partitions)]
    });
    let request = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(topics),
    ]);
    let mut response: OffsetFetchResponse = call(b, ApiKey::OffsetFetch, version, &request).await;
    assert_eq!(response.groups.len(), 1, "OffsetFetch v{version}");
    response.groups.remove(0)
}

/// (partition, committed offset, error code) of each partition of a fetched topic.
fn offsets(topic: &offset_fetch_response::OffsetFetchResponseTopics) -> Vec<(i32, i64, i16)> {
    topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset, p.error_code))
        .collect()
}

#[tokio::test]
async fn offsets_committed_by_topic_id_read_back_by_name_and_the_other_way_round() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let id = id_of(&b, "t");

    let r = commit(&b, 10, vec![commit_topic(10, "t", id, &[(0, 10)])]).await;
    assert_eq!(r.topics[0].topic_id, id, "the commit echoes the id");
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let g = fetch(&b, 9, Some(("t", Uuid::nil(), vec![0]))).await;
    assert_eq!(g.topics[0].name.as_str(), "t");
    assert_eq!(offsets(&g.topics[0]), vec![(0, 10, 0)], "by name at v9");

    let r = commit(&b, 9, vec![commit_topic(9, "t", Uuid::nil(), &[(1, 20)])]).await;
    assert_eq!(r.topics[0].name.as_str(), "t");
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let g = fetch(&b, 10, Some(("t", id, vec![0, 1]))).await;
    assert_eq!(g.error_code, 0);
    assert_eq!(g.topics[0].topic_id, id, "the fetch echoes the id");
    assert_eq!(
        offsets(&g.topics[0]),
        vec![(0, 10, 0), (1, 20, 0)],
        "by id at v10"
    );

    // Every topic of the group: named by id at v10, by name at v9.
    let g = fetch(&b, 10, None).await;
    assert_eq!(g.topics.len(), 1);
    assert_eq!(g.topics[0].topic_id, id);
    assert_eq!(offsets(&g.topics[0]), vec![(0, 10, 0), (1, 20, 0)]);
    let g = fetch(&b, 9, None).await;
    assert_eq!(g.topics[0].name.as_str(), "t");
}

#[tokio::test]
async fn an_unknown_topic_id_is_unknown_topic_id_for_offset_commit_and_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let id = id_of(&b, "t");

    let r = commit(
        &b,
        10,
        vec![
            commit_topic(10, "t", id, &[(0, 5)]),
            commit_topic(10, "", nobody(), &[(0, 7), (3, 8)]),
        ],
    )
    .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "the known topic");
    let unknown = &r.topics[1];
    assert_eq!(unknown.topic_id, nobody(), "the unknown id is echoed");
    let codes: Vec<(i32, i16)> = unknown
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(codes, vec![(0, UNKNOWN_TOPIC_ID), (3, UNKNOWN_TOPIC_ID)]);

    let g = fetch(&b, 10, Some(("", nobody(), vec![0, 1]))).await;
    assert_eq!(g.error_code, 0, "a topic's error, not the group's");
    assert_eq!(g.topics.len(), 1);
    assert_eq!(g.topics[0].topic_id, nobody());
    assert_eq!(
        offsets(&g.topics[0]),
        vec![(0, -1, UNKNOWN_TOPIC_ID), (1, -1, UNKNOWN_TOPIC_ID)]
    );
    let g = fetch(&b, 10, Some(("t", id, vec![0]))).await;
    assert_eq!(offsets(&g.topics[0]), vec![(0, 5, 0)], "nothing else moved");
}

/// Produces `request` at `version` as a client does: through `dispatch` when the broker serves
/// that version, else (Produce v12 and v13 below transactions v2) through the same steps
/// dispatch takes: the request encoded and decoded at `version`, the Produce handler, the
/// response encoded and decoded at `version`.
pub(super) async fn produce_at(
    b: &Arc<Broker>,
    version: i16,
    request: &ProduceRequest,
) -> ProduceResponse {
    let sets = super::api_versions::api_sets(b);
    let served = served_range(ApiKey::Produce, sets).is_some_and(|(_, max)| version <= max);
    if served {
        return call(b, ApiKey::Produce, version, request).await;
    }
    let mut buf = BytesMut::new();
    request.encode(&mut buf, version).unwrap();
    let request = ProduceRequest::decode(&mut buf.freeze(), version).unwrap();
    let ctx = RequestContext {
        broker: b.clone(),
        header: RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(version)
            .with_client_id(Some(s("wire-test"))),
        client: Arc::new(Client::new(Arc::from("/127.0.0.1"))),
    };
    let pending = match produce::handle(ctx, request) {
        Produce::Appended(pending) => pending,
        Produce::Verifying(verifying) => verifying.await,
    };
    let response = pending.await.expect("acks != 0 is answered");
    let mut buf = BytesMut::new();
    response.encode(&mut buf, version).unwrap();
    ProduceResponse::decode(&mut buf.freeze(), version).unwrap()
}

/// A topic of a Produce request at `version`: by id from v13, by name before.
pub(super) fn produce_topic(
    version: i16,
    name: &str,
    id: Uuid,
) -> produce_request::TopicProduceData {
    let topic = produce_request::TopicProduceData::default();
    if version >= 13 {
        topic.with_topic_id(id)
    } else {
        topic.with_name(self::topic(name))
    }
}

/// A Produce of one batch of `records` to `partition` of one topic, acks=all.
pub(super) fn produce_request(
    version: i16,
    name: &str,
    id: Uuid,
    partition: i32,
    records: i64,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![produce_topic(version, name, id).with_partition_data(
            vec![produce_request::PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch(records)))],
        )])
}

/// Fetch v13 of partition 0 of topic `id` from offset 0: (error code, high watermark, bytes
/// of records).
async fn fetch_records(b: &Arc<Broker>, id: Uuid) -> (i16, i64, usize) {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic_id(id)
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = call(b, ApiKey::Fetch, 13, &request).await;
    let p = &response.responses[0].partitions[0];
    let bytes = p.records.as_ref().map_or(0, |r| r.len());
    (p.error_code, p.high_watermark, bytes)
}

#[tokio::test]
async fn produce_v13_by_topic_id_is_read_back_by_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let id = id_of(&b, "t");
    let mut end = 0;
    // v12 is v11 on the wire and handled as it; v13 names the topic by id.
    for (version, records) in [(11, 2), (12, 3), (13, 4)] {
        let request = produce_request(version, "t", id, 0, records);
        let r = produce_at(&b, version, &request).await;
        let topic = &r.responses[0];
        let p = &topic.partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (0, end),
            "Produce v{version}"
        );
        if version >= 13 {
            assert_eq!(topic.topic_id, id, "Produce v{version} echoes the id");
        }
        end += records;
    }
    let (error, high_watermark, bytes) = fetch_records(&b, id).await;
    assert_eq!((error, high_watermark), (0, end));
    assert!(bytes > 0, "the records are read back");
    let in_bytes = b.metrics.bytes_in.with_label_values(&["t"]).get();
    assert!(in_bytes > 0, "bytes in are counted under the topic's name");
}

#[tokio::test]
async fn produce_v13_with_an_unknown_topic_id_is_unknown_topic_id() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let id = id_of(&b, "t");
    let mut request = produce_request(13, "", nobody(), 0, 1);
    request
        .topic_data
        .extend(produce_request(13, "t", id, 1, 1).topic_data);
    let r = produce_at(&b, 13, &request).await;
    let unknown = &r.responses[0];
    assert_eq!(unknown.topic_id, nobody(), "the unknown id is echoed");
    let p = &unknown.partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (UNKNOWN_TOPIC_ID, -1));
    let known = &r.responses[1];
    assert_eq!(known.topic_id, id);
    assert_eq!(
        known.partition_responses[0].error_code, 0,
        "the known topic"
    );
}

#[tokio::test]
async fn topics_named_by_id_are_authorized_by_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), crate::test_support::acls_open_flags()).await;
    crate::test_support::create_topic(&b, "secret", 1, BTreeMap::new());
    crate::test_support::deny_anonymous(&b, ResourceType::Topic, "secret", Operation::All).await;
    let (t, secret) = (id_of(&b, "t"), id_of(&b, "secret"));
    let denied = ResponseError::TopicAuthorizationFailed.code();

    let r = produce_at(&b, 13, &produce_request(13, "secret", secret, 0, 1)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, denied);
    let r = produce_at(&b, 13, &produce_request(13, "t", t, 0, 1)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);

    let r = commit(&b, 10, vec![commit_topic(10, "secret", secret, &[(0, 1)])]).await;
    assert_eq!(r.topics[0].partitions[0].error_code, denied);
    let r = commit(&b, 10, vec![commit_topic(10, "t", t, &[(0, 1)])]).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    let g = fetch(&b, 10, Some(("secret", secret, vec![0]))).await;
    assert_eq!(g.topics[0].topic_id, secret);
    assert_eq!(offsets(&g.topics[0]), vec![(0, -1, denied)]);
}
