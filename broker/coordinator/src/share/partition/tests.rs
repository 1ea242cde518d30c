//! Step tests of the share-partition state machine (acquire, acknowledge, lock expiry,
//! delivery-count limit, start-offset advance, read_committed, restore), and a property test
//! that no record is ever held by two members and no accepted record is delivered again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;

use super::*;

const LOCK: i64 = 1_000;

fn limits() -> Limits {
    Limits {
        lock_duration_ms: LOCK,
        delivery_count_limit: 3,
        max_in_flight: 100,
        renew_enabled: false,
    }
}

/// Batches of `size` offsets covering `first..=last`.
fn batches(first: i64, last: i64, size: i64) -> Vec<FetchedBatch> {
    (first..=last)
        .step_by(usize::try_from(size).unwrap_or(1))
        .map(|f| FetchedBatch {
            first: f,
            last: (f + size - 1).min(last),
            aborted: false,
        })
        .collect()
}

/// An acquired range (shared with the manager's tests).
pub(crate) fn range(first: i64, last: i64, delivery_count: u16) -> Acquired {
    Acquired {
        first,
        last,
        delivery_count,
    }
}

/// One acknowledgement type for a whole range (shared with the manager's tests).
pub(crate) fn ack(first: i64, last: i64, kind: AckType) -> AckRange {
    AckRange {
        first,
        last,
        types: vec![kind],
    }
}

/// Acknowledges and commits at once.
fn settle(sp: &mut SharePartition, member: &str, acks: &[AckRange], now: i64) {
    let pending = sp.acknowledge(member, acks, now).expect("acknowledged");
    sp.complete(pending.id, true, now);
}

fn acquire_all(sp: &mut SharePartition, member: &str, last: i64, now: i64) -> Vec<Acquired> {
    sp.acquire(
        member,
        &batches(0, last, 5),
        AcquireMode::BatchOptimized,
        500,
        now,
    )
}

#[test]
fn new_records_are_acquired_with_a_lock_and_a_first_delivery() {
    let mut sp = SharePartition::new(0, limits());
    assert_eq!(sp.fetch_offset(), Some(0));
    assert_eq!(acquire_all(&mut sp, "a", 9, 0), vec![range(0, 9, 1)]);
    assert_eq!(sp.state(3), Some((RecordState::Acquired, 1)));
    assert_eq!(sp.in_flight(), 10);
    assert_eq!(
        acquire_all(&mut sp, "b", 9, 0),
        vec![],
        "held records go to nobody else"
    );
    assert_eq!(sp.fetch_offset(), Some(10));
    assert_eq!(sp.next_lock_deadline(), Some(LOCK));
}

#[test]
fn the_lock_cap_cuts_a_batch_in_both_modes() {
    // share.partition.max.record.locks of 3 and one batch of 5: three go out, in either mode.
    for mode in [AcquireMode::BatchOptimized, AcquireMode::RecordLimit] {
        let mut sp = SharePartition::new(
            0,
            Limits {
                max_in_flight: 3,
                ..limits()
            },
        );
        let log = batches(0, 4, 5);
        assert_eq!(
            sp.acquire("a", &log, mode, 500, 0),
            vec![range(0, 2, 1)],
            "{mode:?}"
        );
        assert_eq!(
            sp.acquire("b", &log, mode, 500, 0),
            vec![],
            "{mode:?}: at the cap"
        );
        settle(&mut sp, "a", &[ack(0, 2, AckType::Accept)], 1);
        assert_eq!(
            sp.acquire("b", &log, mode, 500, 1),
            vec![range(3, 4, 1)],
            "{mode:?}"
        );
    }
}

#[test]
fn batch_mode_stops_at_a_batch_boundary_and_record_mode_at_the_count() {
    // Batches of 5 and two members asking for 2 at a time: each offset goes out once.
    let mut sp = SharePartition::new(0, limits());
    let log = batches(0, 9, 5);
    assert_eq!(
        sp.acquire("a", &log, AcquireMode::BatchOptimized, 2, 0),
        vec![range(0, 4, 1)],
        "the whole first batch: the count is soft"
    );
    let mut sp = SharePartition::new(0, limits());
    assert_eq!(
        sp.acquire("a", &log, AcquireMode::RecordLimit, 2, 0),
        vec![range(0, 1, 1)]
    );
    assert_eq!(sp.fetch_offset(), Some(2));
    assert_eq!(
        sp.acquire("b", &log, AcquireMode::RecordLimit, 2, 0),
        vec![range(2, 3, 1)],
        "the rest of the batch stays available"
    );
    assert_eq!(
        sp.acquire("a", &log, AcquireMode::RecordLimit, 2, 0),
        vec![range(4, 5, 1)]
    );
    assert_eq!(
        sp.end_offset(),
        6,
        "nothing past what was handed out is read in"
    );
}

#[test]
fn accepted_records_are_final_and_the_start_moves_past_them() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 4, 0);
    let pending = sp
        .acknowledge("a", &[ack(0, 2, AckType::Accept)], 10)
        .expect("acknowledged");
    assert_eq!(
        pending.changes,
        vec![StateRange {
            first: 0,
            last: 2,
            state: RecordState::Acknowledged,
            delivery_count: 1
        }]
    );
    assert_eq!(pending.start_after, 3, "persisted with the changes");
    assert_eq!(sp.start_offset(), 0, "not before the write is durable");
    assert_eq!(
        sp.acknowledge("a", &[ack(1, 1, AckType::Accept)], 10),
        Err(AckError::InvalidRecordState { offset: 1 }),
        "a record being acknowledged is not acknowledged twice"
    );
    assert_eq!(sp.complete(pending.id, true, 10), vec![]);
    assert_eq!(sp.start_offset(), 3);
    assert_eq!(sp.state(1), None);
    // Below the start: done with, skipped without error.
    let again = sp
        .acknowledge("a", &[ack(1, 1, AckType::Accept)], 10)
        .expect("skipped");
    assert!(again.changes.is_empty());
}

#[test]
fn the_start_after_an_acknowledgement_stops_at_one_still_being_written() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 4, 0);
    let middle = sp
        .acknowledge("a", &[ack(1, 1, AckType::Accept)], 0)
        .expect("acknowledged");
    assert_eq!(middle.start_after, 0, "offset 0 is still held");
    let first = sp
        .acknowledge("a", &[ack(0, 0, AckType::Reject)], 0)
        .expect("acknowledged");
    assert_eq!(first.start_after, 1, "offset 1 is not written yet");
    sp.complete(first.id, true, 0);
    assert_eq!(sp.start_offset(), first.start_after);
    sp.complete(middle.id, true, 0);
    assert_eq!(sp.start_offset(), 2);
}

#[test]
fn released_records_return_with_a_higher_count_until_the_limit_archives_them() {
    let mut sp = SharePartition::new(0, limits());
    for delivery in 1..=2 {
        assert_eq!(acquire_all(&mut sp, "a", 0, 0), vec![range(0, 0, delivery)]);
        settle(&mut sp, "a", &[ack(0, 0, AckType::Release)], 0);
        assert_eq!(sp.state(0), Some((RecordState::Available, delivery)));
    }
    assert_eq!(acquire_all(&mut sp, "b", 0, 0), vec![range(0, 0, 3)]);
    let pending = sp
        .acknowledge("b", &[ack(0, 0, AckType::Release)], 0)
        .expect("acknowledged");
    assert_eq!(pending.changes[0].state, RecordState::Archived, "limit 3");
    sp.complete(pending.id, true, 0);
    assert_eq!(sp.start_offset(), 1);
    assert_eq!(acquire_all(&mut sp, "b", 0, 0), vec![]);
}

#[test]
fn batches_redelivered_past_half_the_limit_are_halved_until_the_last_record_goes_alone() {
    // Limit 5: throttled from 3 deliveries (max(2, ceil(5 / 2))).
    let mut sp = SharePartition::new(
        0,
        Limits {
            delivery_count_limit: 5,
            ..limits()
        },
    );
    let one_batch = batches(0, 7, 8);
    let acquire =
        |sp: &mut SharePartition| sp.acquire("a", &one_batch, AcquireMode::BatchOptimized, 500, 0);
    for delivery in 1..=3 {
        assert_eq!(acquire(&mut sp), vec![range(0, 7, delivery)], "whole");
        settle(&mut sp, "a", &[ack(0, 7, AckType::Release)], 0);
    }
    // The 4th delivery takes half the batch, the rest stays available for the next fetch.
    assert_eq!(acquire(&mut sp), vec![range(0, 3, 4)]);
    assert_eq!(sp.state(4), Some((RecordState::Available, 3)));
    assert_eq!(acquire(&mut sp), vec![range(4, 7, 4)]);
    // The last one hands out one record at a time: offset 0 is the poison record, rejected
    // again, and archived alone; 1 is accepted.
    settle(&mut sp, "a", &[ack(0, 7, AckType::Release)], 0);
    assert_eq!(acquire(&mut sp), vec![range(0, 0, 5)]);
    let pending = sp
        .acknowledge("a", &[ack(0, 0, AckType::Release)], 0)
        .expect("acknowledged");
    assert_eq!(pending.changes[0].state, RecordState::Archived);
    sp.complete(pending.id, true, 0);
    assert_eq!(acquire(&mut sp), vec![range(1, 1, 5)]);
    settle(&mut sp, "a", &[ack(1, 1, AckType::Accept)], 0);
    assert_eq!(sp.start_offset(), 2);
}

#[test]
fn throttling_starts_at_half_the_limit_and_never_below_two_deliveries() {
    let limits = |limit| Limits {
        delivery_count_limit: limit,
        ..Limits::default()
    };
    assert_eq!(limits(5).throttled(2, 100), None);
    assert_eq!(limits(5).throttled(3, 100), Some(50));
    assert_eq!(limits(5).throttled(4, 100), Some(1), "the last delivery");
    assert_eq!(limits(10).throttled(5, 100), Some(50));
    assert_eq!(limits(10).throttled(7, 100), Some(12));
    assert_eq!(
        limits(10).throttled(8, 3),
        Some(1),
        "never below one record"
    );
    assert_eq!(limits(2).throttled(1, 100), None, "limit 2 never throttles");
    assert_eq!(
        limits(3).throttled(1, 100),
        None,
        "from two deliveries at least"
    );
}

#[test]
fn rejected_records_and_gaps_are_archived_and_never_delivered_again() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 3, 0);
    let per_offset = AckRange {
        first: 0,
        last: 3,
        types: vec![
            AckType::Reject,
            AckType::Gap,
            AckType::Accept,
            AckType::Release,
        ],
    };
    settle(&mut sp, "a", &[per_offset], 0);
    assert_eq!(sp.start_offset(), 3);
    assert_eq!(sp.state(3), Some((RecordState::Available, 1)));
    assert_eq!(acquire_all(&mut sp, "b", 3, 0), vec![range(3, 3, 2)]);
}

#[test]
fn an_expired_lock_frees_the_record_for_another_member_and_a_late_ack_fails() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "slow", 1, 0);
    assert_eq!(sp.expire_locks(LOCK - 1), vec![]);
    assert_eq!(
        sp.expire_locks(LOCK),
        vec![StateRange {
            first: 0,
            last: 1,
            state: RecordState::Available,
            delivery_count: 1
        }]
    );
    assert_eq!(acquire_all(&mut sp, "fast", 1, LOCK), vec![range(0, 1, 2)]);
    assert_eq!(
        sp.acknowledge("slow", &[ack(0, 1, AckType::Accept)], LOCK + 1),
        Err(AckError::InvalidRecordState { offset: 0 })
    );
    // The last delivery goes one record at a time; out of deliveries, an expiry archives.
    sp.expire_locks(2 * LOCK);
    assert_eq!(
        acquire_all(&mut sp, "fast", 1, 2 * LOCK),
        vec![range(0, 0, 3)]
    );
    assert_eq!(
        acquire_all(&mut sp, "fast", 1, 2 * LOCK),
        vec![range(1, 1, 3)]
    );
    let archived = sp.expire_locks(3 * LOCK);
    assert_eq!(archived[0].state, RecordState::Archived);
    assert_eq!(sp.start_offset(), 2);
}

#[test]
fn a_lock_that_ran_out_is_not_held_even_before_the_expiry_runs() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 0, 0);
    assert_eq!(
        sp.acknowledge("a", &[ack(0, 0, AckType::Accept)], LOCK),
        Err(AckError::InvalidRecordState { offset: 0 })
    );
}

#[test]
fn malformed_or_foreign_acknowledgements_refuse_the_whole_list() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 4, 0);
    acquire_all(&mut sp, "b", 9, 0);
    let cases: Vec<(Vec<AckRange>, AckError)> = vec![
        (
            vec![ack(3, 2, AckType::Accept)],
            AckError::InvalidRequest("last offset before first offset"),
        ),
        (
            vec![AckRange {
                first: 0,
                last: 2,
                types: vec![AckType::Accept, AckType::Accept],
            }],
            AckError::InvalidRequest(
                "acknowledge types must be one for the range or one per offset",
            ),
        ),
        (
            vec![ack(8, 12, AckType::Accept)],
            AckError::InvalidRequest("acknowledged offsets were never delivered"),
        ),
        (
            vec![ack(0, 1, AckType::Accept), ack(1, 2, AckType::Accept)],
            AckError::InvalidRequest("acknowledged ranges overlap or are out of order"),
        ),
        (
            vec![ack(0, 1, AckType::Accept), ack(5, 5, AckType::Accept)],
            AckError::InvalidRecordState { offset: 5 },
        ),
        (
            vec![ack(0, 0, AckType::Renew)],
            AckError::InvalidRecordState { offset: 0 },
        ),
    ];
    for (acks, error) in cases {
        assert_eq!(
            sp.acknowledge("a", &acks, 0),
            Err(error.clone()),
            "{acks:?}"
        );
        assert_eq!(sp.state(0), Some((RecordState::Acquired, 1)), "{acks:?}");
    }
    assert_eq!(
        AckError::InvalidRecordState { offset: 5 }.code(),
        ResponseError::InvalidRecordState
    );
    // Nothing was marked busy by the refusals.
    settle(&mut sp, "a", &[ack(0, 4, AckType::Accept)], 0);
    assert_eq!(sp.start_offset(), 5);
}

#[test]
fn a_failed_write_rolls_back_to_acquired_or_expires_if_the_lock_ran_out() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 1, 0);
    let first = sp
        .acknowledge("a", &[ack(0, 0, AckType::Accept)], 0)
        .expect("acknowledged");
    assert_eq!(sp.complete(first.id, false, 10), vec![]);
    assert_eq!(sp.state(0), Some((RecordState::Acquired, 1)));
    let second = sp
        .acknowledge("a", &[ack(0, 1, AckType::Accept)], 20)
        .expect("held again");
    assert_eq!(
        sp.expire_locks(LOCK),
        vec![],
        "a busy record does not expire"
    );
    let expired = sp.complete(second.id, false, LOCK);
    assert_eq!(expired.len(), 1);
    assert_eq!(sp.state(0), Some((RecordState::Available, 1)));
    assert_eq!(sp.start_offset(), 0);
}

#[test]
fn the_window_cap_stops_new_records_and_one_held_record_stalls_it() {
    let mut sp = SharePartition::new(
        0,
        Limits {
            max_in_flight: 10,
            ..limits()
        },
    );
    assert_eq!(acquire_all(&mut sp, "a", 14, 0), vec![range(0, 9, 1)]);
    assert_eq!(sp.fetch_offset(), None);
    settle(&mut sp, "a", &[ack(1, 9, AckType::Accept)], 0);
    assert_eq!(sp.start_offset(), 0, "offset 0 is still held");
    assert_eq!(
        sp.fetch_offset(),
        None,
        "the cap counts from the start offset"
    );
    sp.expire_locks(LOCK);
    assert_eq!(sp.fetch_offset(), Some(0));
    let log = batches(0, 14, 5);
    assert_eq!(
        sp.acquire("b", &log, AcquireMode::BatchOptimized, 500, LOCK),
        vec![range(0, 0, 2)],
        "still at the cap until offset 0 resolves"
    );
    settle(&mut sp, "b", &[ack(0, 0, AckType::Accept)], LOCK);
    assert_eq!(sp.fetch_offset(), Some(10));
    assert_eq!(
        sp.acquire("b", &log, AcquireMode::BatchOptimized, 500, LOCK),
        vec![range(10, 14, 1)]
    );
}

#[test]
fn a_record_out_of_deliveries_is_archived_instead_of_acquired() {
    // Its last lock died with its leader: stored AVAILABLE with the count at the limit.
    let stored = [StateRange {
        first: 0,
        last: 0,
        state: RecordState::Available,
        delivery_count: 3,
    }];
    let mut sp = SharePartition::restore(0, &stored, limits());
    assert_eq!(acquire_all(&mut sp, "a", 1, 0), vec![range(1, 1, 1)]);
    assert_eq!(sp.start_offset(), 1);
}

#[test]
fn aborted_transactions_are_archived_and_never_handed_out() {
    let mut sp = SharePartition::new(0, limits());
    let mut log = batches(0, 8, 3);
    log[1].aborted = true;
    assert_eq!(
        sp.acquire("a", &log, AcquireMode::BatchOptimized, 500, 0),
        vec![range(0, 2, 1), range(6, 8, 1)]
    );
    assert_eq!(sp.state(4), Some((RecordState::Archived, 0)));
    settle(
        &mut sp,
        "a",
        &[ack(0, 2, AckType::Accept), ack(6, 8, AckType::Accept)],
        0,
    );
    assert_eq!(sp.start_offset(), 9);
}

#[test]
fn offsets_compacted_away_are_acquired_with_their_neighbours_as_gaps() {
    let mut sp = SharePartition::new(0, limits());
    let log = [
        FetchedBatch {
            first: 3,
            last: 4,
            aborted: false,
        },
        FetchedBatch {
            first: 8,
            last: 9,
            aborted: false,
        },
    ];
    assert_eq!(
        sp.acquire("a", &log, AcquireMode::BatchOptimized, 500, 0),
        vec![range(0, 9, 1)]
    );
    let types = (0..10)
        .map(|o| {
            if [3, 4, 8, 9].contains(&o) {
                AckType::Accept
            } else {
                AckType::Gap
            }
        })
        .collect();
    settle(
        &mut sp,
        "a",
        &[AckRange {
            first: 0,
            last: 9,
            types,
        }],
        0,
    );
    assert_eq!(sp.start_offset(), 10);
}

#[test]
fn a_closed_session_gives_its_records_back_without_counting_the_delivery() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "gone", 2, 0);
    let released = sp.release_member("gone");
    assert_eq!(
        released,
        vec![StateRange {
            first: 0,
            last: 2,
            state: RecordState::Available,
            delivery_count: 0
        }]
    );
    assert_eq!(acquire_all(&mut sp, "b", 2, 0), vec![range(0, 2, 1)]);
    assert_eq!(sp.release_member("nobody"), vec![]);
}

#[test]
fn a_log_start_past_the_window_moves_it_and_skips_what_lay_below() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 9, 0);
    let pending = sp
        .acknowledge("a", &[ack(2, 6, AckType::Accept)], 0)
        .expect("acknowledged");
    sp.move_start(5);
    assert_eq!(sp.start_offset(), 5);
    sp.complete(pending.id, true, 0);
    assert_eq!(sp.start_offset(), 7);
    let skipped = sp
        .acknowledge("a", &[ack(0, 4, AckType::Accept)], 0)
        .expect("below the start");
    assert!(skipped.changes.is_empty());
    settle(&mut sp, "a", &[ack(7, 9, AckType::Accept)], 0);
    assert_eq!(sp.start_offset(), 10);
    sp.move_start(20);
    assert_eq!((sp.start_offset(), sp.end_offset()), (20, 20));
    assert_eq!(sp.fetch_offset(), Some(20));
}

/// A hostile range starting at the lowest offset there is: answered at once, no overflow,
/// no walk over the offsets below the window.
#[test]
fn a_range_from_far_below_the_window_is_neither_walked_nor_overflowing() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 3, 0);
    let pending = sp
        .acknowledge("a", &[ack(i64::MIN, 2, AckType::Accept)], 0)
        .expect("one type for the whole range");
    assert_eq!(pending.changes.len(), 1, "{pending:?}");
    let per_offset = AckRange {
        first: i64::MIN,
        last: 2,
        types: vec![AckType::Accept, AckType::Release],
    };
    assert!(matches!(
        sp.acknowledge("a", &[per_offset], 0),
        Err(AckError::InvalidRequest(_))
    ));
}

#[test]
fn a_restored_window_redelivers_only_what_was_never_acknowledged() {
    let mut sp = SharePartition::new(0, limits());
    acquire_all(&mut sp, "a", 5, 0);
    settle(&mut sp, "a", &[ack(0, 0, AckType::Accept)], 0);
    settle(&mut sp, "a", &[ack(2, 2, AckType::Release)], 0);
    settle(&mut sp, "a", &[ack(3, 3, AckType::Reject)], 0);
    let (start, stored) = sp.snapshot();
    assert_eq!(start, 1);
    assert!(
        stored.iter().all(|r| r.state != RecordState::Acquired),
        "locks are never stored: {stored:?}"
    );
    let mut restored = SharePartition::restore(start, &stored, limits());
    assert_eq!(restored.state(3), Some((RecordState::Archived, 1)));
    assert_eq!(
        acquire_all(&mut restored, "b", 5, 0),
        vec![range(1, 2, 2), range(4, 5, 2)],
        "counts kept: the held records were delivered once, the released one once"
    );
    assert_eq!(restored.end_offset(), 6);
}

#[test]
fn renew_restarts_the_lock_when_enabled() {
    let mut sp = SharePartition::new(
        0,
        Limits {
            renew_enabled: true,
            ..limits()
        },
    );
    acquire_all(&mut sp, "a", 0, 0);
    let renewed = sp
        .acknowledge("a", &[ack(0, 0, AckType::Renew)], LOCK - 1)
        .expect("renewed");
    assert!(renewed.changes.is_empty(), "a renewal writes nothing");
    sp.complete(renewed.id, true, LOCK - 1);
    assert_eq!(sp.expire_locks(LOCK), vec![]);
    assert_eq!(sp.state(0), Some((RecordState::Acquired, 1)));
    settle(&mut sp, "a", &[ack(0, 0, AckType::Accept)], 2 * LOCK - 2);
    assert_eq!(sp.start_offset(), 1);
}

#[test]
fn codes_are_kafkas() {
    let codes: Vec<i8> = [
        RecordState::Available,
        RecordState::Acquired,
        RecordState::Acknowledged,
        RecordState::Archived,
    ]
    .iter()
    .map(|s| s.code())
    .collect();
    assert_eq!(codes, vec![0, 1, 2, 4]);
    assert_eq!(AckType::from_code(4), Some(AckType::Renew));
    assert_eq!(AckType::from_code(5), None);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Acquire {
        member: u8,
        max: usize,
        records: bool,
    },
    Ack {
        member: u8,
        kind: u8,
        take: usize,
    },
    Complete {
        committed: bool,
    },
    Tick {
        ms: i64,
    },
    CloseSession {
        member: u8,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 1usize..8, any::<bool>())
            .prop_map(|(member, max, records)| Op::Acquire { member, max, records }),
        4 => (0u8..3, 0u8..5, 1usize..4).prop_map(|(member, kind, take)| Op::Ack { member, kind, take }),
        2 => any::<bool>().prop_map(|committed| Op::Complete { committed }),
        2 => (1i64..700).prop_map(|ms| Op::Tick { ms }),
        1 => (0u8..3).prop_map(|member| Op::CloseSession { member }),
        1 => Just(Op::Restart),
    ]
}

const LOG_END: i64 = 40;

/// What the test knows independently of the state machine.
#[derive(Default)]
struct Model {
    /// Offset to (holder, lock end) for each hand-out not yet settled.
    held: BTreeMap<i64, (String, i64)>,
    accepted: BTreeSet<i64>,
    /// Pending acknowledgements: id to (member, offset and type).
    pending: HashMap<u64, Vec<(i64, AckType)>>,
}

proptest! {
    #[test]
    fn no_record_has_two_holders_and_no_accepted_record_comes_back(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        let limits = Limits { max_in_flight: 12, ..limits() };
        let mut sp = SharePartition::new(0, limits);
        let mut model = Model::default();
        let mut now = 0;
        let mut start = sp.start_offset();
        let mut order: Vec<u64> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire { member, max, records } => {
                    let member = format!("m{member}");
                    sp.expire_locks(now);
                    let Some(from) = sp.fetch_offset() else { continue };
                    let log: Vec<FetchedBatch> = batches(0, LOG_END - 1, 3)
                        .into_iter()
                        .filter(|b| b.last >= from)
                        .collect();
                    let mode = if records { AcquireMode::RecordLimit } else { AcquireMode::BatchOptimized };
                    for r in sp.acquire(&member, &log, mode, max, now) {
                        prop_assert!(r.delivery_count <= limits.delivery_count_limit);
                        for offset in r.first..=r.last {
                            prop_assert!(!model.accepted.contains(&offset), "accepted {offset} delivered again");
                            if let Some((holder, until)) = model.held.get(&offset) {
                                prop_assert!(*until <= now, "{offset} held by {holder} and given to {member}");
                            }
                            model.held.insert(offset, (member.clone(), now + LOCK));
                        }
                    }
                }
                Op::Ack { member, kind, take } => {
                    let member = format!("m{member}");
                    let mine: Vec<i64> = model.held.iter()
                        .filter(|(_, (m, until))| *m == member && now < *until)
                        .map(|(o, _)| *o)
                        .filter(|o| !model.pending.values().flatten().any(|(p, _)| p == o))
                        .take(take)
                        .collect();
                    let Some(kind) = AckType::from_code(i8::try_from(kind).unwrap_or(0)) else { continue };
                    let acks: Vec<AckRange> = mine.iter().map(|o| ack(*o, *o, kind)).collect();
                    match sp.acknowledge(&member, &acks, now) {
                        Ok(pending) => {
                            model.pending.insert(pending.id, mine.iter().map(|o| (*o, kind)).collect());
                            order.push(pending.id);
                        }
                        Err(AckError::InvalidRecordState { offset }) => {
                            // Only RENEW, which these limits do not enable.
                            prop_assert!(kind == AckType::Renew, "{offset} refused");
                        }
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Complete { committed } => {
                    let Some(id) = order.pop() else { continue };
                    let Some(acks) = model.pending.remove(&id) else { continue };
                    sp.complete(id, committed, now);
                    if committed {
                        for (offset, kind) in acks {
                            if kind == AckType::Accept {
                                model.accepted.insert(offset);
                            }
                            if kind != AckType::Renew {
                                model.held.remove(&offset);
                            }
                        }
                    }
                }
                Op::Tick { ms } => {
                    now += ms;
                    sp.expire_locks(now);
                }
                Op::CloseSession { member } => {
                    let member = format!("m{member}");
                    sp.release_member(&member);
                    let busy: BTreeSet<i64> = model.pending.values().flatten().map(|(o, _)| *o).collect();
                    model.held.retain(|o, (m, _)| *m != member || busy.contains(o));
                }
                Op::Restart => {
                    // A new leader: acknowledgements in flight never completed, locks are gone.
                    let (stored_start, stored) = sp.snapshot();
                    sp = SharePartition::restore(stored_start, &stored, limits);
                    model.pending.clear();
                    order.clear();
                    model.held.clear();
                }
            }
            prop_assert!(sp.start_offset() >= start, "the start never moves back");
            start = sp.start_offset();
            prop_assert!(sp.in_flight() <= limits.max_in_flight + 3, "a batch past the cap at most");
        }
    }
}
