//! `tributary-broker`: parses configuration, starts logging, runs the broker until SIGINT or
//! SIGTERM.

use anyhow::Context;
use clap::Parser;
use tributary_broker::{config, server, Broker};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before the configuration, whose default partition budget follows the descriptor limit.
    let fd_limit = tributary_broker::limits::raise_fd_limit();
    let config = config::BrokerConfig::resolve(config::Flags::parse())?;
    init_logging(config.json_logs);
    let runtimes =
        tributary_broker::security::runtime::listeners(&config.listeners, &config.security)
            .context("cannot set up the listeners' security")?;
    let gate = tributary_broker::security::runtime::Gate::from_props(&config.security)?;
    let mut bound = Vec::new();
    for runtime in runtimes {
        let l = &runtime.listener;
        let socket = tokio::net::TcpListener::bind(&l.bind)
            .await
            .with_context(|| format!("cannot listen on {} for listener {}", l.bind, l.name))?;
        tracing::info!(
            listener = l.name,
            protocol = l.protocol.name(),
            bind = l.bind,
            advertised = %format!("{}:{}", l.advertised_host, l.advertised_port),
            "listening"
        );
        bound.push(server::Bound { socket, runtime });
    }
    tracing::info!(
        inter_broker_listener = config.listeners.inter_broker().name,
        data_dir = %config.data_dir.display(),
        broker_id = config.broker_id,
        fd_limit,
        max_broker_partitions = config.partition_limits.per_broker,
        "starting broker"
    );
    let http = tokio::net::TcpListener::bind(&config.http_listener)
        .await
        .with_context(|| format!("cannot listen on {} for HTTP", config.http_listener))?;
    let broker = match config.cluster.clone() {
        None => Broker::open(config).context("cannot open the broker's data")?,
        Some(cluster) => {
            let client = kube::Client::try_default()
                .await
                .context("cluster mode cannot reach the Kubernetes API")?;
            tracing::info!(
                cluster = cluster.name,
                namespace = cluster.namespace,
                "joining the cluster"
            );
            Broker::open_in_cluster(config, client)
                .await
                .context("cannot join the cluster")?
        }
    };
    let http = tokio::spawn(tributary_broker::http::serve(broker.clone(), http));
    tracing::info!(cluster_id = %broker.cluster_id, topics = broker.metadata.image().topics().count(), "broker ready");
    let draining = broker.clone();
    let shutdown = async move {
        shutdown_signal().await;
        tributary_broker::kube::shutdown::controlled_shutdown(
            &draining,
            tributary_broker::kube::shutdown::CONTROLLED_SHUTDOWN_TIMEOUT,
        )
        .await;
    };
    server::serve(broker.clone(), bound, gate, shutdown).await;
    if let Some(registrar) = &broker.registrar {
        // The controller re-elects this broker's partitions at once instead of after expiry.
        if let Err(error) = registrar.release().await {
            tracing::warn!(%error, "could not release the registration");
        }
    }
    http.abort();
    Ok(())
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
