//! The consumer group protocol (KIP-848) through `dispatch`: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe only when `group.coordinator.rebalance.protocols` enables them,
//! two members reconciling with a revocation, commits and fetches checked against member
//! epochs, and a coordinator reload that rebuilds the groups from the log.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::*;
use uuid::Uuid;

use super::group_wire_tests::{call, s, topic};
use crate::broker::Broker;
use crate::config::{BrokerConfig, Flags};
use crate::coordinator::log::memory::MemoryLog;
use crate::test_support::create_topic;

const NONE: i16 = 0;
const GROUP: &str = "cg";

/// A broker serving `protocols`, its coordinator on `log`, with a 4-partition topic `c`.
fn broker(dir: &std::path::Path, protocols: &str, log: Arc<MemoryLog>) -> (Arc<Broker>, Uuid) {
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.to_path_buf()),
        group_initial_rebalance_delay_ms: Some(0),
        commit_journal_bytes: Some(1 << 20),
        group_coordinator_rebalance_protocols: Some(protocols.to_string()),
        ..Flags::default()
    })
    .unwrap();
    let b = Broker::open_with_offsets_log(config, move |_| log).unwrap();
    let id = create_topic(&b, "c", 4, BTreeMap::new()).id;
    (b, id)
}

fn join(member_id: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic("c")]))
        .with_topic_partitions(Some(vec![]))
}

fn beat(member_id: &str, epoch: i32, owned: &[(Uuid, Vec<i32>)]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member_id))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(Some(
            owned
                .iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(*t)
                        .with_partitions(ps.clone())
                })
                .collect(),
        ))
}

async fn heartbeat(
    b: &Arc<Broker>,
    version: i16,
    req: &ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    call(b, ApiKey::ConsumerGroupHeartbeat, version, req).await
}

/// The partitions of a heartbeat's assignment, as (topic, partitions).
fn assigned(r: &ConsumerGroupHeartbeatResponse) -> Vec<(Uuid, Vec<i32>)> {
    let a = r.assignment.as_ref().expect("an assignment");
    a.topic_partitions
        .iter()
        .map(|t| (t.topic_id, t.partitions.clone()))
        .collect()
}

fn count(owned: &[(Uuid, Vec<i32>)]) -> usize {
    owned.iter().map(|(_, ps)| ps.len()).sum()
}

async fn commit(b: &Arc<Broker>, member: &str, epoch: i32, offset: i64) -> i16 {
    commit_at(b, 9, member, epoch, offset).await
}

/// OffsetCommit of partition c-0 at `version`; the partition's error code.
async fn commit_at(b: &Arc<Broker>, version: i16, member: &str, epoch: i32, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(epoch)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic("c"))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ]);
    let r: OffsetCommitResponse = call(b, ApiKey::OffsetCommit, version, &req).await;
    r.topics[0].partitions[0].error_code
}

/// OffsetFetch v9 of partition c-0 as `member` at `epoch`: (group error, offset).
async fn fetch(b: &Arc<Broker>, member: Option<&str>, epoch: i32) -> (i16, i64) {
    let req = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_member_id(member.map(s))
            .with_member_epoch(epoch)
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(topic("c"))
                    .with_partition_indexes(vec![0]),
            ])),
    ]);
    let r: OffsetFetchResponse = call(b, ApiKey::OffsetFetch, 9, &req).await;
    let g = &r.groups[0];
    let offset = g
        .topics
        .first()
        .map_or(-1, |t| t.partitions[0].committed_offset);
    (g.error_code, offset)
}

async fn describe(b: &Arc<Broker>) -> consumer_group_describe_response::DescribedGroup {
    let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(GROUP))]);
    let mut r: ConsumerGroupDescribeResponse =
        call(b, ApiKey::ConsumerGroupDescribe, 0, &req).await;
    r.groups.remove(0)
}

#[tokio::test]
async fn consumer_protocol_apis_are_neither_advertised_nor_served_unless_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path(), "classic", Arc::new(MemoryLog::default()));
    let consumer_keys = [
        ApiKey::ConsumerGroupHeartbeat as i16,
        ApiKey::ConsumerGroupDescribe as i16,
    ];
    let r: ApiVersionsResponse =
        call(&b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert!(r
        .api_keys
        .iter()
        .all(|k| !consumer_keys.contains(&k.api_key)));
    for v in 0..=1 {
        let r = heartbeat(&b, v, &join("m")).await;
        assert_eq!(
            r.error_code,
            ResponseError::UnsupportedVersion.code(),
            "v{v}"
        );
    }
    let r = describe(&b).await;
    assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());

    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(
        dir.path(),
        "classic,consumer",
        Arc::new(MemoryLog::default()),
    );
    let r: ApiVersionsResponse =
        call(&b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    let range = |key: ApiKey| {
        r.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::ConsumerGroupHeartbeat), Some((0, 1)));
    assert_eq!(range(ApiKey::ConsumerGroupDescribe), Some((0, 1)));
    // v1 clients choose their member id; v0 ones may leave it to the coordinator.
    let r = heartbeat(&b, 1, &join("")).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
    let r = heartbeat(&b, 0, &join("")).await;
    assert_eq!(r.error_code, NONE);
    let id = r.member_id.expect("a member id").to_string();
    assert!(Uuid::parse_str(&id).is_ok(), "{id}");
}

/// Two members share `c`: the second is given its half only once the first revoked it.
async fn two_members_reconcile(b: &Arc<Broker>, t: Uuid) -> (String, String) {
    let a = heartbeat(b, 0, &join("")).await;
    assert_eq!((a.error_code, a.member_epoch), (NONE, 1));
    let a_id = a.member_id.clone().unwrap().to_string();
    assert_eq!(assigned(&a), vec![(t, vec![0, 1, 2, 3])]);

    let m = heartbeat(b, 1, &join("b")).await;
    assert_eq!((m.error_code, m.member_epoch), (NONE, 2));
    assert_eq!(
        count(&assigned(&m)),
        0,
        "the partitions are still owned by a"
    );

    // a is asked to revoke half and stays at its epoch until it has.
    let r = heartbeat(b, 0, &beat(&a_id, 1, &[(t, vec![0, 1, 2, 3])])).await;
    assert_eq!((r.error_code, r.member_epoch), (NONE, 1));
    let kept = assigned(&r);
    assert_eq!(count(&kept), 2);
    let r = heartbeat(b, 0, &beat(&a_id, 1, &kept)).await;
    assert_eq!((r.error_code, r.member_epoch), (NONE, 2));

    let r = heartbeat(b, 1, &beat("b", 2, &[])).await;
    assert_eq!((r.error_code, r.member_epoch), (NONE, 2));
    let given = assigned(&r);
    assert_eq!(count(&given), 2);
    let mut all: Vec<i32> = kept
        .iter()
        .chain(&given)
        .flat_map(|(_, ps)| ps.clone())
        .collect();
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 2, 3], "each partition has one owner");
    // A stale epoch is fenced.
    let r = heartbeat(b, 1, &beat("b", 1, &given)).await;
    assert_eq!(r.error_code, ResponseError::FencedMemberEpoch.code());
    (a_id, "b".to_string())
}

#[tokio::test]
async fn members_reconcile_commit_with_epochs_and_survive_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(MemoryLog::default());
    let (b, t) = broker(dir.path(), "classic,consumer", log.clone());
    let (a, m) = two_members_reconcile(&b, t).await;

    assert_eq!(commit(&b, &a, 2, 42).await, NONE);
    // An epoch the member never had (an older one may commit what it has owned since).
    assert_eq!(
        commit(&b, &a, 3, 43).await,
        ResponseError::StaleMemberEpoch.code()
    );
    assert_eq!(
        commit(&b, "nobody", 2, 43).await,
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(fetch(&b, Some(&m), 2).await, (NONE, 42));
    assert_eq!(fetch(&b, None, -1).await, (NONE, 42), "an admin's fetch");
    assert_eq!(
        fetch(&b, Some(&m), 1).await.0,
        ResponseError::StaleMemberEpoch.code()
    );
    assert_eq!(
        fetch(&b, Some("nobody"), 2).await.0,
        ResponseError::UnknownMemberId.code()
    );

    let d = describe(&b).await;
    assert_eq!(d.error_code, NONE);
    assert_eq!(
        (d.group_state.as_str(), d.group_epoch, d.assignment_epoch),
        ("Stable", 2, 2)
    );
    assert_eq!(d.assignor_name.as_str(), "uniform");
    assert_eq!(d.members.len(), 2);
    for member in &d.members {
        assert_eq!(member.member_epoch, 2);
        assert_eq!(member.assignment, member.target_assignment);
        assert_eq!(
            member.assignment.topic_partitions[0].topic_name.as_str(),
            "c"
        );
    }

    // ListGroups shows its type and state (the offsets' classic slot is not listed).
    let listed = |types: &[&str]| {
        let req =
            ListGroupsRequest::default().with_types_filter(types.iter().map(|t| s(t)).collect());
        let b = b.clone();
        async move {
            let r: ListGroupsResponse = call(&b, ApiKey::ListGroups, 5, &req).await;
            r.groups
                .into_iter()
                .map(|g| {
                    (
                        g.group_id.to_string(),
                        g.group_state.to_string(),
                        g.group_type.to_string(),
                        g.protocol_type.to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let consumer_group = (
        GROUP.to_string(),
        "Stable".to_string(),
        "consumer".to_string(),
        "consumer".to_string(),
    );
    assert_eq!(listed(&[]).await, vec![consumer_group.clone()]);
    assert_eq!(listed(&["Consumer"]).await, vec![consumer_group]);
    assert!(listed(&["classic"]).await.is_empty());

    // The offsets of a topic the group consumes stay while it has members.
    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(topic("c"))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(0),
                ]),
        ]);
    let r: OffsetDeleteResponse = call(&b, ApiKey::OffsetDelete, 0, &req).await;
    assert_eq!(
        (r.error_code, r.topics[0].partitions[0].error_code),
        (NONE, ResponseError::GroupSubscribedToTopic.code())
    );

    // DescribeGroups leaves consumer groups to ConsumerGroupDescribe, as Kafka 4 does; v6
    // says why (KIP-1043).
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(GROUP))]);
    for v in [5, 6] {
        let r: DescribeGroupsResponse = call(&b, ApiKey::DescribeGroups, v, &req).await;
        assert_eq!(
            r.groups[0].error_code,
            ResponseError::GroupIdNotFound.code()
        );
        let message = format!("Group {GROUP} is not a classic group.");
        assert_eq!(
            r.groups[0].error_message.as_deref(),
            (v >= 6).then_some(message.as_str())
        );
    }

    // The group id is a consumer group's: a classic member may join it (KIP-848's online
    // migration), with a member id and a readable consumer protocol subscription.
    let classic = JoinGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_session_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))]);
    let r: JoinGroupResponse = call(&b, ApiKey::JoinGroup, 9, &classic).await;
    assert_eq!(r.error_code, ResponseError::MemberIdRequired.code());
    let classic = classic.with_member_id(r.member_id);
    let r: JoinGroupResponse = call(&b, ApiKey::JoinGroup, 9, &classic).await;
    assert_eq!(
        r.error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );

    // The coordinator moves to a new leader epoch: its state is dropped and replayed.
    let partition = b.groups.partition_for(GROUP);
    log.set_leader(partition, Some(1));
    let after = describe(&b).await;
    assert_eq!(after, d, "the reload rebuilds the group as it was");
    assert_eq!(fetch(&b, Some(&m), 2).await, (NONE, 42));
    let r = heartbeat(&b, 0, &beat(&a, 2, &[])).await;
    assert_eq!((r.error_code, r.member_epoch), (NONE, 2));

    // Deleted only once every member left, offsets included.
    assert_eq!(delete(&b).await, ResponseError::NonEmptyGroup.code());
    for member in [&a, &m] {
        let r = heartbeat(&b, 1, &beat(member, -1, &[])).await;
        assert_eq!((r.error_code, r.member_epoch), (NONE, -1));
    }
    assert_eq!(describe(&b).await.group_state.as_str(), "Empty");
    assert_eq!(delete(&b).await, NONE);
    assert_eq!(
        describe(&b).await.error_code,
        ResponseError::GroupIdNotFound.code()
    );
    assert_eq!(fetch(&b, None, -1).await, (NONE, -1));
    log.set_leader(partition, Some(2));
    assert_eq!(
        describe(&b).await.error_code,
        ResponseError::GroupIdNotFound.code(),
        "the deletion is in the log"
    );
}

async fn delete(b: &Arc<Broker>) -> i16 {
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(GROUP))]);
    let r: DeleteGroupsResponse = call(b, ApiKey::DeleteGroups, 2, &req).await;
    r.results[0].error_code
}

#[tokio::test]
async fn a_classic_group_with_members_is_not_a_consumer_group() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(
        dir.path(),
        "classic,consumer",
        Arc::new(MemoryLog::default()),
    );
    let classic = JoinGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(""))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))]);
    // v3: no member id round trip. The member's embedded protocol is unreadable (empty
    // metadata), so the group cannot be upgraded.
    let r: JoinGroupResponse = call(&b, ApiKey::JoinGroup, 3, &classic).await;
    assert_eq!(r.error_code, NONE);
    let r = heartbeat(&b, 1, &join("x")).await;
    assert_eq!(r.error_code, ResponseError::GroupIdNotFound.code());
    let d = describe(&b).await;
    assert_eq!(d.error_code, ResponseError::GroupIdNotFound.code());
}

#[tokio::test]
async fn offset_commit_below_v9_from_a_consumer_protocol_member_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(
        dir.path(),
        "classic,consumer",
        Arc::new(MemoryLog::default()),
    );
    let (a, _) = two_members_reconcile(&b, t).await;
    assert_eq!(
        commit_at(&b, 8, &a, 2, 42).await,
        ResponseError::UnsupportedVersion.code()
    );
    assert_eq!(commit_at(&b, 9, &a, 2, 42).await, NONE);
}

#[tokio::test]
async fn a_broker_that_does_not_lead_the_groups_partition_is_not_its_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(MemoryLog::default());
    let (b, _) = broker(dir.path(), "classic,consumer", log.clone());
    let r = heartbeat(&b, 1, &join("a")).await;
    assert_eq!((r.error_code, r.member_epoch), (NONE, 1));
    log.set_leader(b.groups.partition_for(GROUP), None);
    let r = heartbeat(&b, 1, &beat("a", 1, &[])).await;
    assert_eq!(r.error_code, ResponseError::NotCoordinator.code());
    assert_eq!(
        describe(&b).await.error_code,
        ResponseError::NotCoordinator.code()
    );
    assert_eq!(
        commit(&b, "a", 1, 5).await,
        ResponseError::NotCoordinator.code()
    );
}

/// A classic consumer's JoinGroup metadata subscribing to `c` (ConsumerProtocolSubscription v1).
fn classic_subscription() -> bytes::Bytes {
    use kafka_protocol::protocol::Encodable;
    let mut buf = bytes::BytesMut::new();
    buf.extend_from_slice(&1i16.to_be_bytes());
    ConsumerProtocolSubscription::default()
        .with_topics(vec![s("c")])
        .encode(&mut buf, 1)
        .unwrap();
    buf.freeze()
}

#[tokio::test]
async fn consumer_group_describe_v1_tells_classic_members_from_consumer_members() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(
        dir.path(),
        "classic,consumer",
        Arc::new(MemoryLog::default()),
    );
    let r = heartbeat(&b, 1, &join("m")).await;
    assert_eq!(r.error_code, NONE);
    // A classic member joins the consumer group (KIP-848's online migration).
    let classic = JoinGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(classic_subscription())]);
    let r: JoinGroupResponse = call(&b, ApiKey::JoinGroup, 9, &classic).await;
    assert_eq!(r.error_code, ResponseError::MemberIdRequired.code());
    let classic_id = r.member_id.to_string();
    let r: JoinGroupResponse = call(
        &b,
        ApiKey::JoinGroup,
        9,
        &classic.with_member_id(s(&classic_id)),
    )
    .await;
    assert_eq!(r.error_code, NONE);

    let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(GROUP))]);
    let r: ConsumerGroupDescribeResponse = call(&b, ApiKey::ConsumerGroupDescribe, 1, &req).await;
    let mut types: Vec<(String, i8)> = r.groups[0]
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_type))
        .collect();
    types.sort();
    let mut expected = vec![(classic_id, 0), ("m".to_string(), 1)];
    expected.sort();
    assert_eq!(types, expected);
    // v0 has no member type: it decodes as the field's default, -1 (unknown).
    let r: ConsumerGroupDescribeResponse = call(&b, ApiKey::ConsumerGroupDescribe, 0, &req).await;
    assert!(r.groups[0].members.iter().all(|m| m.member_type == -1));
}
