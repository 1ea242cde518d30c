//! `tributary-e2e`: the local control plane's command line. `up` starts a development cluster
//! (control plane, the chart through helm, a KafkaCluster) until Ctrl-C or `down`; `apiserver`
//! serves only the in-memory Kubernetes API; `watchdog` is the helper that kills the pods'
//! processes if their kubelet's process dies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tributary_e2e::apiserver::Config;
use tributary_e2e::kubelet::{ImageTable, MAX_CONTAINER_RESTART_PERIOD};
use tributary_e2e::local::LocalConfig;
use tributary_e2e::tools::Profile;
use tributary_e2e::up::{LeaseTiming, UpOptions};
use tributary_e2e::{kubeconfig, FakeApiServer};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Tributary's local Kubernetes control plane for end-to-end tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a local multi-broker cluster: the control plane, `helm install` of the chart and
    /// a KafkaCluster of N brokers; print the bootstrap address and the kubeconfig, and stay up
    /// until Ctrl-C, SIGTERM or `down`.
    Up {
        /// Brokers in the KafkaCluster.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
        brokers: u32,
        /// Namespace of the KafkaCluster.
        #[arg(long, default_value = "kafka")]
        namespace: String,
        /// Name of the KafkaCluster.
        #[arg(long, default_value = "demo")]
        name: String,
        /// Directory for the kubeconfig, volumes, pods and logs (wiped at start).
        #[arg(long, default_value = "target/e2e/up")]
        state_dir: PathBuf,
        /// Port of the API server on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Run an image as a local binary: REPOSITORY=BINARY[:ENTRYPOINT] (repeatable; the
        /// chart's images map to target/debug by default).
        #[arg(long = "image")]
        images: Vec<String>,
        /// Build (when stale) and run the release broker and operator, from target/release:
        /// for benchmarks.
        #[arg(long)]
        release: bool,
        /// Run the binaries as they are, without building them first.
        #[arg(long)]
        no_build: bool,
        /// The KafkaCluster's spec.coordination.leaseDurationSeconds (default: the CRD's).
        #[arg(long, requires = "lease_renew_interval_seconds")]
        lease_duration_seconds: Option<u32>,
        /// The KafkaCluster's renew interval in seconds, fractions allowed (0.5 becomes
        /// spec.coordination.renewIntervalMilliseconds: 500; default: the CRD's).
        #[arg(long, requires = "lease_duration_seconds", value_parser = renew_interval_ms)]
        lease_renew_interval_seconds: Option<u32>,
        /// Extra `helm install --set` values (repeatable).
        #[arg(long = "set")]
        helm_set: Vec<String>,
        /// A KafkaCluster `spec.config` entry KEY=VALUE beside (or replacing) the defaults
        /// (repeatable), e.g. `--config num.partitions=4`.
        #[arg(long = "config", value_parser = key_value)]
        config: Vec<(String, String)>,
        /// Turn on the brokers' authorizer (`spec.authorization: {type: simple}`).
        #[arg(long)]
        authorization: bool,
        /// Seconds the cluster may take to become Ready.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// The kubelet's cap on a crashing container's restart back-off, in seconds
        /// (`crashLoopBackOff.maxContainerRestartPeriod`, KEP-4603): 10 s doubling up to it.
        #[arg(long, default_value_t = MAX_CONTAINER_RESTART_PERIOD.as_secs(), value_parser = clap::value_parser!(u64).range(1..=MAX_CONTAINER_RESTART_PERIOD.as_secs()))]
        max_container_restart_period_seconds: u64,
        /// Stop the `up` already running on the state directory first (without it, a second
        /// `up` there is refused).
        #[arg(long)]
        replace: bool,
    },
    /// Stop the cluster `up` started (SIGTERM to it, then wait until everything is gone).
    Down {
        /// The state directory `up` used.
        #[arg(long, default_value = "target/e2e/up")]
        state_dir: PathBuf,
    },
    /// Serve the Kubernetes API on 127.0.0.1 until Ctrl-C, and print the kubeconfig's path.
    Apiserver {
        /// Port to listen on (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Where to write the kubeconfig.
        #[arg(long, default_value = "target/e2e/kubeconfig")]
        kubeconfig: PathBuf,
        /// Default namespace of the kubeconfig's context.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Watch events kept for resumption (older resourceVersions answer 410 Gone).
        #[arg(long, default_value_t = Config::default().watch_history)]
        watch_history: usize,
    },
    /// Internal: kill the process groups named on stdin once stdin closes.
    #[command(hide = true)]
    Watchdog,
}

/// Waits for Ctrl-C or SIGTERM.
async fn stopped() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// Parses `--lease-renew-interval-seconds` (e.g. `2` or `0.5`) into whole milliseconds.
fn renew_interval_ms(text: &str) -> Result<u32, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|e| format!("{text:?} is not a number of seconds: {e}"))?;
    let ms = (seconds * 1000.0).round();
    if !(100.0..=150_000.0).contains(&ms) {
        return Err(format!("{text} s is outside 0.1 to 150 s"));
    }
    // In range, so the conversion is exact.
    Ok(ms as u32)
}

/// `KEY=VALUE` of `--config`.
fn key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {arg:?}")),
    }
}

async fn up(options: UpOptions) -> anyhow::Result<()> {
    let started = tributary_e2e::up::up(options).await;
    let up = match started {
        Ok(up) => up,
        Err(e) => return Err(e).context("starting the local cluster"),
    };
    let kubeconfig = std::fs::canonicalize(up.cluster.kubeconfig())
        .unwrap_or_else(|_| up.cluster.kubeconfig().to_owned());
    println!("Kafka bootstrap: {}", up.bootstrap);
    println!("kubeconfig:      {}", kubeconfig.display());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get kafkaclusters,pods -A");
    println!("Ctrl-C or `cargo run -p tributary-e2e -- down` stops every process.");
    stopped().await?;
    tracing::info!("stopping");
    up.cluster.shutdown().await;
    Ok(())
}

/// Stops the `up` running on `state_dir` (the holder of its lock), waiting until it is gone.
fn down(state_dir: &Path) -> anyhow::Result<()> {
    use rustix::process::{kill_process, Pid, Signal};
    let Some(raw) = tributary_e2e::up::running_on(state_dir) else {
        println!("nothing to stop: no `up` runs on {}", state_dir.display());
        return Ok(());
    };
    let pid = i32::try_from(raw)
        .ok()
        .and_then(Pid::from_raw)
        .with_context(|| format!("the lock of {} names pid {raw}", state_dir.display()))?;
    if kill_process(pid, Signal::TERM).is_err() {
        println!("the cluster (pid {raw}) is not running");
        return Ok(());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while tributary_e2e::kubelet::running(raw) {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the cluster (pid {raw}) did not stop within 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up {
            brokers,
            namespace,
            name,
            state_dir,
            port,
            images,
            release,
            no_build,
            lease_duration_seconds,
            lease_renew_interval_seconds,
            helm_set,
            config,
            authorization,
            timeout,
            max_container_restart_period_seconds,
            replace,
        } => {
            let state_dir = std::path::absolute(&state_dir).unwrap_or(state_dir);
            if replace {
                down(&state_dir)?;
            }
            let watchdog = std::env::current_exe().ok();
            let mut local = LocalConfig::new(state_dir, watchdog);
            local.port = port;
            local.namespace = namespace.clone();
            local.max_container_restart_period =
                Duration::from_secs(max_container_restart_period_seconds);
            let profile = if release {
                Profile::Release
            } else {
                Profile::Debug
            };
            local.images = ImageTable::tributary(&profile.dir());
            for entry in &images {
                local.images.add_entry(entry)?;
            }
            up(UpOptions {
                brokers,
                namespace,
                name,
                local,
                profile,
                build: !no_build,
                lease: lease_duration_seconds
                    .zip(lease_renew_interval_seconds)
                    .map(|(duration_seconds, renew_interval_ms)| LeaseTiming {
                        duration_seconds,
                        renew_interval_ms,
                    }),
                helm_set,
                config,
                authorization,
                timeout: Duration::from_secs(timeout),
            })
            .await
        }
        Command::Down { state_dir } => down(&state_dir),
        Command::Watchdog => {
            tributary_e2e::kubelet::watchdog(std::io::stdin().lock());
            Ok(())
        }
        Command::Apiserver {
            port,
            kubeconfig: path,
            namespace,
            watch_history,
        } => {
            let server = FakeApiServer::with_config(Config {
                watch_history,
                ..Config::default()
            });
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let served = server
                .serve_on(addr)
                .await
                .map_err(|source| tributary_e2e::Error::Bind { addr, source })?;
            let admin = kubeconfig::Credentials::Token(server.admin_token());
            kubeconfig::write(&path, &served.endpoint(), &namespace, &admin)?;
            let shown = std::fs::canonicalize(&path).unwrap_or(path);
            tracing::info!(url = %served.url(), "serving the Kubernetes API");
            println!("{}", shown.display());
            stopped().await?;
            served.shutdown().await;
            Ok(())
        }
    }
}
