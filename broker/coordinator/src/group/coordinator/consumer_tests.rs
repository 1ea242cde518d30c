//! Consumer groups in the coordinator over an in-memory log: a new coordinator over the same
//! log gets them back, the timers remove a member whose session ended, and transactional
//! commits are checked against member epochs.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::*;
use crate::group::commit::Committer;
use crate::group::consumer::{
    Assignment, ConsumerGroupConfig, ConsumerGroupState, HeartbeatRequest, TopicMetadata,
    TopicsImage,
};
use crate::log::memory::MemoryLog;

const PARTITIONS: i32 = 4;

fn coordinator(log: &Arc<MemoryLog>, session_timeout_ms: i32) -> Arc<GroupCoordinator> {
    let config = GroupConfig {
        offsets_topic_partitions: PARTITIONS,
        consumer_protocol: true,
        consumer: ConsumerGroupConfig {
            session_timeout_ms,
            ..ConsumerGroupConfig::default()
        },
        ..GroupConfig::default()
    };
    let c = Arc::new(GroupCoordinator::new(config, log.clone()));
    c.start();
    c
}

fn topics() -> TopicsImage {
    TopicsImage::new([TopicMetadata {
        id: Uuid::from_u128(1),
        name: "t".into(),
        partitions: 2,
    }])
}

fn join(member: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: Some(Assignment::new()),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
    }
}

/// Polls `condition` every few milliseconds for up to two seconds.
pub(super) async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..400 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn a_consumer_group_survives_a_restart_and_loses_a_silent_member() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 45_000);
    let r = c
        .consumer_heartbeat("g", join("a"), &topics())
        .await
        .unwrap();
    assert_eq!(
        (r.member_epoch, r.assignment.map(|a| a.len())),
        (1, Some(2))
    );
    let before = c.describe_consumer_group("g").unwrap();

    // "Restart": a new coordinator over the same log, with short sessions.
    drop(c);
    let c = coordinator(&log, 100);
    eventually("the partition loads", || !c.is_loading()).await;
    let after = c.describe_consumer_group("g").unwrap();
    assert_eq!(after.members(), before.members());
    assert_eq!(after.target_assignment(), before.target_assignment());
    assert_eq!(after.group_epoch(), 1);
    assert_eq!(after.state(), ConsumerGroupState::Stable);

    // Nobody heartbeats: the timer removes the member and writes it.
    eventually("the member's session ends", || {
        c.describe_consumer_group("g")
            .is_ok_and(|g| g.state() == ConsumerGroupState::Empty)
    })
    .await;
    drop(c);
    let c = coordinator(&log, 45_000);
    eventually("the partition loads", || !c.is_loading()).await;
    let g = c.describe_consumer_group("g").unwrap();
    assert!(g.is_empty(), "the removal is in the log");
    assert_eq!(g.group_epoch(), 2);
}

#[tokio::test]
async fn transactional_commits_of_a_consumer_group_check_the_member_epoch() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 45_000);
    c.consumer_heartbeat("g", join("a"), &topics())
        .await
        .unwrap();
    let who = |member: &str, generation| Committer {
        member_id: member.into(),
        instance_id: None,
        generation,
    };
    assert_eq!(c.check_txn_committer("g", &who("a", 1)), Ok(()));
    assert_eq!(
        c.check_txn_committer("g", &who("a", 0)),
        Err(ResponseError::StaleMemberEpoch)
    );
    assert_eq!(
        c.check_txn_committer("g", &who("b", 1)),
        Err(ResponseError::UnknownMemberId)
    );
    let committed = c
        .commit_transactional(
            "g",
            vec![CommitOffset {
                topic: "t".into(),
                partition: 0,
                offset: 7,
                leader_epoch: -1,
                metadata: None,
            }],
        )
        .await;
    assert_eq!(committed, vec![Ok(())]);
    let fetched = c.fetch_offsets("g", None).unwrap();
    assert_eq!(fetched[0].1[0].1.as_ref().map(|v| v.offset), Some(7));
}

/// An OffsetCommit of `partition` of "t" by `member` at `epoch`.
fn commit_at(member: &str, epoch: i32, partition: i32) -> CommitRequest {
    CommitRequest {
        group_id: "g".into(),
        committer: Committer {
            member_id: member.into(),
            instance_id: None,
            generation: epoch,
        },
        retention_ms: None,
        offsets: vec![CommitOffset {
            topic: "t".into(),
            partition,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }],
        api_version: 9,
    }
}

#[tokio::test]
async fn a_commit_with_an_older_epoch_is_taken_for_partitions_assigned_since_then() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 45_000);
    let heartbeat = |member: &str, epoch: i32, owned: Assignment| {
        let mut req = join(member);
        req.member_epoch = epoch;
        req.owned = Some(owned);
        req
    };
    let a = c
        .consumer_heartbeat("g", join("a"), &topics())
        .await
        .unwrap();
    let both = a.assignment.unwrap();
    let b = c
        .consumer_heartbeat("g", join("b"), &topics())
        .await
        .unwrap();
    assert_eq!(
        b.member_epoch, 2,
        "at the target epoch, waiting for its partition"
    );
    // "a" is told to give one partition up, at its epoch 1; it reports it gone and moves to
    // epoch 2 keeping the other.
    let revoking = c
        .consumer_heartbeat("g", heartbeat("a", 1, both.clone()), &topics())
        .await
        .unwrap();
    let kept = revoking.assignment.unwrap();
    let (t, kept_p) = kept.iter().next().unwrap();
    let gone_p = both.iter().map(|(_, p)| p).find(|p| *p != kept_p).unwrap();
    let moved = c
        .consumer_heartbeat("g", heartbeat("a", 1, kept.clone()), &topics())
        .await
        .unwrap();
    assert_eq!(moved.member_epoch, 2);
    // "b" receives the released partition at epoch 2.
    let b = c
        .consumer_heartbeat("g", heartbeat("b", 2, Assignment::new()), &topics())
        .await
        .unwrap();
    assert_eq!(b.member_epoch, 2);
    assert!(b.assignment.unwrap().contains(t, gone_p));

    let check = |c: Arc<GroupCoordinator>| async move {
        // Sent before the response with epoch 2 reached "a": its partition is still its own.
        assert_eq!(c.commit(commit_at("a", 1, kept_p)).await, vec![Ok(())]);
        // A zombie commit of the partition "a" gave up, and one from the future, are not.
        let stale = vec![Err(ResponseError::StaleMemberEpoch)];
        assert_eq!(c.commit(commit_at("a", 1, gone_p)).await, stale);
        assert_eq!(c.commit(commit_at("a", 3, kept_p)).await, stale);
        // "b" got its partition at epoch 2: epoch 1 never owned it.
        assert_eq!(c.commit(commit_at("b", 1, gone_p)).await, stale);
        assert_eq!(c.commit(commit_at("b", 2, gone_p)).await, vec![Ok(())]);
    };
    check(c.clone()).await;
    // A coordinator rebuilt from the log decides the same.
    drop(c);
    let c = coordinator(&log, 45_000);
    eventually("the partition loads", || !c.is_loading()).await;
    check(c).await;
}

#[tokio::test]
async fn consumer_rebalances_are_counted_per_group_epoch_and_timed_until_stable() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 45_000);
    c.consumer_heartbeat("g", join("a"), &topics())
        .await
        .unwrap();
    let stats = c.take_stats();
    assert_eq!(stats.consumer.get("Stable"), Some(&1));
    assert!(
        stats.classic.is_empty(),
        "the offsets-only classic slot is not a group"
    );
    assert_eq!(stats.consumer_rebalances.started, 1, "epoch 1");
    assert_eq!(stats.consumer_rebalances.finished_ms.len(), 1);

    // A second member: a new epoch, unfinished while `a` still owns what `b` is to get.
    c.consumer_heartbeat("g", join("b"), &topics())
        .await
        .unwrap();
    let stats = c.take_stats();
    assert_eq!(stats.consumer.get("Reconciling"), Some(&1));
    assert_eq!(stats.consumer_rebalances.started, 1, "epoch 2");
    assert!(stats.consumer_rebalances.finished_ms.is_empty());

    // A restarted coordinator replays the epochs without counting them again.
    drop(c);
    let c = coordinator(&log, 45_000);
    eventually("the partition loads", || !c.is_loading()).await;
    assert_eq!(c.take_stats().consumer_rebalances.started, 0);
}
