//! Mixed groups in the coordinator over an in-memory log: a Stable classic group upgraded by
//! a ConsumerGroupHeartbeat, its classic member served JoinGroup/SyncGroup/Heartbeat from
//! the consumer group, the downgrade when the consumer-protocol member leaves, refusals
//! under the `disabled` policy and of OffsetCommit below v9, and reloads in between.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::*;
use crate::group::commit::Committer;
use crate::group::consumer::embedded::{decode_assignment, encode_assignment, encode_subscription};
use crate::group::consumer::{
    Assignment, ConsumerGroupConfig, HeartbeatRequest, MigrationPolicy, TopicMetadata, TopicsImage,
};
use crate::group::join::JoinRequest;
use crate::group::member::MemberProtocol;
use crate::group::sync::SyncRequest;
use crate::log::memory::MemoryLog;

const PARTITIONS: i32 = 4;
const T: Uuid = Uuid::from_u128(1);

fn coordinator(log: &Arc<MemoryLog>, policy: MigrationPolicy) -> Arc<GroupCoordinator> {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 0,
        offsets_topic_partitions: PARTITIONS,
        consumer_protocol: true,
        consumer: ConsumerGroupConfig {
            migration_policy: policy,
            ..ConsumerGroupConfig::default()
        },
        ..GroupConfig::default()
    };
    let c = Arc::new(GroupCoordinator::new(config, log.clone()));
    c.start();
    c
}

async fn loaded(c: &Arc<GroupCoordinator>) {
    for _ in 0..1000 {
        if !c.is_loading() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("loading never finished");
}

fn topics() -> TopicsImage {
    TopicsImage::new([TopicMetadata {
        id: T,
        name: "t".into(),
        partitions: 2,
    }])
}

fn classic_join(member_id: &str, owned: &[i32]) -> JoinRequest {
    let owned = if owned.is_empty() {
        vec![]
    } else {
        vec![("t".to_string(), owned.to_vec())]
    };
    JoinRequest {
        member_id: member_id.into(),
        instance_id: None,
        client_id: "classic".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![MemberProtocol {
            name: "range".into(),
            metadata: encode_subscription(1, &["t"], &owned),
        }],
        require_known_member_id: true,
        supports_skip_assignment: false,
        reason: None,
    }
}

fn sync(member_id: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        member_id: member_id.into(),
        instance_id: None,
        generation,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    }
}

fn consumer_join(member: &str) -> HeartbeatRequest {
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
        client_id: "consumer".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn consumer_beat(member: &str, epoch: i32, owned: Assignment) -> HeartbeatRequest {
    HeartbeatRequest {
        member_epoch: epoch,
        owned: Some(owned),
        ..consumer_join(member)
    }
}

/// A Stable classic group "g" of one member owning both partitions; its id and generation.
async fn stable_classic_group(c: &Arc<GroupCoordinator>) -> (String, i32) {
    let first = c.join("g", classic_join("", &[]), &topics()).await;
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    let joined = c
        .join("g", classic_join(&first.member_id, &[]), &topics())
        .await;
    assert_eq!(joined.error, None);
    let both = encode_assignment(1, &vec![("t".to_string(), vec![0, 1])]);
    let synced = c
        .sync(
            "g",
            sync(
                &joined.member_id,
                joined.generation,
                vec![(joined.member_id.clone(), both)],
            ),
        )
        .await;
    assert_eq!(synced.error, None);
    (joined.member_id, joined.generation)
}

/// The partitions of `t` in a classic assignment.
fn partitions_of(assignment: &[u8]) -> Vec<i32> {
    decode_assignment(assignment)
        .unwrap()
        .into_iter()
        .flat_map(|(_, ps)| ps)
        .collect()
}

/// Upgrades a Stable classic group with consumer member "c" and takes the classic member
/// through its rejoin; returns the classic member's id and generation.
async fn upgraded_mixed_group(c: &Arc<GroupCoordinator>) -> (String, i32) {
    let (a, generation) = stable_classic_group(c).await;
    let joined = c
        .consumer_heartbeat("g", consumer_join("c"), &topics())
        .await
        .unwrap();
    assert_eq!(joined.member_epoch, generation + 1);
    assert_eq!(
        joined.assignment,
        Some(Assignment::new()),
        "a still owns both"
    );
    assert!(c.describe_consumer_group("g").is_ok());
    assert_eq!(c.describe("g").err(), Some(ResponseError::GroupIdNotFound));

    // The classic member is told to rejoin; it does (eager: it revoked everything).
    assert_eq!(
        c.heartbeat("g", &a, None, generation),
        Err(ResponseError::RebalanceInProgress)
    );
    let rejoined = c.join("g", classic_join(&a, &[]), &topics()).await;
    assert_eq!(rejoined.error, None);
    assert_eq!(rejoined.generation, generation + 1);
    assert_eq!(
        rejoined.leader, "",
        "the coordinator assigns, no member leads"
    );
    let synced = c.sync("g", sync(&a, rejoined.generation, vec![])).await;
    assert_eq!(synced.error, None);
    assert_eq!(partitions_of(&synced.assignment).len(), 1);
    assert_eq!(c.heartbeat("g", &a, None, rejoined.generation), Ok(()));

    // Now the consumer member gets the other partition.
    let beat = c
        .consumer_heartbeat(
            "g",
            consumer_beat("c", joined.member_epoch, Assignment::new()),
            &topics(),
        )
        .await
        .unwrap();
    let theirs = beat.assignment.unwrap();
    assert_eq!(theirs.len(), 1);
    let mine = partitions_of(&synced.assignment)[0];
    assert!(!theirs.contains(T, mine), "no partition owned twice");
    (a, rejoined.generation)
}

#[tokio::test]
async fn a_stable_classic_group_upgrades_and_its_member_is_served_from_the_consumer_group() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    upgraded_mixed_group(&c).await;
    let g = c.describe_consumer_group("g").unwrap();
    assert_eq!(g.members().len(), 2);
    assert_eq!(
        g.state(),
        crate::group::consumer::ConsumerGroupState::Stable
    );
}

#[tokio::test]
async fn an_upgrade_is_refused_under_the_disabled_policy() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, MigrationPolicy::Disabled);
    loaded(&c).await;
    let (a, generation) = stable_classic_group(&c).await;
    let refused = c
        .consumer_heartbeat("g", consumer_join("c"), &topics())
        .await
        .unwrap_err();
    assert_eq!(refused.code, ResponseError::GroupIdNotFound);
    assert!(c.describe_consumer_group("g").is_err());
    assert_eq!(
        c.heartbeat("g", &a, None, generation),
        Ok(()),
        "still classic"
    );
}

#[tokio::test]
async fn the_consumer_member_leaving_downgrades_the_group_which_rebalances_and_reloads_classic() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    let (a, generation) = upgraded_mixed_group(&c).await;
    let epoch = c
        .describe_consumer_group("g")
        .unwrap()
        .member("c")
        .unwrap()
        .member_epoch;
    let left = c
        .consumer_heartbeat("g", consumer_beat("c", -1, Assignment::new()), &topics())
        .await
        .unwrap();
    assert_eq!(left.member_epoch, -1);
    assert!(epoch > 0);
    assert!(
        c.describe_consumer_group("g").is_err(),
        "no consumer group any more"
    );
    let summary = c.describe("g").unwrap();
    assert_eq!(summary.state, GroupState::PreparingRebalance);
    assert_eq!(
        c.heartbeat("g", &a, None, generation),
        Err(ResponseError::RebalanceInProgress)
    );
    // The classic member rejoins the classic group and leads it now.
    let rejoined = c.join("g", classic_join(&a, &[]), &topics()).await;
    assert_eq!(rejoined.error, None);
    assert_eq!(rejoined.leader, a);
    let both = encode_assignment(1, &vec![("t".to_string(), vec![0, 1])]);
    let synced = c
        .sync("g", sync(&a, rejoined.generation, vec![(a.clone(), both)]))
        .await;
    assert_eq!(synced.error, None);

    // A reload finds a classic group.
    drop(c);
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    assert!(c.describe_consumer_group("g").is_err());
    assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);
    assert_eq!(c.heartbeat("g", &a, None, rejoined.generation), Ok(()));
}

#[tokio::test]
async fn offset_commit_below_v9_is_refused_for_a_consumer_member_not_a_classic_one() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    let (a, generation) = upgraded_mixed_group(&c).await;
    let epoch = c
        .describe_consumer_group("g")
        .unwrap()
        .member("c")
        .unwrap()
        .member_epoch;
    let commit = |member: &str, generation: i32, api_version: i16| CommitRequest {
        api_version,
        group_id: "g".into(),
        committer: Committer {
            member_id: member.into(),
            instance_id: None,
            generation,
        },
        retention_ms: None,
        offsets: vec![CommitOffset {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: None,
        }],
    };
    assert_eq!(
        c.commit(commit("c", epoch, 8)).await,
        vec![Err(ResponseError::UnsupportedVersion)]
    );
    assert_eq!(c.commit(commit("c", epoch, 9)).await, vec![Ok(())]);
    assert_eq!(c.commit(commit(&a, generation, 8)).await, vec![Ok(())]);
    assert_eq!(
        c.commit(commit(&a, generation - 1, 8)).await,
        vec![Err(ResponseError::IllegalGeneration)]
    );
}

#[tokio::test]
async fn a_mixed_group_resumes_after_a_reload() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    let (a, generation) = upgraded_mixed_group(&c).await;
    let before = c.describe_consumer_group("g").unwrap();
    drop(c);
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    let after = c.describe_consumer_group("g").unwrap();
    assert_eq!(after.members(), before.members());
    assert!(after.member(&a).unwrap().classic.is_some());
    assert_eq!(c.describe("g").err(), Some(ResponseError::GroupIdNotFound));
    assert_eq!(c.heartbeat("g", &a, None, generation), Ok(()));
    let synced = c.sync("g", sync(&a, generation, vec![])).await;
    assert_eq!(synced.error, None);
    assert_eq!(partitions_of(&synced.assignment).len(), 1);
}

#[tokio::test]
async fn a_classic_join_replaces_an_empty_consumer_group_for_good() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    let joined = c
        .consumer_heartbeat("g", consumer_join("c"), &topics())
        .await
        .unwrap();
    c.consumer_heartbeat("g", consumer_beat("c", -1, Assignment::new()), &topics())
        .await
        .unwrap();
    assert!(joined.member_epoch > 0);
    assert!(c.describe_consumer_group("g").unwrap().is_empty());

    let (a, generation) = stable_classic_group(&c).await;
    assert!(
        c.describe_consumer_group("g").is_err(),
        "the empty consumer group is gone"
    );
    assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);

    drop(c);
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    assert!(
        c.describe_consumer_group("g").is_err(),
        "its tombstones are in the log"
    );
    assert_eq!(c.heartbeat("g", &a, None, generation), Ok(()));
}

#[tokio::test]
async fn a_rebalancing_classic_group_upgrades_and_its_waiting_joins_are_told_to_rejoin() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, MigrationPolicy::Bidirectional);
    loaded(&c).await;
    let (a, _) = stable_classic_group(&c).await;
    // A second classic member starts a rebalance; its join waits for `a` to rejoin.
    let first = c.join("g", classic_join("", &[]), &topics()).await;
    let waiting = {
        let c = c.clone();
        let id = first.member_id.clone();
        tokio::spawn(async move { c.join("g", classic_join(&id, &[]), &topics()).await })
    };
    for _ in 0..200 {
        if c.describe("g")
            .is_ok_and(|g| g.state == GroupState::PreparingRebalance)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        c.describe("g").unwrap().state,
        GroupState::PreparingRebalance
    );

    // Kafka converts a rebalancing group too (refusing would be fatal to the Java client).
    c.consumer_heartbeat("g", consumer_join("c"), &topics())
        .await
        .unwrap();
    let told = waiting.await.unwrap();
    assert_eq!(told.error, Some(ResponseError::RebalanceInProgress));
    let rejoined = c
        .join("g", classic_join(&first.member_id, &[]), &topics())
        .await;
    assert_eq!(rejoined.error, None);
    let g = c.describe_consumer_group("g").unwrap();
    assert_eq!(g.members().len(), 3);
    assert!(g.member(&a).unwrap().classic.is_some());
}
