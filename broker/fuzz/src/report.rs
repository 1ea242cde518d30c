//! The run's summary: frames sent, outcomes per API key, peaks, every check's verdict, and
//! the failures with their reproducers.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use kafka_protocol::messages::ResponseKind;

use crate::checks::health::{Ceilings, Peaks};
use crate::checks::Failure;
use crate::mutate::api_name;

/// Failures shown in full per kind (the rest are counted).
const SHOWN_PER_KIND: usize = 5;

/// What became of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A response that decoded; the error codes in it; whether it echoed the correlation id.
    Answered {
        /// Every error code in the response (top level and per item), deduplicated.
        codes: Vec<i16>,
        /// The response carried the request's correlation id.
        correlation_ok: bool,
    },
    /// A response that does not decode at the request's API and version.
    Undecodable,
    /// The broker closed the connection.
    Closed,
    /// No answer within the response timeout.
    TimedOut,
    /// The connection failed while sending.
    SendFailed,
    /// acks=0 Produce: no response is due.
    NoResponseDue,
}

/// Outcomes of one API key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApiTally {
    /// Frames sent with this key.
    pub sent: u64,
    /// Answered (decodable).
    pub answered: u64,
    /// Error codes across the answers.
    pub error_codes: BTreeMap<i16, u64>,
    /// Answers that did not decode.
    pub undecodable: u64,
    /// Answers with another correlation id.
    pub wrong_correlation: u64,
    /// Connections closed by the broker.
    pub closed: u64,
    /// Timeouts.
    pub timed_out: u64,
    /// Send failures.
    pub send_failed: u64,
    /// acks=0 produce requests.
    pub no_response_due: u64,
    /// Time spent on these frames (send to answer, close or timeout), ms.
    pub total_ms: u64,
    /// The first case whose answer did not decode (index, frame hex), to look into.
    pub first_undecodable: Option<(u64, String)>,
}

impl ApiTally {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: &Outcome) {
        self.sent += 1;
        match outcome {
            Outcome::Answered {
                codes,
                correlation_ok,
            } => {
                self.answered += 1;
                for c in codes {
                    *self.error_codes.entry(*c).or_default() += 1;
                }
                if !correlation_ok {
                    self.wrong_correlation += 1;
                }
            }
            Outcome::Undecodable => self.undecodable += 1,
            Outcome::Closed => self.closed += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::SendFailed => self.send_failed += 1,
            Outcome::NoResponseDue => self.no_response_due += 1,
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &ApiTally) {
        self.sent += other.sent;
        self.answered += other.answered;
        for (c, n) in &other.error_codes {
            *self.error_codes.entry(*c).or_default() += n;
        }
        self.undecodable += other.undecodable;
        self.wrong_correlation += other.wrong_correlation;
        self.closed += other.closed;
        self.timed_out += other.timed_out;
        self.send_failed += other.send_failed;
        self.no_response_due += other.no_response_due;
        self.total_ms += other.total_ms;
        if self.first_undecodable.is_none() {
            self.first_undecodable.clone_from(&other.first_undecodable);
        }
    }
}

/// Every error code in a response. Produce and Fetch are walked directly (a Fetch response's
/// records would make the generic path slow); the rest are read from their Debug form,
/// where every error field is named `error_code` (other `*_error_code` fields are left out).
pub fn error_codes(response: &ResponseKind) -> Vec<i16> {
    let mut codes: Vec<i16> = match response {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
            .collect(),
        ResponseKind::Fetch(r) => std::iter::once(r.error_code)
            .chain(
                r.responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            )
            .collect(),
        other => {
            let text = format!("{other:?}");
            text.match_indices("error_code: ")
                .filter(|(i, _)| {
                    !text[..*i].ends_with(|c: char| c == '_' || c.is_ascii_alphanumeric())
                })
                .filter_map(|(i, m)| {
                    let rest = &text[i + m.len()..];
                    let end = rest
                        .find(|c: char| c != '-' && !c.is_ascii_digit())
                        .unwrap_or(rest.len());
                    rest[..end].parse().ok()
                })
                .collect()
        }
    };
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// A round of a fixed budget that its time bound stopped before it sent all its cases: the run
/// was not the same test it is on a faster machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutRound {
    /// The round.
    pub round: u64,
    /// Frames it sent.
    pub sent: u64,
    /// Frames it should have sent.
    pub planned: u64,
    /// Its time bound.
    pub bound: Duration,
}

/// The run's summary.
#[derive(Debug, Default)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Outcomes per API key (as sent; mutated keys included).
    pub tallies: BTreeMap<i16, ApiTally>,
    /// Rounds started.
    pub rounds: u64,
    /// Mutated frames sent (the regression seeds are not counted).
    pub mutated: u64,
    /// The fixed budget, (rounds, frames per round), if the run had one.
    pub budget: Option<(u64, u64)>,
    /// Rounds of the fixed budget their time bound stopped early.
    pub cut: Vec<CutRound>,
    /// Wall time.
    pub duration: Duration,
    /// Resource peaks.
    pub peaks: Peaks,
    /// The ceilings checked.
    pub ceilings: Option<Ceilings>,
    /// Batches acknowledged that the strict decoder accepts / refuses.
    pub acks: (u64, u64),
    /// Read-back passes and partitions read in the last one.
    pub readbacks: (u64, usize),
    /// Widened corpus size (captured + re-encoded + synthesized) and regression seeds sent.
    pub corpus: (usize, usize),
    /// Served (API key, version) pairs the widened corpus covers, and how many are served.
    pub coverage: (usize, usize),
    /// Every finding.
    pub failures: Vec<Failure>,
}

impl Summary {
    /// Frames sent in total.
    pub fn frames(&self) -> u64 {
        self.tallies.values().map(|t| t.sent).sum()
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn count(&self, kinds: &[&str]) -> usize {
        self.failures
            .iter()
            .filter(|f| kinds.contains(&f.kind()))
            .count()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== tributary-fuzz summary ==")?;
        writeln!(
            f,
            "seed {}: {} frames in {} rounds, {:.1} s; corpus {} frames widened (covering {} of {} served API versions), {} regression seeds",
            self.seed,
            self.frames(),
            self.rounds,
            self.duration.as_secs_f64(),
            self.corpus.0,
            self.coverage.0,
            self.coverage.1,
            self.corpus.1
        )?;
        match self.budget {
            Some((rounds, per_round)) => writeln!(
                f,
                "mutated frames: {} of a fixed budget of {rounds} rounds x {per_round} (the same cases on every machine)",
                self.mutated
            )?,
            None => writeln!(f, "mutated frames: {} (time budget)", self.mutated)?,
        }
        for c in &self.cut {
            writeln!(
                f,
                "WARNING: round {} reached its {} s safety bound after {} of {} frames: this run sent fewer cases than the same seed does elsewhere",
                c.round,
                c.bound.as_secs(),
                c.sent,
                c.planned
            )?;
        }
        writeln!(
            f,
            "peak RSS {} MiB, peak descriptors {}",
            self.peaks.rss_mib, self.peaks.fds
        )?;
        writeln!(
            f,
            "outcomes per API key (answered [error code:count], closed, timed out, ...):"
        )?;
        for (key, t) in &self.tallies {
            let codes: Vec<String> = t
                .error_codes
                .iter()
                .map(|(c, n)| format!("{c}:{n}"))
                .collect();
            write!(
                f,
                "  {:<30} sent {:>6} ({:>4} ms avg)  answered {:>6} [{}]  closed {}  timed out {}",
                format!("{} ({key})", api_name(*key)),
                t.sent,
                t.total_ms / t.sent.max(1),
                t.answered,
                codes.join(" "),
                t.closed,
                t.timed_out
            )?;
            for (what, n) in [
                ("undecodable answers", t.undecodable),
                ("wrong correlation ids", t.wrong_correlation),
                ("send failures", t.send_failed),
                ("acks=0", t.no_response_due),
            ] {
                if n > 0 {
                    write!(f, "  {what} {n}")?;
                }
            }
            writeln!(f)?;
            if let Some((index, frame)) = &t.first_undecodable {
                writeln!(
                    f,
                    "    first undecodable answer: case {index}, frame {frame}"
                )?;
            }
        }
        let verdict = |kinds: &[&str]| {
            if self.count(kinds) == 0 {
                "ok".to_string()
            } else {
                format!("FAIL ({})", self.count(kinds))
            }
        };
        let (rss, fds) = self.ceilings.map_or((0, 0), |c| (c.rss_mib, c.fds));
        writeln!(f, "checks:")?;
        writeln!(
            f,
            "  no panic in the broker's log ............. {}",
            verdict(&["panic"])
        )?;
        writeln!(
            f,
            "  process up, /healthz 200 ................. {}",
            verdict(&["broker died", "/healthz failed"])
        )?;
        writeln!(
            f,
            "  kcat round trip between rounds ........... {}",
            verdict(&["client round trip failed"])
        )?;
        writeln!(
            f,
            "  VmRSS <= {rss} MiB (peak {}) ............ {}",
            self.peaks.rss_mib,
            verdict(&["memory above ceiling"])
        )?;
        writeln!(
            f,
            "  descriptors <= {fds} (peak {}) ........... {}",
            self.peaks.fds,
            verdict(&["descriptors above ceiling"])
        )?;
        writeln!(
            f,
            "  NO INVALID BATCH ACKNOWLEDGED ............ {} ({} valid and {} invalid batches acknowledged)",
            verdict(&["INVALID BATCH ACKNOWLEDGED"]),
            self.acks.0,
            self.acks.1
        )?;
        writeln!(
            f,
            "  acknowledged partitions read back clean .. {} ({} passes, {} partitions; strict decoder + kcat)",
            verdict(&["INVALID BATCH STORED", "LOG END OFFSET JUMPED", "real consumer failed"]),
            self.readbacks.0,
            self.readbacks.1
        )?;
        writeln!(
            f,
            "  harness: no panic, no overrun ............ {}",
            verdict(&["HARNESS PANICKED", "WATCHDOG: PHASE OVERRAN"])
        )?;
        if self.passed() {
            return writeln!(f, "VERDICT: PASS");
        }
        let mut by_kind: BTreeMap<&str, Vec<&Failure>> = BTreeMap::new();
        for fail in &self.failures {
            by_kind.entry(fail.kind()).or_default().push(fail);
        }
        writeln!(f, "failures:")?;
        for (kind, list) in &by_kind {
            writeln!(f, "-- {kind}: {} --", list.len())?;
            for fail in list.iter().take(SHOWN_PER_KIND) {
                writeln!(f, "{fail}")?;
            }
            if list.len() > SHOWN_PER_KIND {
                writeln!(f, "  ... and {} more", list.len() - SHOWN_PER_KIND)?;
            }
        }
        let kinds: Vec<String> = by_kind
            .iter()
            .map(|(k, v)| format!("{k} x{}", v.len()))
            .collect();
        writeln!(f, "VERDICT: FAIL ({})", kinds.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    use kafka_protocol::messages::{CreateTopicsResponse, ResponseKind};

    #[test]
    fn error_codes_are_found_at_every_level_of_a_response() {
        let r = CreateTopicsResponse::default().with_topics(vec![
            CreatableTopicResult::default().with_error_code(37),
            CreatableTopicResult::default().with_error_code(-1),
            CreatableTopicResult::default().with_error_code(37),
        ]);
        assert_eq!(error_codes(&ResponseKind::CreateTopics(r)), vec![-1, 37]);
    }

    #[test]
    fn the_summary_tallies_outcomes_and_names_the_verdict() {
        let mut s = Summary {
            seed: 7,
            ..Summary::default()
        };
        let t = s.tallies.entry(0).or_default();
        t.add(&Outcome::Answered {
            codes: vec![0, 2],
            correlation_ok: true,
        });
        t.add(&Outcome::Closed);
        t.add(&Outcome::TimedOut);
        assert_eq!((t.sent, t.answered, t.closed, t.timed_out), (3, 1, 1, 1));
        let text = s.to_string();
        assert!(text.contains("Produce (0)"), "{text}");
        assert!(text.contains("[0:1 2:1]"), "{text}");
        assert!(text.ends_with("VERDICT: PASS\n"), "{text}");
        s.failures.push(Failure::Unhealthy {
            reason: "503".into(),
        });
        let text = s.to_string();
        assert!(
            text.contains("process up, /healthz 200 ................. FAIL (1)"),
            "{text}"
        );
        assert!(
            text.contains("VERDICT: FAIL (/healthz failed x1)"),
            "{text}"
        );
        assert!(!s.passed());
    }
}
