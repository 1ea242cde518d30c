//! `tributary-operator`: parse settings, start telemetry and the metrics server, run the
//! operator, shut down cleanly on SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::sync::watch;
use tributary_operator::context::Settings;
use tributary_operator::metrics::Metrics;

/// Command-line settings; each also reads an environment variable for use in a Deployment.
#[derive(Parser, Debug)]
#[command(version, about = "Kubernetes operator for Tributary Kafka clusters")]
struct Args {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// This replica's identity, normally the pod name.
    #[arg(long, env = "POD_NAME", default_value = "tributary-operator")]
    identity: String,
    /// Namespace of the leader-election Lease, normally the operator's own.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "tributary-operator")]
    lease_name: String,
    /// Seconds a leader Lease stays valid without renewal.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds between renewals.
    #[arg(long, default_value_t = 5)]
    renew_interval_seconds: u64,
    /// Address of the /metrics, /healthz and /readyz server. It serves from start-up on,
    /// also while the Kubernetes API is unreachable (then /readyz fails).
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: String,
    /// KafkaPartition writes the controller keeps in flight at once (elections after a broker
    /// failure).
    #[arg(long, default_value_t = 32)]
    controller_write_concurrency: usize,
    /// Server-side apply the Tributary CRDs built into this binary at start-up, so upgrading
    /// the operator upgrades the CRDs (Helm never does). Needs RBAC for exactly those
    /// customresourcedefinitions.
    #[arg(long, env = "APPLY_CRDS")]
    apply_crds: bool,
    /// Where KafkaSchemas reach their cluster's schema registry when the operator is not on
    /// the Kubernetes network (development clusters, tests): a URL in which `{namespace}`,
    /// `{cluster}` and `{port}` are filled in. Unset: the URL the cluster's status reports.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    schema_registry_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        args.renew_interval_seconds * 2 <= args.lease_duration_seconds,
        "--renew-interval-seconds must be at most half of --lease-duration-seconds"
    );
    let settings = Settings {
        watch_namespace: args.watch_namespace,
        identity: args.identity,
        lease_namespace: args.lease_namespace,
        lease_name: args.lease_name,
        lease_duration: Duration::from_secs(args.lease_duration_seconds),
        renew_interval: Duration::from_secs(args.renew_interval_seconds),
        apply_crds: args.apply_crds,
        error_backoff: Duration::from_secs(15),
        controller_write_concurrency: args.controller_write_concurrency.max(1),
        schema_registry_url: args.schema_registry_url,
    };
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let listener = tributary_operator::http::bind(&args.metrics_addr).await?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let _ = shutdown_tx.send(true);
    });
    let server = tokio::spawn(tributary_operator::http::serve(
        listener,
        metrics.clone(),
        tributary_operator::run::wait_for(shutdown_rx.clone()),
    ));
    // Reads kubeconfig or the in-cluster service account; no request is made yet, so an
    // unreachable API is handled by the retries in `run`, with /metrics already serving.
    let client = kube::Client::try_default()
        .await
        .context("loading the Kubernetes client configuration")?;
    let outcome = tributary_operator::run::run(client, settings, metrics, shutdown_rx).await;
    server.abort();
    outcome.context("operator stopped")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
