//! The run's checks. Each finding is a [`Failure`] whose report says how to reproduce it:
//! the seed and case index that regenerate the frame, and the frame's hex to send by hand.

pub mod health;
pub mod ledger;
pub mod readback;
pub mod strict;
pub mod tool;

use std::fmt;
use std::time::Duration;

use crate::mutate::Case;
use crate::wire::hex;

/// Bytes of a frame a report keeps (the ledger holds a reference per acknowledgement, and
/// bombs are megabytes); the seed and case index regenerate longer frames whole.
const FRAME_KEPT: usize = 4 << 10;

/// A case as a report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRef {
    /// The run's seed.
    pub seed: u64,
    /// The case index (u64::MAX - n for the n-th regression seed).
    pub index: u64,
    /// Where the frame came from.
    pub origin: String,
    /// What was done to it.
    pub mutation: String,
    /// The frame as sent, or its first [`FRAME_KEPT`] bytes.
    pub frame: Vec<u8>,
    /// The frame's whole length.
    pub frame_len: usize,
}

impl CaseRef {
    /// The reference to a case.
    pub fn of(seed: u64, case: &Case) -> CaseRef {
        CaseRef {
            seed,
            index: case.index,
            origin: case.origin.clone(),
            mutation: case.mutation.clone(),
            frame: case.frame[..case.frame.len().min(FRAME_KEPT)].to_vec(),
            frame_len: case.frame.len(),
        }
    }
}

impl fmt::Display for CaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "    case: seed {} index {} ({}; mutation: {})",
            self.seed, self.index, self.origin, self.mutation
        )?;
        let h = hex(&self.frame);
        if self.frame.len() < self.frame_len {
            write!(
                f,
                "    frame ({} bytes, first {} shown): {h}…",
                self.frame_len,
                self.frame.len()
            )
        } else {
            write!(f, "    frame ({} bytes): {h}", self.frame_len)
        }
    }
}

/// A finding: any of these fails the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The broker logged a panic.
    Panic {
        /// The log lines from the panic on.
        excerpt: String,
        /// The frames sent just before the check that found it.
        recent: Vec<CaseRef>,
    },
    /// The broker process is gone.
    Died {
        /// Its exit status.
        status: String,
        /// What its log says of the death (an allocation failure or a signal leaves no panic).
        log_tail: String,
        /// The frames whose exchange its death cut off: the one that killed it is among them
        /// (the rest were in flight on other connections, or sent after it).
        cut_off: Vec<CaseRef>,
        /// The frames sent just before.
        recent: Vec<CaseRef>,
    },
    /// /healthz did not answer 200.
    Unhealthy {
        /// What happened.
        reason: String,
    },
    /// A real client's produce-and-consume round trip failed.
    RoundTrip {
        /// What happened.
        reason: String,
    },
    /// Resident memory above the ceiling.
    Memory {
        /// VmRSS seen.
        rss_mib: u64,
        /// The ceiling.
        ceiling_mib: u64,
    },
    /// Open descriptors above the ceiling.
    Descriptors {
        /// Count seen.
        fds: usize,
        /// The ceiling.
        ceiling: usize,
    },
    /// A Produce response acknowledged (error 0) a batch the strict decoder refuses.
    InvalidAck {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The base offset acknowledged.
        base_offset: i64,
        /// What is wrong with the batch.
        defect: String,
        /// The request.
        case: CaseRef,
    },
    /// A stored batch does not decode cleanly (read back with Fetch).
    StoredInvalid {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Base offset of the batch.
        offset: i64,
        /// What is wrong.
        defect: String,
        /// The request that was acknowledged at that offset, if the ledger knows it.
        acked_by: Option<CaseRef>,
    },
    /// The log end is far beyond the records the partition holds.
    OffsetJump {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// High watermark.
        log_end: i64,
        /// Records actually present (from the log start).
        records: i64,
    },
    /// A real consumer failed on a partition, or saw other records than the strict decoder.
    Consumer {
        /// Which consumer.
        tool: &'static str,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// What it said.
        detail: String,
    },
    /// The harness itself panicked, in a worker or a check: a harness bug (or one in a library
    /// it shares with the broker, such as kafka-protocol's decoder) that ended the run early.
    HarnessPanic {
        /// Where: the worker and what it was doing, or the check.
        place: String,
        /// The round (0: the regression seeds).
        round: u64,
        /// The run's seed.
        seed: u64,
        /// The panic's message and location.
        message: String,
        /// The index of the case being generated or sent, if it was a worker.
        index: Option<u64>,
        /// The case being sent (None while it was being generated: the seed and index
        /// regenerate it).
        case: Option<CaseRef>,
        /// The frames sent last (for a check).
        recent: Vec<CaseRef>,
    },
    /// A phase of the run went past its bound and the watchdog's margin: something waited
    /// without a bound. The watchdog ended the run.
    Overrun {
        /// The phase ("round 3: sending frames", "checks after round 2", ...).
        phase: String,
        /// How long it had run.
        elapsed: Duration,
        /// Its bound.
        bound: Duration,
        /// The margin allowed past the bound.
        margin: Duration,
        /// The frames sent last.
        recent: Vec<CaseRef>,
    },
}

impl Failure {
    /// Names the round and seed of a harness panic found by a check that knows neither.
    pub fn in_round(self, round: u64, seed: u64) -> Failure {
        match self {
            Failure::HarnessPanic {
                place,
                message,
                index,
                case,
                recent,
                ..
            } => Failure::HarnessPanic {
                place,
                round,
                seed,
                message,
                index,
                case,
                recent,
            },
            other => other,
        }
    }

    /// Short kind name, for tallies.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Panic { .. } => "panic",
            Failure::Died { .. } => "broker died",
            Failure::Unhealthy { .. } => "/healthz failed",
            Failure::RoundTrip { .. } => "client round trip failed",
            Failure::Memory { .. } => "memory above ceiling",
            Failure::Descriptors { .. } => "descriptors above ceiling",
            Failure::InvalidAck { .. } => "INVALID BATCH ACKNOWLEDGED",
            Failure::StoredInvalid { .. } => "INVALID BATCH STORED",
            Failure::OffsetJump { .. } => "LOG END OFFSET JUMPED",
            Failure::Consumer { .. } => "real consumer failed",
            Failure::HarnessPanic { .. } => "HARNESS PANICKED",
            Failure::Overrun { .. } => "WATCHDOG: PHASE OVERRAN",
        }
    }
}

fn recent_list(f: &mut fmt::Formatter<'_>, recent: &[CaseRef]) -> fmt::Result {
    writeln!(f, "  last frames sent before it ({}):", recent.len())?;
    for c in recent {
        writeln!(f, "{c}")?;
    }
    Ok(())
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FAIL [{}] ", self.kind())?;
        match self {
            Failure::Panic { excerpt, recent } => {
                writeln!(f, "the broker panicked:\n{excerpt}")?;
                recent_list(f, recent)
            }
            Failure::Died { status, log_tail, cut_off, recent } => {
                writeln!(f, "the broker exited: {status}")?;
                if !log_tail.is_empty() {
                    writeln!(f, "  its log:")?;
                    for line in log_tail.lines() {
                        writeln!(f, "    | {line}")?;
                    }
                }
                if cut_off.is_empty() {
                    return recent_list(f, recent);
                }
                writeln!(
                    f,
                    "  frames whose exchange its death cut off ({}; the one that killed it is among them):",
                    cut_off.len()
                )?;
                for c in cut_off {
                    writeln!(f, "{c}")?;
                }
                Ok(())
            }
            Failure::Unhealthy { reason } => write!(f, "/healthz: {reason}"),
            Failure::RoundTrip { reason } => write!(f, "kcat produce+consume of a marker: {reason}"),
            Failure::Memory { rss_mib, ceiling_mib } => write!(f, "VmRSS {rss_mib} MiB > ceiling {ceiling_mib} MiB"),
            Failure::Descriptors { fds, ceiling } => write!(f, "{fds} open descriptors > ceiling {ceiling}"),
            Failure::InvalidAck { topic, partition, base_offset, defect, case } => write!(
                f,
                "{topic}-{partition} acknowledged at offset {base_offset} with error 0, but the batch is invalid: {defect}\n{case}"
            ),
            Failure::StoredInvalid { topic, partition, offset, defect, acked_by } => {
                write!(f, "{topic}-{partition} offset {offset} reads back invalid: {defect}")?;
                match acked_by {
                    Some(c) => write!(f, "\n  acknowledged for:\n{c}"),
                    None => write!(f, " (no acknowledgement of ours at that offset)"),
                }
            }
            Failure::OffsetJump { topic, partition, log_end, records } => write!(
                f,
                "{topic}-{partition} log end offset {log_end} but only {records} records are present"
            ),
            Failure::Consumer { tool, topic, partition, detail } => {
                write!(f, "{tool} on {topic}-{partition}: {detail}")
            }
            Failure::HarnessPanic { place, round, seed, message, index, case, recent } => {
                writeln!(f, "the harness panicked in {place} (round {round}): {message}")?;
                match (case, index) {
                    (Some(c), _) => writeln!(f, "{c}")?,
                    (None, Some(i)) => writeln!(
                        f,
                        "    case: seed {seed} index {i} (it panicked while being generated; `Mutator::case({i})` regenerates it)"
                    )?,
                    (None, None) => {}
                }
                if recent.is_empty() {
                    Ok(())
                } else {
                    recent_list(f, recent)
                }
            }
            Failure::Overrun { phase, elapsed, bound, margin, recent } => {
                writeln!(
                    f,
                    "{phase} ran {:.1} s, past its {:.0} s bound and the {:.0} s margin: the watchdog ended the run",
                    elapsed.as_secs_f64(),
                    bound.as_secs_f64(),
                    margin.as_secs_f64()
                )?;
                recent_list(f, recent)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_reference_keeps_a_bomb_sized_frame_short_but_names_its_length() {
        let case = Case {
            index: 7,
            frame: vec![0xab; 100_000],
            origin: "o".into(),
            mutation: "m".into(),
            fresh_connection: false,
        };
        let r = CaseRef::of(3, &case);
        assert_eq!((r.frame.len(), r.frame_len), (FRAME_KEPT, 100_000));
        let text = r.to_string();
        assert!(text.contains("seed 3 index 7"), "{text}");
        assert!(
            text.contains("frame (100000 bytes, first 4096 shown)"),
            "{text}"
        );
    }
}
