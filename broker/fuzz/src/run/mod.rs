//! The runner: starts (or attaches to) the broker, widens the corpus, sends the regression
//! seeds, then mutated frames in rounds from several workers on fresh and reused connections,
//! checking the broker between rounds and reading acknowledged partitions back.

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::messages::RequestKind;

use crate::broker::{Broker, SpawnOptions};
use crate::checks::health::{self, Ceilings, Peaks, MARKER_TOPIC};
use crate::checks::ledger::Ledger;
use crate::checks::strict::Limits;
use crate::checks::{readback, CaseRef, Failure};
use crate::corpus::widen::widen;
use crate::corpus::{regression, Corpus, Entry};
use crate::mutate::bomb::Arsenal;
use crate::mutate::typed::Vocabulary;
use crate::mutate::{Case, Mutator};
use crate::report::{ApiTally, Summary};
use crate::{client, wire, Error, Result};
use send::send_case;

mod send;

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
    /// Time budget for the mutated frames.
    pub seconds: u64,
    /// Frame budget (whichever ends first).
    pub max_frames: Option<u64>,
    /// Length of a round (checks run between rounds).
    pub round_seconds: u64,
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
}

/// State the workers share.
pub(super) struct Shared {
    bootstrap: String,
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

/// Runs the whole campaign and returns its summary (the caller decides the exit code).
pub fn run(opts: &Options) -> Result<Summary> {
    let started = Instant::now();
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
    let setup = Setup::prepare(&broker.bootstrap, opts)?;
    let shared = Shared {
        bootstrap: broker.bootstrap.clone(),
        tallies: Mutex::new(BTreeMap::new()),
        ledger: Mutex::new(Ledger::default()),
        failures: Mutex::new(Vec::new()),
        recent: Mutex::new(VecDeque::new()),
        peaks: Mutex::new(Peaks::default()),
        reported: Mutex::new((false, false)),
        live: Mutex::new(BTreeMap::new()),
    };
    let stop = AtomicBool::new(false);
    let pid = broker.pid;
    let progress = std::thread::scope(|scope| {
        if let Some(pid) = pid {
            let (stop, peaks) = (&stop, &shared.peaks);
            scope.spawn(move || health::sample(pid, stop, peaks));
        }
        let progress = campaign(&mut broker, &setup, opts, &shared);
        stop.store(true, Ordering::Relaxed);
        progress
    })?;
    broker.stop();
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
        duration: started.elapsed(),
        peaks,
        ceilings: Some(opts.ceilings),
        acks,
        readbacks: progress.readbacks,
        corpus: (setup.wide.len(), setup.seeds.len()),
        coverage: setup.coverage(),
        failures,
    })
}

/// What the run sends, prepared once.
struct Setup {
    served: crate::corpus::widen::Served,
    topics: Vec<(String, i32)>,
    vocab: Vocabulary,
    wide: Vec<Entry>,
    seeds: Vec<Entry>,
}

impl Setup {
    /// How many served (API, version) pairs the widened corpus has a frame for, of how many.
    fn coverage(&self) -> (usize, usize) {
        let have: std::collections::BTreeSet<(i16, i16)> = self
            .wide
            .iter()
            .map(|e| (e.api_key, e.api_version))
            .collect();
        let served: Vec<(i16, i16)> = self
            .served
            .iter()
            .flat_map(|&(api, lo, hi)| (lo..=hi).map(move |v| (api as i16, v)))
            .collect();
        (
            served.iter().filter(|k| have.contains(k)).count(),
            served.len(),
        )
    }

    /// Served versions, corpus and regression seeds, their topics created, the corpus widened.
    fn prepare(bootstrap: &str, opts: &Options) -> Result<Setup> {
        let served = client::served(bootstrap)?;
        let mut corpus = Corpus::load(&opts.corpus)?;
        corpus.merge(regression::seeds()?);
        let mut topics: Vec<(String, i32)> = corpus.topics.iter().cloned().collect();
        topics.push((MARKER_TOPIC.to_string(), 1));
        ensure_topics(bootstrap, &topics)?;
        let vocab = Vocabulary {
            topics: topics.iter().map(|(t, _)| t.clone()).collect(),
            groups: groups_of(&corpus.frames),
        };
        let topic = topics.first().map_or("fz-g1", |(t, _)| t.as_str());
        let group = vocab.groups.first().map_or("fz-group", |g| g.as_str());
        let wide = widen(&corpus.frames, &served, topic, group);
        if wide.is_empty() {
            return Err(Error::Setup(
                "the corpus is empty: run `tributary-fuzz capture` first".into(),
            ));
        }
        Ok(Setup {
            served,
            topics,
            vocab,
            wide,
            seeds: corpus.seeds,
        })
    }
}

/// How far a campaign got.
struct Progress {
    rounds: u64,
    readbacks: (u64, usize),
}

/// The regression seeds, then rounds of mutated frames with checks between them, then the
/// final read-back.
fn campaign(
    broker: &mut Broker,
    setup: &Setup,
    opts: &Options,
    shared: &Shared,
) -> Result<Progress> {
    let began = Instant::now();
    let mut progress = Progress {
        rounds: 0,
        readbacks: (0, 0),
    };
    // Round 0: the regression seeds, unmutated, one by one on fresh connections.
    let seed_timeout = opts.response_timeout.max(Duration::from_secs(30));
    for (n, s) in setup.seeds.iter().enumerate() {
        let case = Case {
            index: u64::MAX - n as u64,
            frame: s.frame.clone(),
            origin: format!("regression seed {}", s.source),
            mutation: "none".into(),
            fresh_connection: true,
        };
        send_case(&case, &mut None, seed_timeout, opts, shared);
    }
    let dead = between_rounds(broker, opts, shared, 0);
    eprintln!(
        "tributary-fuzz: regression seeds sent and checked in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    if dead {
        return Ok(progress);
    }
    let arsenal = if opts.bombs {
        let building = Instant::now();
        let arsenal = Arsenal::build().map_err(Error::io("building compression bombs"))?;
        eprintln!(
            "tributary-fuzz: compression bombs built in {:.1} s",
            building.elapsed().as_secs_f64()
        );
        arsenal
    } else {
        Arsenal::default()
    };
    let mutator = Mutator {
        seed: opts.seed,
        corpus: &setup.wide,
        served: &setup.served,
        vocab: &setup.vocab,
        arsenal: opts.bombs.then_some(&arsenal),
    };
    let next = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(opts.seconds);
    let max_frames = opts.max_frames.unwrap_or(u64::MAX);
    let max_rounds = opts.seconds / opts.round_seconds.max(1) + 2;
    while progress.rounds < max_rounds
        && Instant::now() < deadline
        && next.load(Ordering::Relaxed) < max_frames
    {
        progress.rounds += 1;
        eprintln!(
            "tributary-fuzz: round {} starts ({:.1} s in)",
            progress.rounds,
            began.elapsed().as_secs_f64()
        );
        let round_end =
            (Instant::now() + Duration::from_secs(opts.round_seconds.max(1))).min(deadline);
        std::thread::scope(|scope| {
            for _ in 0..opts.workers.max(1) {
                scope.spawn(|| {
                    let mut conn: Option<TcpStream> = None;
                    while Instant::now() < round_end {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= max_frames {
                            break;
                        }
                        send_case(
                            &mutator.case(index),
                            &mut conn,
                            opts.response_timeout,
                            opts,
                            shared,
                        );
                    }
                });
            }
        });
        let checking = Instant::now();
        ensure_topics(&broker.bootstrap, &setup.topics).ok();
        let dead = between_rounds(broker, opts, shared, progress.rounds);
        eprintln!(
            "tributary-fuzz: round {} done, {} frames sent so far; checks took {:.1} s",
            progress.rounds,
            next.load(Ordering::Relaxed).min(max_frames),
            checking.elapsed().as_secs_f64()
        );
        if dead {
            return Ok(progress);
        }
        if progress.rounds % opts.readback_every.max(1) == 0 && Instant::now() < deadline {
            progress.readbacks = readback_pass(broker, opts, shared, progress.readbacks.0)?;
        }
    }
    let reading = Instant::now();
    progress.readbacks = readback_pass(broker, opts, shared, progress.readbacks.0)?;
    between_rounds(broker, opts, shared, progress.rounds + 1);
    eprintln!(
        "tributary-fuzz: final read-back and checks took {:.1} s",
        reading.elapsed().as_secs_f64()
    );
    Ok(progress)
}

/// Creates the topics the corpus expects (again after fuzzed DeleteTopics removed some).
fn ensure_topics(bootstrap: &str, topics: &[(String, i32)]) -> Result<()> {
    let errors = client::create_topics(bootstrap, topics)?;
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::Setup(format!(
            "creating the corpus topics failed: {errors:?}"
        ))),
    }
}

/// Consumer groups named in the corpus (JoinGroup, OffsetCommit), for typed mutation.
fn groups_of(frames: &[Entry]) -> Vec<String> {
    let mut groups: Vec<String> = frames
        .iter()
        .filter_map(|e| match wire::decode_request(&e.frame)?.2 {
            RequestKind::JoinGroup(r) => Some(r.group_id.0.to_string()),
            RequestKind::OffsetCommit(r) => Some(r.group_id.0.to_string()),
            _ => None,
        })
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Liveness, panics, resources and the kcat round trip; true when the broker is gone.
fn between_rounds(broker: &mut Broker, opts: &Options, shared: &Shared, round: u64) -> bool {
    let recent: Vec<CaseRef> = lock(&shared.recent).iter().cloned().collect();
    let mut found = health::liveness(broker, &recent);
    let dead = found.iter().any(|f| matches!(f, Failure::Died { .. }));
    let peaks = *lock(&shared.peaks);
    found.extend(health::resources(
        &peaks,
        &opts.ceilings,
        &mut lock(&shared.reported),
    ));
    if !dead {
        let marker = format!("fz-marker-{}-{round}", opts.seed);
        found.extend(health::round_trip(&opts.kcat, &broker.bootstrap, &marker));
    }
    record_failures(shared, found);
    dead
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

fn readback_pass(
    broker: &Broker,
    opts: &Options,
    shared: &Shared,
    passes: u64,
) -> Result<(u64, usize)> {
    let ledger = lock(&shared.ledger);
    let found = readback::check_all(&broker.bootstrap, &ledger, &opts.limits, &opts.kcat)?;
    let partitions = ledger.touched().len();
    drop(ledger);
    record_failures(shared, found);
    Ok((passes + 1, partitions))
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
