//! Every group API at every served version, through `dispatch` and back through the
//! response decoder, over a broker whose coordinator writes to an in-memory log.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::{dispatch, Client};
use crate::broker::Broker;
use crate::config::{BrokerConfig, Flags};
use crate::coordinator::log::memory::MemoryLog;
use crate::test_support::create_topic;

const NONE: i16 = 0;

pub(super) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn group(v: &str) -> GroupId {
    GroupId(s(v))
}

pub(super) fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

pub(super) async fn broker(dir: &std::path::Path) -> Arc<Broker> {
    broker_with(dir, Flags::default()).await
}

/// [`broker`] with some settings of `flags`.
pub(super) async fn broker_with(dir: &std::path::Path, flags: Flags) -> Arc<Broker> {
    let broker = open_broker(dir, flags);
    create_topic(&broker, "t", 2, BTreeMap::new());
    broker
}

/// Opens (or reopens) a broker on `dir` with a small commit journal, creating no topic.
pub(crate) fn open_broker(dir: &std::path::Path, flags: Flags) -> Arc<Broker> {
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.to_path_buf()),
        group_initial_rebalance_delay_ms: Some(0),
        commit_journal_bytes: flags.commit_journal_bytes.or(Some(1 << 20)),
        ..flags
    })
    .unwrap();
    Broker::open_with_offsets_log(config, |_| Arc::new(MemoryLog::default())).unwrap()
}

/// Sends `request` at `version` and decodes the answer at the same version.
pub(crate) async fn call<Q: Encodable, R: Decodable>(
    broker: &Arc<Broker>,
    api: ApiKey,
    version: i16,
    request: &Q,
) -> R {
    let client = Arc::new(Client::new(Arc::from("/127.0.0.1")));
    call_as(broker, &client, api, version, request).await
}

/// [`call`] from `client` (its listener and principal).
pub(crate) async fn call_as<Q: Encodable, R: Decodable>(
    broker: &Arc<Broker>,
    client: &Arc<Client>,
    api: ApiKey,
    version: i16,
    request: &Q,
) -> R {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("wire-test")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    request
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version} request: {e}"));
    let pending = dispatch(broker, buf.freeze(), client)
        .unwrap_or_else(|e| panic!("{api:?} v{version} refused: {e}"))
        .into_pending();
    let mut frame: Bytes = match pending.await {
        super::Reply::Frame(frame) => frame,
        other => panic!("{api:?} v{version}: no response frame ({other:?})"),
    };
    frame.advance(4);
    ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
    let response = R::decode(&mut frame, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version} response: {e}"));
    assert!(!frame.has_remaining(), "{api:?} v{version}: trailing bytes");
    response
}

#[tokio::test]
async fn find_coordinator_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    for v in 0..=6 {
        let mut req = FindCoordinatorRequest::default();
        if v >= 4 {
            req.coordinator_keys = vec![s("g"), s("h")];
        } else {
            req.key = s("g");
        }
        let r: FindCoordinatorResponse = call(&b, ApiKey::FindCoordinator, v, &req).await;
        if v >= 4 {
            assert_eq!(r.coordinators.len(), 2);
            assert!(r
                .coordinators
                .iter()
                .all(|c| c.error_code == NONE && c.node_id.0 == 0));
        } else {
            assert_eq!((r.error_code, r.node_id.0), (NONE, 0), "v{v}");
            assert_eq!(r.port, b.config.advertised_port);
        }
        if v >= 1 {
            req.key_type = 1;
            let r: FindCoordinatorResponse = call(&b, ApiKey::FindCoordinator, v, &req).await;
            let code = if v >= 4 {
                r.coordinators[0].error_code
            } else {
                r.error_code
            };
            // This broker coordinates transactions too.
            assert_eq!(code, NONE, "transactions, v{v}");
        }
    }
    assert!(
        crate::test_support::topic(&b, crate::group::OFFSETS_TOPIC).is_none(),
        "the memory log holds it"
    );
}

#[tokio::test]
async fn a_join_beyond_group_max_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flags = Flags {
        group_max_size: Some(1),
        ..Flags::default()
    };
    let b = broker_with(dir.path(), flags).await;
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(group("full"))
            .with_member_id(s(member))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"meta"))])
    };
    let first: JoinGroupResponse = call(&b, ApiKey::JoinGroup, 3, &join("")).await;
    assert_eq!(first.error_code, NONE);
    assert_eq!(first.members.len(), 1, "the first member leads");
    let second: JoinGroupResponse = call(&b, ApiKey::JoinGroup, 3, &join("")).await;
    assert_eq!(second.error_code, ResponseError::GroupMaxSizeReached.code());
    let again: JoinGroupResponse = call(&b, ApiKey::JoinGroup, 3, &join(&first.member_id)).await;
    assert_eq!(again.error_code, NONE, "a member rejoins a full group");
}

/// A whole group life at JoinGroup version `v` and the matching versions of the others.
async fn group_life(b: &Arc<Broker>, v: i16) {
    let id = format!("wire-{v}");
    let mut join = JoinGroupRequest::default()
        .with_group_id(group(&id))
        .with_session_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"meta"))]);
    if v >= 1 {
        join.rebalance_timeout_ms = 10_000;
    }
    if v >= 8 {
        join.reason = Some(s("test"));
    }
    let mut r: JoinGroupResponse = call(b, ApiKey::JoinGroup, v, &join).await;
    if v >= 4 {
        assert_eq!(r.error_code, ResponseError::MemberIdRequired.code(), "v{v}");
        join.member_id = r.member_id.clone();
        r = call(b, ApiKey::JoinGroup, v, &join).await;
    }
    assert_eq!(r.error_code, NONE, "join v{v}");
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    let member = r.member_id.clone();

    let sv = v.min(5);
    let mut sync = SyncGroupRequest::default()
        .with_group_id(group(&id))
        .with_generation_id(1)
        .with_member_id(member.clone())
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(member.clone())
                .with_assignment(Bytes::from_static(b"assigned")),
        ]);
    if sv >= 5 {
        sync.protocol_type = Some(s("consumer"));
        sync.protocol_name = Some(s("range"));
    }
    let r: SyncGroupResponse = call(b, ApiKey::SyncGroup, sv, &sync).await;
    assert_eq!(
        (r.error_code, &r.assignment[..]),
        (NONE, &b"assigned"[..]),
        "sync v{sv}"
    );

    let hb = HeartbeatRequest::default()
        .with_group_id(group(&id))
        .with_generation_id(1)
        .with_member_id(member.clone());
    let r: HeartbeatResponse = call(b, ApiKey::Heartbeat, v.min(4), &hb).await;
    assert_eq!(r.error_code, NONE);

    // From OffsetCommit and OffsetFetch v10 topics are named by id (KIP-848).
    let t_id = crate::test_support::topic(b, "t").unwrap().id;
    let by = |version: i16, name: &str, id: uuid::Uuid| {
        if version >= 10 {
            (topic(""), id)
        } else {
            (topic(name), uuid::Uuid::nil())
        }
    };
    for cv in 2..=10 {
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(0)
            .with_committed_offset(100 + i64::from(cv))
            .with_committed_metadata(Some(s("m")));
        if cv >= 6 {
            p.committed_leader_epoch = 4;
        }
        let ((t_name, t_topic_id), (nope_name, nope_id)) =
            (by(cv, "t", t_id), by(cv, "nope", uuid::Uuid::from_u128(7)));
        let mut commit = OffsetCommitRequest::default()
            .with_group_id(group(&id))
            .with_generation_id_or_member_epoch(1)
            .with_member_id(member.clone())
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(t_name)
                    .with_topic_id(t_topic_id)
                    .with_partitions(vec![p.clone()]),
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(nope_name)
                    .with_topic_id(nope_id)
                    .with_partitions(vec![p]),
            ]);
        if cv <= 4 {
            commit.retention_time_ms = -1;
        }
        let r: OffsetCommitResponse = call(b, ApiKey::OffsetCommit, cv, &commit).await;
        assert_eq!(r.topics[0].partitions[0].error_code, NONE, "commit v{cv}");
        let unknown = if cv >= 10 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        assert_eq!(r.topics[1].partitions[0].error_code, unknown.code());
    }

    for fv in 1..=10 {
        let (offset, epoch) = if fv >= 8 {
            let (t_name, t_topic_id) = by(fv, "t", t_id);
            let req = OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(group(&id))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(t_name)
                            .with_topic_id(t_topic_id)
                            .with_partition_indexes(vec![0, 1]),
                    ])),
            ]);
            let r: OffsetFetchResponse = call(b, ApiKey::OffsetFetch, fv, &req).await;
            let p = &r.groups[0].topics[0].partitions;
            assert_eq!(p[1].committed_offset, -1);
            (p[0].committed_offset, p[0].committed_leader_epoch)
        } else {
            let req = OffsetFetchRequest::default()
                .with_group_id(group(&id))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic("t"))
                        .with_partition_indexes(vec![0, 1]),
                ]));
            let r: OffsetFetchResponse = call(b, ApiKey::OffsetFetch, fv, &req).await;
            let p = &r.topics[0].partitions;
            assert_eq!((p[1].committed_offset, p[1].error_code), (-1, NONE));
            (p[0].committed_offset, p[0].committed_leader_epoch)
        };
        assert_eq!(offset, 110, "fetch v{fv}");
        if fv >= 5 {
            assert_eq!(epoch, 4);
        }
    }

    for dv in 0..=6 {
        let req = DescribeGroupsRequest::default().with_groups(vec![group(&id), group("unknown")]);
        let r: DescribeGroupsResponse = call(b, ApiKey::DescribeGroups, dv, &req).await;
        assert_eq!(r.groups[0].group_state.as_str(), "Stable", "describe v{dv}");
        assert_eq!(r.groups[0].error_code, NONE);
        assert_eq!(r.groups[0].protocol_data.as_str(), "range");
        assert_eq!(&r.groups[0].members[0].member_assignment[..], b"assigned");
        assert_eq!(r.groups[0].members[0].client_id.as_str(), "wire-test");
        assert_eq!(r.groups[0].members[0].client_host.as_str(), "/127.0.0.1");
        assert_eq!(r.groups[1].group_state.as_str(), "Dead");
        // KIP-1043: from v6 an unknown group is an error with a message, not a Dead group.
        let unknown = (dv >= 6).then_some("Group unknown not found.");
        let code = if dv >= 6 {
            ResponseError::GroupIdNotFound.code()
        } else {
            NONE
        };
        assert_eq!(r.groups[1].error_code, code, "describe v{dv}");
        assert_eq!(r.groups[1].error_message.as_deref(), unknown);
    }

    let lv = v.min(5);
    let leave = if lv >= 3 {
        LeaveGroupRequest::default()
            .with_group_id(group(&id))
            .with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(member.clone())
            ])
    } else {
        LeaveGroupRequest::default()
            .with_group_id(group(&id))
            .with_member_id(member.clone())
    };
    let r: LeaveGroupResponse = call(b, ApiKey::LeaveGroup, lv, &leave).await;
    assert_eq!(r.error_code, NONE, "leave v{lv}");
    if lv >= 3 {
        assert_eq!(r.members[0].error_code, NONE);
    }
    let r: HeartbeatResponse = call(b, ApiKey::Heartbeat, v.min(4), &hb).await;
    assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());
}

#[tokio::test]
async fn a_group_lives_and_dies_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    for v in 0..=9 {
        group_life(&b, v).await;
    }
    for lv in 0..=5 {
        let mut req = ListGroupsRequest::default();
        if lv >= 4 {
            req.states_filter = vec![s("empty")];
        }
        let r: ListGroupsResponse = call(&b, ApiKey::ListGroups, lv, &req).await;
        assert_eq!(r.groups.len(), 10, "list v{lv}");
        assert_eq!(r.groups[0].protocol_type.as_str(), "consumer");
        if lv >= 4 {
            assert_eq!(r.groups[0].group_state.as_str(), "Empty");
            req.states_filter = vec![s("Stable")];
            let r: ListGroupsResponse = call(&b, ApiKey::ListGroups, lv, &req).await;
            assert!(r.groups.is_empty());
        }
        if lv >= 5 {
            req.states_filter = vec![];
            req.types_filter = vec![s("consumer")];
            let r: ListGroupsResponse = call(&b, ApiKey::ListGroups, lv, &req).await;
            assert!(r.groups.is_empty(), "only classic groups exist");
        }
    }
    for (i, dv) in [0, 1, 2].into_iter().enumerate() {
        let req = DeleteGroupsRequest::default()
            .with_groups_names(vec![group(&format!("wire-{i}")), group("never-existed")]);
        let r: DeleteGroupsResponse = call(&b, ApiKey::DeleteGroups, dv, &req).await;
        assert_eq!(r.results[0].error_code, NONE, "delete v{dv}");
        assert_eq!(
            r.results[1].error_code,
            ResponseError::GroupIdNotFound.code()
        );
    }
}

#[tokio::test]
async fn offset_delete_and_simple_commits() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let commit = OffsetCommitRequest::default()
        .with_group_id(group("simple"))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(1)
                        .with_committed_offset(5),
                ]),
        ]);
    let r: OffsetCommitResponse = call(&b, ApiKey::OffsetCommit, 8, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, NONE);
    let req = OffsetDeleteRequest::default()
        .with_group_id(group("simple"))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(1),
                ]),
        ]);
    let r: OffsetDeleteResponse = call(&b, ApiKey::OffsetDelete, 0, &req).await;
    assert_eq!(
        (r.error_code, r.topics[0].partitions[0].error_code),
        (NONE, NONE)
    );
    let req = req.with_group_id(group("missing"));
    let r: OffsetDeleteResponse = call(&b, ApiKey::OffsetDelete, 0, &req).await;
    assert_eq!(r.error_code, ResponseError::GroupIdNotFound.code());
    // All offsets of a group (null topics, v2+).
    let req = OffsetFetchRequest::default().with_group_id(group("simple"));
    let r: OffsetFetchResponse = call(&b, ApiKey::OffsetFetch, 7, &req).await;
    assert!(r.topics.is_empty(), "the offset was deleted");
}
