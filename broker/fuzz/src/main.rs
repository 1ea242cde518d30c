//! `tributary-fuzz`: `run` fuzzes a broker and prints the summary (exit 1 when a check
//! fails, 2 when the run could not be carried out, 3 when the watchdog had to end a stuck
//! run); `capture` records a corpus from the real clients.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tributary_fuzz::checks::health::Ceilings;
use tributary_fuzz::checks::strict::Limits;
use tributary_fuzz::{capture, run};

#[derive(Parser)]
#[command(about = "Structure-aware fuzz harness for tributary-broker")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fuzz a broker: regression seeds first, then mutated frames in rounds, with checks.
    Run(Box<RunArgs>),
    /// Record a corpus: a proxy in front of a fresh broker, the real clients through it.
    Capture(CaptureArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Broker binary to start (fresh data directory).
    #[arg(long, default_value = "target/release/tributary-broker")]
    broker_bin: PathBuf,
    /// Attach to a running broker at this Kafka address instead of starting one (with its
    /// HTTP address, pid and log file, so every check can run).
    #[arg(long, requires_all = ["attach_http", "attach_pid", "attach_log"])]
    attach: Option<String>,
    /// The attached broker's HTTP listener (for /healthz).
    #[arg(long)]
    attach_http: Option<String>,
    /// The attached broker's pid (memory, descriptors, liveness).
    #[arg(long)]
    attach_pid: Option<u32>,
    /// The attached broker's log file (panics).
    #[arg(long)]
    attach_log: Option<PathBuf>,
    /// Captured corpus.
    #[arg(long, default_value = "broker/fuzz/corpus/captured.corpus")]
    corpus: PathBuf,
    /// Seed of every random choice (a run is reproducible from it).
    #[arg(long, default_value_t = 20)]
    seed: u64,
    /// Time budget for mutated frames, seconds (long campaigns; see --rounds for a fixed one).
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Frame budget of a timed run (stops at whichever budget ends first).
    #[arg(long)]
    frames: Option<u64>,
    /// A fixed budget instead of a time budget: this many rounds of --frames-per-round frames,
    /// the same cases on every machine (`make test`'s short run).
    #[arg(long, requires = "frames_per_round", conflicts_with_all = ["seconds", "frames"])]
    rounds: Option<u64>,
    /// Frames per round of a fixed budget (round r sends case indices (r-1)*N .. r*N).
    #[arg(long, requires = "rounds")]
    frames_per_round: Option<u64>,
    /// Round length, seconds: with --rounds only a safety bound (a round stopped by it is a
    /// warning in the summary); checks run between rounds.
    #[arg(long, default_value_t = 10)]
    round_seconds: u64,
    /// Read acknowledged partitions back every N rounds (and always at the end).
    #[arg(long, default_value_t = 5)]
    readback_every: u64,
    /// Concurrent senders.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Wait per answer, milliseconds.
    #[arg(long, default_value_t = 1000)]
    response_timeout_ms: u64,
    /// Fail when the broker's VmRSS exceeds this, MiB.
    #[arg(long, default_value_t = 1024)]
    max_rss_mib: u64,
    /// Fail when the broker holds more open descriptors than this.
    #[arg(long, default_value_t = 2048)]
    max_fds: usize,
    /// A compressed batch expanding past this (MiB) counts as a bomb, never valid.
    #[arg(long, default_value_t = 64)]
    max_decompressed_mib: usize,
    /// Leave compression bombs out.
    #[arg(long)]
    no_bombs: bool,
    /// kcat, the real client of the round-trip and read-back checks.
    #[arg(long, default_value = "kcat")]
    kcat: String,
    /// Scratch directory for the broker's data (default: a new one under the temp dir).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Keep the scratch directory even when the run passes.
    #[arg(long)]
    keep_workdir: bool,
    /// Bound of each check phase (setup, checks between rounds, a read-back pass), seconds.
    #[arg(long, default_value_t = 300)]
    check_seconds: u64,
    /// How far past its bound any phase may run before the watchdog ends the run (and exits
    /// the process with status 3 one more margin later), seconds.
    #[arg(long, default_value_t = 30)]
    watchdog_margin_seconds: u64,
    /// Leave out the regression seed of this name (repeatable), e.g. to check that the
    /// mutators find its defect on their own.
    #[arg(long = "skip-seed", value_name = "NAME")]
    skip_seeds: Vec<String>,
    /// Inject a fault into the harness itself: worker-panic:CASE, check-panic:ROUND or
    /// check-hang:ROUND (the harness's own tests).
    #[arg(long, hide = true)]
    inject_fault: Option<run::Fault>,
}

#[derive(Args)]
struct CaptureArgs {
    /// Broker binary to capture against.
    #[arg(long, default_value = "target/release/tributary-broker")]
    broker_bin: PathBuf,
    /// The driver script that runs the real clients.
    #[arg(long, default_value = "broker/fuzz/capture/drive.py")]
    driver: PathBuf,
    /// Python interpreter.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Corpus file to write.
    #[arg(long, default_value = "broker/fuzz/corpus/captured.corpus")]
    out: PathBuf,
    /// Distinct frames kept per (API, version, client).
    #[arg(long, default_value_t = 3)]
    per_kind: usize,
    /// Larger frames are not kept, bytes.
    #[arg(long, default_value_t = 16384)]
    max_frame_bytes: usize,
}

fn scratch(given: Option<PathBuf>, what: &str) -> PathBuf {
    given.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tributary-fuzz-{what}-{}", std::process::id()))
    })
}

fn check_kcat(kcat: &str) -> anyhow::Result<()> {
    let ok = std::process::Command::new(kcat)
        .arg("-V")
        .output()
        .map(|o| o.status.success());
    match ok {
        Ok(true) => Ok(()),
        _ => anyhow::bail!(
            "kcat ({kcat}) is required for the round-trip and read-back checks: run `make tools`"
        ),
    }
}

fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
    check_kcat(&a.kcat)?;
    let workdir = scratch(a.workdir, "run");
    let target = match a.attach {
        Some(bootstrap) => run::Target::Attach {
            bootstrap,
            http: a.attach_http.unwrap_or_default(),
            pid: a.attach_pid,
            log: a.attach_log,
        },
        None => {
            anyhow::ensure!(
                a.broker_bin.is_file(),
                "{} not found: build it (`make fuzz` does)",
                a.broker_bin.display()
            );
            run::Target::Spawn {
                binary: a.broker_bin,
                workdir: workdir.clone(),
            }
        }
    };
    let opts = run::Options {
        target,
        corpus: a.corpus,
        seed: a.seed,
        budget: match (a.rounds, a.frames_per_round) {
            (Some(rounds), Some(frames_per_round)) => run::Budget::Fixed {
                rounds,
                frames_per_round,
                round_bound: Duration::from_secs(a.round_seconds.max(1)),
            },
            _ => run::Budget::Timed {
                total: Duration::from_secs(a.seconds),
                round_length: Duration::from_secs(a.round_seconds.max(1)),
                max_frames: a.frames,
            },
        },
        readback_every: a.readback_every,
        workers: a.workers,
        response_timeout: Duration::from_millis(a.response_timeout_ms),
        ceilings: Ceilings {
            rss_mib: a.max_rss_mib,
            fds: a.max_fds,
        },
        limits: Limits {
            max_decompressed: a.max_decompressed_mib << 20,
        },
        bombs: !a.no_bombs,
        kcat: a.kcat,
        check_bound: Duration::from_secs(a.check_seconds.max(1)),
        watchdog_margin: Duration::from_secs(a.watchdog_margin_seconds.max(1)),
        skip_seeds: a.skip_seeds,
        fault: a.inject_fault,
    };
    let summary = run::run(&opts).context("the fuzz run could not complete")?;
    print!("{summary}");
    if summary.passed() && !a.keep_workdir {
        let _ = std::fs::remove_dir_all(&workdir);
    } else if workdir.exists() {
        println!("broker data and log kept in {}", workdir.display());
    }
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn capture_cmd(a: CaptureArgs) -> anyhow::Result<ExitCode> {
    let workdir = scratch(None, "capture");
    let corpus = capture::capture(&capture::Options {
        binary: a.broker_bin,
        workdir: workdir.clone(),
        driver: a.driver,
        python: a.python,
        out: a.out.clone(),
        per_kind: a.per_kind,
        max_frame_bytes: a.max_frame_bytes,
        driver_timeout: Duration::from_secs(900),
    })
    .context("capture failed")?;
    let _ = std::fs::remove_dir_all(&workdir);
    let kinds: std::collections::BTreeSet<(i16, i16)> = corpus
        .frames
        .iter()
        .map(|e| (e.api_key, e.api_version))
        .collect();
    let apis: std::collections::BTreeSet<i16> = kinds.iter().map(|k| k.0).collect();
    println!(
        "captured {} frames ({} API keys, {} key/version pairs) into {}",
        corpus.frames.len(),
        apis.len(),
        kinds.len(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Run(a) => run_cmd(*a),
        Cmd::Capture(a) => capture_cmd(a),
    };
    result.unwrap_or_else(|e| {
        eprintln!("tributary-fuzz: {e:#}");
        ExitCode::from(2)
    })
}
