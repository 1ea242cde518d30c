//! Step-by-step scenarios of mixed groups: a classic group upgraded by a consumer-protocol
//! join, its classic members served from the consumer group's state (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), the downgrade when the last consumer-protocol member leaves, and
//! what each `group.consumer.migration.policy` allows.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::classic::{ClassicJoin, ClassicSync};
use super::embedded::{decode_assignment, encode_assignment, encode_subscription};
use super::migration::UpgradeRefused;
use super::records::Record;
use super::*;
use crate::group::classic::Group;
use crate::group::effects::Now;
use crate::group::records::{GroupValue, MemberValue};

const ORDERS: Uuid = Uuid::from_u128(1);

struct Scene {
    group: ConsumerGroup,
    topics: TopicsImage,
    config: ConsumerGroupConfig,
    now: i64,
    log: Vec<Record>,
}

impl Scene {
    fn ctx(&self) -> Context<'_> {
        Context {
            now: self.now,
            topics: &self.topics,
            config: &self.config,
        }
    }

    /// The group an upgrade of `classic` makes, with its records logged.
    fn upgraded(classic: &Group, policy: MigrationPolicy) -> Result<Scene, UpgradeRefused> {
        let mut scene = Scene {
            group: ConsumerGroup::new("g"),
            topics: TopicsImage::new([TopicMetadata {
                id: ORDERS,
                name: "orders".into(),
                partitions: 4,
            }]),
            config: ConsumerGroupConfig {
                max_size: 3,
                migration_policy: policy,
                ..ConsumerGroupConfig::default()
            },
            now: 0,
            log: Vec::new(),
        };
        let (group, records) = ConsumerGroup::from_classic(classic, &scene.topics, &scene.ctx())?;
        scene.group = group;
        scene.log = records;
        Ok(scene)
    }

    fn heartbeat(&mut self, req: HeartbeatRequest) -> Outcome {
        let ctx = Context {
            now: self.now,
            topics: &self.topics,
            config: &self.config,
        };
        let outcome = match self.group.heartbeat(&req, &ctx) {
            Ok(o) => o,
            Err(e) => panic!("heartbeat refused: {e}"),
        };
        self.log.extend(outcome.records.iter().cloned());
        no_partition_owned_twice(&self.group);
        outcome
    }

    fn classic_join(&mut self, member: &str, owned: &[i32]) -> Result<i32, ResponseError> {
        let ctx = Context {
            now: self.now,
            topics: &self.topics,
            config: &self.config,
        };
        let join = classic_join(member, owned);
        let result = self.group.classic_join(&join, &ctx);
        no_partition_owned_twice(&self.group);
        match result {
            Ok((records, joined)) => {
                self.log.extend(records);
                assert_eq!(joined.protocol_name, "range");
                Ok(joined.generation)
            }
            Err(refused) => Err(refused.code),
        }
    }

    /// SyncGroup's assignment of `member`, as partitions of `orders`.
    fn classic_sync(&mut self, member: &str, generation: i32) -> Result<Vec<i32>, ResponseError> {
        let sync = ClassicSync {
            member_id: member,
            instance_id: None,
            generation,
            protocol_type: Some("consumer"),
            protocol_name: Some("range"),
        };
        let bytes = self.group.classic_sync(&sync, self.now)?;
        let decoded = decode_assignment(&bytes).expect("a readable assignment");
        Ok(decoded
            .into_iter()
            .flat_map(|(t, ps)| {
                assert_eq!(t, "orders");
                ps
            })
            .collect())
    }

    fn classic_heartbeat(&mut self, member: &str, generation: i32) -> Result<(), ResponseError> {
        self.group
            .classic_heartbeat(member, None, generation, self.now)
    }
}

fn no_partition_owned_twice(g: &ConsumerGroup) {
    let mut seen = Assignment::new();
    for m in g.members().values() {
        for (t, p) in m.owned().iter() {
            assert!(seen.insert(t, p), "{t}-{p} owned twice in {g:#?}");
        }
    }
}

fn subscription(owned: &[i32]) -> Bytes {
    let owned = if owned.is_empty() {
        vec![]
    } else {
        vec![("orders".to_string(), owned.to_vec())]
    };
    encode_subscription(1, &["orders"], &owned)
}

fn classic_join(member: &str, owned: &[i32]) -> ClassicJoin {
    ClassicJoin {
        member_id: member.into(),
        new_member_id: "fresh".into(),
        instance_id: None,
        client_id: "classic".into(),
        client_host: "/10.0.0.2".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(owned))],
        require_known_member_id: true,
    }
}

/// A Stable classic group at generation 5: `a` owns orders 0-1, `b` orders 2-3.
fn stable_classic_group(protocol_type: &str) -> Group {
    let member = |id: &str, partitions: Vec<i32>| MemberValue {
        member_id: id.into(),
        instance_id: None,
        client_id: "classic".into(),
        client_host: "/10.0.0.2".into(),
        rebalance_timeout_ms: 30_000,
        session_timeout_ms: 10_000,
        subscription: subscription(&[]),
        assignment: encode_assignment(1, &vec![("orders".to_string(), partitions)]),
    };
    let value = GroupValue {
        protocol_type: protocol_type.into(),
        generation: 5,
        protocol: Some("range".into()),
        leader: Some("a".into()),
        current_state_timestamp: 0,
        members: vec![member("a", vec![0, 1]), member("b", vec![2, 3])],
    };
    Group::from_value("g", value, Now { mono: 0, wall: 0 }, 0)
}

fn consumer_join(id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: id.into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["orders".into()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: Some(Assignment::new()),
        client_id: "consumer".into(),
        client_host: "/10.0.0.3".into(),
    }
}

fn parts(ps: &[i32]) -> Assignment {
    Assignment::from_topics([(ORDERS, ps.to_vec())])
}

#[test]
fn a_stable_classic_group_upgrades_with_its_members_keeping_their_partitions() {
    let scene = Scene::upgraded(
        &stable_classic_group("consumer"),
        MigrationPolicy::Bidirectional,
    )
    .unwrap();
    let g = &scene.group;
    assert_eq!((g.group_epoch(), g.assignment_epoch()), (5, 5));
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    let a = g.member("a").unwrap();
    assert_eq!((a.member_epoch, &a.assigned), (5, &parts(&[0, 1])));
    let classic = a
        .classic
        .as_ref()
        .expect("a keeps speaking the classic protocol");
    assert_eq!(classic.session_timeout_ms, 10_000);
    assert_eq!(classic.supported_protocols[0].0, "range");
    assert_eq!(g.target("b"), parts(&[2, 3]));
    assert_eq!(g.owner(ORDERS, 3).map(|(m, _)| m), Some("b"));
    assert_eq!(
        g.session_deadline("a"),
        Some(10_000),
        "the classic session timeout"
    );

    // The records rebuild the same group.
    let mut replayed = ConsumerGroups::new();
    for r in &scene.log {
        let (key, value) = r.encode();
        replayed.replay(&Record::decode(&key, value.as_deref()).unwrap().unwrap());
    }
    let mut hard = g.clone();
    hard.on_loaded(0, 10_000);
    let mut loaded = replayed.get("g").unwrap().clone();
    loaded.on_loaded(0, 10_000);
    assert_eq!(loaded, hard);
}

#[test]
fn an_upgrade_is_refused_for_other_protocols_oversized_groups_and_by_policy() {
    let refused = |group: &Group, policy| Scene::upgraded(group, policy).err();
    let consumer = stable_classic_group("consumer");
    assert!(matches!(
        refused(
            &stable_classic_group("connect"),
            MigrationPolicy::Bidirectional
        ),
        Some(UpgradeRefused::NotConsumerProtocol(_))
    ));
    for policy in [MigrationPolicy::Disabled, MigrationPolicy::Downgrade] {
        assert!(matches!(
            refused(&consumer, policy),
            Some(UpgradeRefused::Disabled(_))
        ));
    }
    assert_eq!(refused(&consumer, MigrationPolicy::Upgrade), None);
    let mut scene = Scene::upgraded(&consumer, MigrationPolicy::Upgrade).unwrap();
    scene.config.max_size = 1;
    let ctx = scene.ctx();
    assert!(matches!(
        ConsumerGroup::from_classic(&consumer, ctx.topics, &ctx),
        Err(UpgradeRefused::TooBig {
            size: 2,
            max: 1,
            ..
        })
    ));
}

#[test]
fn policies_parse_and_allow_what_they_name() {
    let cases = [
        ("bidirectional", true, true),
        ("Upgrade", true, false),
        ("downgrade", false, true),
        ("disabled", false, false),
    ];
    for (name, up, down) in cases {
        let p = MigrationPolicy::parse(name).unwrap();
        assert_eq!(
            (p.upgrade_enabled(), p.downgrade_enabled()),
            (up, down),
            "{name}"
        );
    }
    assert_eq!(MigrationPolicy::parse("both"), None);
    assert_eq!(
        ConsumerGroupConfig::default().migration_policy,
        MigrationPolicy::Bidirectional
    );
}

#[test]
fn classic_members_rejoin_and_give_up_partitions_before_a_consumer_member_gets_them() {
    let mut scene = Scene::upgraded(
        &stable_classic_group("consumer"),
        MigrationPolicy::Bidirectional,
    )
    .unwrap();
    // A consumer-protocol member joins: epoch 6, a new target; it gets nothing yet, since
    // the classic members still own everything.
    let r = scene.heartbeat(consumer_join("c")).response;
    assert_eq!(scene.group.group_epoch(), 6);
    assert_eq!(r.assignment, Some(Assignment::new()));
    let c_target = scene.group.target("c");
    assert!(!c_target.is_empty());

    // The classic members learn it from their heartbeats.
    assert_eq!(
        scene.classic_heartbeat("a", 5),
        Err(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        scene.classic_heartbeat("a", 4),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        scene.classic_heartbeat("c", 6),
        Err(ResponseError::UnknownMemberId),
        "c does not speak the classic protocol"
    );

    // `a` is cooperative: it rejoins still owning 0 and 1, and keeps what it owns until it
    // rejoins without it.
    let generation = scene.classic_join("a", &[0, 1]).unwrap();
    let a = scene.group.member("a").unwrap().clone();
    let a_target = scene.group.target("a");
    if a_target == parts(&[0, 1]) {
        assert_eq!(generation, 6);
    } else {
        assert_eq!(a.state, MemberState::UnrevokedPartitions);
        assert_eq!(generation, 5, "the epoch moves on once it revoked");
        let synced = scene.classic_sync("a", generation).unwrap();
        assert_eq!(parts(&synced), a.assigned);
        assert_eq!(
            scene.classic_heartbeat("a", generation),
            Err(ResponseError::RebalanceInProgress),
            "it must rejoin after revoking"
        );
        let kept: Vec<i32> = synced.clone();
        let generation = scene.classic_join("a", &kept).unwrap();
        assert_eq!(generation, 6);
    }
    // `b` is eager: it revoked everything before rejoining.
    let generation = scene.classic_join("b", &[]).unwrap();
    assert_eq!(generation, 6);
    let synced = scene.classic_sync("b", 6).unwrap();
    assert_eq!(parts(&synced), scene.group.member("b").unwrap().assigned);

    // Now `c` is given its partitions, and everybody is stable.
    let mut beat = consumer_join("c");
    beat.member_epoch = scene.group.member("c").unwrap().member_epoch;
    beat.owned = Some(Assignment::new());
    let r = scene.heartbeat(beat);
    assert_eq!(r.response.assignment, Some(c_target));
    assert_eq!(scene.classic_heartbeat("b", 6), Ok(()));
    assert_eq!(scene.group.state(), ConsumerGroupState::Stable);
}

#[test]
fn new_classic_members_join_a_consumer_group_with_a_member_id_and_the_same_protocol() {
    let mut scene = Scene::upgraded(
        &stable_classic_group("consumer"),
        MigrationPolicy::Bidirectional,
    )
    .unwrap();
    assert_eq!(
        scene.classic_join("", &[]),
        Err(ResponseError::MemberIdRequired)
    );
    let ctx = Context {
        now: scene.now,
        topics: &scene.topics,
        config: &scene.config,
    };
    let mut other = classic_join("fresh", &[]);
    other.protocols[0].0 = "roundrobin".into();
    let refused = scene.group.classic_join(&other, &ctx).unwrap_err();
    assert_eq!(refused.code, ResponseError::InconsistentGroupProtocol);
    other.protocol_type = "connect".into();
    let refused = scene.group.classic_join(&other, &ctx).unwrap_err();
    assert_eq!(refused.code, ResponseError::InconsistentGroupProtocol);

    assert_eq!(scene.classic_join("fresh", &[]), Ok(6));
    assert!(scene.group.member("fresh").unwrap().uses_classic_protocol());
    scene.config.max_size = 3;
    assert_eq!(
        scene.classic_join("one-too-many", &[]),
        Err(ResponseError::GroupMaxSizeReached)
    );
}

#[test]
fn the_last_consumer_member_leaving_downgrades_the_group_when_the_policy_allows() {
    for (policy, downgrades) in [
        (MigrationPolicy::Bidirectional, true),
        (MigrationPolicy::Downgrade, true),
        (MigrationPolicy::Upgrade, false),
        (MigrationPolicy::Disabled, false),
    ] {
        let mut scene =
            Scene::upgraded(&stable_classic_group("consumer"), MigrationPolicy::Upgrade).unwrap();
        scene.heartbeat(consumer_join("c"));
        let c_target = scene.group.target("c").len();
        scene.config.migration_policy = policy;
        let mut leave = consumer_join("c");
        leave.member_epoch = -1;
        let outcome = scene.heartbeat(leave);
        assert_eq!(outcome.response.member_epoch, -1);
        match outcome.downgrade {
            Some(value) => {
                assert!(downgrades, "{policy:?}");
                assert_eq!(value.protocol_type, "consumer");
                assert_eq!(value.protocol.as_deref(), Some("range"));
                assert_eq!(value.generation, 6);
                let ids: Vec<&str> = value.members.iter().map(|m| m.member_id.as_str()).collect();
                assert_eq!(ids, ["a", "b"]);
                let assigned: Vec<i32> = value
                    .members
                    .iter()
                    .flat_map(|m| decode_assignment(&m.assignment).unwrap())
                    .flat_map(|(_, ps)| ps)
                    .collect();
                assert_eq!(
                    assigned.len(),
                    4 - c_target,
                    "the remaining members' targets; the rebalance hands out the rest"
                );
                assert!(scene.group.is_empty(), "the tombstones emptied the group");
                assert!(outcome.records.iter().any(|r| r.value.is_none()
                    && matches!(r.key, records::RecordKey::GroupMetadata { .. })));
            }
            None => {
                assert!(!downgrades, "{policy:?}");
                assert!(scene.group.member("c").is_none());
                assert_eq!(scene.group.members().len(), 2);
            }
        }
    }
}

#[test]
fn classic_members_leave_a_consumer_group_with_leave_group() {
    let mut scene = Scene::upgraded(
        &stable_classic_group("consumer"),
        MigrationPolicy::Bidirectional,
    )
    .unwrap();
    scene.heartbeat(consumer_join("c"));
    let (records, results) = scene.group.classic_leave(
        &[
            ("a".into(), None),
            ("c".into(), None),
            ("nobody".into(), None),
        ],
        &scene.topics.clone(),
    );
    assert_eq!(
        results,
        vec![
            Ok(()),
            Err(ResponseError::UnknownMemberId),
            Err(ResponseError::UnknownMemberId)
        ]
    );
    assert!(!records.is_empty());
    assert!(scene.group.member("a").is_none());
    assert_eq!(scene.group.group_epoch(), 7);
}

#[test]
fn the_last_consumer_member_expiring_downgrades_the_group_too() {
    let mut scene = Scene::upgraded(
        &stable_classic_group("consumer"),
        MigrationPolicy::Bidirectional,
    )
    .unwrap();
    scene.heartbeat(consumer_join("c"));
    // The classic members keep heartbeating; the consumer member falls silent.
    scene.now = 44_000;
    assert_eq!(
        scene.classic_heartbeat("a", 5),
        Err(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        scene.classic_heartbeat("b", 5),
        Err(ResponseError::RebalanceInProgress)
    );
    scene.now = 46_000;
    assert!(scene.group.may_downgrade_at(scene.now));
    let ctx = Context {
        now: scene.now,
        topics: &scene.topics,
        config: &scene.config,
    };
    let (records, expired, downgrade) = scene.group.expire_or_downgrade(&ctx);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].0, "c");
    let value = downgrade.expect("a downgrade");
    assert_eq!(value.members.len(), 2);
    assert!(!records.is_empty());
    assert!(scene.group.is_empty());
}

#[test]
fn a_classic_member_told_to_rejoin_that_never_does_is_removed_after_its_rebalance_timeout() {
    let mut scene = Scene::upgraded(
        &stable_classic_group("consumer"),
        MigrationPolicy::Bidirectional,
    )
    .unwrap();
    scene.heartbeat(consumer_join("c"));
    assert_eq!(
        scene.classic_heartbeat("a", 5),
        Err(ResponseError::RebalanceInProgress)
    );
    // `b` rejoins at once; `a` keeps heartbeating but never rejoins.
    assert_eq!(scene.classic_join("b", &[]), Ok(6));
    assert!(scene.classic_sync("b", 6).is_ok());
    for t in [10_000, 20_000, 29_000] {
        scene.now = t;
        let _ = scene.classic_heartbeat("a", 5);
        let _ = scene.classic_heartbeat("b", 6);
    }
    assert!(scene.group.expired(29_999).is_empty());
    assert_eq!(
        scene.group.expired(30_000),
        vec![("a".to_string(), timeouts::Expiry::Rebalance)]
    );
}

#[test]
fn a_classic_member_that_joins_but_never_syncs_is_removed_after_its_rebalance_timeout() {
    let mut scene = Scene::upgraded(
        &stable_classic_group("consumer"),
        MigrationPolicy::Bidirectional,
    )
    .unwrap();
    assert_eq!(scene.classic_join("fresh", &[]), Ok(6));
    assert_eq!(scene.classic_join("a", &[]), Ok(6));
    scene.now = 1_000;
    assert!(scene.classic_sync("a", 6).is_ok());
    assert!(
        scene.group.rebalance_deadline("a").is_none(),
        "a synced in time"
    );
    assert_eq!(
        scene.group.rebalance_deadline("fresh").map(|d| d.at),
        Some(30_000)
    );
    // It heartbeats, but never syncs.
    for t in [9_000, 18_000, 27_000] {
        scene.now = t;
        let _ = scene.classic_heartbeat("fresh", 6);
    }
    let fresh = |expired: Vec<(String, timeouts::Expiry)>| {
        expired
            .into_iter()
            .find(|(id, _)| id == "fresh")
            .map(|(_, why)| why)
    };
    assert_eq!(fresh(scene.group.expired(29_999)), None);
    assert_eq!(
        fresh(scene.group.expired(30_000)),
        Some(timeouts::Expiry::Rebalance)
    );
}
