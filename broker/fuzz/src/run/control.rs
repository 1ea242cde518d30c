//! What every thread of a run shares to end together: a stop flag for the helpers (resource
//! sampler, watchdog), an abort flag for the workers and the campaign, and the phase the run
//! is in with its time bound, which the watchdog enforces.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::broker::Killer;

/// A named step of the run and how long it may take.
#[derive(Debug, Clone)]
pub(super) struct Phase {
    /// What the run is doing ("round 3: sending frames").
    pub(super) name: String,
    /// When it began.
    pub(super) started: Instant,
    /// How long it may take before the watchdog's margin starts.
    pub(super) bound: Duration,
}

/// Flags and the current phase, shared by reference with every thread of a run.
pub(super) struct Control {
    stop: AtomicBool,
    abort: AtomicBool,
    phase: Mutex<Phase>,
    killer: Killer,
}

impl Control {
    /// A control for a run whose broker `killer` stops.
    pub(super) fn new(killer: Killer, bound: Duration) -> Control {
        Control {
            stop: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            phase: Mutex::new(Phase {
                name: "setup".into(),
                started: Instant::now(),
                bound,
            }),
            killer,
        }
    }

    /// Enters a new phase bounded by `bound`.
    pub(super) fn enter(&self, name: impl Into<String>, bound: Duration) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Phase {
            name: name.into(),
            started: Instant::now(),
            bound,
        };
    }

    /// The current phase.
    pub(super) fn phase(&self) -> Phase {
        self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Ends the run early: workers take no more cases, the campaign skips what is left.
    pub(super) fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }

    /// Whether the run was ended early.
    pub(super) fn aborted(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }

    /// Whether the run is over (the helpers return).
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The stop flag itself, for helpers that poll it.
    pub(super) fn stopped_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// Kills the broker if the harness started it.
    pub(super) fn kill_broker(&self) {
        self.killer.kill();
    }

    /// A guard that sets the stop flag when dropped: on the normal path and on every unwind,
    /// so a thread waiting for it can never outlive the run.
    pub(super) fn stop_on_drop(&self) -> StopOnDrop<'_> {
        StopOnDrop(&self.stop)
    }
}

/// Sets the stop flag when dropped (see [`Control::stop_on_drop`]).
pub(super) struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_flag_is_set_when_a_guarded_scope_unwinds() {
        // Without the guard the scope would wait for its helper forever: bound the wait.
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let control = Control::new(
                crate::broker::Broker::attach(String::new(), String::new(), None, None).killer(),
                Duration::from_secs(1),
            );
            let caught = crate::unwind::catch(|| {
                std::thread::scope(|scope| {
                    let _stop = control.stop_on_drop();
                    scope.spawn(|| {
                        while !control.stopped() {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    });
                    panic!("the campaign panics");
                })
            });
            let _ = done.send((caught.is_err(), control.stopped()));
        });
        let ended = ended.recv_timeout(Duration::from_secs(30));
        assert_eq!(ended, Ok((true, true)), "the unwinding scope must end");
    }
}
