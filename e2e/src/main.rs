//! `tributary-e2e`: the local control plane's command line. `apiserver` serves the in-memory
//! Kubernetes API on 127.0.0.1 and writes a kubeconfig for kubectl, helm and our binaries.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tributary_e2e::apiserver::Config;
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
            kubeconfig::write(&path, &served.url(), &namespace)?;
            let shown = std::fs::canonicalize(&path).unwrap_or(path);
            tracing::info!(url = %served.url(), "serving the Kubernetes API");
            println!("{}", shown.display());
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            served.shutdown().await;
            Ok(())
        }
    }
}
