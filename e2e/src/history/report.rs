//! What the checker found: each anomaly with its examples, a readable summary, and the
//! assertion tests make.

use std::fmt;

use super::{Position, ValueId};

/// How many examples of each anomaly the summary shows.
const EXAMPLES: usize = 5;

/// An acknowledged value that the read-back never saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The value.
    pub id: ValueId,
    /// Where the broker acknowledged it.
    pub acked: Position,
}

/// A value read at more than one position (written twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The value.
    pub id: ValueId,
    /// Every distinct position it was read at, in order.
    pub positions: Vec<Position>,
}

/// A read whose offset did not increase over the partition's previous read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorder {
    /// The partition.
    pub partition: i32,
    /// The previous read's offset.
    pub previous: i64,
    /// This read's offset (at most `previous`).
    pub offset: i64,
}

/// Offsets skipped between two consecutive reads of a partition. Allowed: transaction
/// markers and compaction leave gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The partition.
    pub partition: i32,
    /// The previous read's offset.
    pub after: i64,
    /// The next read's offset (more than `after + 1`).
    pub next: i64,
}

/// One position read with different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistent {
    /// The position.
    pub position: Position,
    /// The distinct values read there, in order.
    pub ids: Vec<ValueId>,
}

/// A value read, but never at the position its acknowledgement named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The value.
    pub id: ValueId,
    /// Where the broker acknowledged it.
    pub acked: Position,
    /// Where it was read instead.
    pub read: Vec<Position>,
}

/// Two or more values acknowledged at one position: at most one of them can be there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckConflict {
    /// The position.
    pub position: Position,
    /// The values acknowledged there.
    pub ids: Vec<ValueId>,
}

/// Why a read value should not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnexpectedKind {
    /// No attempt carried this id.
    NeverAttempted,
    /// Its attempt failed definitely, with this error.
    DefinitelyFailed(String),
}

/// A read value that was never written as far as the producer knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpected {
    /// The value.
    pub id: ValueId,
    /// Where it was read (first).
    pub position: Position,
    /// Why it should not exist.
    pub kind: UnexpectedKind,
}

/// The checker's findings. Every list but `gaps` is an anomaly that fails
/// [`Report::assert_clean`]; the counts describe the history itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Send attempts in the history.
    pub attempted: usize,
    /// Attempts the broker acknowledged.
    pub acked: usize,
    /// Attempts that failed definitely.
    pub definite_failures: usize,
    /// Attempts whose outcome is indefinite (failed indefinitely, or no outcome).
    pub indefinite: usize,
    /// Records in the read-back.
    pub reads: usize,
    /// Values of indefinite attempts that were read (allowed: they were written after all).
    pub indefinite_read: usize,
    /// Acknowledged values never read.
    pub lost: Vec<Lost>,
    /// Values read at more than one position.
    pub duplicates: Vec<Duplicate>,
    /// Reads whose offset did not increase within their partition.
    pub reorders: Vec<Reorder>,
    /// Positions read with different values.
    pub inconsistent: Vec<Inconsistent>,
    /// Values read, but not where they were acknowledged.
    pub mismatches: Vec<Mismatch>,
    /// Positions acknowledged for more than one value.
    pub ack_conflicts: Vec<AckConflict>,
    /// Values read that were never attempted or definitely failed.
    pub unexpected: Vec<Unexpected>,
    /// Ids attempted more than once (the history is ambiguous).
    pub reused_ids: Vec<ValueId>,
    /// Skipped offsets (allowed).
    pub gaps: Vec<Gap>,
}

impl Report {
    /// How many anomalies were found (gaps excluded).
    pub fn anomalies(&self) -> usize {
        self.lost.len()
            + self.duplicates.len()
            + self.reorders.len()
            + self.inconsistent.len()
            + self.mismatches.len()
            + self.ack_conflicts.len()
            + self.unexpected.len()
            + self.reused_ids.len()
    }

    /// Whether no anomaly was found.
    pub fn is_clean(&self) -> bool {
        self.anomalies() == 0
    }

    /// Fails the calling test with the summary unless the report is clean.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(self.is_clean(), "the client history has anomalies:\n{self}");
    }
}

/// Writes `name: count` and up to [`EXAMPLES`] examples, each formatted by `show`.
fn section<T>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    items: &[T],
    show: impl Fn(&T) -> String,
) -> fmt::Result {
    write!(f, "\n{name}: {}", items.len())?;
    if items.is_empty() {
        return Ok(());
    }
    let examples: Vec<String> = items.iter().take(EXAMPLES).map(show).collect();
    let more = if items.len() > EXAMPLES { ", ..." } else { "" };
    write!(f, " (e.g. {}{more})", examples.join("; "))
}

/// Positions (`p/o, p/o`) or ids (`a, b`) as a list.
fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} attempted: {} acknowledged, {} failed definitely, {} indefinite ({} of them read); \
             {} reads; {} anomalies (positions are partition/offset)",
            self.attempted,
            self.acked,
            self.definite_failures,
            self.indefinite,
            self.indefinite_read,
            self.reads,
            self.anomalies()
        )?;
        section(f, "lost writes", &self.lost, |l| {
            format!("{} acknowledged at {}", l.id, l.acked)
        })?;
        section(f, "duplicates", &self.duplicates, |d| {
            format!("{} at {}", d.id, list(&d.positions))
        })?;
        section(f, "non-monotonic offsets", &self.reorders, |r| {
            format!(
                "partition {}: {} after {}",
                r.partition, r.offset, r.previous
            )
        })?;
        section(f, "inconsistent offsets", &self.inconsistent, |i| {
            format!("{} holds {}", i.position, list(&i.ids))
        })?;
        section(f, "acknowledged offset mismatches", &self.mismatches, |m| {
            format!(
                "{} acknowledged at {}, read at {}",
                m.id,
                m.acked,
                list(&m.read)
            )
        })?;
        section(
            f,
            "conflicting acknowledgements",
            &self.ack_conflicts,
            |c| format!("{} acknowledged for {}", c.position, list(&c.ids)),
        )?;
        section(f, "unexpected reads", &self.unexpected, |u| match &u.kind {
            UnexpectedKind::NeverAttempted => {
                format!("{} at {}, never attempted", u.id, u.position)
            }
            UnexpectedKind::DefinitelyFailed(error) => {
                format!("{} at {}, whose send failed with {error}", u.id, u.position)
            }
        })?;
        section(f, "reused ids", &self.reused_ids, ValueId::to_string)?;
        section(f, "gaps (allowed)", &self.gaps, |g| {
            format!("partition {}: {} to {}", g.partition, g.after, g.next)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_report_passes_and_its_summary_counts_every_kind() {
        let report = Report {
            attempted: 3,
            acked: 3,
            reads: 3,
            gaps: vec![Gap {
                partition: 0,
                after: 1,
                next: 3,
            }],
            ..Report::default()
        };
        report.assert_clean();
        let text = report.to_string();
        assert!(text.starts_with("3 attempted: 3 acknowledged"), "{text}");
        assert!(text.contains("\nlost writes: 0\n"), "{text}");
        assert!(
            text.contains("\ngaps (allowed): 1 (e.g. partition 0: 1 to 3)"),
            "{text}"
        );
    }

    #[test]
    fn assert_clean_fails_with_examples_of_each_anomaly() {
        let report = Report {
            lost: (0..7)
                .map(|id| Lost {
                    id,
                    acked: Position::new(1, id as i64),
                })
                .collect(),
            unexpected: vec![Unexpected {
                id: 9,
                position: Position::new(0, 4),
                kind: UnexpectedKind::DefinitelyFailed("RecordTooLargeException".to_owned()),
            }],
            ..Report::default()
        };
        assert_eq!(report.anomalies(), 8);
        let panic = std::panic::catch_unwind(|| report.assert_clean())
            .expect_err("an unclean report fails the test");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains(
                "lost writes: 7 (e.g. 0 acknowledged at 1/0; 1 acknowledged at 1/1; \
                 2 acknowledged at 1/2; 3 acknowledged at 1/3; 4 acknowledged at 1/4, ...)"
            ),
            "{message}"
        );
        assert!(
            message.contains(
                "unexpected reads: 1 (e.g. 9 at 0/4, whose send failed with RecordTooLargeException)"
            ),
            "{message}"
        );
    }
}
