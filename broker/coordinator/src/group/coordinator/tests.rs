//! The coordinator over an in-memory offsets log: effects reach waiting requests, records
//! reach the log, and a new coordinator over the same log gets everything back.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::*;
use crate::group::commit::Committer;
use crate::group::consumer::TopicsImage;
use crate::group::heartbeat::LeavingMember;
use crate::group::join::JoinRequest;
use crate::group::member::MemberProtocol;
use crate::group::records::{decode_key, RecordKey};
use crate::group::sync::SyncRequest;
use crate::log::memory::MemoryLog;
use crate::runtime::Ownership;
use tributary_storage::ProducerRef;

const PARTITIONS: i32 = 4;

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        offsets_topic_partitions: PARTITIONS,
        ..GroupConfig::default()
    }
}

fn coordinator(log: &Arc<MemoryLog>) -> Arc<GroupCoordinator> {
    let c = Arc::new(GroupCoordinator::new(config(), log.clone()));
    c.start();
    c
}

async fn loaded(c: &Arc<GroupCoordinator>) {
    for _ in 0..1000 {
        if !c.is_loading() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("loading never finished");
}

fn join_req(member_id: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![MemberProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"meta"),
        }],
        require_known_member_id: true,
        supports_skip_assignment: false,
        reason: None,
    }
}

/// Joins one member and completes the rebalance; returns (member id, generation).
async fn one_member_group(c: &Arc<GroupCoordinator>, group: &str) -> (String, i32) {
    let first = c.join(group, join_req(""), &TopicsImage::default()).await;
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let joined = c
        .join(group, join_req(&first.member_id), &TopicsImage::default())
        .await;
    assert_eq!(joined.error, None);
    let synced = c
        .sync(
            group,
            SyncRequest {
                member_id: joined.member_id.clone(),
                instance_id: None,
                generation: joined.generation,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![(joined.member_id.clone(), Bytes::from_static(b"mine"))],
            },
        )
        .await;
    assert_eq!(synced.error, None);
    assert_eq!(&synced.assignment[..], b"mine");
    (joined.member_id, joined.generation)
}

fn commit(group: &str, who: Committer, offset: i64) -> CommitRequest {
    CommitRequest {
        api_version: 9,
        group_id: group.into(),
        committer: who,
        retention_ms: None,
        offsets: vec![CommitOffset {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: 3,
            metadata: Some("meta".into()),
        }],
    }
}

fn simple() -> Committer {
    Committer {
        member_id: String::new(),
        instance_id: None,
        generation: -1,
    }
}

#[tokio::test]
async fn a_group_forms_commits_and_survives_a_restart() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log);
    loaded(&c).await;
    let (member, generation) = one_member_group(&c, "g").await;
    let who = Committer {
        member_id: member.clone(),
        instance_id: None,
        generation,
    };
    assert_eq!(c.commit(commit("g", who.clone(), 42)).await, vec![Ok(())]);
    let fetched = c
        .fetch_offsets("g", Some(vec![("t".into(), vec![0, 1])]))
        .unwrap();
    assert_eq!(fetched[0].1[0].1.as_ref().map(|v| v.offset), Some(42));
    assert_eq!(fetched[0].1[1].1, None);
    // The records are in the group's partition.
    let p = c.partition_for("g");
    let keys: Vec<RecordKey> = log
        .records(p)
        .iter()
        .filter_map(|r| decode_key(r.key.as_deref()?).ok())
        .collect();
    assert!(keys.contains(&RecordKey::Group { group: "g".into() }));
    assert!(keys.iter().any(|k| matches!(k, RecordKey::Offset { .. })));

    // "Restart": a new coordinator over the same log.
    drop(c);
    let c = coordinator(&log);
    loaded(&c).await;
    let fetched = c.fetch_offsets("g", None).unwrap();
    let value = fetched[0].1[0].1.clone().unwrap();
    assert_eq!(
        (value.offset, value.leader_epoch, value.metadata.as_str()),
        (42, 3, "meta")
    );
    let (_, listed) = c.list(&[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].state,
        GroupState::Stable,
        "members come back until their sessions expire"
    );
    // The member can carry on where it was.
    assert_eq!(c.heartbeat("g", &member, None, generation), Ok(()));
    assert_eq!(c.commit(commit("g", who, 43)).await, vec![Ok(())]);
}

#[tokio::test]
async fn a_restarted_group_whose_member_is_gone_expires_to_empty() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log);
    loaded(&c).await;
    one_member_group(&c, "g").await;
    drop(c);
    let clock = Arc::new(AtomicI64::new(0));
    let c = stepped(&log, &clock);
    loaded(&c).await;
    clock.store(9_999, Ordering::SeqCst);
    c.fire_due();
    assert_eq!(c.describe("g").map(|s| s.state), Ok(GroupState::Stable));
    clock.store(10_000, Ordering::SeqCst);
    c.fire_due();
    assert_eq!(
        c.describe("g").map(|s| s.state),
        Ok(GroupState::Empty),
        "a loaded member has a full session from the load to heartbeat in"
    );
}

/// A coordinator over `log` judged by `clock` (milliseconds the test steps).
fn stepped(log: &Arc<MemoryLog>, clock: &Arc<AtomicI64>) -> Arc<GroupCoordinator> {
    let clock = clock.clone();
    let now = Arc::new(move || {
        let t = clock.load(Ordering::SeqCst);
        Now {
            mono: t,
            wall: 1_700_000_000_000 + t,
        }
    });
    let c = Arc::new(GroupCoordinator::with_clock(config(), log.clone(), now));
    c.start();
    c
}

#[tokio::test]
async fn a_member_expires_once_its_session_has_passed_and_a_heartbeat_moves_that_on() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let clock = Arc::new(AtomicI64::new(0));
    let c = stepped(&log, &clock);
    loaded(&c).await;
    let (member, generation) = one_member_group(&c, "g").await;
    let state = |c: &Arc<GroupCoordinator>| c.describe("g").map(|s| s.state);
    // join_req's session is 10 s: a heartbeat at 4 s moves the end to 14 s.
    clock.store(4_000, Ordering::SeqCst);
    c.fire_due();
    assert_eq!(c.heartbeat("g", &member, None, generation), Ok(()));
    clock.store(13_999, Ordering::SeqCst);
    c.fire_due();
    assert_eq!(state(&c), Ok(GroupState::Stable), "a millisecond before");
    assert!(c.next_deadline().is_some_and(|d| d <= 14_000));
    clock.store(14_000, Ordering::SeqCst);
    c.fire_due();
    assert_eq!(state(&c), Ok(GroupState::Empty), "expired at its deadline");
}

#[tokio::test]
async fn simple_consumers_commit_without_a_group_but_not_into_a_live_one() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log);
    loaded(&c).await;
    assert_eq!(
        c.commit(commit("offsets-only", simple(), 7)).await,
        vec![Ok(())]
    );
    let stale = Committer {
        member_id: "m".into(),
        instance_id: None,
        generation: 3,
    };
    assert_eq!(
        c.commit(commit("nobody", stale, 1)).await,
        vec![Err(ResponseError::IllegalGeneration)]
    );
    one_member_group(&c, "live").await;
    assert_eq!(
        c.commit(commit("live", simple(), 1)).await,
        vec![Err(ResponseError::UnknownMemberId)]
    );
    let mut big = commit("offsets-only", simple(), 8);
    big.offsets[0].metadata = Some("x".repeat(5000));
    assert_eq!(
        c.commit(big).await,
        vec![Err(ResponseError::OffsetMetadataTooLarge)]
    );
}

#[tokio::test]
async fn delete_groups_needs_an_empty_group_and_leaves_tombstones() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log);
    loaded(&c).await;
    let (member, generation) = one_member_group(&c, "g").await;
    let who = Committer {
        member_id: member.clone(),
        instance_id: None,
        generation,
    };
    c.commit(commit("g", who, 5)).await;
    let ids = ["g".to_string(), "missing".to_string()];
    assert_eq!(
        c.delete_groups(&ids).await,
        vec![
            Err(ResponseError::NonEmptyGroup),
            Err(ResponseError::GroupIdNotFound)
        ]
    );
    let leaving = [LeavingMember {
        member_id: member,
        instance_id: None,
        reason: None,
    }];
    assert_eq!(c.leave("g", &leaving), Ok(vec![Ok(())]));
    assert_eq!(c.describe("g").unwrap().state, GroupState::Empty);
    assert_eq!(c.delete_groups(&ids[..1]).await, vec![Ok(())]);
    assert_eq!(c.describe("g").unwrap().state, GroupState::Dead);
    assert!(c.list(&[]).1.is_empty());
    // After a restart the group is still gone.
    drop(c);
    let c = coordinator(&log);
    loaded(&c).await;
    assert!(c.list(&[]).1.is_empty());
    assert_eq!(c.fetch_offsets("g", None).unwrap(), vec![]);
}

#[tokio::test]
async fn offset_delete_refuses_topics_a_live_group_consumes() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log);
    loaded(&c).await;
    c.commit(commit("simple", simple(), 1)).await;
    assert_eq!(
        c.delete_offsets("simple", vec![("t".into(), 0)]).await,
        Ok(vec![Ok(())])
    );
    assert_eq!(c.fetch_offsets("simple", None).unwrap(), vec![]);
    assert_eq!(
        c.delete_offsets("missing", vec![("t".into(), 0)]).await,
        Err(ResponseError::GroupIdNotFound)
    );
    // A live consumer group whose subscription cannot be parsed counts as subscribed to all.
    one_member_group(&c, "live").await;
    assert_eq!(
        c.delete_offsets("live", vec![("t".into(), 0)]).await,
        Ok(vec![Err(ResponseError::GroupSubscribedToTopic)])
    );
}

#[tokio::test]
async fn invalid_ids_loading_partitions_and_bad_session_timeouts_are_refused() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = Arc::new(GroupCoordinator::new(config(), log.clone()));
    // Not started: pretend every partition is loading.
    for p in 0..PARTITIONS {
        c.runtime.set_ownership(p, Ownership::Loading { epoch: 0 });
    }
    assert_eq!(
        c.join("g", join_req(""), &TopicsImage::default())
            .await
            .error,
        Some(ResponseError::CoordinatorLoadInProgress)
    );
    assert_eq!(
        c.heartbeat("g", "m", None, 1),
        Ok(()),
        "answered blindly while loading"
    );
    assert_eq!(
        c.list(&[]).0,
        Some(ResponseError::CoordinatorLoadInProgress)
    );
    for p in 0..PARTITIONS {
        c.runtime.set_ownership(p, Ownership::Loaded { epoch: 0 });
    }
    assert_eq!(
        c.join("", join_req(""), &TopicsImage::default())
            .await
            .error,
        Some(ResponseError::InvalidGroupId)
    );
    let mut short = join_req("");
    short.session_timeout_ms = 10;
    assert_eq!(
        c.join("g", short, &TopicsImage::default()).await.error,
        Some(ResponseError::InvalidSessionTimeout)
    );
    assert_eq!(
        c.describe("").map(|s| s.state),
        Ok(GroupState::Dead),
        "empty ids may be described"
    );
}

#[tokio::test]
async fn a_failed_write_fails_the_commit_and_the_sync() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log);
    loaded(&c).await;
    log.fail_appends
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        c.commit(commit("g", simple(), 1)).await,
        vec![Err(ResponseError::CoordinatorNotAvailable)]
    );
    let first = c.join("g2", join_req(""), &TopicsImage::default()).await;
    let joined = c
        .join("g2", join_req(&first.member_id), &TopicsImage::default())
        .await;
    let synced = c
        .sync(
            "g2",
            SyncRequest {
                member_id: joined.member_id.clone(),
                instance_id: None,
                generation: joined.generation,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![],
            },
        )
        .await;
    assert_eq!(synced.error, Some(ResponseError::CoordinatorNotAvailable));
}

#[tokio::test(start_paused = true)]
async fn offsets_of_empty_groups_expire_after_retention() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let mut config = config();
    config.offsets_retention_ms = 1;
    let c = Arc::new(GroupCoordinator::new(config, log.clone()));
    c.start();
    loaded(&c).await;
    c.commit(commit("old", simple(), 1)).await;
    // Wall-clock retention: wait for the commit to be at least 1 ms old.
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.expire_offsets(), 1);
    assert!(
        c.list(&[]).1.is_empty(),
        "an empty group without offsets is removed"
    );
    let tombstones = log
        .records(c.partition_for("old"))
        .into_iter()
        .filter(|r| r.value.is_none())
        .count();
    assert_eq!(tombstones, 1);
}

#[tokio::test]
async fn groups_are_served_only_by_the_leader_of_their_partition_and_move_with_it() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log);
    loaded(&c).await;
    let p = c.partition_for("g");
    c.commit(commit_req("g", 42)).await;
    assert_eq!(offset_of(&c, "g"), Some(42));
    // Leadership moves to another broker: the group is unloaded and answered elsewhere.
    log.set_leader(p, None);
    assert_eq!(
        c.fetch_offsets("g", None).err(),
        Some(ResponseError::NotCoordinator)
    );
    assert!(c.get("g").is_none(), "the group left memory");
    // Back at a new epoch: loaded again from the log (at once: it fits one read), with its
    // committed offset.
    log.set_leader(p, Some(3));
    assert_eq!(offset_of(&c, "g"), Some(42));
    // Other partitions were never disturbed.
    let other = (0..100)
        .map(|i| format!("other-{i}"))
        .find(|g| c.partition_for(g) != p)
        .expect("a group on another partition");
    assert!(c.fetch_offsets(&other, None).is_ok());
}

fn commit_req(group: &str, offset: i64) -> CommitRequest {
    let outside_group_management = Committer {
        member_id: String::new(),
        instance_id: None,
        generation: -1,
    };
    commit(group, outside_group_management, offset)
}

fn offset_of(c: &Arc<GroupCoordinator>, group: &str) -> Option<i64> {
    let topics = c.fetch_offsets(group, None).ok()?;
    topics.first()?.1.first()?.1.as_ref().map(|o| o.offset)
}

/// What `group` has committed for partition 0 of topic `t` (-1 for nothing).
fn committed_offset(c: &Arc<GroupCoordinator>, group: &str) -> i64 {
    let fetched = c
        .fetch_offsets(group, Some(vec![("t".into(), vec![0])]))
        .expect("fetch");
    fetched[0].1[0].1.as_ref().map_or(-1, |v| v.offset)
}

#[tokio::test]
async fn transactional_offsets_count_from_their_commit_marker_and_survive_a_move() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log);
    loaded(&c).await;
    let (_member, _generation) = one_member_group(&c, "g").await;
    let partition = c.partition_for("g");
    let producer = |id| ProducerRef { id, epoch: 0 };
    let offset = |offset| CommitOffset {
        topic: "t".into(),
        partition: 0,
        offset,
        leader_epoch: -1,
        metadata: None,
    };
    let send = |id, o| c.commit_txn_offsets(producer(id), "g", vec![offset(o)]);
    let end = |c: &Arc<GroupCoordinator>, id, commit| {
        log.append_marker(partition, producer(id), commit);
        c.complete_txn_offsets(partition, id, commit);
    };
    // Pending until the transaction ends; an abort drops them.
    send(7, 10).await.expect("written");
    assert_eq!(
        committed_offset(&c, "g"),
        -1,
        "not visible while the transaction is open"
    );
    assert!(c.holds_txn_offset("g", "t", 0));
    end(&c, 7, false);
    assert_eq!(committed_offset(&c, "g"), -1, "aborted");
    assert!(!c.holds_txn_offset("g", "t", 0));
    // A later offset of the same partition replaces the earlier; a commit commits it, once.
    send(7, 20).await.expect("written");
    send(7, 30).await.expect("written");
    send(8, 99).await.expect("written");
    end(&c, 7, true);
    assert_eq!(committed_offset(&c, "g"), 30);
    c.complete_txn_offsets(partition, 7, true);
    assert_eq!(
        committed_offset(&c, "g"),
        30,
        "another producer's offsets stay pending"
    );
    // The records are in the log: a coordinator that takes the partition over holds
    // producer 8's offset, and that transaction's marker commits it there.
    let moved = coordinator(&log);
    loaded(&moved).await;
    assert_eq!(committed_offset(&moved, "g"), 30);
    assert!(moved.holds_txn_offset("g", "t", 0));
    end(&moved, 8, true);
    assert_eq!(committed_offset(&moved, "g"), 99);
    let replayed = coordinator(&log);
    loaded(&replayed).await;
    assert_eq!(committed_offset(&replayed, "g"), 99);
    assert!(!replayed.holds_txn_offset("g", "t", 0));
}

#[tokio::test]
async fn a_scrape_counts_groups_by_state_and_takes_each_rebalance_once() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log);
    loaded(&c).await;
    one_member_group(&c, "g").await;
    let stats = c.take_stats();
    assert_eq!(stats.classic.get("Stable"), Some(&1));
    assert!(stats.consumer.is_empty());
    assert_eq!(stats.classic_rebalances.started, 1);
    assert_eq!(stats.classic_rebalances.finished_ms.len(), 1);
    let again = c.take_stats();
    assert_eq!(again.classic.get("Stable"), Some(&1), "counts stay");
    assert_eq!(
        again.classic_rebalances,
        Default::default(),
        "rebalances are taken once"
    );
}
