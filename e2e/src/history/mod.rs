//! Jepsen-style consistency checking of client histories, for the replication and failover
//! tests: a producer's record of every send attempt and its outcome, a consumer's read-back of
//! the whole topic, and a pure checker comparing the two ([`check`] → [`Report`]).
//!
//! The checker names the anomalies Jepsen's Kafka workload (jepsen-io/redpanda
//! `workload/queue.clj`) looks for, in the form a one-producer, one-read-back test can see:
//!
//! - **lost writes**: acknowledged, never read;
//! - **duplicates**: one value read at more than one position;
//! - **reorders**: a partition's offsets, as read, not strictly increasing;
//! - **inconsistent offsets**: different values read at one position;
//! - **acknowledged offset mismatches**: read, but never where the acknowledgement said;
//! - **conflicting acknowledgements**: two values acknowledged at one position (divergent
//!   logs after a truncation);
//! - **unexpected reads**: values never attempted, or whose attempt definitely failed
//!   (values whose outcome was indefinite may or may not appear, as in Jepsen's checker);
//! - **reused ids**: two attempts with one id (a test bug; the history cannot be judged).
//!
//! Gaps in a partition's offsets are reported but allowed: transaction markers and compaction
//! leave them in Kafka. Any other anomaly fails [`Report::assert_clean`].
//!
//! [`java`] drives the Apache Kafka Java client to make such histories against a real broker
//! or cluster: a background idempotent acks=all producer a test can watch (and kill brokers
//! under), and a read-back of the topic.

mod check;
pub mod group;
pub mod java;
mod report;

use std::time::Duration;

pub use check::check;
pub use group::{GroupReader, GroupReads};
pub use java::{read_back, Producer, Producing, Workload};
pub use report::{
    AckConflict, Duplicate, Gap, Inconsistent, Lost, Mismatch, Reorder, Report, Unexpected,
    UnexpectedKind,
};

/// The unique id a producer writes as a record's value, so each read names its attempt.
pub type ValueId = u64;

/// Where a record sits: a partition of the test's topic and an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The partition index.
    pub partition: i32,
    /// The record's offset in that partition.
    pub offset: i64,
}

impl Position {
    /// `partition`/`offset`.
    pub fn new(partition: i32, offset: i64) -> Position {
        Position { partition, offset }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.partition, self.offset)
    }
}

/// How one send attempt ended, as the client reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The broker acknowledged the record at this position.
    Acked(Position),
    /// The client reported an error. `definite` means the record cannot have been written;
    /// otherwise it may have been. The Java driver is conservative: definite only when
    /// `send()` refused the record or the error is one the broker gives for the record's
    /// content or rights on every retry (HistoryCli.java's `DEFINITE`), since a retriable
    /// error on a last retry says nothing about an earlier attempt that timed out.
    Failed {
        /// Whether the failure rules out a write.
        definite: bool,
        /// The client's error (its exception class and message).
        error: String,
    },
    /// No outcome was reported: the producer stopped first. Indefinite, like a timeout.
    Unknown,
}

/// One send attempt of the producer's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The value the record carried.
    pub id: ValueId,
    /// How the attempt ended.
    pub outcome: Outcome,
    /// When the outcome arrived, since the producer started (zero when unknown): ack timing
    /// shows how long production stalled across a failover.
    pub at: Duration,
}

impl Attempt {
    /// An attempt acknowledged at `partition`/`offset`.
    pub fn acked(id: ValueId, partition: i32, offset: i64) -> Attempt {
        Attempt {
            id,
            outcome: Outcome::Acked(Position::new(partition, offset)),
            at: Duration::ZERO,
        }
    }

    /// An attempt that failed with `error`, definitely or not.
    pub fn failed(id: ValueId, definite: bool, error: &str) -> Attempt {
        Attempt {
            id,
            outcome: Outcome::Failed {
                definite,
                error: error.to_owned(),
            },
            at: Duration::ZERO,
        }
    }

    /// An attempt whose outcome never came.
    pub fn unknown(id: ValueId) -> Attempt {
        Attempt {
            id,
            outcome: Outcome::Unknown,
            at: Duration::ZERO,
        }
    }

    /// The position the broker acknowledged, if it did.
    pub fn ack(&self) -> Option<Position> {
        match self.outcome {
            Outcome::Acked(p) => Some(p),
            _ => None,
        }
    }
}

/// A producer's history: every attempt, in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The attempts, each with a distinct id.
    pub attempts: Vec<Attempt>,
    /// Sends the client retried after a retriable error (the Java producer's
    /// `record-retry-total`): what a failover or roll cost the client without failing a send.
    pub retries: u64,
}

impl History {
    /// How many attempts were acknowledged.
    pub fn acked(&self) -> usize {
        self.attempts.iter().filter(|a| a.ack().is_some()).count()
    }

    /// How many attempts did not end acknowledged, by error (`no outcome` for those whose
    /// outcome never came): what a test shows when fewer records were acknowledged than sent.
    pub fn failures(&self) -> std::collections::BTreeMap<String, usize> {
        let mut by_error = std::collections::BTreeMap::new();
        for attempt in &self.attempts {
            let error = match &attempt.outcome {
                Outcome::Acked(_) => continue,
                Outcome::Failed { error, .. } => error.clone(),
                Outcome::Unknown => "no outcome".to_owned(),
            };
            *by_error.entry(error).or_insert(0) += 1;
        }
        by_error
    }

    /// Adds another run's attempts (ids must not overlap: give each run its own
    /// [`Workload::first_id`]).
    pub fn extend(&mut self, other: History) {
        self.attempts.extend(other.attempts);
        self.retries += other.retries;
    }

    /// The longest time between two consecutive acknowledgements (by arrival): how long
    /// production stalled, e.g. across a leader's failover. None with fewer than two acks.
    pub fn longest_ack_gap(&self) -> Option<Duration> {
        let mut times: Vec<Duration> = self
            .attempts
            .iter()
            .filter(|a| a.ack().is_some())
            .map(|a| a.at)
            .collect();
        times.sort();
        times.windows(2).map(|w| w[1] - w[0]).max()
    }
}

/// One record of the read-back: where it was read and the id it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Where the consumer read it.
    pub position: Position,
    /// The id its value carried.
    pub id: ValueId,
}

impl Read {
    /// `id` read at `partition`/`offset`.
    pub fn new(partition: i32, offset: i64, id: ValueId) -> Read {
        Read {
            position: Position::new(partition, offset),
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_ack_gap_is_between_consecutive_acks_by_arrival() {
        let at = |mut a: Attempt, ms: u64| {
            a.at = Duration::from_millis(ms);
            a
        };
        let history = History {
            retries: 0,
            attempts: vec![
                at(Attempt::acked(0, 0, 0), 10),
                at(Attempt::failed(1, false, "TimeoutException"), 4000),
                at(Attempt::acked(2, 0, 1), 3010),
                at(Attempt::acked(3, 0, 2), 20),
            ],
        };
        assert_eq!(history.acked(), 3);
        assert_eq!(history.longest_ack_gap(), Some(Duration::from_millis(2990)));
        assert_eq!(History::default().longest_ack_gap(), None);
    }
}
