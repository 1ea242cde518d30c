//! Rounds of mutated frames: which case indices a round sends and until when, and the workers
//! that send them. With a [`Budget::Fixed`] budget round `r` sends exactly the case indices
//! `(r-1)·F .. r·F` on every machine (time only bounds a round a broker has slowed to a crawl);
//! with [`Budget::Timed`] rounds last a fixed time and continue where the last one stopped.

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::control::Control;
use super::fault::Fault;
use super::send::send_case;
use super::{harness_panic, Options, Shared};
use crate::checks::CaseRef;
use crate::mutate::Mutator;
use crate::unwind;

/// How many mutated frames a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The same cases on every machine, for the short run of `make test`: `rounds` rounds of
    /// `frames_per_round` frames each. `round_bound` only stops a round whose broker has slowed
    /// to a crawl; the summary then says the round sent fewer cases than planned.
    Fixed {
        /// Rounds.
        rounds: u64,
        /// Frames per round.
        frames_per_round: u64,
        /// Safety bound of one round.
        round_bound: Duration,
    },
    /// For long campaigns (`make fuzz`): rounds of `round_length` until `total` has passed (or
    /// `max_frames` were sent).
    Timed {
        /// Time for all rounds.
        total: Duration,
        /// Time per round.
        round_length: Duration,
        /// Frames at most.
        max_frames: Option<u64>,
    },
}

impl Budget {
    /// The fixed budget as (rounds, frames per round), if it is one.
    pub fn fixed(&self) -> Option<(u64, u64)> {
        match *self {
            Budget::Fixed {
                rounds,
                frames_per_round,
                ..
            } => Some((rounds, frames_per_round)),
            Budget::Timed { .. } => None,
        }
    }
}

/// One round's share of the cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Round {
    /// 1-based.
    pub(super) number: u64,
    /// First case index.
    pub(super) first: u64,
    /// One past the last case index it may send.
    pub(super) end: u64,
    /// When it stops even if cases are left.
    pub(super) until: Instant,
    /// `until - start`, for the watchdog and the report.
    pub(super) bound: Duration,
}

impl Round {
    /// Cases planned (None: as many as time allows).
    pub(super) fn planned(&self) -> Option<u64> {
        (self.end != u64::MAX).then(|| self.end.saturating_sub(self.first))
    }
}

/// Where the rounds of a run stand: what the next round is, if any.
pub(super) struct Plan {
    budget: Budget,
    deadline: Instant,
    next: u64,
}

impl Plan {
    /// A plan whose time (for a timed budget) starts now.
    pub(super) fn new(budget: Budget) -> Plan {
        let total = match budget {
            Budget::Timed { total, .. } => total,
            Budget::Fixed { .. } => Duration::ZERO,
        };
        Plan {
            budget,
            deadline: Instant::now() + total,
            next: 0,
        }
    }

    /// Round `number` (1-based), or None when the budget is spent.
    pub(super) fn round(&self, number: u64) -> Option<Round> {
        let now = Instant::now();
        match self.budget {
            Budget::Fixed {
                rounds,
                frames_per_round,
                round_bound,
            } => (number <= rounds).then(|| Round {
                number,
                first: (number - 1).saturating_mul(frames_per_round),
                end: number.saturating_mul(frames_per_round),
                until: now + round_bound,
                bound: round_bound,
            }),
            Budget::Timed {
                total,
                round_length,
                max_frames,
            } => {
                let max_rounds = total.as_secs() / round_length.as_secs().max(1) + 2;
                let end = max_frames.unwrap_or(u64::MAX);
                if number > max_rounds || now >= self.deadline || self.next >= end {
                    return None;
                }
                let until = (now + round_length.max(Duration::from_secs(1))).min(self.deadline);
                Some(Round {
                    number,
                    first: self.next,
                    end,
                    until,
                    bound: until - now,
                })
            }
        }
    }

    /// Records where a round stopped (a timed budget's next round continues from there).
    pub(super) fn finished(&mut self, round: &Round, sent: u64) {
        self.next = round.first.saturating_add(sent);
    }
}

/// Sends a round's cases from `opts.workers` threads; returns how many were sent. A panic in
/// a worker is a reported failure that aborts the run, never an unwinding scope.
pub(super) fn send_round(
    round: &Round,
    mutator: &Mutator<'_>,
    opts: &Options,
    shared: &Shared,
    control: &Control,
) -> u64 {
    let next = AtomicU64::new(round.first);
    std::thread::scope(|scope| {
        for _ in 0..opts.workers.max(1) {
            scope.spawn(|| worker(round, &next, mutator, opts, shared, control));
        }
    });
    next.load(Ordering::SeqCst)
        .min(round.end)
        .saturating_sub(round.first)
}

fn worker(
    round: &Round,
    next: &AtomicU64,
    mutator: &Mutator<'_>,
    opts: &Options,
    shared: &Shared,
    control: &Control,
) {
    let mut conn: Option<TcpStream> = None;
    while !control.aborted() && !shared.broker_gone() && Instant::now() < round.until {
        let index = next.fetch_add(1, Ordering::SeqCst);
        if index >= round.end {
            break;
        }
        let case = match unwind::catch(|| mutator.case(index)) {
            Ok(case) => case,
            Err(message) => {
                let place = format!("a worker generating case {index}");
                harness_panic(
                    shared,
                    control,
                    place,
                    round.number,
                    message,
                    Some(index),
                    None,
                );
                break;
            }
        };
        let sent = unwind::catch(|| {
            send_case(&case, &mut conn, opts.response_timeout, opts, shared);
            Fault::in_worker(opts.fault, index);
        });
        if let Err(message) = sent {
            let place = format!("a worker handling case {index}");
            let case = CaseRef::of(opts.seed, &case);
            harness_panic(
                shared,
                control,
                place,
                round.number,
                message,
                Some(index),
                Some(case),
            );
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_budget_gives_every_round_the_same_indices_whatever_the_last_one_sent() {
        let mut plan = Plan::new(Budget::Fixed {
            rounds: 3,
            frames_per_round: 100,
            round_bound: Duration::from_secs(60),
        });
        let r1 = plan.round(1).unwrap();
        assert_eq!((r1.first, r1.end, r1.planned()), (0, 100, Some(100)));
        plan.finished(&r1, 40); // cut short by its time bound
        let r2 = plan.round(2).unwrap();
        assert_eq!((r2.first, r2.end), (100, 200));
        assert!(plan.round(3).is_some());
        assert!(plan.round(4).is_none());
    }

    #[test]
    fn a_timed_budget_continues_where_the_last_round_stopped() {
        let mut plan = Plan::new(Budget::Timed {
            total: Duration::from_secs(3600),
            round_length: Duration::from_secs(10),
            max_frames: Some(500),
        });
        let r1 = plan.round(1).unwrap();
        assert_eq!((r1.first, r1.planned()), (0, Some(500)));
        plan.finished(&r1, 300);
        assert_eq!(plan.round(2).map(|r| r.first), Some(300));
        plan.finished(&plan.round(2).unwrap(), 200);
        assert!(plan.round(3).is_none(), "the frame budget is spent");
    }
}
