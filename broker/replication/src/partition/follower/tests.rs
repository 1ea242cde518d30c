//! Step tests of the follower's decisions, by the cases of KIP-101 (truncate by epoch, never to
//! the high watermark), KIP-279 (back-to-back elections converge), KIP-320 (fencing and
//! diverging epochs) and the leadership changes around them; then the same rules performed on
//! real partitions by the code that calls them.

use bytes::Bytes;
use uuid::Uuid;

use super::*;
use crate::partition::{Partition, ReplicaFetch, ReplicaRead};
use tributary_storage::journal::Replay;
use tributary_storage::test_util::{simple, NOW};
use tributary_storage::{LogConfig, StorageError};

/// A replica's log as plain values: its epochs, log start, log end and high watermark.
#[derive(Debug, Clone)]
struct Replica {
    epochs: Vec<EpochEntry>,
    start: i64,
    end: i64,
    hw: i64,
}

impl Replica {
    /// A log from 0 to `end` with `epochs` as (epoch, start offset) and high watermark `hw`.
    fn new(epochs: &[(i32, i64)], end: i64, hw: i64) -> Replica {
        let epochs = epochs
            .iter()
            .map(|&(epoch, start_offset)| EpochEntry {
                epoch,
                start_offset,
            })
            .collect();
        Replica {
            epochs,
            start: 0,
            end,
            hw,
        }
    }

    fn log(&self) -> LocalLog<'_> {
        LocalLog {
            epochs: &self.epochs,
            log_start_offset: self.start,
            log_end_offset: self.end,
            high_watermark: self.hw,
        }
    }

    /// What storage does on a truncation to `offset`: epochs starting there or later go, the
    /// log end and high watermark come down to it.
    fn truncate(&mut self, offset: i64) {
        if offset >= self.end {
            return;
        }
        self.epochs.retain(|e| e.start_offset < offset);
        self.end = offset;
        self.hw = self.hw.min(offset);
    }
}

fn end(epoch: i32, end_offset: i64) -> EpochEnd {
    EpochEnd { epoch, end_offset }
}

/// An answer with records and the leader's positions.
fn data(high_watermark: i64, log_start_offset: i64) -> LeaderAnswer {
    LeaderAnswer {
        error_code: 0,
        diverging: EpochEnd::UNDEFINED,
        high_watermark,
        log_start_offset,
    }
}

fn diverging(epoch: i32, end_offset: i64) -> LeaderAnswer {
    LeaderAnswer {
        diverging: end(epoch, end_offset),
        ..data(0, 0)
    }
}

fn refused(error: ResponseError, high_watermark: i64, log_start_offset: i64) -> LeaderAnswer {
    LeaderAnswer {
        error_code: error.code(),
        ..data(high_watermark, log_start_offset)
    }
}

fn follower_of(leader: i32, epoch: i32) -> Role {
    Role::Follower { leader, epoch }
}

fn held(role: Role, partition_epoch: i32, applied: bool) -> Held {
    Held {
        term: Term {
            role,
            partition_epoch,
        },
        applied,
    }
}

fn term(role: Role, partition_epoch: i32) -> Term {
    Term {
        role,
        partition_epoch,
    }
}

// The epoch cache lookup both sides use.

#[test]
fn an_epoch_ends_where_the_next_one_starts_and_the_latest_ends_at_the_log_end() {
    let r = Replica::new(&[(1, 0), (3, 100), (7, 200)], 250, 250);
    let log = r.log();
    assert_eq!(log.end_of_epoch(1), Some(end(1, 100)));
    // An epoch this log never had: the largest below it, ending where the next one starts.
    assert_eq!(log.end_of_epoch(2), Some(end(1, 100)));
    assert_eq!(log.end_of_epoch(3), Some(end(3, 200)));
    assert_eq!(log.end_of_epoch(7), Some(end(7, 250)));
    // Older than any epoch here (the cache lost it to retention): itself, up to the first.
    assert_eq!(log.end_of_epoch(0), Some(end(0, 0)));
    // Newer than any, undefined, or no epochs at all: nothing.
    assert_eq!(log.end_of_epoch(8), None);
    assert_eq!(log.end_of_epoch(-1), None);
    assert_eq!(Replica::new(&[], 10, 10).log().end_of_epoch(1), None);
}

#[test]
fn the_epoch_lookup_answers_as_the_logs_offsets_for_leader_epoch_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = tributary_storage::test_util::open(dir.path(), LogConfig::default());
    for epoch in [1, 1, 3, 3, 3, 7] {
        log.append(&mut simple(2, NOW), epoch, NOW).expect("append");
    }
    let local = LocalLog::of(&log);
    for epoch in -1..=9 {
        let ours = local.end_of_epoch(epoch).unwrap_or(EpochEnd::UNDEFINED);
        let storage = log.end_offset_for_epoch(epoch);
        assert_eq!((ours.epoch, ours.end_offset), storage, "epoch {epoch}");
    }
    assert_eq!(
        local.fetch_position(),
        FetchPosition {
            fetch_offset: 12,
            last_fetched_epoch: 7
        }
    );
}

// The leader's check of a follower's fetch (KIP-320's diverging epoch).

#[test]
fn a_follower_whose_log_is_a_prefix_of_the_leaders_fetches_on() {
    let leader = Replica::new(&[(1, 0), (3, 100)], 150, 120);
    let at = |fetch_offset, last_fetched_epoch| FetchPosition {
        fetch_offset,
        last_fetched_epoch,
    };
    assert_eq!(diverging_epoch(&leader.log(), at(120, 3)), None);
    assert_eq!(diverging_epoch(&leader.log(), at(150, 3)), None);
    // All of epoch 1, up to where epoch 3 began on the leader.
    assert_eq!(diverging_epoch(&leader.log(), at(100, 1)), None);
    // No epoch sent (an empty follower): nothing to check.
    assert_eq!(diverging_epoch(&leader.log(), at(0, -1)), None);
}

#[test]
fn a_follower_that_ends_past_where_its_last_epoch_ended_on_the_leader_is_told_that_end() {
    let leader = Replica::new(&[(1, 0), (3, 100)], 150, 120);
    let follower = Replica::new(&[(1, 0)], 130, 90);
    assert_eq!(
        diverging_epoch(&leader.log(), follower.log().fetch_position()),
        Some(end(1, 100))
    );
}

#[test]
fn a_follower_with_an_epoch_the_leader_never_had_is_told_the_leaders_previous_epoch_and_its_end() {
    let leader = Replica::new(&[(1, 0), (3, 100)], 150, 120);
    let follower = Replica::new(&[(1, 0), (2, 90)], 110, 90);
    assert_eq!(
        diverging_epoch(&leader.log(), follower.log().fetch_position()),
        Some(end(1, 100))
    );
}

#[test]
fn an_epoch_newer_than_any_on_the_leader_gets_an_undefined_answer_the_follower_reads_as_no_divergence(
) {
    // Only a deposed leader can be asked this, and the fetch's current leader epoch fences
    // it first (KIP-320); on the wire the answer cannot be told from "no divergence".
    let leader = Replica::new(&[(1, 0), (3, 100)], 150, 120);
    let follower = Replica::new(&[(1, 0), (4, 120)], 130, 120);
    let told = diverging_epoch(&leader.log(), follower.log().fetch_position());
    assert_eq!(told, Some(EpochEnd::UNDEFINED));
    let answer = LeaderAnswer {
        diverging: EpochEnd::UNDEFINED,
        ..data(120, 0)
    };
    assert_eq!(next_step(&follower.log(), &answer), FollowerStep::Append);
}

// Where the follower cuts (KIP-101, KIP-279).

#[test]
fn a_follower_truncates_to_where_its_last_epoch_ends_on_the_leader_not_to_its_high_watermark() {
    let follower = Replica::new(&[(1, 0), (2, 50)], 80, 40);
    assert_eq!(truncation_offset(&follower.log(), end(2, 60)), 60);
    assert_eq!(
        next_step(&follower.log(), &diverging(2, 60)),
        FollowerStep::Truncate {
            offset: 60,
            cause: Cause::Diverged
        }
    );
}

#[test]
fn a_follower_with_an_epoch_the_leader_never_had_truncates_to_the_leaders_end_of_the_previous_epoch(
) {
    // The follower led epoch 2 alone and wrote 50..70, which nobody copied; the leader of
    // epoch 3 took over at 40.
    let leader = Replica::new(&[(1, 0), (3, 40)], 90, 60);
    let mut follower = Replica::new(&[(1, 0), (2, 50)], 70, 30);
    let told = diverging_epoch(&leader.log(), follower.log().fetch_position());
    assert_eq!(told, Some(end(1, 40)));
    let offset = truncation_offset(&follower.log(), end(1, 40));
    assert_eq!(
        offset, 40,
        "all of epoch 2 and the part of epoch 1 the leader lacks"
    );
    follower.truncate(offset);
    assert_eq!(
        diverging_epoch(&leader.log(), follower.log().fetch_position()),
        None,
        "now a prefix of the leader's log"
    );
}

#[test]
fn a_follower_that_missed_an_epoch_converges_in_rounds_after_back_to_back_elections() {
    // Epoch 2's leader wrote 60..90 that the follower never saw; the follower itself led
    // epoch 3 from 70 (it had copied epoch 1 up to 70 from a leader whose tail epoch 2's
    // leader never had); epoch 4 leads now.
    let leader = Replica::new(&[(1, 0), (2, 60), (4, 90)], 100, 95);
    let mut follower = Replica::new(&[(1, 0), (3, 70)], 80, 60);

    // Round 1: epoch 3 is unknown to the leader, which names epoch 2 ending at 90; the
    // follower has no epoch 2 and cuts where its own epoch 1 ends.
    let told = diverging_epoch(&leader.log(), follower.log().fetch_position());
    assert_eq!(told, Some(end(2, 90)));
    let offset = truncation_offset(&follower.log(), end(2, 90));
    assert_eq!(offset, 70);
    follower.truncate(offset);

    // Round 2: asking with epoch 1 now, it learns epoch 1 ended at 60 on the leader.
    let told = diverging_epoch(&leader.log(), follower.log().fetch_position());
    assert_eq!(told, Some(end(1, 60)));
    let offset = truncation_offset(&follower.log(), end(1, 60));
    assert_eq!(offset, 60);
    follower.truncate(offset);

    // Round 3: a prefix of the leader's log; fetching goes on from 60.
    assert_eq!(
        diverging_epoch(&leader.log(), follower.log().fetch_position()),
        None
    );
    assert_eq!(follower.end, 60);
}

#[test]
fn a_follower_that_knows_no_epoch_cuts_at_the_lower_of_the_leaders_end_and_its_own() {
    let long = Replica::new(&[], 80, 20);
    assert_eq!(truncation_offset(&long.log(), end(2, 50)), 50);
    let short = Replica::new(&[], 30, 20);
    assert_eq!(
        truncation_offset(&short.log(), end(2, 50)),
        30,
        "its log end: nothing to cut"
    );
}

#[test]
fn the_truncation_offset_never_passes_the_followers_log_end() {
    let follower = Replica::new(&[(1, 0), (2, 50)], 60, 55);
    assert_eq!(truncation_offset(&follower.log(), end(2, 90)), 60);
}

#[test]
fn a_diverging_answer_without_an_end_offset_truncates_to_the_high_watermark() {
    let follower = Replica::new(&[(1, 0), (2, 50)], 80, 40);
    assert_eq!(truncation_offset(&follower.log(), end(2, -1)), 40);
}

#[test]
fn a_diverging_end_offset_without_an_epoch_cuts_at_the_lower_of_both_ends() {
    let follower = Replica::new(&[(1, 0), (2, 50)], 80, 40);
    assert_eq!(
        next_step(&follower.log(), &diverging(-1, 55)),
        FollowerStep::Truncate {
            offset: 55,
            cause: Cause::Diverged
        }
    );
}

#[test]
fn records_without_a_diverging_epoch_are_appended_and_a_diverging_answer_appends_nothing() {
    let follower = Replica::new(&[(1, 0)], 80, 40);
    assert_eq!(
        next_step(&follower.log(), &data(80, 0)),
        FollowerStep::Append
    );
    let step = next_step(&follower.log(), &diverging(1, 70));
    assert!(
        matches!(step, FollowerStep::Truncate { offset: 70, .. }),
        "{step:?}"
    );
}

// Answers with an error: out of the leader's range (a restarted follower), fenced epochs.

#[test]
fn a_follower_behind_the_leaders_log_start_restarts_its_log_there() {
    let follower = Replica::new(&[(1, 0)], 10, 10);
    let answer = refused(ResponseError::OffsetOutOfRange, 150, 100);
    assert_eq!(
        next_step(&follower.log(), &answer),
        FollowerStep::RestartAt { offset: 100 }
    );
}

#[test]
fn a_follower_moved_to_tiered_storage_rebuilds_from_the_remote_log_at_the_leaders_local_start() {
    let follower = Replica::new(&[(1, 0)], 10, 10);
    let answer = refused(ResponseError::OffsetMovedToTieredStorage, 150, 100);
    assert_eq!(
        next_step(&follower.log(), &answer),
        FollowerStep::FromRemote {
            leader_local_start: 100
        }
    );
    // A leader local start not past this log's end leaves nothing to rebuild.
    let ahead = Replica::new(&[(1, 0)], 120, 120);
    assert_eq!(next_step(&ahead.log(), &answer), FollowerStep::BackOff);
}

#[test]
fn a_follower_beyond_the_leaders_log_cuts_to_the_leaders_high_watermark() {
    let follower = Replica::new(&[(1, 0)], 80, 80);
    let answer = refused(ResponseError::OffsetOutOfRange, 50, 0);
    assert_eq!(
        next_step(&follower.log(), &answer),
        FollowerStep::Truncate {
            offset: 50,
            cause: Cause::OutOfRange
        }
    );
}

#[test]
fn an_out_of_range_answer_that_leaves_nothing_to_cut_backs_off() {
    let follower = Replica::new(&[(1, 0)], 80, 80);
    let unknown_hw = refused(ResponseError::OffsetOutOfRange, -1, 0);
    assert_eq!(
        next_step(&follower.log(), &unknown_hw),
        FollowerStep::BackOff
    );
    let hw_at_end = refused(ResponseError::OffsetOutOfRange, 80, 0);
    assert_eq!(
        next_step(&follower.log(), &hw_at_end),
        FollowerStep::BackOff
    );
}

#[test]
fn a_fenced_or_unknown_leader_epoch_backs_off_without_touching_the_log() {
    let follower = Replica::new(&[(1, 0), (2, 50)], 80, 40);
    for error in [
        ResponseError::FencedLeaderEpoch,
        ResponseError::UnknownLeaderEpoch,
        ResponseError::NotLeaderOrFollower,
    ] {
        let answer = LeaderAnswer {
            diverging: end(1, 50),
            ..refused(error, 40, 0)
        };
        assert_eq!(
            next_step(&follower.log(), &answer),
            FollowerStep::BackOff,
            "{error:?}"
        );
    }
}

// After an append.

#[test]
fn a_follower_takes_the_leaders_high_watermark_only_up_to_its_own_log_end() {
    let follower = Replica::new(&[(1, 0)], 30, 10);
    let leader = |high_watermark| LeaderPositions {
        high_watermark,
        log_start_offset: 0,
    };
    assert_eq!(after_append(&follower.log(), leader(50)).high_watermark, 30);
    assert_eq!(after_append(&follower.log(), leader(20)).high_watermark, 20);
}

#[test]
fn a_followers_high_watermark_never_moves_back() {
    // A new leader's high watermark may lag the one its follower learned before (§1.4).
    let follower = Replica::new(&[(1, 0)], 60, 40);
    let leader = LeaderPositions {
        high_watermark: 30,
        log_start_offset: 0,
    };
    assert_eq!(after_append(&follower.log(), leader).high_watermark, 40);
}

#[test]
fn a_follower_follows_the_leaders_log_start_only_over_records_it_knows_are_committed() {
    let follower = Replica::new(&[(1, 0)], 60, 40);
    let start = |log_start_offset| LeaderPositions {
        high_watermark: 40,
        log_start_offset,
    };
    assert_eq!(
        after_append(&follower.log(), start(30)).delete_before,
        Some(30)
    );
    assert_eq!(
        after_append(&follower.log(), start(40)).delete_before,
        Some(40)
    );
    assert_eq!(after_append(&follower.log(), start(50)).delete_before, None);
    assert_eq!(after_append(&follower.log(), start(0)).delete_before, None);
}

// A restart.

#[test]
fn a_reopened_replica_keeps_its_whole_log_and_lets_its_leader_decide_what_to_cut() {
    // Killed after leading epoch 2 alone (50..70 unreplicated), with 30 checkpointed as its
    // high watermark.
    let mut follower = Replica::new(&[(1, 0), (2, 50)], 70, 30);
    assert_eq!(reopened(&follower.log()), Reopened { high_watermark: 70 });
    follower.hw = 70;
    let position = follower.log().fetch_position();
    assert_eq!(
        position,
        FetchPosition {
            fetch_offset: 70,
            last_fetched_epoch: 2
        },
        "it asks from its end with its last epoch"
    );
    // Its new leader had epoch 1 up to 40: the cut is at 40, not at the old high watermark.
    let leader = Replica::new(&[(1, 0), (3, 40)], 45, 45);
    let told = diverging_epoch(&leader.log(), position).expect("diverges");
    let offset = truncation_offset(&follower.log(), told);
    assert_eq!(offset, 40);
    follower.truncate(offset);
    assert_eq!((follower.end, follower.hw), (40, 40));
}

// Leadership changes.

#[test]
fn the_first_image_starts_a_term_even_when_the_open_gave_the_same_role() {
    let as_follower = leadership_change(
        held(follower_of(0, 5), 0, false),
        term(follower_of(0, 5), 3),
    );
    assert_eq!(
        as_follower,
        LeadershipChange {
            role_changed: false,
            take_isr: true,
            reset_followers: true,
            start_epoch: None,
            recompute_high_watermark: false,
        }
    );
    let leader = Role::Leader { epoch: 5 };
    let as_leader = leadership_change(held(leader, 0, false), term(leader, 3));
    assert_eq!(as_leader.start_epoch, Some(5));
    assert!(as_leader.recompute_high_watermark && !as_leader.role_changed);
}

#[test]
fn becoming_leader_starts_its_epoch_at_the_log_end_and_forgets_the_followers() {
    let change = leadership_change(
        held(follower_of(2, 5), 6, true),
        term(Role::Leader { epoch: 6 }, 7),
    );
    assert_eq!(
        change,
        LeadershipChange {
            role_changed: true,
            take_isr: true,
            reset_followers: true,
            start_epoch: Some(6),
            recompute_high_watermark: true,
        }
    );
}

#[test]
fn a_new_epoch_for_the_same_leader_starts_a_new_term() {
    let change = leadership_change(
        held(Role::Leader { epoch: 5 }, 6, true),
        term(Role::Leader { epoch: 6 }, 7),
    );
    assert!(change.role_changed && change.reset_followers);
    assert_eq!(change.start_epoch, Some(6));
}

#[test]
fn becoming_follower_resets_what_the_leader_knew_and_truncates_nothing() {
    let change = leadership_change(
        held(Role::Leader { epoch: 5 }, 6, true),
        term(follower_of(2, 6), 7),
    );
    assert_eq!(
        change,
        LeadershipChange {
            role_changed: true,
            take_isr: true,
            reset_followers: true,
            start_epoch: None,
            recompute_high_watermark: false,
        }
    );
}

#[test]
fn an_image_older_than_the_isr_the_leader_wrote_keeps_that_isr() {
    let leader = Role::Leader { epoch: 5 };
    let older = leadership_change(held(leader, 8, true), term(leader, 7));
    assert_eq!(
        older,
        LeadershipChange {
            role_changed: false,
            take_isr: false,
            reset_followers: false,
            start_epoch: None,
            recompute_high_watermark: true,
        }
    );
    assert!(leadership_change(held(leader, 8, true), term(leader, 8)).take_isr);
    assert!(leadership_change(held(leader, 8, true), term(leader, 9)).take_isr);
}

#[test]
fn a_change_of_role_takes_the_images_isr_whatever_its_partition_epoch() {
    let change = leadership_change(
        held(Role::Leader { epoch: 5 }, 8, true),
        term(follower_of(2, 6), 7),
    );
    assert!(change.take_isr);
}

#[test]
fn a_replica_fetches_only_from_the_leader_its_role_names() {
    assert!(follows(follower_of(1, 3), 1));
    assert!(!follows(follower_of(1, 3), 2), "leadership moved to 1");
    assert!(!follows(Role::Leader { epoch: 3 }, 1), "it leads now");
}

// The same rules performed on real partitions.

fn open(dir: &std::path::Path, role: Role) -> Partition {
    let config = LogConfig::default();
    let topic = ("t", Uuid::nil());
    Partition::open(dir, topic, 0, role, config.into(), &Replay::default()).expect("open")
}

/// One fetch of `follower` from `leader` and the step the follower takes with the answer,
/// performed as the fetcher does.
fn fetch_once(leader: &Partition, follower: &Partition) -> FollowerStep {
    let (fetch_offset, last_fetched_epoch) = follower.fetch_position();
    let fetch = ReplicaFetch {
        broker: 1,
        incarnation: 1,
        fetch_offset,
        last_fetched_epoch,
        registered_incarnation: Some(1),
    };
    let (answer, records) = match leader.read_for_follower(fetch, 1 << 20, NOW) {
        Ok((ReplicaRead::Data(d), _)) => (data(d.high_watermark, d.log_start_offset), d.records),
        Ok((
            ReplicaRead::Diverging {
                epoch,
                end_offset,
                high_watermark,
                log_start_offset,
            },
            _,
        )) => {
            let answer = LeaderAnswer {
                diverging: end(epoch, end_offset),
                ..data(high_watermark, log_start_offset)
            };
            (answer, Bytes::new())
        }
        Err(StorageError::OffsetOutOfRange { .. }) => {
            let (hw, start) = leader.with_log(|l| (l.high_watermark(), l.log_start_offset()));
            let answer = refused(ResponseError::OffsetOutOfRange, hw, start);
            (answer, Bytes::new())
        }
        Err(error) => panic!("the leader cannot serve the fetch: {error}"),
    };
    let step = follower.with_log(|log| next_step(&LocalLog::of(log), &answer));
    match step {
        FollowerStep::Append => {
            let (hw, start) = (answer.high_watermark, answer.log_start_offset);
            follower
                .append_from_leader(&records, hw, start, NOW)
                .expect("append from leader");
        }
        FollowerStep::Truncate { offset, .. } => {
            follower.truncate_replica(offset).expect("truncate")
        }
        FollowerStep::RestartAt { offset } => follower.restart_replica_at(offset).expect("restart"),
        FollowerStep::FromRemote { .. } | FollowerStep::BackOff => {}
    }
    step
}

fn write(p: &Partition, batches: usize) {
    for _ in 0..batches {
        p.append(&simple(2, NOW), NOW).expect("append");
    }
}

fn epochs_of(p: &Partition) -> Vec<(i32, i64)> {
    p.with_log(|log| {
        log.epoch_entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    })
}

#[test]
fn a_replica_that_led_an_epoch_alone_loses_exactly_those_records_when_it_follows_again() {
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    let b = open(b_dir.path(), follower_of(0, 1));
    write(&a, 3);
    assert_eq!(fetch_once(&a, &b), FollowerStep::Append);
    assert_eq!(b.fetch_position(), (6, 1));

    // b leads epoch 2 alone and writes 6..10; then a leads epoch 3 from 6 and writes 6..8.
    b.set_role(Role::Leader { epoch: 2 });
    write(&b, 2);
    a.set_role(Role::Leader { epoch: 3 });
    assert_eq!(
        epochs_of(&a),
        [(1, 0), (3, 6)],
        "epoch 3 starts with no records"
    );
    write(&a, 1);
    b.set_role(follower_of(0, 3));

    assert_eq!(
        fetch_once(&a, &b),
        FollowerStep::Truncate {
            offset: 6,
            cause: Cause::Diverged
        }
    );
    assert_eq!(b.fetch_position(), (6, 1));
    assert_eq!(fetch_once(&a, &b), FollowerStep::Append);
    assert_eq!(b.fetch_position(), (8, 3));
    assert_eq!(epochs_of(&b), epochs_of(&a));
}

/// The failover a SIGKILL causes: b leads epoch 2 for a moment and appends nothing; a
/// (which never saw epoch 2) leads epoch 3. b's fetches reported epoch 2 from offset 6, the
/// leader answered "epoch 1 ends at 6", and a truncation to 6 removed nothing: b never caught
/// up and every acks=all write waited until the leader dropped it from the ISR.
#[test]
fn a_replica_that_led_an_epoch_without_records_drops_that_epoch_and_catches_up() {
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    let b = open(b_dir.path(), follower_of(0, 1));
    write(&a, 3);
    assert_eq!(fetch_once(&a, &b), FollowerStep::Append);

    b.set_role(Role::Leader { epoch: 2 });
    assert_eq!(
        b.fetch_position(),
        (6, 2),
        "b recorded epoch 2 at its log end"
    );
    a.set_role(Role::Leader { epoch: 3 });
    b.set_role(follower_of(0, 3));

    assert_eq!(
        fetch_once(&a, &b),
        FollowerStep::Truncate {
            offset: 6,
            cause: Cause::Diverged
        }
    );
    assert_eq!(b.fetch_position(), (6, 1), "epoch 2 is gone, no record is");
    write(&a, 1);
    assert_eq!(fetch_once(&a, &b), FollowerStep::Append);
    assert_eq!(b.fetch_position(), (8, 3));
    assert_eq!(epochs_of(&b), epochs_of(&a));
}

/// A divergence answered to a fetch sent before this replica was elected: the new leader's
/// log and the epoch it started stay.
#[test]
fn a_late_divergence_answer_leaves_a_new_leaders_log_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let b = open(dir.path(), follower_of(0, 1));
    b.set_role(Role::Leader { epoch: 2 });
    write(&b, 2);
    b.set_role(Role::Leader { epoch: 3 });
    let before = (b.fetch_position(), epochs_of(&b));
    b.truncate_replica(4).expect("nothing to do");
    b.truncate_replica(1).expect("nothing to do");
    assert_eq!((b.fetch_position(), epochs_of(&b)), before);
}

#[test]
fn a_follower_behind_the_leaders_log_start_restarts_there_and_copies_the_rest() {
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    let b = open(b_dir.path(), follower_of(0, 1));
    write(&a, 3);
    assert_eq!(a.delete_records(4).expect("delete records"), 4);

    assert_eq!(fetch_once(&a, &b), FollowerStep::RestartAt { offset: 4 });
    assert_eq!(b.fetch_position().0, 4);
    assert_eq!(fetch_once(&a, &b), FollowerStep::Append);
    assert_eq!(b.fetch_position(), (6, 1));
    assert_eq!(b.with_log(|l| l.log_start_offset()), 4);
}

#[test]
fn a_new_leader_reads_every_record_it_holds_to_its_log_end_while_its_high_watermark_lags() {
    use crate::partition::isr::IsrMember;
    use crate::partition::{Isolation, Leadership};
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    let both = |me: i32, role: Role| Leadership {
        me,
        role,
        replicas: vec![0, 1],
        isr: vec![
            IsrMember {
                broker: 0,
                incarnation: 1,
            },
            IsrMember {
                broker: 1,
                incarnation: 1,
            },
        ],
        partition_epoch: 1,
    };
    a.apply_leadership(both(0, Role::Leader { epoch: 1 }), NOW);
    let b = open(b_dir.path(), follower_of(0, 1));
    b.apply_leadership(both(1, follower_of(0, 1)), NOW);
    write(&a, 3);
    // b copies all six records; a's answer carried the high watermark before b had them.
    assert_eq!(fetch_once(&a, &b), FollowerStep::Append);
    assert_eq!(b.fetch_position(), (6, 1));
    b.apply_leadership(both(1, Role::Leader { epoch: 2 }), NOW);

    let upto = |isolation| {
        let data = b.read(0, 1 << 20, true, isolation).expect("read");
        tributary_storage::batch::split_batches(&data.records).count()
    };
    assert!(
        upto(Isolation::ReadUncommitted) < 3,
        "the high watermark lags"
    );
    assert_eq!(
        upto(Isolation::LogEnd),
        3,
        "a coordinator replays every record"
    );
}

#[test]
fn a_fetch_of_a_replaced_incarnation_does_not_overwrite_what_the_leader_knows_of_its_successor() {
    use crate::partition::isr::IsrMember;
    use crate::partition::Leadership;
    let dir = tempfile::tempdir().expect("dir");
    let leader = open(dir.path(), Role::Leader { epoch: 1 });
    let member = |broker, incarnation| IsrMember {
        broker,
        incarnation,
    };
    leader.apply_leadership(
        Leadership {
            me: 0,
            role: Role::Leader { epoch: 1 },
            replicas: vec![0, 1],
            isr: vec![member(0, 1), member(1, 2)],
            partition_epoch: 1,
        },
        NOW,
    );
    write(&leader, 3);
    let fetch = |incarnation, fetch_offset| ReplicaFetch {
        broker: 1,
        incarnation,
        fetch_offset,
        last_fetched_epoch: 1,
        registered_incarnation: Some(2),
    };
    // Broker 1's current process (incarnation 2) is caught up: the high watermark follows it.
    let (_, proposal) = leader
        .read_for_follower(fetch(2, 6), 1 << 20, NOW)
        .expect("fetch");
    assert_eq!(proposal, None);
    assert_eq!(leader.with_log(|l| l.high_watermark()), 6);
    // The process it replaced (incarnation 1) still fetches from far behind while it stops.
    let (_, proposal) = leader
        .read_for_follower(fetch(1, 2), 1 << 20, NOW + 10)
        .expect("fetch");
    assert_eq!(proposal, None, "a replaced incarnation never joins the ISR");
    assert_eq!(
        leader.propose_shrink(NOW + 20, 10_000),
        None,
        "incarnation 2 caught up 20 ms ago: it stays in the ISR"
    );
    write(&leader, 1);
    let (_, proposal) = leader
        .read_for_follower(fetch(2, 8), 1 << 20, NOW + 30)
        .expect("fetch");
    assert_eq!(proposal, None);
    assert_eq!(leader.with_log(|l| l.high_watermark()), 8);
}
