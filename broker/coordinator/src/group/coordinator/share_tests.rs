//! Share groups' membership in the coordinator over an in-memory log: joins and describes,
//! one type per group id, sessions that end, and membership forgotten with the partition.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::consumer_tests::eventually;
use super::*;
use crate::group::consumer::{Assignment, HeartbeatRequest, TopicMetadata, TopicsImage};
use crate::log::memory::MemoryLog;
use crate::share::group::{Heartbeat, ShareGroupConfig, TopicsView};

const PARTITIONS: i32 = 4;
const TOPIC: Uuid = Uuid::from_u128(7);

fn coordinator(log: &Arc<MemoryLog>, session_timeout_ms: i64) -> Arc<GroupCoordinator> {
    let config = GroupConfig {
        offsets_topic_partitions: PARTITIONS,
        share: ShareGroupConfig {
            session_timeout_ms,
            assignment_interval_ms: 0,
            ..ShareGroupConfig::default()
        },
        ..GroupConfig::default()
    };
    let c = Arc::new(GroupCoordinator::new(config, log.clone()));
    c.start();
    c
}

fn topics() -> TopicsView {
    [("t".to_owned(), (TOPIC, vec![0, 1, 2]))].into()
}

fn beat(member: &str, epoch: i32) -> Heartbeat {
    Heartbeat {
        member_id: member.into(),
        member_epoch: epoch,
        topics: (epoch == 0).then(|| vec!["t".to_owned()]),
        ..Heartbeat::default()
    }
}

fn all() -> BTreeSet<(Uuid, i32)> {
    [(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)].into()
}

#[tokio::test]
async fn members_join_cover_every_partition_and_are_described() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 45_000);
    let a = c
        .share_heartbeat("q", &beat("a", 0), &topics(), &c.config().share)
        .await
        .unwrap();
    assert_eq!(a.member_epoch, 1);
    assert_eq!(a.assignment, Some(all()));
    let b = c
        .share_heartbeat("q", &beat("b", 0), &topics(), &c.config().share)
        .await
        .unwrap();
    assert_eq!(b.member_epoch, 2);
    // More partitions than members: the simple assignor spreads them (one member each).
    let b_has = b.assignment.unwrap_or_default();
    assert!(!b_has.is_empty() && b_has.len() < 3, "{b_has:?}");
    let a = c
        .share_heartbeat("q", &beat("a", 1), &topics(), &c.config().share)
        .await
        .unwrap();
    assert_eq!(a.member_epoch, 2);
    let d = c.describe_share_group("q").unwrap();
    assert_eq!(d.state(), "Stable");
    assert_eq!(d.group_epoch, 2);
    assert_eq!(
        d.members
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(d.subscribed, BTreeSet::from(["t".to_owned()]));
    assert_eq!(d.assigned(), all());
    let left = c
        .share_heartbeat("q", &beat("a", -1), &topics(), &c.config().share)
        .await
        .unwrap();
    assert_eq!(left.member_epoch, -1);
    assert_eq!(
        c.describe_share_group("nobody"),
        Err(ResponseError::GroupIdNotFound)
    );
}

#[tokio::test]
async fn a_group_id_is_of_one_type_only() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 45_000);
    c.share_heartbeat("q", &beat("a", 0), &topics(), &c.config().share)
        .await
        .unwrap();
    let consumer = HeartbeatRequest {
        member_id: "c".into(),
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
    };
    let image = TopicsImage::new([TopicMetadata {
        id: TOPIC,
        name: "t".into(),
        partitions: 3,
    }]);
    let refused = c
        .consumer_heartbeat("q", consumer.clone(), &image)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ResponseError::GroupIdNotFound);
    c.consumer_heartbeat("cg", consumer, &image).await.unwrap();
    let refused = c
        .share_heartbeat("cg", &beat("a", 0), &topics(), &c.config().share)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ResponseError::GroupIdNotFound);
    assert_eq!(
        c.describe_share_group("cg"),
        Err(ResponseError::GroupIdNotFound)
    );
    let refused = c
        .share_heartbeat("", &beat("a", 0), &topics(), &c.config().share)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ResponseError::InvalidRequest);
}

#[tokio::test]
async fn a_silent_member_is_dropped_when_the_group_is_next_looked_at() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 50);
    c.share_heartbeat("q", &beat("a", 0), &topics(), &c.config().share)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let d = c.describe_share_group("q").unwrap();
    assert!(d.members.is_empty(), "{d:?}");
    assert_eq!(d.state(), "Empty");
    let refused = c
        .share_heartbeat("q", &beat("a", 1), &topics(), &c.config().share)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ResponseError::UnknownMemberId);
}

#[tokio::test]
async fn membership_goes_with_the_offsets_partition_and_comes_back_from_its_records() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 45_000);
    c.share_heartbeat("q", &beat("a", 0), &topics(), &c.config().share)
        .await
        .unwrap();
    let partition = c.partition_for("q");
    log.set_leader(partition, None);
    let refused = c
        .share_heartbeat("q", &beat("a", 1), &topics(), &c.config().share)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ResponseError::NotCoordinator);
    assert!(!c.is_share_group("q"), "unloaded with its partition");
    // Back at a new epoch: loaded again from the log.
    log.set_leader(partition, Some(3));
    wait_for_share_group(&c, "q").await;
    let d = c.describe_share_group("q").unwrap();
    assert_eq!((d.group_epoch, d.assignment_epoch), (1, 1));
    assert_eq!(d.assigned(), all());
    // The member goes on at its epoch and assignment.
    let again = c
        .share_heartbeat("q", &beat("a", 1), &topics(), &c.config().share)
        .await
        .expect("the member is known after the load");
    assert_eq!((again.member_epoch, again.assignment), (1, None));
}

/// `description` with its members' session deadlines left out.
fn without_deadlines(mut description: ShareGroupDescription) -> ShareGroupDescription {
    for (_, member) in &mut description.members {
        member.deadline_ms = 0;
    }
    description
}

/// Waits until the coordinator has loaded share group `id` (a load, which a request starts,
/// runs in the background).
async fn wait_for_share_group(c: &Arc<GroupCoordinator>, id: &str) {
    let what = format!("share group {id} loaded");
    eventually(&what, || c.describe_share_group(id).is_ok()).await;
}

#[tokio::test]
async fn a_new_coordinator_over_the_same_log_has_the_members_and_not_what_was_deleted() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 45_000);
    for (group, member) in [("q", "a"), ("q", "b"), ("gone", "x")] {
        c.share_heartbeat(group, &beat(member, 0), &topics(), &c.config().share)
            .await
            .unwrap();
    }
    let x = c.describe_share_group("gone").unwrap().group_epoch;
    c.share_heartbeat("gone", &beat("x", -1), &topics(), &c.config().share)
        .await
        .unwrap();
    assert_eq!(c.delete_share_group("gone").await, Ok(true));
    assert!(x > 0);
    let written = c.describe_share_group("q").unwrap();

    let restarted = coordinator(&log, 45_000);
    wait_for_share_group(&restarted, "q").await;
    let loaded = restarted.describe_share_group("q").unwrap();
    // Sessions start over at the load, on the new coordinator's clock (as in Kafka): each
    // member gets a whole session timeout from then, whenever in its first milliseconds it
    // ran; everything else is as written.
    for (id, member) in &loaded.members {
        assert!(member.deadline_ms >= 45_000, "{id}: {}", member.deadline_ms);
    }
    assert_eq!(without_deadlines(loaded), without_deadlines(written));
    assert!(
        !restarted.is_share_group("gone"),
        "deleted groups stay deleted"
    );
    assert_eq!(restarted.list_share_groups(), [("q".to_owned(), "Stable")]);
}

#[tokio::test]
async fn an_expiry_noticed_by_a_describe_is_written() {
    let log = Arc::new(MemoryLog::with_partitions(PARTITIONS));
    let c = coordinator(&log, 50);
    c.share_heartbeat("q", &beat("a", 0), &topics(), &c.config().share)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(c.describe_share_group("q").unwrap().members.is_empty());
    let restarted = coordinator(&log, 45_000);
    wait_for_share_group(&restarted, "q").await;
    let loaded = restarted.describe_share_group("q").unwrap();
    assert!(loaded.members.is_empty(), "{loaded:?}");
    assert_eq!(loaded.state(), "Empty");
}
