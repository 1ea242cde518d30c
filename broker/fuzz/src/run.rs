//! The runner: starts (or attaches to) the broker, widens the corpus, sends the regression
//! seeds, then mutated frames in rounds from several workers on fresh and reused connections,
//! checking the broker between rounds and reading acknowledged partitions back.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::broker::{Broker, SpawnOptions};
use crate::checks::health::{self, Ceilings, Peaks, MARKER_TOPIC};
use crate::checks::ledger::{sent_batches, Ledger};
use crate::checks::strict::Limits;
use crate::checks::{readback, CaseRef, Failure};
use crate::corpus::widen::widen;
use crate::corpus::{regression, Corpus, Entry};
use crate::mutate::bomb::Arsenal;
use crate::mutate::typed::Vocabulary;
use crate::mutate::{Case, Mutator};
use crate::report::{error_codes, ApiTally, Outcome, Summary};
use crate::{client, wire, Error, Result};

/// Frames remembered for a report when a check fails between rounds.
const RECENT: usize = 8;

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
struct Shared {
    bootstrap: String,
    tallies: Mutex<BTreeMap<i16, ApiTally>>,
    ledger: Mutex<Ledger>,
    failures: Mutex<Vec<Failure>>,
    recent: Mutex<VecDeque<CaseRef>>,
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
    let served = client::served(&broker.bootstrap)?;
    let mut corpus = Corpus::load(&opts.corpus)?;
    let seeds = regression::seeds()?;
    corpus.merge(seeds);
    let mut topics: Vec<(String, i32)> = corpus.topics.iter().cloned().collect();
    topics.push((MARKER_TOPIC.to_string(), 1));
    ensure_topics(&broker.bootstrap, &topics)?;
    let vocab = Vocabulary {
        topics: topics.iter().map(|(t, _)| t.clone()).collect(),
        groups: groups_of(&corpus.frames),
    };
    let first_topic = topics.first().map_or("fz-g1", |(t, _)| t.as_str());
    let first_group = vocab.groups.first().map_or("fz-group", |g| g.as_str());
    let wide = widen(&corpus.frames, &served, first_topic, first_group);
    if wide.is_empty() {
        return Err(Error::Setup(
            "the corpus is empty: run `tributary-fuzz capture` first".into(),
        ));
    }

    let shared = Shared {
        bootstrap: broker.bootstrap.clone(),
        tallies: Mutex::new(BTreeMap::new()),
        ledger: Mutex::new(Ledger::default()),
        failures: Mutex::new(Vec::new()),
        recent: Mutex::new(VecDeque::new()),
    };
    let mut summary = Summary {
        seed: opts.seed,
        ceilings: Some(opts.ceilings),
        corpus: (wide.len(), corpus.seeds.len()),
        ..Summary::default()
    };
    let mut peaks = Peaks::default();

    // Round 0: the regression seeds, unmutated, one by one on fresh connections.
    let seed_timeout = opts.response_timeout.max(Duration::from_secs(30));
    for (n, s) in corpus.seeds.iter().enumerate() {
        let case = Case {
            index: u64::MAX - n as u64,
            frame: s.frame.clone(),
            origin: format!("regression seed {}", s.source),
            mutation: "none".into(),
            fresh_connection: true,
        };
        let mut conn = None;
        send_case(&case, &mut conn, seed_timeout, opts, &shared);
    }
    between_rounds(&mut broker, opts, &shared, &mut peaks, 0);

    let arsenal = Arsenal::default();
    let mutator = Mutator {
        seed: opts.seed,
        corpus: &wide,
        served: &served,
        vocab: &vocab,
        arsenal: opts.bombs.then_some(&arsenal),
    };
    let next = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(opts.seconds);
    let max_frames = opts.max_frames.unwrap_or(u64::MAX);
    let max_rounds = opts.seconds / opts.round_seconds.max(1) + 2;
    let mut round = 0;
    while round < max_rounds
        && Instant::now() < deadline
        && next.load(Ordering::Relaxed) < max_frames
    {
        round += 1;
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
                            &shared,
                        );
                    }
                });
            }
        });
        summary.rounds = round;
        ensure_topics(&broker.bootstrap, &topics).ok();
        let fatal = between_rounds(&mut broker, opts, &shared, &mut peaks, round);
        if fatal {
            break;
        }
        if round % opts.readback_every.max(1) == 0 {
            summary.readbacks = readback_pass(&broker, opts, &shared, summary.readbacks.0)?;
        }
    }
    if broker.exited().is_none() {
        summary.readbacks = readback_pass(&broker, opts, &shared, summary.readbacks.0)?;
        between_rounds(&mut broker, opts, &shared, &mut peaks, round + 1);
    }
    broker.stop();
    let ledger = lock(&shared.ledger);
    summary.acks = (ledger.valid_acks, ledger.invalid_acks);
    drop(ledger);
    summary.tallies = std::mem::take(&mut *lock(&shared.tallies));
    summary.failures = dedup(std::mem::take(&mut *lock(&shared.failures)));
    summary.peaks = peaks;
    summary.duration = started.elapsed();
    Ok(summary)
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
fn between_rounds(
    broker: &mut Broker,
    opts: &Options,
    shared: &Shared,
    peaks: &mut Peaks,
    round: u64,
) -> bool {
    let recent: Vec<CaseRef> = lock(&shared.recent).iter().cloned().collect();
    let mut found = health::liveness(broker, &recent);
    let dead = found.iter().any(|f| matches!(f, Failure::Died { .. }));
    if !dead {
        found.extend(health::resources(broker, &opts.ceilings, peaks));
        let marker = format!("fz-marker-{}-{round}", opts.seed);
        found.extend(health::round_trip(&opts.kcat, &broker.bootstrap, &marker));
    }
    for f in &found {
        eprintln!("{f}");
    }
    lock(&shared.failures).extend(found);
    dead
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
    let mut failures = lock(&shared.failures);
    failures.extend(found);
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

/// Sends one case and records its outcome (and, for Produce, its acknowledgements).
fn send_case(
    case: &Case,
    conn: &mut Option<TcpStream>,
    timeout: Duration,
    opts: &Options,
    shared: &Shared,
) {
    let prefix = wire::prefix(&case.frame);
    let key = prefix.map_or(-1, |p| p.api_key);
    let caseref = CaseRef::of(opts.seed, case);
    {
        let mut recent = lock(&shared.recent);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(caseref.clone());
    }
    let outcome = exchange(case, conn, timeout, opts, shared, &caseref);
    lock(&shared.tallies).entry(key).or_default().add(&outcome);
}

fn exchange(
    case: &Case,
    reused: &mut Option<TcpStream>,
    timeout: Duration,
    opts: &Options,
    shared: &Shared,
    caseref: &CaseRef,
) -> Outcome {
    let Some(prefix) = wire::prefix(&case.frame) else {
        return Outcome::SendFailed;
    };
    let declared =
        i32::from_be_bytes([case.frame[0], case.frame[1], case.frame[2], case.frame[3]]) as i64;
    let honest = declared == case.frame.len() as i64 - 4;
    let mut fresh = None;
    let slot = if case.fresh_connection || !honest {
        &mut fresh
    } else {
        reused
    };
    if slot.is_none() {
        let Some(stream) = connect(&shared.bootstrap, timeout) else {
            return Outcome::SendFailed;
        };
        *slot = Some(stream);
    }
    let Some(stream) = slot.as_mut() else {
        return Outcome::SendFailed;
    };
    if wire::send(stream, &case.frame).is_err() {
        *slot = None;
        return Outcome::SendFailed;
    }
    let decoded = wire::decode_request(&case.frame).filter(|_| honest);
    if let Some((_, _, RequestKind::Produce(r))) = &decoded {
        if r.acks == 0 {
            return Outcome::NoResponseDue;
        }
    }
    if !honest {
        // The broker waits for bytes that never come (or reads our tail as a new frame):
        // end our side so it sees EOF instead of waiting out our timeout.
        let _ = stream.shutdown(Shutdown::Write);
    }
    let payload = match wire::read_frame(stream, wire::MAX_RESPONSE_BYTES) {
        Ok(p) => p,
        Err(e) => {
            *slot = None;
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Outcome::TimedOut,
                _ => Outcome::Closed,
            };
        }
    };
    let Ok(api) = ApiKey::try_from(prefix.api_key) else {
        return Outcome::Undecodable;
    };
    // An unserved ApiVersions version is answered at v0 (KIP-511).
    let version = match (
        api,
        wire::decode_response(api, prefix.api_version, &payload),
    ) {
        (ApiKey::ApiVersions, None) => 0,
        _ => prefix.api_version,
    };
    let Some(response) = wire::decode_response(api, version, &payload) else {
        return Outcome::Undecodable;
    };
    let correlation_ok = response.correlation_id == prefix.correlation_id;
    let Some(body) = response.body else {
        return Outcome::Undecodable;
    };
    if let (Some(_), ResponseKind::Produce(r)) = (&decoded, &body) {
        let sent = sent_batches(&case.frame, &opts.limits);
        let found = lock(&shared.ledger).record(caseref, &sent, r);
        for f in &found {
            eprintln!("{f}");
        }
        lock(&shared.failures).extend(found);
    }
    Outcome::Answered {
        codes: error_codes(&body),
        correlation_ok,
    }
}

fn connect(addr: &str, timeout: Duration) -> Option<TcpStream> {
    let addr = addr.parse().ok()?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    let _ = s.set_nodelay(true);
    Some(s)
}
