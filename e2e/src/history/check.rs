//! The checker: a producer's history against a read-back of the whole topic, as pure data in
//! and a [`Report`] out, so each anomaly has a unit test with a hand-made history.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::report::{
    AckConflict, Duplicate, Gap, Inconsistent, Lost, Mismatch, Reorder, Report, Unexpected,
    UnexpectedKind,
};
use super::{Attempt, History, Outcome, Position, Read, ValueId};

/// Compares `history` (every send attempt) with `reads` (the whole topic read from the
/// beginning, in the order the consumer returned it; partitions may interleave). `reads` must
/// reach the end offsets the topic had after the last acknowledgement, or acknowledged
/// records beyond them count as lost.
pub fn check(history: &History, reads: &[Read]) -> Report {
    let mut report = Report {
        attempted: history.attempts.len(),
        reads: reads.len(),
        ..Report::default()
    };
    let attempts = index_attempts(history, &mut report);
    count_outcomes(&attempts, &mut report);
    let read_at = positions_by_id(reads);
    offsets_in_order(reads, &mut report);
    report.inconsistent = inconsistent(reads);
    report.duplicates = read_at
        .iter()
        .filter(|(_, ps)| ps.len() > 1)
        .map(|(&id, ps)| Duplicate {
            id,
            positions: ps.clone(),
        })
        .collect();
    acknowledged(&attempts, &read_at, &mut report);
    unexpected(&attempts, &read_at, &mut report);
    report
}

/// Attempts by id, sorted; an id attempted twice is reported (the first attempt counts).
fn index_attempts<'h>(history: &'h History, report: &mut Report) -> BTreeMap<ValueId, &'h Attempt> {
    let mut by_id = BTreeMap::new();
    let mut reused = BTreeSet::new();
    for attempt in &history.attempts {
        match by_id.entry(attempt.id) {
            Entry::Vacant(e) => {
                e.insert(attempt);
            }
            Entry::Occupied(_) => {
                reused.insert(attempt.id);
            }
        }
    }
    report.reused_ids = reused.into_iter().collect();
    by_id
}

/// Fills in the acknowledged, definite and indefinite counts.
fn count_outcomes(attempts: &BTreeMap<ValueId, &Attempt>, report: &mut Report) {
    for attempt in attempts.values() {
        match attempt.outcome {
            Outcome::Acked(_) => report.acked += 1,
            Outcome::Failed { definite: true, .. } => report.definite_failures += 1,
            Outcome::Failed { .. } | Outcome::Unknown => report.indefinite += 1,
        }
    }
}

/// Each id's distinct read positions, in read order.
fn positions_by_id(reads: &[Read]) -> BTreeMap<ValueId, Vec<Position>> {
    let mut by_id: BTreeMap<ValueId, Vec<Position>> = BTreeMap::new();
    for read in reads {
        let seen = by_id.entry(read.id).or_default();
        if !seen.contains(&read.position) {
            seen.push(read.position);
        }
    }
    by_id
}

/// Per partition, each read's offset against the previous one: not greater is a reorder,
/// more than one greater a gap.
fn offsets_in_order(reads: &[Read], report: &mut Report) {
    let mut last: HashMap<i32, i64> = HashMap::new();
    for read in reads {
        let Position { partition, offset } = read.position;
        if let Some(&previous) = last.get(&partition) {
            if offset <= previous {
                report.reorders.push(Reorder {
                    partition,
                    previous,
                    offset,
                });
            } else if offset > previous + 1 {
                report.gaps.push(Gap {
                    partition,
                    after: previous,
                    next: offset,
                });
            }
        }
        last.insert(partition, offset);
    }
}

/// Positions read with more than one distinct id.
fn inconsistent(reads: &[Read]) -> Vec<Inconsistent> {
    let mut at: BTreeMap<Position, Vec<ValueId>> = BTreeMap::new();
    for read in reads {
        let ids = at.entry(read.position).or_default();
        if !ids.contains(&read.id) {
            ids.push(read.id);
        }
    }
    at.into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(position, ids)| Inconsistent { position, ids })
        .collect()
}

/// Lost writes, acknowledged offset mismatches and conflicting acknowledgements.
fn acknowledged(
    attempts: &BTreeMap<ValueId, &Attempt>,
    read_at: &BTreeMap<ValueId, Vec<Position>>,
    report: &mut Report,
) {
    let mut acked_at: BTreeMap<Position, Vec<ValueId>> = BTreeMap::new();
    for (&id, attempt) in attempts {
        let Some(acked) = attempt.ack() else {
            continue;
        };
        acked_at.entry(acked).or_default().push(id);
        match read_at.get(&id) {
            None => report.lost.push(Lost { id, acked }),
            Some(read) if !read.contains(&acked) => report.mismatches.push(Mismatch {
                id,
                acked,
                read: read.clone(),
            }),
            Some(_) => {}
        }
    }
    report.ack_conflicts = acked_at
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(position, ids)| AckConflict { position, ids })
        .collect();
}

/// Reads of values never attempted or definitely failed; counts reads of indefinite ones.
fn unexpected(
    attempts: &BTreeMap<ValueId, &Attempt>,
    read_at: &BTreeMap<ValueId, Vec<Position>>,
    report: &mut Report,
) {
    for (&id, read) in read_at {
        let kind = match attempts.get(&id).map(|a| &a.outcome) {
            None => UnexpectedKind::NeverAttempted,
            Some(Outcome::Failed {
                definite: true,
                error,
            }) => UnexpectedKind::DefinitelyFailed(error.clone()),
            Some(Outcome::Failed { .. } | Outcome::Unknown) => {
                report.indefinite_read += 1;
                continue;
            }
            Some(Outcome::Acked(_)) => continue,
        };
        if let Some(&position) = read.first() {
            report.unexpected.push(Unexpected { id, position, kind });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` attempts acknowledged round-robin over two partitions, and their clean read-back.
    fn clean(n: u64) -> (History, Vec<Read>) {
        let place = |id: u64| ((id % 2) as i32, (id / 2) as i64);
        let attempts = (0..n)
            .map(|id| {
                let (p, o) = place(id);
                Attempt::acked(id, p, o)
            })
            .collect();
        let reads = (0..n)
            .map(|id| {
                let (p, o) = place(id);
                Read::new(p, o, id)
            })
            .collect();
        (
            History {
                attempts,
                retries: 0,
            },
            reads,
        )
    }

    #[test]
    fn a_complete_read_back_of_every_acknowledged_write_is_clean() {
        let (history, reads) = clean(10);
        let report = check(&history, &reads);
        report.assert_clean();
        assert_eq!((report.attempted, report.acked, report.reads), (10, 10, 10));
    }

    #[test]
    fn an_acknowledged_write_never_read_is_lost() {
        let (history, mut reads) = clean(10);
        reads.retain(|r| r.id != 4);
        let report = check(&history, &reads);
        assert_eq!(
            report.lost,
            vec![Lost {
                id: 4,
                acked: Position::new(0, 2)
            }]
        );
        assert_eq!(
            report.anomalies(),
            1,
            "the hole it leaves is only a gap: {report}"
        );
        assert_eq!(
            report.gaps,
            vec![Gap {
                partition: 0,
                after: 1,
                next: 3
            }]
        );
    }

    #[test]
    fn a_value_read_at_two_offsets_is_a_duplicate() {
        let (mut history, mut reads) = clean(4);
        // A retry written again after the original: 3 also at 1/2, acknowledged there.
        reads.push(Read::new(1, 2, 3));
        history.attempts[3] = Attempt::acked(3, 1, 2);
        let report = check(&history, &reads);
        assert_eq!(
            report.duplicates,
            vec![Duplicate {
                id: 3,
                positions: vec![Position::new(1, 1), Position::new(1, 2)]
            }]
        );
        assert_eq!(report.anomalies(), 1, "{report}");
    }

    #[test]
    fn rereading_one_record_is_a_reorder_not_a_duplicate() {
        let (history, mut reads) = clean(4);
        reads.push(reads[2]);
        let report = check(&history, &reads);
        assert!(report.duplicates.is_empty(), "{report}");
        assert_eq!(
            report.reorders,
            vec![Reorder {
                partition: 0,
                previous: 1,
                offset: 1
            }]
        );
        assert_eq!(report.anomalies(), 1, "{report}");
    }

    #[test]
    fn offsets_going_backwards_within_a_partition_are_non_monotonic() {
        let (history, mut reads) = clean(6);
        // Partition 0 read as 0, 2, 1: interleaved partition 1 reads do not matter.
        reads.swap(2, 4);
        let report = check(&history, &reads);
        assert_eq!(
            report.reorders,
            vec![Reorder {
                partition: 0,
                previous: 2,
                offset: 1
            }]
        );
        assert_eq!(report.anomalies(), 1, "{report}");
        assert_eq!(report.gaps.len(), 1, "0 to 2 skipped 1 when read");
    }

    #[test]
    fn gaps_are_reported_but_allowed() {
        let history = History {
            retries: 0,
            attempts: vec![Attempt::acked(0, 0, 0), Attempt::acked(1, 0, 5)],
        };
        let reads = [Read::new(0, 0, 0), Read::new(0, 5, 1)];
        let report = check(&history, &reads);
        report.assert_clean();
        assert_eq!(
            report.gaps,
            vec![Gap {
                partition: 0,
                after: 0,
                next: 5
            }]
        );
    }

    #[test]
    fn a_value_read_elsewhere_than_acknowledged_is_a_mismatch() {
        let (history, mut reads) = clean(4);
        // 3 was acknowledged at 1/1 but read at 1/7.
        reads[3] = Read::new(1, 7, 3);
        let report = check(&history, &reads);
        assert_eq!(
            report.mismatches,
            vec![Mismatch {
                id: 3,
                acked: Position::new(1, 1),
                read: vec![Position::new(1, 7)]
            }]
        );
        assert_eq!(report.anomalies(), 1, "{report}");
    }

    #[test]
    fn two_values_read_at_one_position_are_inconsistent() {
        let history = History {
            retries: 0,
            attempts: vec![
                Attempt::acked(0, 0, 0),
                Attempt::failed(1, false, "Timeout"),
            ],
        };
        // Two read-backs concatenated (e.g. of two replicas) that disagree about 0/0.
        let reads = [Read::new(0, 0, 0), Read::new(0, 0, 1)];
        let report = check(&history, &reads);
        assert_eq!(
            report.inconsistent,
            vec![Inconsistent {
                position: Position::new(0, 0),
                ids: vec![0, 1]
            }]
        );
        assert_eq!(
            report.reorders.len(),
            1,
            "the second read did not move forward"
        );
    }

    #[test]
    fn two_values_acknowledged_at_one_position_conflict() {
        // The old leader acknowledged 1 at 0/1, then lost it; the new one gave 0/1 to 2.
        let history = History {
            retries: 0,
            attempts: vec![
                Attempt::acked(0, 0, 0),
                Attempt::acked(1, 0, 1),
                Attempt::acked(2, 0, 1),
            ],
        };
        let reads = [Read::new(0, 0, 0), Read::new(0, 1, 2)];
        let report = check(&history, &reads);
        assert_eq!(
            report.ack_conflicts,
            vec![AckConflict {
                position: Position::new(0, 1),
                ids: vec![1, 2]
            }]
        );
        assert_eq!(report.lost.len(), 1, "and 1 is lost");
        assert_eq!(report.anomalies(), 2, "{report}");
    }

    #[test]
    fn a_value_never_attempted_is_unexpected() {
        let (history, mut reads) = clean(2);
        reads.push(Read::new(0, 1, 99));
        let report = check(&history, &reads);
        assert_eq!(
            report.unexpected,
            vec![Unexpected {
                id: 99,
                position: Position::new(0, 1),
                kind: UnexpectedKind::NeverAttempted
            }]
        );
        assert_eq!(report.anomalies(), 1, "{report}");
    }

    #[test]
    fn a_value_whose_send_definitely_failed_is_unexpected_if_read() {
        let history = History {
            retries: 0,
            attempts: vec![
                Attempt::acked(0, 0, 0),
                Attempt::failed(1, true, "RecordTooLargeException"),
            ],
        };
        let reads = [Read::new(0, 0, 0), Read::new(0, 1, 1)];
        let report = check(&history, &reads);
        assert_eq!(
            report.unexpected,
            vec![Unexpected {
                id: 1,
                position: Position::new(0, 1),
                kind: UnexpectedKind::DefinitelyFailed("RecordTooLargeException".to_owned())
            }]
        );
        assert_eq!(report.definite_failures, 1);
    }

    #[test]
    fn values_of_indefinite_outcome_may_or_may_not_be_read() {
        let history = History {
            retries: 0,
            attempts: vec![
                Attempt::acked(0, 0, 0),
                Attempt::failed(1, false, "TimeoutException"),
                Attempt::unknown(2),
                Attempt::failed(3, false, "NotEnoughReplicasAfterAppendException"),
            ],
        };
        let reads = [Read::new(0, 0, 0), Read::new(0, 1, 1), Read::new(0, 2, 2)];
        let report = check(&history, &reads);
        report.assert_clean();
        assert_eq!((report.indefinite, report.indefinite_read), (3, 2));
    }

    #[test]
    fn an_id_attempted_twice_makes_the_history_ambiguous() {
        let history = History {
            retries: 0,
            attempts: vec![
                Attempt::acked(0, 0, 0),
                Attempt::failed(0, true, "RecordTooLargeException"),
            ],
        };
        let report = check(&history, &[Read::new(0, 0, 0)]);
        assert_eq!(report.reused_ids, vec![0]);
        assert_eq!(
            report.anomalies(),
            1,
            "the first attempt is the one judged: {report}"
        );
    }
}
