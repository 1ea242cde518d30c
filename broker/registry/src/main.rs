//! `tributary-schema-registry`: a Confluent-compatible schema registry for a Tributary (or any
//! Kafka) cluster, storing its schemas in the compacted `_schemas` topic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use parking_lot::RwLock;
use tributary_registry::elector::Standalone;
use tributary_registry::http::{serve, App};
use tributary_registry::kafka::{self, KafkaSettings};
use tributary_registry::metrics::Metrics;
use tributary_registry::service::Service;
use tributary_registry::state::Registry;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Confluent-compatible schema registry storing schemas in a Kafka topic"
)]
struct Args {
    /// The cluster's bootstrap servers.
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    /// The REST listener (also serves /metrics).
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_LISTENER",
        default_value = "127.0.0.1:8081"
    )]
    listener: SocketAddr,
    /// The compacted topic holding the schemas.
    #[arg(long, env = "TRIBUTARY_REGISTRY_TOPIC", default_value = "_schemas")]
    topic: String,
    /// How long a write waits for the cluster before answering 50001/50002.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    write_timeout: Duration,
    /// How long start-up waits to replay the topic.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    startup_timeout: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let state = Arc::new(RwLock::new(Registry::default()));
    let settings = KafkaSettings {
        bootstrap: args.bootstrap.clone(),
        topic: args.topic.clone(),
        write_timeout: args.write_timeout,
        startup_timeout: args.startup_timeout,
    };
    let store = kafka::start(&settings, state.clone())
        .await
        .context("starting the Kafka store")?;
    let app = Arc::new(App {
        service: Service::new(state, Arc::new(store), Arc::new(Standalone)),
        metrics: Metrics::new().context("creating the metrics")?,
    });
    let listener = tokio::net::TcpListener::bind(args.listener)
        .await
        .with_context(|| format!("binding {}", args.listener))?;
    tracing::info!(listener = %args.listener, bootstrap = %args.bootstrap, topic = %args.topic, "schema registry listening");
    tokio::select! {
        () = serve(listener, app) => {}
        signal = tokio::signal::ctrl_c() => {
            signal.context("waiting for a shutdown signal")?;
            tracing::info!("shutting down");
        }
    }
    Ok(())
}
