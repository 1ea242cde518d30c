//! Step-by-step scenarios of the consumer group protocol: one heartbeat in, the records to
//! write and the response out, with time passed in by hand.

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::group::ConsumerGroupState::{self, *};
use super::records::{Record, RecordKey, RecordValue};
use super::replay::ConsumerGroups;
use super::timeouts::Expiry;
use super::*;

const ORDERS: Uuid = Uuid::from_u128(1);
const PAYMENTS: Uuid = Uuid::from_u128(2);
const SESSION: i64 = 45_000;
const REBALANCE: i32 = 30_000;

fn orders(partitions: i32) -> TopicMetadata {
    TopicMetadata {
        id: ORDERS,
        name: "orders".into(),
        partitions,
    }
}

fn payments() -> TopicMetadata {
    TopicMetadata {
        id: PAYMENTS,
        name: "payments".into(),
        partitions: 2,
    }
}

fn parts(ps: &[i32]) -> Assignment {
    Assignment::from_topics([(ORDERS, ps.to_vec())])
}

/// A group under test with the cluster's topics and the clock.
struct Scene {
    group: ConsumerGroup,
    topics: TopicsImage,
    config: ConsumerGroupConfig,
    now: i64,
    /// Every record written, in order.
    log: Vec<Record>,
}

impl Scene {
    fn new() -> Scene {
        Scene {
            group: ConsumerGroup::new("g"),
            topics: TopicsImage::new([orders(4), payments()]),
            config: ConsumerGroupConfig {
                max_size: 10,
                ..ConsumerGroupConfig::default()
            },
            now: 0,
            log: Vec::new(),
        }
    }

    fn send(&mut self, req: HeartbeatRequest) -> Result<Outcome, HeartbeatError> {
        let before = self.group.clone();
        let ctx = Context {
            now: self.now,
            topics: &self.topics,
            config: &self.config,
        };
        let result = self.group.heartbeat(&req, &ctx);
        match &result {
            Ok(outcome) => self.log.extend(outcome.records.iter().cloned()),
            Err(_) => assert_eq!(self.group, before, "a refused heartbeat changes nothing"),
        }
        assert_no_partition_owned_twice(&self.group);
        result
    }

    fn ok(&mut self, req: HeartbeatRequest) -> Outcome {
        match self.send(req) {
            Ok(o) => o,
            Err(e) => panic!("heartbeat refused: {e}"),
        }
    }

    fn err(&mut self, req: HeartbeatRequest) -> ResponseError {
        match self.send(req) {
            Ok(o) => panic!("heartbeat accepted: {o:?}"),
            Err(e) => e.code(),
        }
    }

    fn member(&self, id: &str) -> &Member {
        self.group.member(id).expect("member")
    }

    fn state(&self) -> ConsumerGroupState {
        self.group.state()
    }
}

fn join(id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: id.into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: REBALANCE,
        subscribed_topic_names: Some(vec!["orders".into()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: Some(Assignment::new()),
        client_id: "client".into(),
        client_host: "/10.0.0.1".into(),
    }
}

fn join_static(id: &str, instance: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        instance_id: Some(instance.into()),
        ..join(id)
    }
}

/// A steady-state heartbeat: only the epoch and (if given) the owned partitions.
fn beat(id: &str, epoch: i32, owned: Option<&[i32]>) -> HeartbeatRequest {
    HeartbeatRequest {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        owned: owned.map(parts),
        ..join(id)
    }
}

fn leave(id: &str, epoch: i32, instance: Option<&str>) -> HeartbeatRequest {
    HeartbeatRequest {
        instance_id: instance.map(str::to_string),
        ..beat(id, epoch, None)
    }
}

fn types(records: &[Record]) -> Vec<(i16, bool)> {
    records
        .iter()
        .map(|r| (r.key.record_type(), r.value.is_some()))
        .collect()
}

fn assert_no_partition_owned_twice(g: &ConsumerGroup) {
    let mut seen = Assignment::new();
    for m in g.members().values() {
        for (t, p) in m.owned().iter() {
            assert!(seen.insert(t, p), "{t}-{p} owned twice in {g:#?}");
            assert_eq!(g.owner(t, p).map(|(o, _)| o), Some(m.member_id.as_str()));
        }
    }
}

/// The state a load would rebuild: soft state left out.
fn hard(g: &ConsumerGroup) -> ConsumerGroup {
    let mut g = g.clone();
    g.session_deadlines.clear();
    g.rebalance_deadlines.clear();
    g.metadata_refresh = None;
    g
}

fn replayed(log: &[Record]) -> ConsumerGroups {
    let mut groups = ConsumerGroups::new();
    for r in log {
        let (key, value) = r.encode();
        let decoded = Record::decode(&key, value.as_deref()).unwrap().unwrap();
        groups.replay(&decoded);
    }
    groups
}

/// One member, joined and stable with all four partitions of `orders` at epoch 1.
fn one_member() -> Scene {
    let mut s = Scene::new();
    s.ok(join("a"));
    s
}

#[test]
fn the_first_member_joins_with_epoch_zero_and_gets_every_partition() {
    let mut s = Scene::new();
    let out = s.ok(join("a"));
    assert_eq!(
        types(&out.records),
        vec![
            (5, true),
            (4, true),
            (3, true),
            (7, true),
            (6, true),
            (8, true)
        ],
        "subscription, topic metadata, group epoch, target, target epoch, current assignment"
    );
    assert_eq!(
        out.response,
        HeartbeatResponse {
            member_id: "a".into(),
            member_epoch: 1,
            heartbeat_interval_ms: 5_000,
            assignment: Some(parts(&[0, 1, 2, 3])),
        }
    );
    assert_eq!((s.group.group_epoch(), s.group.assignment_epoch()), (1, 1));
    assert_eq!(s.state(), Stable);
    assert_eq!(s.member("a").state, MemberState::Stable);
    assert_eq!(s.group.session_deadline("a"), Some(SESSION));
    assert_eq!(
        s.group.subscribed_topics().keys().collect::<Vec<_>>(),
        vec!["orders"]
    );
}

#[test]
fn a_steady_heartbeat_writes_nothing_and_sends_no_assignment() {
    let mut s = one_member();
    s.now = 5_000;
    let out = s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    assert!(out.records.is_empty());
    assert_eq!(out.response.member_epoch, 1);
    assert_eq!(out.response.assignment, None);
    assert_eq!(s.group.session_deadline("a"), Some(5_000 + SESSION));
}

#[test]
fn a_second_member_waits_until_the_first_has_revoked() {
    let mut s = one_member();

    // b joins: new target at epoch 2, but every partition is still a's.
    let out = s.ok(join("b"));
    assert_eq!(
        types(&out.records),
        vec![
            (5, true),
            (3, true),
            (7, true),
            (7, true),
            (6, true),
            (8, true)
        ]
    );
    assert_eq!(s.state(), Reconciling);
    let target_a = s.group.target("a");
    let target_b = s.group.target("b");
    assert_eq!((target_a.len(), target_b.len()), (2, 2));
    assert_eq!(out.response.member_epoch, 2, "b is at the target epoch");
    assert_eq!(out.response.assignment, Some(Assignment::new()));
    assert_eq!(s.member("b").state, MemberState::UnreleasedPartitions);

    // a learns it must revoke; it stays at epoch 1 meanwhile.
    let out = s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    assert_eq!(types(&out.records), vec![(8, true)]);
    assert_eq!(out.response.member_epoch, 1);
    assert_eq!(out.response.assignment, Some(target_a.clone()));
    assert_eq!(s.member("a").state, MemberState::UnrevokedPartitions);
    assert_eq!(s.member("a").pending_revocation, target_b);
    assert_eq!(
        s.group.rebalance_deadline("a").map(|d| d.at),
        Some(i64::from(REBALANCE))
    );

    // b asks again: still nothing free (only its previous epoch catches up, as Kafka's
    // `updateMemberEpoch` does).
    let out = s.ok(beat("b", 2, Some(&[])));
    assert_eq!(out.response.assignment, None);
    assert!(s.member("b").assigned.is_empty());
    let out = s.ok(beat("b", 2, Some(&[])));
    assert!(out.records.is_empty());

    // a reports the revocation: it moves to epoch 2.
    let owned: Vec<i32> = target_a.iter().map(|(_, p)| p).collect();
    let out = s.ok(beat("a", 1, Some(&owned)));
    assert_eq!(types(&out.records), vec![(8, true)]);
    assert_eq!(out.response.member_epoch, 2);
    assert_eq!(s.member("a").state, MemberState::Stable);
    assert_eq!(s.group.rebalance_deadline("a"), None);

    // Now b gets its partitions.
    let out = s.ok(beat("b", 2, Some(&[])));
    assert_eq!(out.response.assignment, Some(target_b));
    assert_eq!(s.member("b").state, MemberState::Stable);
    assert_eq!(s.state(), Stable);
}

#[test]
fn a_member_that_leaves_is_removed_and_the_group_epoch_bumped() {
    let mut s = one_member();
    s.ok(join("b"));
    let out = s.ok(leave("b", -1, None));
    assert_eq!(
        types(&out.records),
        vec![(8, false), (7, false), (5, false), (3, true)]
    );
    assert_eq!(out.response.member_epoch, -1);
    assert_eq!(s.group.group_epoch(), 3);
    assert!(s.group.member("b").is_none());
    assert_eq!(s.state(), Assigning);

    // a's next heartbeat computes the target of epoch 3: everything back to a.
    let out = s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    assert_eq!(out.response.member_epoch, 3);
    assert_eq!(s.group.target("a"), parts(&[0, 1, 2, 3]));
    assert_eq!(s.state(), Stable);
}

#[test]
fn the_last_member_leaving_empties_the_group() {
    let mut s = one_member();
    s.ok(leave("a", -1, None));
    assert_eq!(s.state(), Empty);
    assert!(s.group.is_empty());
    assert_eq!(
        s.group.subscribed_topics().len(),
        0,
        "the metadata is rewritten without the topics nobody subscribes to"
    );
}

#[test]
fn fencing_by_member_epoch() {
    let mut s = one_member();
    s.ok(join("b"));
    s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    let kept: Vec<i32> = s.member("a").assigned.iter().map(|(_, p)| p).collect();
    s.ok(beat("a", 1, Some(&kept)));
    assert_eq!(
        (
            s.member("a").member_epoch,
            s.member("a").previous_member_epoch
        ),
        (2, 1)
    );

    assert_eq!(
        s.err(beat("a", 3, Some(&kept))),
        ResponseError::FencedMemberEpoch
    );
    assert_eq!(
        s.err(beat("a", 1, Some(&[0, 1, 2, 3]))),
        ResponseError::FencedMemberEpoch,
        "the previous epoch with more than it is assigned"
    );
    assert_eq!(
        s.err(beat("a", 1, None)),
        ResponseError::FencedMemberEpoch,
        "the previous epoch without its partitions"
    );
    let out = s.ok(beat("a", 1, Some(&kept)));
    assert_eq!(
        out.response.member_epoch, 2,
        "the previous epoch with a subset: the bump was lost, so it is told again"
    );
    assert_eq!(
        s.err(beat("zombie", 2, Some(&[]))),
        ResponseError::UnknownMemberId
    );
}

#[test]
fn a_fenced_member_rejoins_with_epoch_zero_under_its_id() {
    let mut s = one_member();
    s.ok(join("b"));
    let out = s.ok(join("a"));
    assert_eq!(out.response.member_id, "a");
    assert_eq!(
        s.member("a").state,
        MemberState::Stable,
        "it reports owning nothing, so it has nothing to revoke"
    );
    assert_eq!(out.response.member_epoch, 2);
    assert_eq!(out.response.assignment, Some(s.group.target("a")));
}

#[test]
fn a_static_member_that_leaves_for_a_while_keeps_its_partitions_and_gets_them_back() {
    let mut s = Scene::new();
    s.ok(join_static("a1", "instance-a"));
    s.ok(join("b"));
    s.ok(beat("a1", 1, Some(&[0, 1, 2, 3])));
    let kept: Vec<i32> = s.member("a1").assigned.iter().map(|(_, p)| p).collect();
    s.ok(beat("a1", 1, Some(&kept)));
    s.ok(beat("b", 2, Some(&[])));
    assert_eq!(s.state(), Stable);
    let before = s.member("a1").assigned.clone();

    // Leaves with -2: only its epoch changes, the group epoch does not.
    let out = s.ok(leave("a1", -2, Some("instance-a")));
    assert_eq!(types(&out.records), vec![(8, true)]);
    assert_eq!(out.response.member_epoch, -2);
    assert_eq!(s.group.group_epoch(), 2);
    assert_eq!(
        s.member("a1").assigned,
        before,
        "its partitions are kept for it"
    );

    // The new incarnation replaces it and gets the same partitions at once.
    s.now = 10_000;
    let out = s.ok(join_static("a2", "instance-a"));
    assert_eq!(
        types(&out.records),
        vec![
            (8, false),
            (7, false),
            (5, false),
            (5, true),
            (7, true),
            (8, true),
            (8, true)
        ],
        "the old member removed, the new one written with its target, then reconciled"
    );
    assert_eq!(out.response.member_id, "a2");
    assert_eq!(out.response.member_epoch, 2);
    assert_eq!(out.response.assignment, Some(before.clone()));
    assert!(s.group.member("a1").is_none());
    assert_eq!(
        s.group
            .static_member("instance-a")
            .map(|m| m.member_id.as_str()),
        Some("a2")
    );
    assert_eq!(
        s.group.group_epoch(),
        2,
        "no rebalance for a static restart"
    );
    assert_eq!(s.state(), Stable);

    // The old incarnation is fenced.
    let mut zombie = beat("a1", 2, Some(&kept));
    zombie.instance_id = Some("instance-a".into());
    assert_eq!(s.err(zombie), ResponseError::FencedInstanceId);
}

#[test]
fn a_static_instance_still_in_use_is_unreleased() {
    let mut s = Scene::new();
    s.ok(join_static("a1", "instance-a"));
    assert_eq!(
        s.err(join_static("a2", "instance-a")),
        ResponseError::UnreleasedInstanceId
    );
    assert_eq!(
        s.err(beat("a2", 1, Some(&[]))),
        ResponseError::UnknownMemberId,
        "a2 is not a member"
    );
    let mut stranger = beat("a2", 1, Some(&[]));
    stranger.instance_id = Some("instance-b".into());
    assert_eq!(s.err(stranger), ResponseError::UnknownMemberId);
    assert_eq!(
        s.err(leave("a2", -2, Some("instance-a"))),
        ResponseError::FencedInstanceId
    );
}

#[test]
fn a_static_member_leaving_for_good_is_removed() {
    let mut s = Scene::new();
    s.ok(join_static("a1", "instance-a"));
    let out = s.ok(leave("a1", -1, Some("instance-a")));
    assert_eq!(out.response.member_epoch, -1);
    assert!(s.group.static_member("instance-a").is_none());
    s.ok(join_static("a2", "instance-a"));
}

#[test]
fn the_group_refuses_members_beyond_its_max_size() {
    let mut s = one_member();
    s.config.max_size = 1;
    assert_eq!(s.err(join("b")), ResponseError::GroupMaxSizeReached);
    s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    s.ok(join("a"));
}

#[test]
fn a_subscription_change_bumps_the_group_epoch_and_the_target() {
    let mut s = one_member();
    let mut req = beat("a", 1, Some(&[0, 1, 2, 3]));
    req.subscribed_topic_names = Some(vec!["orders".into(), "payments".into()]);
    let out = s.ok(req.clone());
    assert_eq!(
        types(&out.records),
        vec![
            (5, true),
            (4, true),
            (3, true),
            (7, true),
            (6, true),
            (8, true)
        ]
    );
    assert_eq!(s.group.group_epoch(), 2);
    assert_eq!(out.response.member_epoch, 2);
    let assigned = out.response.assignment.unwrap();
    assert_eq!(assigned.len(), 6);
    assert!(assigned.contains(PAYMENTS, 1));

    // The same subscription again changes nothing.
    let out = s.ok(req);
    assert!(out.records.is_empty());
    assert_eq!(s.group.group_epoch(), 2);
}

#[test]
fn a_client_change_is_written_without_a_rebalance() {
    let mut s = one_member();
    let mut req = beat("a", 1, Some(&[0, 1, 2, 3]));
    req.client_host = "/10.0.0.9".into();
    let out = s.ok(req);
    assert_eq!(types(&out.records), vec![(5, true)]);
    assert_eq!(s.group.group_epoch(), 1);
}

#[test]
fn the_preferred_server_assignor_is_the_one_members_ask_for() {
    let mut s = Scene::new();
    let mut a = join("a");
    a.server_assignor = Some("range".into());
    s.ok(a);
    let mut b = join("b");
    b.server_assignor = Some("range".into());
    s.ok(b);
    assert_eq!(
        s.group.target("a"),
        parts(&[0, 1]),
        "range gives contiguous ranges"
    );
    assert_eq!(s.group.target("b"), parts(&[2, 3]));
    assert_eq!(
        s.group.preferred_assignor(&s.config),
        assignor::Assignor::Range
    );
}

#[test]
fn invalid_heartbeats_are_refused() {
    let mut s = one_member();
    let cases: Vec<(HeartbeatRequest, ResponseError)> = vec![
        (
            HeartbeatRequest {
                rebalance_timeout_ms: -1,
                ..join("b")
            },
            ResponseError::InvalidRequest,
        ),
        (
            HeartbeatRequest {
                owned: Some(parts(&[0])),
                ..join("b")
            },
            ResponseError::InvalidRequest,
        ),
        (
            HeartbeatRequest {
                owned: None,
                ..join("b")
            },
            ResponseError::InvalidRequest,
        ),
        (
            HeartbeatRequest {
                subscribed_topic_names: None,
                ..join("b")
            },
            ResponseError::InvalidRequest,
        ),
        (
            HeartbeatRequest {
                member_id: String::new(),
                ..join("b")
            },
            ResponseError::InvalidRequest,
        ),
        (beat("a", -3, None), ResponseError::InvalidRequest),
        (leave("a", -2, None), ResponseError::InvalidRequest),
        (
            HeartbeatRequest {
                instance_id: Some(String::new()),
                ..join("b")
            },
            ResponseError::InvalidRequest,
        ),
        (
            HeartbeatRequest {
                server_assignor: Some("sticky".into()),
                ..join("b")
            },
            ResponseError::UnsupportedAssignor,
        ),
        (
            HeartbeatRequest {
                subscribed_topic_regex: Some("orders(".into()),
                ..join("b")
            },
            ResponseError::InvalidRegularExpression,
        ),
        (
            HeartbeatRequest {
                subscribed_topic_names: None,
                subscribed_topic_regex: Some(String::new()),
                ..join("b")
            },
            ResponseError::InvalidRequest,
        ),
    ];
    for (req, code) in cases {
        assert_eq!(s.err(req.clone()), code, "{req:?}");
    }
    assert_eq!(
        s.err(leave("nobody", -1, None)),
        ResponseError::UnknownMemberId
    );
}

#[test]
fn an_empty_regex_beside_topic_names_means_no_regex() {
    // librdkafka sends an empty regular expression with a subscription by names (Kafka 4
    // reads it as no regex).
    let mut s = Scene::new();
    let out = s.ok(HeartbeatRequest {
        subscribed_topic_regex: Some(String::new()),
        ..join("a")
    });
    assert_eq!(out.response.member_epoch, 1);
    assert_eq!(s.group.member("a").unwrap().subscribed_topic_regex, None);
}

#[test]
fn a_regex_subscription_picks_up_a_new_topic_at_the_next_refresh() {
    let mut s = Scene::new();
    s.topics = TopicsImage::new([orders(2)]);
    let req = HeartbeatRequest {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some("orders|orders-.*".into()),
        ..join("a")
    };
    let out = s.ok(req);
    assert_eq!(out.response.assignment.unwrap().len(), 2);

    let eu = Uuid::from_u128(3);
    s.topics = TopicsImage::new([
        orders(2),
        TopicMetadata {
            id: eu,
            name: "orders-eu".into(),
            partitions: 1,
        },
    ]);
    s.now = 1_000;
    let out = s.ok(beat("a", 1, Some(&[0, 1])));
    assert!(out.records.is_empty(), "not before the refresh deadline");

    s.now = 5_000;
    let out = s.ok(beat("a", 1, Some(&[0, 1])));
    assert_eq!(
        types(&out.records),
        vec![(4, true), (3, true), (7, true), (6, true), (8, true)]
    );
    assert_eq!(out.response.member_epoch, 2);
    assert!(out.response.assignment.unwrap().contains(eu, 0));
}

#[test]
fn added_partitions_are_assigned_after_a_refresh() {
    let mut s = one_member();
    s.topics = TopicsImage::new([orders(6), payments()]);
    s.now = 5_000;
    let out = s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    assert_eq!(out.response.member_epoch, 2);
    assert_eq!(out.response.assignment, Some(parts(&[0, 1, 2, 3, 4, 5])));
}

#[test]
fn a_silent_member_expires_and_its_partitions_move() {
    let mut s = one_member();
    s.ok(join("b"));
    s.now = 40_000;
    s.ok(beat("b", 2, Some(&[])));
    assert_eq!(s.group.next_deadline(), Some(SESSION), "a's session");
    assert!(s.group.expired(SESSION - 1).is_empty());

    // a never heard that it must revoke; its session runs out.
    assert_eq!(
        s.group.expired(SESSION),
        vec![("a".to_string(), Expiry::Session)]
    );
    let (records, expired) = s.group.expire(SESSION, &s.topics);
    assert_eq!(expired.len(), 1);
    assert_eq!(
        types(&records),
        vec![(8, false), (7, false), (5, false), (3, true)]
    );
    s.log.extend(records);
    assert!(s.group.member("a").is_none());
    assert_eq!(s.group.session_deadline("a"), None);

    s.now = SESSION;
    let out = s.ok(beat("b", 2, Some(&[])));
    assert_eq!(out.response.member_epoch, 3);
    assert_eq!(out.response.assignment, Some(parts(&[0, 1, 2, 3])));
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_fenced() {
    let mut s = one_member();
    s.ok(join("b"));
    s.now = 1_000;
    s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    let deadline = 1_000 + i64::from(REBALANCE);
    assert_eq!(
        s.group.rebalance_deadline("a").map(|d| d.at),
        Some(deadline)
    );

    // It keeps heartbeating without revoking: its session is fine, its rebalance is not.
    s.now = deadline - 1;
    s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    s.ok(beat("b", 2, Some(&[])));
    assert!(s.group.expired(s.now).is_empty());
    assert_eq!(
        s.group.expired(deadline),
        vec![("a".to_string(), Expiry::Rebalance)]
    );
    let (records, _) = s.group.expire(deadline, &s.topics);
    s.log.extend(records);
    assert!(s.group.member("a").is_none());
}

#[test]
fn a_member_that_revoked_in_time_is_not_fenced() {
    let mut s = one_member();
    s.ok(join("b"));
    s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    let kept: Vec<i32> = s.member("a").assigned.iter().map(|(_, p)| p).collect();
    s.ok(beat("a", 1, Some(&kept)));
    assert!(s.group.expired(i64::from(REBALANCE)).is_empty());
    let (records, expired) = s.group.expire(i64::from(REBALANCE), &s.topics);
    assert!(records.is_empty() && expired.is_empty());
}

#[test]
fn a_static_member_away_too_long_expires() {
    let mut s = Scene::new();
    s.ok(join_static("a1", "instance-a"));
    s.ok(leave("a1", -2, Some("instance-a")));
    let (records, expired) = s.group.expire(SESSION, &s.topics);
    assert_eq!(expired, vec![("a1".to_string(), Expiry::Session)]);
    s.log.extend(records);
    assert!(s.group.static_member("instance-a").is_none());
    s.ok(join_static("a2", "instance-a"));
}

#[test]
fn replaying_the_records_rebuilds_the_group() {
    let mut s = one_member();
    s.ok(join_static("b1", "instance-b"));
    s.ok(beat("a", 1, Some(&[0, 1, 2, 3])));
    s.ok(leave("b1", -2, Some("instance-b")));
    s.ok(join_static("b2", "instance-b"));
    let mut req = beat("a", 1, None);
    req.subscribed_topic_names = Some(vec!["orders".into(), "payments".into()]);
    s.ok(req);
    s.ok(join("c"));

    let groups = replayed(&s.log);
    let rebuilt = groups.get("g").expect("group");
    assert_eq!(hard(rebuilt), hard(&s.group));

    let mut loaded = rebuilt.clone();
    loaded.on_loaded(100, 45_000);
    assert_eq!(loaded.session_deadline("a"), Some(45_100));
}

#[test]
fn group_tombstones_delete_the_group_and_stray_tombstones_are_ignored() {
    let mut s = one_member();
    s.ok(leave("a", -1, None));
    let mut log = s.log.clone();
    log.extend(s.group.tombstones());
    let groups = replayed(&log);
    assert!(groups.get("g").is_none());

    let mut groups = ConsumerGroups::new();
    groups.replay(&Record::tombstone(RecordKey::MemberMetadata {
        group: "other".into(),
        member: "m".into(),
    }));
    assert!(groups.get("other").is_none());
}

#[test]
fn tombstones_of_a_group_with_members_list_each_member_in_kafkas_order() {
    let mut s = one_member();
    s.ok(join("b"));
    let t = s.group.tombstones();
    assert_eq!(
        types(&t),
        vec![
            (8, false),
            (8, false),
            (7, false),
            (7, false),
            (6, false),
            (5, false),
            (5, false),
            (4, false),
            (3, false)
        ]
    );
    let mut groups = replayed(&s.log);
    for r in &t {
        groups.replay(r);
    }
    assert!(groups.get("g").is_none());
}

#[test]
fn a_member_in_a_state_from_a_newer_coordinator_must_rejoin() {
    let mut s = one_member();
    let mut m = s.member("a").clone();
    m.state = MemberState::Unknown;
    s.group.apply(&Record::current_assignment("g", &m));
    assert_eq!(
        s.err(beat("a", 1, Some(&[0, 1, 2, 3]))),
        ResponseError::FencedMemberEpoch
    );
    let out = s.ok(join("a"));
    assert_eq!(out.response.member_epoch, 1);
    assert_eq!(s.member("a").state, MemberState::Stable);
}

#[test]
fn the_epoch_record_carries_the_bumped_epoch() {
    let mut s = Scene::new();
    let out = s.ok(join("a"));
    let epoch = out.records.iter().find_map(|r| match &r.value {
        Some(RecordValue::GroupMetadata { epoch }) => Some(*epoch),
        _ => None,
    });
    assert_eq!(epoch, Some(1));
}

#[test]
fn a_group_is_created_by_a_join_only() {
    let topics = TopicsImage::new([orders(4)]);
    let config = ConsumerGroupConfig::default();
    let ctx = Context {
        now: 0,
        topics: &topics,
        config: &config,
    };
    let mut groups = ConsumerGroups::new();
    let refused = groups.heartbeat("g", &beat("a", 3, Some(&[])), &ctx);
    assert_eq!(
        refused.map_err(|e| e.code()),
        Err(ResponseError::UnknownMemberId)
    );
    let invalid = groups.heartbeat(
        "g",
        &HeartbeatRequest {
            rebalance_timeout_ms: -1,
            ..join("a")
        },
        &ctx,
    );
    assert!(invalid.is_err());
    assert!(
        groups.get("g").is_none(),
        "a refused join leaves no group behind"
    );
    let out = groups.heartbeat("g", &join("a"), &ctx).unwrap();
    assert_eq!(out.response.member_epoch, 1);
    assert_eq!(groups.get("g").map(ConsumerGroup::group_epoch), Some(1));
}
