//! Faults the harness injects into itself, for its own tests: a worker or a check that panics,
//! a check that never returns. They show that a broken harness ends the run with a reported
//! failure (or the watchdog's exit), never with a hang.

use std::str::FromStr;
use std::time::Duration;

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The worker handling this case index panics (after sending it, as a decoder would).
    WorkerPanic {
        /// The case index.
        case: u64,
    },
    /// The checks after this round panic.
    CheckPanic {
        /// The round (0: after the regression seeds).
        round: u64,
    },
    /// The checks after this round never return.
    CheckHang {
        /// The round (0: after the regression seeds).
        round: u64,
    },
}

impl Fault {
    /// Panics if this is the worker fault for case `index`.
    pub(super) fn in_worker(fault: Option<Fault>, index: u64) {
        if fault == Some(Fault::WorkerPanic { case: index }) {
            panic!("injected fault: the worker handling case {index} panics");
        }
    }

    /// Panics or hangs if this is a check fault for `round`.
    pub(super) fn in_checks(fault: Option<Fault>, round: u64) {
        match fault {
            Some(Fault::CheckPanic { round: r }) if r == round => {
                panic!("injected fault: the checks after round {round} panic")
            }
            Some(Fault::CheckHang { round: r }) if r == round => loop {
                std::thread::sleep(Duration::from_secs(1));
            },
            _ => {}
        }
    }
}

/// A fault spelled `worker-panic:CASE`, `check-panic:ROUND` or `check-hang:ROUND` was not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected worker-panic:CASE, check-panic:ROUND or check-hang:ROUND")]
pub struct BadFault(String);

impl FromStr for Fault {
    type Err = BadFault;

    fn from_str(s: &str) -> Result<Fault, BadFault> {
        let bad = || BadFault(s.to_string());
        let (kind, n) = s.split_once(':').ok_or_else(bad)?;
        let n: u64 = n.parse().map_err(|_| bad())?;
        match kind {
            "worker-panic" => Ok(Fault::WorkerPanic { case: n }),
            "check-panic" => Ok(Fault::CheckPanic { round: n }),
            "check-hang" => Ok(Fault::CheckHang { round: n }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_their_flag_spelling() {
        assert_eq!("worker-panic:7".parse(), Ok(Fault::WorkerPanic { case: 7 }));
        assert_eq!("check-hang:1".parse(), Ok(Fault::CheckHang { round: 1 }));
        assert!("check-panic".parse::<Fault>().is_err());
        assert!("nap:1".parse::<Fault>().is_err());
    }
}
