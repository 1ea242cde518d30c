//! Share group membership, heartbeat by heartbeat.

use super::*;

const T: Uuid = Uuid::from_u128(1);
const U: Uuid = Uuid::from_u128(2);

fn config() -> ShareGroupConfig {
    ShareGroupConfig {
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 5_000,
        assignment_interval_ms: 1_000,
        max_size: 3,
    }
}

fn topics(partitions: &[(&str, Uuid, i32)]) -> TopicsView {
    partitions
        .iter()
        .map(|(name, id, n)| (name.to_string(), (*id, (0..*n).collect())))
        .collect()
}

fn join(member: &str, names: &[&str]) -> Heartbeat {
    Heartbeat {
        member_id: member.into(),
        member_epoch: JOIN_EPOCH,
        topics: Some(names.iter().map(|n| n.to_string()).collect()),
        ..Heartbeat::default()
    }
}

fn beat(member: &str, epoch: i32) -> Heartbeat {
    Heartbeat {
        member_id: member.into(),
        member_epoch: epoch,
        ..Heartbeat::default()
    }
}

fn tps(list: &[(Uuid, i32)]) -> BTreeSet<TopicPartition> {
    list.iter().copied().collect()
}

#[test]
fn a_first_member_gets_every_partition_and_the_assignment_only_when_it_changes() {
    let mut g = ShareGroup::default();
    let view = topics(&[("t", T, 2)]);
    let answer = g
        .heartbeat(&join("a", &["t"]), &view, &config(), 0)
        .expect("joined");
    assert_eq!(answer.member_epoch, 1);
    assert_eq!(answer.heartbeat_interval_ms, 5_000);
    assert_eq!(answer.assignment, Some(tps(&[(T, 0), (T, 1)])));
    let again = g
        .heartbeat(&beat("a", 1), &view, &config(), 10)
        .expect("beat");
    assert_eq!((again.member_epoch, again.assignment), (1, None));
}

#[test]
fn a_newcomer_waits_for_the_assignment_interval_then_both_move_without_revocation() {
    let mut g = ShareGroup::default();
    let view = topics(&[("t", T, 2)]);
    g.heartbeat(&join("a", &["t"]), &view, &config(), 0)
        .expect("a");
    let b = g
        .heartbeat(&join("b", &["t"]), &view, &config(), 500)
        .expect("b");
    assert_eq!(
        (b.member_epoch, b.assignment),
        (1, Some(BTreeSet::new())),
        "inside the interval: the old target, which has nothing for b"
    );
    assert_eq!(g.group_epoch(), 2);
    let a = g
        .heartbeat(&beat("a", 1), &view, &config(), 1_000)
        .expect("a");
    assert_eq!(a.member_epoch, 2);
    let b = g
        .heartbeat(&beat("b", 1), &view, &config(), 1_000)
        .expect("b");
    assert_eq!(b.member_epoch, 2);
    let (a, b) = (
        a.assignment.unwrap_or_default(),
        b.assignment.unwrap_or_default(),
    );
    assert_eq!(a.len() + b.len(), 2);
    assert!(a.is_disjoint(&b), "two partitions, two members: one each");
}

#[test]
fn four_members_on_two_partitions_share_each_partition_two_ways() {
    let mut g = ShareGroup::default();
    let view = topics(&[("t", T, 2)]);
    let cfg = ShareGroupConfig {
        max_size: 10,
        ..config()
    };
    for (i, m) in ["a", "b", "c", "d"].iter().enumerate() {
        let now = i64::try_from(i).unwrap_or(0) * 2_000;
        g.heartbeat(&join(m, &["t"]), &view, &cfg, now)
            .expect("joined");
    }
    let mut holders: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for m in ["a", "b", "c", "d"] {
        let epoch = g.members()[m].epoch;
        g.heartbeat(&beat(m, epoch), &view, &cfg, 10_000)
            .expect("beat");
        let member = &g.members()[m];
        assert_eq!(member.assignment.len(), 1, "{m}");
        for tp in &member.assignment {
            *holders.entry(*tp).or_default() += 1;
        }
    }
    assert_eq!(holders, BTreeMap::from([((T, 0), 2), ((T, 1), 2)]));
}

#[test]
fn misuse_is_refused_with_kafkas_codes_and_changes_nothing() {
    let mut g = ShareGroup::default();
    let view = topics(&[("t", T, 2)]);
    g.heartbeat(&join("a", &["t"]), &view, &config(), 0)
        .expect("a");
    g.heartbeat(&join("b", &["t"]), &view, &config(), 1_000)
        .expect("b");
    g.heartbeat(&beat("a", 1), &view, &config(), 1_000)
        .expect("a moves to 2");
    let cases = [
        (beat("", 1), ResponseError::InvalidRequest),
        (beat("a", -2), ResponseError::InvalidRequest),
        (
            Heartbeat {
                topics: Some(Vec::new()),
                ..join("new", &[])
            },
            ResponseError::InvalidRequest,
        ),
        (beat("ghost", 3), ResponseError::UnknownMemberId),
        (beat("ghost", LEAVE_EPOCH), ResponseError::UnknownMemberId),
        (beat("a", 7), ResponseError::FencedMemberEpoch),
    ];
    for (hb, code) in cases {
        let before = g.clone();
        let refused = g.heartbeat(&hb, &view, &config(), 2_000);
        assert_eq!(refused.map_err(|e| e.code()).err(), Some(code), "{hb:?}");
        assert_eq!(g, before, "{hb:?} changed the group");
    }
    // The previous epoch is still accepted once (its answer may have been lost).
    assert!(g.heartbeat(&beat("a", 1), &view, &config(), 2_000).is_ok());
    g.heartbeat(&join("c", &["t"]), &view, &config(), 2_000)
        .expect("c");
    assert_eq!(
        g.heartbeat(&join("d", &["t"]), &view, &config(), 2_000)
            .map_err(|e| e.code())
            .err(),
        Some(ResponseError::GroupMaxSizeReached)
    );
}

#[test]
fn leaving_and_expiring_members_hand_their_partitions_on() {
    let mut g = ShareGroup::default();
    let view = topics(&[("t", T, 2)]);
    g.heartbeat(&join("a", &["t"]), &view, &config(), 0)
        .expect("a");
    g.heartbeat(&join("b", &["t"]), &view, &config(), 1_000)
        .expect("b");
    let left = g
        .heartbeat(&beat("b", LEAVE_EPOCH), &view, &config(), 2_000)
        .expect("b left");
    assert_eq!(left.member_epoch, LEAVE_EPOCH);
    // a has not heartbeated since b joined: it is still at epoch 1.
    let a = g
        .heartbeat(&beat("a", 1), &view, &config(), 3_000)
        .expect("a");
    assert_eq!(
        (a.member_epoch, a.assignment),
        (3, Some(tps(&[(T, 0), (T, 1)])))
    );
    assert_eq!(g.expire(3_000 + 44_999), Vec::<String>::new());
    assert_eq!(g.expire(3_000 + 45_000), vec!["a".to_string()]);
    assert!(g.is_empty());
}

#[test]
fn partitions_initialized_later_and_new_subscriptions_are_assigned() {
    let mut g = ShareGroup::default();
    g.heartbeat(
        &join("a", &["t", "u"]),
        &topics(&[("t", T, 1)]),
        &config(),
        0,
    )
    .expect("a");
    let grown = topics(&[("t", T, 2), ("u", U, 1)]);
    let a = g
        .heartbeat(&beat("a", 1), &grown, &config(), 1_000)
        .expect("a");
    assert_eq!(a.assignment, Some(tps(&[(T, 0), (T, 1), (U, 0)])));
    let narrowed = Heartbeat {
        topics: Some(vec!["u".into()]),
        ..beat("a", 2)
    };
    let a = g.heartbeat(&narrowed, &grown, &config(), 2_000).expect("a");
    assert_eq!(a.assignment, Some(tps(&[(U, 0)])));
}

#[test]
fn a_member_that_resubscribes_stops_reading_the_old_topic_at_once() {
    let mut g = ShareGroup::default();
    let view = topics(&[("t", T, 2), ("u", U, 1)]);
    let a = g
        .heartbeat(&join("a", &["t"]), &view, &config(), 0)
        .expect("joined");
    assert_eq!(a.assignment, Some(tps(&[(T, 0), (T, 1)])));
    // Inside the assignment interval the target is not recomputed, but t is dropped now.
    let moved = Heartbeat {
        topics: Some(vec!["u".into()]),
        ..beat("a", 1)
    };
    let a = g.heartbeat(&moved, &view, &config(), 200).expect("beat");
    assert_eq!(a.assignment, Some(BTreeSet::new()));
    let a = g
        .heartbeat(&beat("a", a.member_epoch), &view, &config(), 1_000)
        .expect("beat");
    assert_eq!(
        a.assignment,
        Some(tps(&[(U, 0)])),
        "u once the interval passed"
    );
}
