//! The runner: starts (or attaches to) the broker, widens the corpus, sends the regression
//! seeds, then mutated frames in rounds from several workers on fresh and reused connections,
//! checking the broker between rounds and reading acknowledged partitions back.
//!
//! It can fail but never hang: a panic in a worker or a check is a reported failure that ends
//! the run ([`crate::unwind`]); every thread it starts stops on every path (a guard sets the
//! stop flag when the run's scope ends, unwinding or not); and a watchdog ends a run whose
//! current phase overruns its bound by a margin ([`watchdog`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::broker::{Broker, Probe, SpawnOptions};
use crate::checks::health::{self, Ceilings, Peaks};
use crate::checks::ledger::Ledger;
use crate::checks::strict::Limits;
use crate::checks::{CaseRef, Failure};
use crate::report::{ApiTally, CutRound, Summary};
use crate::{unwind, Result};
use control::Control;

mod campaign;
mod control;
mod fault;
mod rounds;
mod send;
mod setup;
pub mod watchdog;

pub use fault::{BadFault, Fault};
pub use rounds::Budget;

/// Frames remembered for a report when a check fails between rounds.
pub(super) const RECENT: usize = 8;

/// The broker to fuzz.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start this binary with a fresh data directory under `workdir`.
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Where its data and log go.
        workdir: PathBuf,
    },
    /// Use a running broker.
    Attach {
        /// Its Kafka listener.
        bootstrap: String,
        /// Its HTTP listener.
        http: String,
        /// Its pid (for memory, descriptors and liveness).
        pid: Option<u32>,
        /// Its log file (for panics).
        log: Option<PathBuf>,
    },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The broker.
    pub target: Target,
    /// Captured corpus file.
    pub corpus: PathBuf,
    /// Seed of every random choice.
    pub seed: u64,
    /// How many mutated frames to send, in how many rounds.
    pub budget: Budget,
    /// Read acknowledged partitions back every this many rounds (and at the end).
    pub readback_every: u64,
    /// Concurrent senders.
    pub workers: usize,
    /// How long to wait for each answer.
    pub response_timeout: Duration,
    /// Ceilings for the resource check.
    pub ceilings: Ceilings,
    /// Strict decoder bounds.
    pub limits: Limits,
    /// Send compression bombs.
    pub bombs: bool,
    /// The kcat binary.
    pub kcat: String,
    /// Bound of each check phase (setup, the checks between rounds, a read-back pass).
    pub check_bound: Duration,
    /// How far past its bound a phase may run before the watchdog ends the run (and, one more
    /// margin later, the process).
    pub watchdog_margin: Duration,
    /// Regression seeds not to send (to see whether the mutators find a known defect alone).
    pub skip_seeds: Vec<String>,
    /// A fault to inject into the harness itself (its own tests).
    pub fault: Option<Fault>,
}

/// State the workers share.
pub(super) struct Shared {
    bootstrap: String,
    seed: u64,
    /// Tells whether the broker process is gone (asked when a connection breaks).
    probe: Probe,
    /// Set when a worker found the broker gone: the round stops there.
    gone: AtomicBool,
    /// The frames whose exchange the broker's death cut off.
    cut_off: Mutex<Vec<CaseRef>>,
    tallies: Mutex<BTreeMap<i16, ApiTally>>,
    ledger: Mutex<Ledger>,
    failures: Mutex<Vec<Failure>>,
    recent: Mutex<VecDeque<CaseRef>>,
    peaks: Mutex<Peaks>,
    /// Whether the memory / descriptor ceilings were already reported.
    reported: Mutex<(bool, bool)>,
    /// Failures per kind so far (how many were shown as they happened).
    live: Mutex<BTreeMap<&'static str, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Most frames kept as cut off by the broker's death (one per worker is typical).
const CUT_OFF_KEPT: usize = 32;

impl Shared {
    /// After an exchange that broke (closed, timed out, not sent): if the broker is gone, the
    /// case is one its death cut off, and the round stops.
    fn broke(&self, case: &CaseRef) {
        if self.probe.exited().is_some() {
            self.gone.store(true, Ordering::SeqCst);
            let mut cut_off = lock(&self.cut_off);
            if cut_off.len() < CUT_OFF_KEPT {
                cut_off.push(case.clone());
            }
        }
    }

    /// Whether a worker found the broker gone.
    fn broker_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }
}

/// How far a campaign got, filled in as it goes.
#[derive(Debug, Default)]
struct Progress {
    rounds: u64,
    readbacks: (u64, usize),
    corpus: (usize, usize),
    coverage: (usize, usize),
    mutated: u64,
    cut: Vec<CutRound>,
}

/// Runs the whole campaign and returns its summary (the caller decides the exit code).
///
/// Never hangs: a harness panic or an overrun phase ends the run with a failure in the summary;
/// a run that still does not end one watchdog margin after being stopped exits the process
/// with [`watchdog::STUCK_EXIT_CODE`].
pub fn run(opts: &Options) -> Result<Summary> {
    let started = Instant::now();
    unwind::install_hook();
    let mut broker = match &opts.target {
        Target::Spawn { binary, workdir } => Broker::spawn(&SpawnOptions {
            binary: binary.clone(),
            workdir: workdir.clone(),
            advertised: None,
            extra_args: Vec::new(),
        })?,
        Target::Attach {
            bootstrap,
            http,
            pid,
            log,
        } => Broker::attach(bootstrap.clone(), http.clone(), *pid, log.clone()),
    };
    let shared = Shared {
        bootstrap: broker.bootstrap.clone(),
        seed: opts.seed,
        probe: broker.probe(),
        gone: AtomicBool::new(false),
        cut_off: Mutex::new(Vec::new()),
        tallies: Mutex::new(BTreeMap::new()),
        ledger: Mutex::new(Ledger::default()),
        failures: Mutex::new(Vec::new()),
        recent: Mutex::new(VecDeque::new()),
        peaks: Mutex::new(Peaks::default()),
        reported: Mutex::new((false, false)),
        live: Mutex::new(BTreeMap::new()),
    };
    let control = Control::new(broker.killer(), opts.check_bound);
    let pid = broker.pid;
    let mut progress = Progress::default();
    let outcome = std::thread::scope(|scope| {
        // Declared first, dropped last: the helpers below see the stop flag whether the
        // campaign returns or unwinds, so the scope's join can never wait forever.
        let _stop = control.stop_on_drop();
        if let Some(pid) = pid {
            let (control, shared) = (&control, &shared);
            scope.spawn(move || {
                if let Err(message) =
                    unwind::catch(|| health::sample(pid, control.stopped_flag(), &shared.peaks))
                {
                    let place = "the resource sampler".to_string();
                    harness_panic(shared, control, place, 0, message, None, None);
                }
            });
        }
        scope.spawn(|| {
            let margin = opts.watchdog_margin;
            if let Err(message) = unwind::catch(|| watchdog::watch(&control, &shared, margin)) {
                let place = "the watchdog".to_string();
                harness_panic(&shared, &control, place, 0, message, None, None);
            }
        });
        unwind::catch(|| campaign::campaign(&mut broker, opts, &shared, &control, &mut progress))
    });
    broker.stop();
    match outcome {
        Ok(result) => result?,
        Err(message) => {
            let place = "the campaign".to_string();
            harness_panic(
                &shared,
                &control,
                place,
                progress.rounds,
                message,
                None,
                None,
            );
        }
    }
    let ledger = lock(&shared.ledger);
    let acks = (ledger.valid_acks, ledger.invalid_acks);
    drop(ledger);
    let tallies = std::mem::take(&mut *lock(&shared.tallies));
    let failures = dedup(std::mem::take(&mut *lock(&shared.failures)));
    let peaks = *lock(&shared.peaks);
    Ok(Summary {
        seed: opts.seed,
        tallies,
        rounds: progress.rounds,
        mutated: progress.mutated,
        budget: opts.budget.fixed(),
        cut: progress.cut,
        duration: started.elapsed(),
        peaks,
        ceilings: Some(opts.ceilings),
        acks,
        readbacks: progress.readbacks,
        corpus: progress.corpus,
        coverage: progress.coverage,
        failures,
    })
}

/// Records a panic of the harness as a failure and ends the run.
fn harness_panic(
    shared: &Shared,
    control: &Control,
    place: String,
    round: u64,
    message: String,
    index: Option<u64>,
    case: Option<CaseRef>,
) {
    let recent = match (&case, index) {
        (None, None) => lock(&shared.recent).iter().cloned().collect(),
        _ => Vec::new(),
    };
    let failure = Failure::HarnessPanic {
        place,
        round,
        seed: shared.seed,
        message,
        index,
        case,
        recent,
    };
    record_failures(shared, vec![failure]);
    control.abort();
}

/// Failures shown as they happen, per kind (all of them are in the summary).
const LIVE_PER_KIND: usize = 3;

/// Keeps failures for the summary and shows the first few of each kind at once.
fn record_failures(shared: &Shared, found: Vec<Failure>) {
    if found.is_empty() {
        return;
    }
    let mut failures = lock(&shared.failures);
    let mut live = lock(&shared.live);
    for f in found {
        let seen = live.entry(f.kind()).or_default();
        *seen += 1;
        match *seen - 1 {
            n if n < LIVE_PER_KIND => eprintln!("{f}"),
            n if n == LIVE_PER_KIND => eprintln!("(more [{}] failures: see the summary)", f.kind()),
            _ => {}
        }
        failures.push(f);
    }
}

/// Keeps one failure per distinct finding (read-back passes find the same bad batch again).
fn dedup(failures: Vec<Failure>) -> Vec<Failure> {
    let mut out: Vec<Failure> = Vec::new();
    for f in failures {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}
