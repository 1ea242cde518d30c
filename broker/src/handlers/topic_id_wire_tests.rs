//! Topics named by id (KIP-516, KIP-848): OffsetCommit and OffsetFetch v10, through
//! `dispatch` and back through the response decoder. Offsets committed by id read back by name
//! and the other way round, an id the cluster does not know answers UNKNOWN_TOPIC_ID and is
//! echoed, and ACLs still go by the topic's name.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use uuid::Uuid;

use super::group_wire_tests::{broker, broker_with, call, s, topic};
use crate::acl::model::{PatternType, Permission};
use crate::acl::{AclBinding, Operation, ResourceType};
use crate::broker::Broker;
use crate::config::Flags;

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

#[tokio::test]
async fn topics_named_by_id_are_authorized_by_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let security = BTreeMap::from([
        (
            "authorizer.class.name".to_owned(),
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_owned(),
        ),
        (
            "allow.everyone.if.no.acl.found".to_owned(),
            "true".to_owned(),
        ),
    ]);
    let flags = Flags {
        security: Some(security),
        ..Flags::default()
    };
    let b = broker_with(dir.path(), flags).await;
    crate::test_support::create_topic(&b, "secret", 1, BTreeMap::new());
    let deny = AclBinding::new(
        ResourceType::Topic.code(),
        "secret",
        PatternType::Literal.code(),
        "User:ANONYMOUS",
        "*",
        Operation::All.code(),
        Permission::Deny.code(),
    )
    .unwrap();
    let authorizer = b.authorizer.as_ref().expect("an authorizer");
    authorizer.create(&[deny]).await.unwrap();
    let (t, secret) = (id_of(&b, "t"), id_of(&b, "secret"));
    let denied = ResponseError::TopicAuthorizationFailed.code();

    let r = commit(&b, 10, vec![commit_topic(10, "secret", secret, &[(0, 1)])]).await;
    assert_eq!(r.topics[0].partitions[0].error_code, denied);
    let r = commit(&b, 10, vec![commit_topic(10, "t", t, &[(0, 1)])]).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    let g = fetch(&b, 10, Some(("secret", secret, vec![0]))).await;
    assert_eq!(g.topics[0].topic_id, secret);
    assert_eq!(offsets(&g.topics[0]), vec![(0, -1, denied)]);
}
