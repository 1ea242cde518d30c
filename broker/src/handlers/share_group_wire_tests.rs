//! Share groups' membership (KIP-932) through `dispatch`: ShareGroupHeartbeat and
//! ShareGroupDescribe unless `group.share.enable` is false, members joining and sharing a
//! topic's partitions, the errors librdkafka acts on, and one type per group id.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use uuid::Uuid;

use super::group_wire_tests::{call, s, topic};
use crate::broker::Broker;
use crate::config::{BrokerConfig, Flags};
use crate::coordinator::log::memory::MemoryLog;
use crate::test_support::create_topic;

const NONE: i16 = 0;
pub(super) const GROUP: &str = "queue";

/// A standalone broker, its group coordinator on a memory log, with a 2-partition topic `q`.
pub(super) fn broker(dir: &std::path::Path) -> (Arc<Broker>, Uuid) {
    let b = open(dir);
    let id = create_topic(&b, "q", 2, BTreeMap::new()).id;
    (b, id)
}

/// A standalone broker on `dir`, its group coordinator on a memory log.
pub(super) fn open(dir: &std::path::Path) -> Arc<Broker> {
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.to_path_buf()),
        commit_journal_bytes: Some(1 << 20),
        ..Flags::default()
    })
    .unwrap();
    let log = Arc::new(MemoryLog::default());
    Broker::open_with_offsets_log(config, move |_| log).unwrap()
}

pub(super) fn join(member_id: &str) -> ShareGroupHeartbeatRequest {
    ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member_id))
        .with_member_epoch(0)
        .with_subscribed_topic_names(Some(vec![topic("q")]))
}

fn beat(member_id: &str, epoch: i32) -> ShareGroupHeartbeatRequest {
    ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member_id))
        .with_member_epoch(epoch)
}

/// A consumer group member joining group `group`.
fn consumer_join(group: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s("c"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic("q")]))
        .with_topic_partitions(Some(vec![]))
}

async fn heartbeat(
    b: &Arc<Broker>,
    req: &ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    call(b, ApiKey::ShareGroupHeartbeat, 1, req).await
}

async fn describe(b: &Arc<Broker>, group: &str) -> share_group_describe_response::DescribedGroup {
    let req = ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]);
    let mut r: ShareGroupDescribeResponse = call(b, ApiKey::ShareGroupDescribe, 1, &req).await;
    r.groups.remove(0)
}

/// The partitions of a heartbeat's assignment.
fn assigned(r: &ShareGroupHeartbeatResponse) -> Vec<(Uuid, Vec<i32>)> {
    let a = r.assignment.as_ref().expect("an assignment");
    a.topic_partitions
        .iter()
        .map(|t| (t.topic_id, t.partitions.clone()))
        .collect()
}

#[tokio::test]
async fn a_broker_advertises_share_groups_apis_at_kafka_4_3s_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path());
    let r: ApiVersionsResponse =
        call(&b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    let range = |key: ApiKey| {
        r.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    for api in [ApiKey::ShareGroupHeartbeat, ApiKey::ShareGroupDescribe] {
        assert_eq!(range(api), Some((1, 1)), "{api:?}");
    }
    for api in [ApiKey::ShareFetch, ApiKey::ShareAcknowledge] {
        assert_eq!(range(api), Some((1, 2)), "{api:?}");
    }
    for api in [
        ApiKey::DescribeShareGroupOffsets,
        ApiKey::ReadShareGroupStateSummary,
        ApiKey::WriteShareGroupState,
    ] {
        assert_eq!(range(api), Some((0, 1)), "{api:?}");
    }
    for api in [
        ApiKey::AlterShareGroupOffsets,
        ApiKey::DeleteShareGroupOffsets,
        ApiKey::InitializeShareGroupState,
        ApiKey::ReadShareGroupState,
        ApiKey::DeleteShareGroupState,
    ] {
        assert_eq!(range(api), Some((0, 0)), "{api:?}");
    }
}

#[test]
fn share_groups_are_served_unless_switched_off() {
    use crate::protocol::{served_apis, ApiSets};
    let shares = |sets: ApiSets| {
        served_apis(sets)
            .filter(|(api, _, _)| matches!(api, ApiKey::ShareFetch | ApiKey::ReadShareGroupState))
            .count()
    };
    assert_eq!(shares(ApiSets::of(true, true)), 2, "on");
    assert_eq!(
        shares(ApiSets::of(true, false)),
        0,
        "group.share.enable=false"
    );
}

#[tokio::test]
async fn members_join_read_the_topic_together_and_are_described() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    let a = heartbeat(&b, &join("a")).await;
    assert_eq!((a.error_code, a.member_epoch), (NONE, 1));
    assert_eq!(a.member_id.as_deref(), Some("a"));
    assert_eq!(a.heartbeat_interval_ms, 5_000);
    assert_eq!(assigned(&a), vec![(t, vec![0, 1])]);
    let again = heartbeat(&b, &beat("a", 1)).await;
    assert_eq!((again.error_code, again.member_epoch), (NONE, 1));
    assert!(again.assignment.is_none(), "sent only when it changes");

    // The target is recomputed at most every share.assignment.interval.ms (1 s): b joins at
    // the current assignment's epoch and is given its share on a later heartbeat.
    let m = heartbeat(&b, &join("b")).await;
    assert_eq!((m.error_code, m.member_epoch), (NONE, 1));
    let d = describe(&b, GROUP).await;
    assert_eq!(d.error_code, NONE);
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.assignor_name.as_str(), "simple");
    assert_eq!(d.group_epoch, 2);
    let ids: Vec<&str> = d.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let b_member = &d.members[1];
    assert_eq!(b_member.client_id.as_str(), "wire-test");
    assert_eq!(b_member.subscribed_topic_names, vec![topic("q")]);
    let named = &b_member.assignment.topic_partitions;
    assert!(
        named.iter().all(|tp| tp.topic_name == topic("q")),
        "{named:?}"
    );

    let left = heartbeat(&b, &beat("a", -1)).await;
    assert_eq!((left.error_code, left.member_epoch), (NONE, -1));
}

#[tokio::test]
async fn refusals_carry_the_codes_clients_act_on() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path());
    let ghost = heartbeat(&b, &beat("ghost", 3)).await;
    assert_eq!(ghost.error_code, ResponseError::UnknownMemberId.code());
    let no_topics = heartbeat(&b, &beat("new", 0)).await;
    assert_eq!(no_topics.error_code, ResponseError::InvalidRequest.code());
    assert!(no_topics.error_message.is_some());
    let empty_group = heartbeat(&b, &join("a").with_group_id(GroupId(s("")))).await;
    assert_eq!(empty_group.error_code, ResponseError::InvalidRequest.code());
    heartbeat(&b, &join("a")).await;
    let fenced = heartbeat(&b, &beat("a", 9)).await;
    assert_eq!(fenced.error_code, ResponseError::FencedMemberEpoch.code());

    // A consumer group's id is not a share group's, and the other way round.
    let consumer = consumer_join("cg");
    let r: ConsumerGroupHeartbeatResponse =
        call(&b, ApiKey::ConsumerGroupHeartbeat, 1, &consumer).await;
    assert_eq!(r.error_code, NONE);
    let wrong = heartbeat(&b, &join("a").with_group_id(GroupId(s("cg")))).await;
    assert_eq!(wrong.error_code, ResponseError::GroupIdNotFound.code());
    assert_eq!(
        describe(&b, "cg").await.error_code,
        ResponseError::GroupIdNotFound.code()
    );
    let as_consumer: ConsumerGroupHeartbeatResponse =
        call(&b, ApiKey::ConsumerGroupHeartbeat, 1, &consumer_join(GROUP)).await;
    assert_eq!(
        as_consumer.error_code,
        ResponseError::GroupIdNotFound.code()
    );
}

#[tokio::test]
async fn list_groups_shows_share_groups_under_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path());
    heartbeat(&b, &join("a")).await;
    let consumer = consumer_join("cg");
    let _: ConsumerGroupHeartbeatResponse =
        call(&b, ApiKey::ConsumerGroupHeartbeat, 1, &consumer).await;
    let listed = |types: &[&str]| {
        ListGroupsRequest::default().with_types_filter(types.iter().map(|t| s(t)).collect())
    };
    let all: ListGroupsResponse = call(&b, ApiKey::ListGroups, 5, &listed(&[])).await;
    let rows: Vec<(&str, &str, &str, &str)> = all
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.as_str(),
                g.protocol_type.as_str(),
                g.group_state.as_str(),
                g.group_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("cg", "consumer", "Stable", "consumer"),
            (GROUP, "share", "Stable", "share")
        ]
    );
    let shares: ListGroupsResponse = call(&b, ApiKey::ListGroups, 5, &listed(&["Share"])).await;
    let ids: Vec<&str> = shares.groups.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(
        ids,
        [GROUP],
        "the type filter ignores case, as Kafka's does"
    );
}

#[tokio::test]
async fn describe_groups_leaves_share_groups_to_share_group_describe() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path());
    heartbeat(&b, &join("a")).await;
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(GROUP))]);
    // Below v6 a group of another type is Dead, as Kafka's classic lookup fails; v6 says why.
    let old: DescribeGroupsResponse = call(&b, ApiKey::DescribeGroups, 5, &req).await;
    assert_eq!(
        (old.groups[0].error_code, old.groups[0].group_state.as_str()),
        (0, "Dead")
    );
    let new: DescribeGroupsResponse = call(&b, ApiKey::DescribeGroups, 6, &req).await;
    assert_eq!(
        new.groups[0].error_code,
        ResponseError::GroupIdNotFound.code()
    );
    let message = format!("Group {GROUP} is not a classic group.");
    assert_eq!(
        new.groups[0].error_message.as_deref(),
        Some(message.as_str())
    );
}
