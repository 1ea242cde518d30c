//! The watchdog: every phase of a run has a time bound; one that runs past it by the margin
//! means something waited without a bound. The watchdog then ends the run: it records the
//! overrun, stops the workers and kills the broker (so blocked reads return), and if the run
//! still has not ended one margin later, prints what it knows and exits the process.

use std::time::{Duration, Instant};

use super::control::Control;
use super::{lock, record_failures, Shared};
use crate::checks::Failure;

/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(50);

/// Exit status of a run the watchdog had to end by exiting the process.
pub const STUCK_EXIT_CODE: i32 = 3;

/// Watches `control`'s phases until the run stops. Exits the process with
/// [`STUCK_EXIT_CODE`] when an overrun run does not end within `margin` of being stopped.
pub(super) fn watch(control: &Control, shared: &Shared, margin: Duration) {
    let mut fired: Option<(Instant, String)> = None;
    while !control.stopped() {
        std::thread::sleep(TICK);
        match &fired {
            None => {
                let phase = control.phase();
                let elapsed = phase.started.elapsed();
                if elapsed <= phase.bound.saturating_add(margin) {
                    continue;
                }
                let overrun = Failure::Overrun {
                    phase: phase.name.clone(),
                    elapsed,
                    bound: phase.bound,
                    margin,
                    recent: lock(&shared.recent).iter().cloned().collect(),
                };
                eprintln!(
                    "tributary-fuzz: WATCHDOG: {} has run {:.1} s, past its {:.0} s bound and the {:.0} s margin: ending the run (no more frames; a broker the harness started is killed)",
                    phase.name,
                    elapsed.as_secs_f64(),
                    phase.bound.as_secs_f64(),
                    margin.as_secs_f64()
                );
                record_failures(shared, vec![overrun]);
                control.abort();
                control.kill_broker();
                fired = Some((Instant::now(), phase.name));
            }
            Some((at, name)) if at.elapsed() > margin => {
                eprintln!(
                    "tributary-fuzz: WATCHDOG: the run did not end within {:.0} s of being stopped ({name} never returned); exiting with status {STUCK_EXIT_CODE}. Failures so far:",
                    margin.as_secs_f64()
                );
                for f in lock(&shared.failures).iter() {
                    eprintln!("{f}");
                }
                std::process::exit(STUCK_EXIT_CODE);
            }
            Some(_) => {}
        }
    }
}
