//! Step-by-step scenarios of the group state machine, with time passed in by hand.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::classic::{Group, NEW_MEMBER_JOIN_TIMEOUT_MS};
use super::commit::Committer;
use super::effects::{AfterStore, Effects, JoinResult, Now};
use super::heartbeat::LeavingMember;
use super::join::{JoinOutcome, JoinRequest};
use super::member::MemberProtocol;
use super::state::GroupState::{self, *};
use super::sync::{SyncOutcome, SyncRequest};

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn at(mono: i64) -> Now {
    Now {
        mono,
        wall: 1_000_000 + mono,
    }
}

fn protocols(names: &[(&str, &str)]) -> Vec<MemberProtocol> {
    names
        .iter()
        .map(|(n, m)| MemberProtocol {
            name: n.to_string(),
            metadata: Bytes::copy_from_slice(m.as_bytes()),
        })
        .collect()
}

fn join_req(member_id: &str, meta: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols(&[("range", meta)]),
        require_known_member_id: true,
        supports_skip_assignment: false,
        reason: None,
    }
}

fn static_req(member_id: &str, instance: &str, meta: &str) -> JoinRequest {
    JoinRequest {
        instance_id: Some(instance.into()),
        require_known_member_id: false,
        ..join_req(member_id, meta)
    }
}

fn sync_req(member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        member_id: member_id.into(),
        instance_id: None,
        generation,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::copy_from_slice(a.as_bytes())))
            .collect(),
    }
}

/// A dynamic member's KIP-394 first join: returns its assigned id.
fn first_join(g: &mut Group, t: i64) -> String {
    let (outcome, _) = g.join(join_req("", "m"), at(t));
    match outcome {
        JoinOutcome::Reply(r) => {
            assert_eq!(r.error, Some(ResponseError::MemberIdRequired));
            assert!(r.member_id.starts_with("client-"));
            r.member_id
        }
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    }
}

fn expect_wait(outcome: JoinOutcome) -> String {
    match outcome {
        JoinOutcome::Wait(id) => id,
        other => panic!("expected to wait, got {other:?}"),
    }
}

fn reply_for<'a>(effects: &'a Effects, member: &str) -> &'a JoinResult {
    effects
        .joins
        .iter()
        .find(|(m, _)| m == member)
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("no join reply for {member} in {:?}", effects.joins))
}

/// Runs a full rebalance to Stable for members that are already awaiting join, with the
/// leader assigning `a-<member>`; returns the generation.
fn sync_all(g: &mut Group, t: i64) -> i32 {
    assert_eq!(g.state(), CompletingRebalance);
    let generation = g.generation();
    let leader = g.leader().unwrap().to_string();
    let members: Vec<String> = g.members().map(|m| m.id.clone()).collect();
    for m in members.iter().filter(|m| **m != leader) {
        let (outcome, _) = g.sync(sync_req(m, generation, &[]), at(t));
        assert_eq!(outcome, SyncOutcome::Wait(m.clone()));
    }
    let assignments: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.clone(), format!("a-{m}")))
        .collect();
    let refs: Vec<(&str, &str)> = assignments
        .iter()
        .map(|(m, a)| (m.as_str(), a.as_str()))
        .collect();
    let (outcome, effects) = g.sync(sync_req(&leader, generation, &refs), at(t));
    assert_eq!(outcome, SyncOutcome::Wait(leader.clone()));
    assert_eq!(effects.stores.len(), 1, "the assignment is persisted first");
    let store = effects.stores.into_iter().next().unwrap();
    assert_eq!(store.value.generation, generation);
    assert_eq!(
        g.state(),
        CompletingRebalance,
        "not stable before the record is durable"
    );
    let effects = g.on_stored(store.then, Ok(()), at(t));
    assert_eq!(g.state(), Stable);
    assert_eq!(
        effects.syncs.len(),
        members.len(),
        "every waiting member gets its assignment"
    );
    for (m, r) in &effects.syncs {
        assert_eq!(r.error, None);
        assert_eq!(r.assignment, Bytes::from(format!("a-{m}")));
    }
    generation
}

/// Brings up a stable group of `n` dynamic members with no initial delay.
fn stable_group(n: usize) -> (Group, Vec<String>) {
    let mut g = Group::new("g", at(0), 0);
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = first_join(&mut g, 0);
        let (outcome, _) = g.join(join_req(&id, "m"), at(0));
        expect_wait(outcome);
        ids.push(id);
    }
    let effects = g.tick(at(0));
    assert_eq!(effects.joins.len(), n);
    sync_all(&mut g, 0);
    (g, ids)
}

#[test]
fn group_max_size_admits_members_and_rejoins_but_no_one_beyond() {
    let (mut g, ids) = stable_group(2);
    assert!(g.admits("", 3), "room for a third");
    assert!(!g.admits("", 2), "a new member beyond group.max.size");
    assert!(g.admits(&ids[0], 2), "a member may always rejoin");
    // During a rebalance only the members that rejoined so far count.
    let leaving = LeavingMember {
        member_id: ids[1].clone(),
        instance_id: None,
        reason: None,
    };
    g.leave(&[leaving], at(100)).0.expect("left");
    assert_eq!(g.state(), PreparingRebalance);
    assert!(g.admits("", 1), "nobody rejoined yet");
    expect_wait(g.join(join_req(&ids[0], "m"), at(200)).0);
    assert!(g.admits(&ids[0], 1), "the rejoined member again");
    assert!(!g.admits("", 1), "the rejoined member fills the group");
    assert!(
        Group::new("e", at(0), 0).admits("", 1),
        "an empty group takes anyone"
    );
}

#[test]
fn kip394_first_join_needs_the_member_id_then_one_member_becomes_stable() {
    let mut g = Group::new("g", at(0), 0);
    let id = first_join(&mut g, 0);
    assert_eq!(
        g.state(),
        Empty,
        "a pending member does not start a rebalance"
    );
    let (outcome, effects) = g.join(join_req(&id, "m"), at(10));
    assert_eq!(expect_wait(outcome), id);
    assert!(
        effects.joins.is_empty(),
        "the initial delay runs even when it is 0"
    );
    assert_eq!(g.state(), PreparingRebalance);
    let effects = g.tick(at(10));
    let reply = reply_for(&effects, &id);
    assert_eq!(reply.error, None);
    assert_eq!(reply.generation, 1);
    assert_eq!(reply.leader, id);
    assert_eq!(reply.protocol_name.as_deref(), Some("range"));
    assert_eq!(
        reply.members.len(),
        1,
        "the leader gets all members' metadata"
    );
    assert_eq!(sync_all(&mut g, 20), 1);
}

#[test]
fn initial_delay_waits_for_members_that_arrive_together() {
    let mut g = Group::new("g", at(0), 3_000);
    let mut ids = Vec::new();
    for t in [0, 100, 200] {
        let id = first_join(&mut g, t);
        expect_wait(g.join(join_req(&id, "m"), at(t)).0);
        ids.push(id);
    }
    assert_eq!(g.next_deadline(), Some(3_000));
    // Members arrived during the delay: it is extended once more instead of completing.
    assert!(g.tick(at(3_000)).joins.is_empty());
    assert_eq!(g.state(), PreparingRebalance);
    assert_eq!(g.next_deadline(), Some(6_000));
    let effects = g.tick(at(6_000));
    assert_eq!(effects.joins.len(), 3);
    let leader = g.leader().unwrap().to_string();
    assert_eq!(leader, ids[0], "the first member to join leads");
    assert_eq!(reply_for(&effects, &leader).members.len(), 3);
    for id in &ids[1..] {
        assert!(
            reply_for(&effects, id).members.is_empty(),
            "followers get no metadata"
        );
        assert_eq!(reply_for(&effects, id).leader, leader);
    }
    sync_all(&mut g, 6_000);
}

#[test]
fn a_leaving_member_triggers_a_rebalance_the_others_rejoin() {
    let (mut g, ids) = stable_group(3);
    let (result, _) = g.leave(
        &[LeavingMember {
            member_id: ids[1].clone(),
            instance_id: None,
            reason: None,
        }],
        at(100),
    );
    assert_eq!(result, Ok(vec![Ok(())]));
    assert_eq!(g.state(), PreparingRebalance);
    for id in [&ids[0], &ids[2]] {
        assert_eq!(
            g.heartbeat(id, None, 1, at(200)),
            Err(ResponseError::RebalanceInProgress)
        );
    }
    expect_wait(g.join(join_req(&ids[0], "m"), at(300)).0);
    let (outcome, effects) = g.join(join_req(&ids[2], "m"), at(300));
    expect_wait(outcome);
    assert_eq!(
        effects.joins.len(),
        2,
        "the phase ends once everybody rejoined"
    );
    assert_eq!(g.generation(), 2);
    assert_eq!(g.members().count(), 2);
    sync_all(&mut g, 300);
    assert_eq!(
        g.heartbeat(&ids[1], None, 2, at(400)),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_silent_member_expires_after_its_session_timeout() {
    let (mut g, ids) = stable_group(3);
    for t in (3_000..=9_000).step_by(3_000) {
        assert_eq!(g.heartbeat(&ids[0], None, 1, at(t)), Ok(()));
        assert_eq!(g.heartbeat(&ids[1], None, 1, at(t)), Ok(()));
    }
    assert!(g.tick(at(9_999)).joins.is_empty());
    assert_eq!(g.state(), Stable);
    g.tick(at(i64::from(SESSION)));
    assert_eq!(g.state(), PreparingRebalance);
    assert!(g.member(&ids[2]).is_none(), "the silent member is gone");
    expect_wait(g.join(join_req(&ids[0], "m"), at(10_100)).0);
    let (_, effects) = g.join(join_req(&ids[1], "m"), at(10_100));
    assert_eq!(effects.joins.len(), 2);
    assert_eq!(g.generation(), 2);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_when_the_rebalance_timeout_ends() {
    let (mut g, ids) = stable_group(2);
    // The leader rejoins: that alone forces a rebalance.
    expect_wait(g.join(join_req(&ids[0], "m"), at(1_000)).0);
    assert_eq!(g.state(), PreparingRebalance);
    // The follower keeps heartbeating but never rejoins.
    for t in (2_000..31_000).step_by(5_000) {
        assert_eq!(
            g.heartbeat(&ids[1], None, 1, at(t)),
            Err(ResponseError::RebalanceInProgress)
        );
    }
    let effects = g.tick(at(1_000 + i64::from(REBALANCE)));
    assert_eq!(reply_for(&effects, &ids[0]).generation, 2);
    assert_eq!(g.members().count(), 1);
    assert_eq!(g.state(), CompletingRebalance);
}

#[test]
fn followers_with_unchanged_metadata_rejoining_a_stable_group_get_the_current_generation() {
    let (mut g, ids) = stable_group(2);
    match g.join(join_req(&ids[1], "m"), at(1)).0 {
        JoinOutcome::Reply(r) => {
            assert_eq!((r.error, r.generation), (None, 1));
            assert!(r.members.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(g.state(), Stable);
    // New metadata (e.g. a cooperative member's owned partitions changed) rebalances.
    expect_wait(g.join(join_req(&ids[1], "changed"), at(2)).0);
    assert_eq!(g.state(), PreparingRebalance);
}

#[test]
fn cooperative_rebalances_keep_members_and_bump_generations() {
    // The coordinator runs plain rebalances; incremental logic is the clients'. Two
    // consecutive rebalances (revoke, then assign) must each produce a generation.
    let (mut g, ids) = stable_group(2);
    for (round, generation) in [(1, 2), (2, 3)] {
        for id in &ids {
            let (_, effects) = g.join(join_req(id, &format!("owned-{round}")), at(round * 100));
            if g.state() == CompletingRebalance {
                assert_eq!(effects.joins.len(), 2);
            }
        }
        assert_eq!(g.generation(), generation);
        sync_all(&mut g, round * 100);
    }
}

#[test]
fn errors_where_kafka_returns_them() {
    let (mut g, ids) = stable_group(2);
    let unknown = g.join(join_req("nobody", "m"), at(1)).0;
    assert!(
        matches!(unknown, JoinOutcome::Reply(r) if r.error == Some(ResponseError::UnknownMemberId))
    );
    let mut other = join_req("", "m");
    other.protocols = protocols(&[("roundrobin", "m")]);
    let inconsistent = g.join(other, at(1)).0;
    assert!(
        matches!(inconsistent, JoinOutcome::Reply(r) if r.error == Some(ResponseError::InconsistentGroupProtocol))
    );
    assert_eq!(
        g.sync(sync_req(&ids[0], 7, &[]), at(1)).0,
        SyncOutcome::Reply(super::effects::SyncResult::error(
            ResponseError::IllegalGeneration
        ))
    );
    assert_eq!(
        g.heartbeat(&ids[0], None, 7, at(1)),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat("nobody", None, 1, at(1)),
        Err(ResponseError::UnknownMemberId)
    );
    let mut wrong_protocol = sync_req(&ids[0], 1, &[]);
    wrong_protocol.protocol_name = Some("sticky".into());
    assert!(matches!(
        g.sync(wrong_protocol, at(1)).0,
        SyncOutcome::Reply(r) if r.error == Some(ResponseError::InconsistentGroupProtocol)
    ));
    // A stable member's SyncGroup just gets its assignment again.
    match g.sync(sync_req(&ids[1], 1, &[]), at(1)).0 {
        SyncOutcome::Reply(r) => assert_eq!(r.assignment, Bytes::from(format!("a-{}", ids[1]))),
        other => panic!("{other:?}"),
    }
    let leave = g
        .leave(
            &[LeavingMember {
                member_id: "nobody".into(),
                instance_id: None,
                reason: None,
            }],
            at(1),
        )
        .0;
    assert_eq!(leave, Ok(vec![Err(ResponseError::UnknownMemberId)]));
}

#[test]
fn sync_during_a_rebalance_is_told_to_rejoin_and_waiting_syncs_are_released() {
    let mut g = Group::new("g", at(0), 0);
    let a = first_join(&mut g, 0);
    expect_wait(g.join(join_req(&a, "m"), at(0)).0);
    let b = first_join(&mut g, 0);
    expect_wait(g.join(join_req(&b, "m"), at(0)).0);
    g.tick(at(0));
    let follower = if g.is_leader(&a) {
        b.clone()
    } else {
        a.clone()
    };
    assert_eq!(
        g.sync(sync_req(&follower, 1, &[]), at(1)).0,
        SyncOutcome::Wait(follower.clone())
    );
    // A third member arrives before the leader syncs: the waiting follower must rejoin.
    let c = first_join(&mut g, 2);
    let (_, effects) = g.join(join_req(&c, "m"), at(2));
    assert_eq!(g.state(), PreparingRebalance);
    assert_eq!(effects.syncs.len(), 1);
    assert_eq!(
        effects.syncs[0].1.error,
        Some(ResponseError::RebalanceInProgress)
    );
    assert!(matches!(
        g.sync(sync_req(&follower, 1, &[]), at(3)).0,
        SyncOutcome::Reply(r) if r.error == Some(ResponseError::RebalanceInProgress)
    ));
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut g = Group::new("g", at(0), 0);
    let a = first_join(&mut g, 0);
    expect_wait(g.join(join_req(&a, "m"), at(0)).0);
    let b = first_join(&mut g, 0);
    expect_wait(g.join(join_req(&b, "m"), at(0)).0);
    g.tick(at(0));
    let leader = g.leader().unwrap().to_string();
    let follower = if leader == a { b } else { a };
    let (_, effects) = g.sync(sync_req(&leader, 1, &[]), at(1));
    let store = effects.stores.into_iter().next().unwrap();
    g.on_stored(store.then, Ok(()), at(1));
    assert_eq!(g.state(), Stable);
    // The follower keeps heartbeating but never asks for its assignment.
    for t in (5_000..30_000).step_by(5_000) {
        assert_eq!(g.heartbeat(&follower, None, 1, at(t)), Ok(()));
        assert_eq!(g.heartbeat(&leader, None, 1, at(t)), Ok(()));
    }
    g.tick(at(i64::from(REBALANCE)));
    assert!(g.member(&follower).is_none());
    assert_eq!(g.state(), PreparingRebalance);
}

#[test]
fn a_failed_assignment_write_sends_members_back_to_rejoin() {
    let mut g = Group::new("g", at(0), 0);
    let a = first_join(&mut g, 0);
    expect_wait(g.join(join_req(&a, "m"), at(0)).0);
    g.tick(at(0));
    let (_, effects) = g.sync(sync_req(&a, 1, &[(a.as_str(), "x")]), at(1));
    let store = effects.stores.into_iter().next().unwrap();
    let effects = g.on_stored(store.then, Err(ResponseError::NotCoordinator), at(2));
    assert_eq!(
        effects.syncs[0].1.error,
        Some(ResponseError::NotCoordinator)
    );
    assert_eq!(g.state(), PreparingRebalance);
}

#[test]
fn an_unused_kip394_member_id_expires_and_unblocks_the_join_phase() {
    let (mut g, ids) = stable_group(1);
    let pending = first_join(&mut g, 0);
    // The stable member rejoins (leader → rebalance); the pending id holds the phase open.
    expect_wait(g.join(join_req(&ids[0], "m"), at(100)).0);
    assert_eq!(g.state(), PreparingRebalance);
    assert_eq!(g.next_deadline(), Some(i64::from(SESSION)));
    let effects = g.tick(at(i64::from(SESSION)));
    assert_eq!(reply_for(&effects, &ids[0]).generation, 2);
    // Too late now: the id is unknown.
    let late = g.join(join_req(&pending, "m"), at(SESSION as i64 + 1)).0;
    assert!(
        matches!(late, JoinOutcome::Reply(r) if r.error == Some(ResponseError::UnknownMemberId))
    );
}

#[test]
fn new_members_stuck_in_a_join_phase_are_dropped_after_five_minutes() {
    let (mut g, ids) = stable_group(1);
    let newcomer = first_join(&mut g, 0);
    expect_wait(g.join(join_req(&newcomer, "m"), at(0)).0);
    // The old member never rejoins and its session is kept alive by heartbeats; with a
    // huge rebalance timeout the newcomer's own join deadline fires first.
    if let Some(m) = g.members.get_mut(&ids[0]) {
        m.rebalance_timeout_ms = i32::MAX;
    }
    if let Some(p) = g.join_phase.as_mut() {
        p.deadline = i64::MAX;
    }
    for t in (5_000..NEW_MEMBER_JOIN_TIMEOUT_MS).step_by(5_000) {
        let _ = g.heartbeat(&ids[0], None, 1, at(t));
    }
    let effects = g.tick(at(NEW_MEMBER_JOIN_TIMEOUT_MS));
    assert_eq!(
        reply_for(&effects, &newcomer).error,
        Some(ResponseError::UnknownMemberId)
    );
    assert!(g.member(&newcomer).is_none());
}

#[test]
fn a_group_whose_last_member_leaves_becomes_empty_and_is_persisted() {
    let (mut g, ids) = stable_group(1);
    let (_, effects) = g.leave(
        &[LeavingMember {
            member_id: ids[0].clone(),
            instance_id: None,
            reason: Some("shutdown".into()),
        }],
        at(50),
    );
    assert_eq!(g.state(), Empty);
    assert_eq!(g.generation(), 2);
    assert_eq!(effects.stores.len(), 1);
    assert!(effects.stores[0].value.members.is_empty());
    assert_eq!(effects.stores[0].then, AfterStore::Nothing);
}

#[test]
fn a_restarted_static_member_takes_over_without_a_rebalance() {
    let mut g = Group::new("g", at(0), 0);
    let (outcome, _) = g.join(static_req("", "i-1", "m"), at(0));
    let old = expect_wait(outcome);
    assert!(
        old.starts_with("i-1-"),
        "static ids start with the instance id"
    );
    g.tick(at(0));
    sync_all(&mut g, 0);
    // Restart: same instance id, no member id, same metadata.
    let (outcome, effects) = g.join(static_req("", "i-1", "m"), at(100));
    let new = expect_wait(outcome);
    assert_ne!(new, old);
    assert_eq!(g.state(), Stable, "no rebalance");
    assert_eq!(g.static_member_id("i-1"), Some(new.as_str()));
    let store = effects
        .stores
        .into_iter()
        .next()
        .expect("the new id is persisted");
    assert_eq!(store.value.members[0].member_id, new);
    let effects = g.on_stored(store.then, Ok(()), at(101));
    let reply = reply_for(&effects, &new);
    assert_eq!((reply.error, reply.generation), (None, 1));
    assert_eq!(
        reply.leader, old,
        "pre-v9 clients are told the old leader so they do not assign"
    );
    // The member resumes its assignment.
    match g
        .sync(
            SyncRequest {
                instance_id: Some("i-1".into()),
                ..sync_req(&new, 1, &[])
            },
            at(102),
        )
        .0
    {
        SyncOutcome::Reply(r) => assert_eq!(r.assignment, Bytes::from(format!("a-{old}"))),
        other => panic!("{other:?}"),
    }
    // The zombie with the old id is fenced everywhere.
    assert_eq!(
        g.heartbeat(&old, Some("i-1"), 1, at(103)),
        Err(ResponseError::FencedInstanceId)
    );
    let zombie = g.join(static_req(&old, "i-1", "m"), at(103)).0;
    assert!(
        matches!(zombie, JoinOutcome::Reply(r) if r.error == Some(ResponseError::FencedInstanceId))
    );
    let who = Committer {
        member_id: old,
        instance_id: Some("i-1".into()),
        generation: 1,
    };
    assert_eq!(
        g.check_commit(&who, at(104)),
        Err(ResponseError::FencedInstanceId)
    );
}

#[test]
fn a_static_member_with_new_metadata_or_kip814_leader_gets_the_right_answer() {
    let mut g = Group::new("g", at(0), 0);
    expect_wait(g.join(static_req("", "i-1", "m"), at(0)).0);
    g.tick(at(0));
    sync_all(&mut g, 0);
    // KIP-814: a v9 static leader learns it leads but skips the assignment.
    let mut v9 = static_req("", "i-1", "m");
    v9.supports_skip_assignment = true;
    let (outcome, effects) = g.join(v9, at(10));
    let id = expect_wait(outcome);
    let store = effects.stores.into_iter().next().unwrap();
    let effects = g.on_stored(store.then, Ok(()), at(11));
    let reply = reply_for(&effects, &id);
    assert!(reply.skip_assignment);
    assert_eq!(reply.leader, id);
    assert_eq!(reply.members.len(), 1);
    // Changed metadata rebalances (at once here: the only member has rejoined).
    let (outcome, effects) = g.join(static_req("", "i-1", "new"), at(20));
    let id = expect_wait(outcome);
    assert_eq!(reply_for(&effects, &id).generation, 2);
    assert_eq!(g.state(), CompletingRebalance);
}

#[test]
fn static_members_that_miss_a_rebalance_stay_until_their_session_expires() {
    let mut g = Group::new("g", at(0), 0);
    let s = expect_wait(g.join(static_req("", "i-1", "m"), at(0)).0);
    let d = first_join(&mut g, 0);
    expect_wait(g.join(join_req(&d, "m"), at(0)).0);
    g.tick(at(0));
    sync_all(&mut g, 0);
    // The dynamic member rejoins with new metadata; the static one is silent but not removed
    // by the join phase.
    expect_wait(g.join(join_req(&d, "new"), at(1_000)).0);
    for t in (9_000..31_000).step_by(9_000) {
        let _ = g.heartbeat(&d, None, 1, at(t));
        let _ = g.heartbeat(&s, Some("i-1"), 1, at(t));
    }
    let effects = g.tick(at(1_000 + i64::from(REBALANCE)));
    assert!(
        g.member(&s).is_some(),
        "static members survive a missed join phase"
    );
    assert!(effects.joins.iter().any(|(m, _)| *m == d));
    assert_eq!(g.state(), CompletingRebalance);
}

#[test]
fn admin_removal_of_a_static_member_by_instance_id() {
    let mut g = Group::new("g", at(0), 0);
    expect_wait(g.join(static_req("", "i-1", "m"), at(0)).0);
    g.tick(at(0));
    sync_all(&mut g, 0);
    let leaving = [
        LeavingMember {
            member_id: String::new(),
            instance_id: Some("i-1".into()),
            reason: None,
        },
        LeavingMember {
            member_id: String::new(),
            instance_id: Some("i-unknown".into()),
            reason: None,
        },
    ];
    let (result, _) = g.leave(&leaving, at(5));
    assert_eq!(
        result,
        Ok(vec![Ok(()), Err(ResponseError::UnknownMemberId)])
    );
    assert_eq!(g.state(), Empty);
}

#[test]
fn who_may_commit() {
    let mut g = Group::new("g", at(0), 0);
    let simple = Committer {
        member_id: String::new(),
        instance_id: None,
        generation: -1,
    };
    assert_eq!(
        g.check_commit(&simple, at(0)),
        Ok(()),
        "offset-only use of an empty group"
    );
    let self_assigned = Committer {
        member_id: "generated-by-the-client".into(),
        ..simple.clone()
    };
    assert_eq!(
        g.check_commit(&self_assigned, at(0)),
        Ok(()),
        "generation -1 on an empty group, whatever the member id (Kafka's validateOffsetCommit)"
    );
    let id = first_join(&mut g, 0);
    expect_wait(g.join(join_req(&id, "m"), at(0)).0);
    g.tick(at(0));
    let member = Committer {
        member_id: id.clone(),
        instance_id: None,
        generation: 1,
    };
    assert_eq!(
        g.check_commit(&member, at(1)),
        Err(ResponseError::RebalanceInProgress)
    );
    sync_all(&mut g, 1);
    assert_eq!(g.check_commit(&member, at(2)), Ok(()));
    assert_eq!(
        g.check_commit(&simple, at(2)),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        g.check_commit(&self_assigned, at(2)),
        Err(ResponseError::UnknownMemberId),
        "not once the group has members"
    );
    let stale = Committer {
        generation: 0,
        ..member.clone()
    };
    assert_eq!(
        g.check_commit(&stale, at(2)),
        Err(ResponseError::IllegalGeneration)
    );
    // A commit counts as a heartbeat.
    assert_eq!(g.check_commit(&member, at(9_000)), Ok(()));
    g.tick(at(i64::from(SESSION)));
    assert_eq!(g.state(), Stable);
}

#[test]
fn describe_shows_assignments_only_when_stable() {
    let (mut g, ids) = stable_group(2);
    let summary = g.summary();
    assert_eq!(summary.state, Stable);
    assert_eq!(summary.protocol, "range");
    assert!(summary.members.iter().all(|m| !m.assignment.is_empty()));
    expect_wait(g.join(join_req(&ids[0], "m"), at(1)).0);
    let summary = g.summary();
    assert_eq!(summary.state, GroupState::PreparingRebalance);
    assert_eq!(summary.protocol, "");
    assert!(summary.members.iter().all(|m| m.assignment.is_empty()));
}

#[test]
fn persisted_group_round_trips_through_its_record() {
    let (g, ids) = stable_group(2);
    let value = g.to_value(None);
    let loaded = Group::from_value("g", value, at(500), 0);
    assert_eq!(loaded.state(), Stable);
    assert_eq!(loaded.generation(), 1);
    assert_eq!(loaded.leader(), g.leader());
    for id in &ids {
        assert_eq!(
            loaded.member(id).unwrap().assignment,
            g.member(id).unwrap().assignment
        );
    }
}
