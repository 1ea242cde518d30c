//! `tributary-schema-registry`: a Confluent-compatible schema registry for a Tributary (or any
//! Kafka) cluster, storing its schemas in the compacted `_schemas` topic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use parking_lot::RwLock;
use tributary_registry::auth::{Authentication, Basic};
use tributary_registry::bootstrap::{from_cluster, parse_cluster_ref};
use tributary_registry::elector::{Elector, Standalone};
use tributary_registry::http::{serve, App};
use tributary_registry::kafka::security::KafkaSecurity;
use tributary_registry::kafka::{self, KafkaSettings};
use tributary_registry::lease::decide::Timings;
use tributary_registry::lease::{parse_lease_ref, LeaseElector, LeaseSettings};
use tributary_registry::metrics::Metrics;
use tributary_registry::service::{Service, Store};
use tributary_registry::state::Registry;
use tributary_registry::tls::{ForwardTls, ServerTls, TlsFiles};

/// `--authentication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    /// Anonymous.
    None,
    /// HTTP basic against the SCRAM credentials document (--scram-credentials).
    Basic,
    /// A client certificate signed by --tls-client-ca.
    Tls,
}

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
    /// Bootstrap from the addresses this KafkaCluster (NAMESPACE/NAME) lists in its status
    /// for --cluster-listener, instead of --bootstrap (as the operator runs it).
    #[arg(long, env = "TRIBUTARY_REGISTRY_CLUSTER", value_parser = parse_cluster_ref, requires = "cluster_listener")]
    cluster: Option<(String, String)>,
    /// The listener of --cluster to bootstrap from.
    #[arg(long, env = "TRIBUTARY_REGISTRY_CLUSTER_LISTENER")]
    cluster_listener: Option<String>,
    /// The compacted topic holding the schemas.
    #[arg(long, env = "TRIBUTARY_REGISTRY_TOPIC", default_value = "_schemas")]
    topic: String,
    /// How long a write waits for the cluster before answering 50001/50002.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    write_timeout: Duration,
    /// How long start-up waits to replay the topic.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    startup_timeout: Duration,
    /// Elect the writer with this Kubernetes Lease (NAMESPACE/NAME) instead of being the only
    /// instance; needs --advertised-url. The client is in-cluster or from the kubeconfig.
    #[arg(long, env = "TRIBUTARY_REGISTRY_LEASE", value_parser = parse_lease_ref, requires = "advertised_url")]
    lease: Option<(String, String)>,
    /// This instance's URL as the others reach it (http://HOST:PORT): its identity in the
    /// Lease, where followers forward writes.
    #[arg(long, env = "TRIBUTARY_REGISTRY_ADVERTISED_URL")]
    advertised_url: Option<String>,
    /// How long the writer Lease lasts unrenewed before a follower takes over.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    lease_duration: Duration,
    /// How often the writer renews its Lease (and followers look at it).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    renew_interval: Duration,
    /// Serve HTTPS with this certificate chain (PEM; re-read when it changes).
    #[arg(long, env = "TRIBUTARY_REGISTRY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "TRIBUTARY_REGISTRY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA bundles (PEM; repeat or separate with commas) whose client certificates
    /// authenticate, in either authentication mode; a certificate's CN is the principal,
    /// `User:<CN>`. Required by `--authentication tls`.
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_delimiter = ','
    )]
    tls_client_ca: Vec<PathBuf>,
    /// CA bundle (PEM) that signed the instances' certificates: a follower forwards writes to
    /// an https:// writer trusting it, presenting --tls-cert as its client certificate.
    #[arg(long, env = "TRIBUTARY_REGISTRY_FORWARD_CA", requires = "tls_cert")]
    forward_ca: Option<PathBuf>,
    /// The name the writer's certificate is checked for when forwarding (default: the host
    /// of its advertised URL); the operator gives the Service's name, since pods advertise
    /// their IPs.
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_FORWARD_SERVER_NAME",
        requires = "forward_ca"
    )]
    forward_server_name: Option<String>,
    /// How REST clients authenticate (`/` and `/metrics` stay open for probes and Prometheus).
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_AUTHENTICATION",
        value_enum,
        default_value = "none"
    )]
    authentication: AuthMode,
    /// The cluster's SCRAM credentials document (the Secret `<cluster>-scram-credentials`,
    /// key `credentials.json`, mounted), for `--authentication basic`; re-read when it changes.
    #[arg(long, env = "TRIBUTARY_REGISTRY_SCRAM_CREDENTIALS")]
    scram_credentials: Option<PathBuf>,
    /// `security.protocol` of the registry's Kafka clients: PLAINTEXT, SSL, SASL_PLAINTEXT or
    /// SASL_SSL, as the cluster listener requires.
    #[arg(long, env = "TRIBUTARY_REGISTRY_KAFKA_SECURITY_PROTOCOL")]
    kafka_security_protocol: Option<String>,
    /// CA bundle (PEM) the brokers' certificates are checked against.
    #[arg(long, env = "TRIBUTARY_REGISTRY_KAFKA_CA")]
    kafka_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a listener requiring mTLS.
    #[arg(long, env = "TRIBUTARY_REGISTRY_KAFKA_CERT")]
    kafka_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "TRIBUTARY_REGISTRY_KAFKA_KEY")]
    kafka_key: Option<PathBuf>,
    /// Check the brokers' certificates against --kafka-ca but not their host names (brokers
    /// advertising pod IPs).
    #[arg(long, env = "TRIBUTARY_REGISTRY_KAFKA_SKIP_HOSTNAME_VERIFICATION")]
    kafka_skip_hostname_verification: bool,
    /// SASL mechanism (SCRAM-SHA-512, SCRAM-SHA-256).
    #[arg(long, env = "TRIBUTARY_REGISTRY_KAFKA_SASL_MECHANISM")]
    kafka_sasl_mechanism: Option<String>,
    /// SASL user.
    #[arg(long, env = "TRIBUTARY_REGISTRY_KAFKA_SASL_USERNAME")]
    kafka_sasl_username: Option<String>,
    /// SASL password (from the environment, so it stays out of the process list).
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    kafka_sasl_password: Option<String>,
    /// Fault injection for tests: stall every write this long between its role check and its
    /// append, as a frozen process would.
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    pause_before_append: Option<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut args = Args::parse();
    if let (Some((namespace, name)), Some(listener)) = (&args.cluster, &args.cluster_listener) {
        let client = kube::Client::try_default()
            .await
            .context("creating the Kubernetes client to read the cluster's addresses")?;
        args.bootstrap = from_cluster(client, (namespace, name), listener, args.startup_timeout)
            .await
            .context("reading the cluster's bootstrap addresses")?;
    }
    let timings = Timings::new(args.lease_duration, args.renew_interval)?;
    let (auth, server_tls, forward_tls) = security(&args)?;
    let kafka_security = KafkaSecurity {
        protocol: args.kafka_security_protocol.clone(),
        ca: args.kafka_ca.clone(),
        cert: args.kafka_cert.clone(),
        key: args.kafka_key.clone(),
        sasl_mechanism: args.kafka_sasl_mechanism.clone(),
        sasl_username: args.kafka_sasl_username.clone(),
        sasl_password: args.kafka_sasl_password.clone(),
        skip_hostname_verification: args.kafka_skip_hostname_verification,
    }
    .properties()?;
    let state = Arc::new(RwLock::new(Registry::default()));
    let settings = KafkaSettings {
        bootstrap: args.bootstrap.clone(),
        topic: args.topic.clone(),
        write_timeout: args.write_timeout,
        produce_timeout: if args.lease.is_some() {
            timings.produce_timeout()
        } else {
            args.write_timeout
        },
        startup_timeout: args.startup_timeout,
        security: kafka_security,
    };
    let store: Arc<dyn Store> = Arc::new(
        kafka::start(&settings, state.clone())
            .await
            .context("starting the Kafka store")?,
    );
    let (elector, lease): (Arc<dyn Elector>, _) = match (&args.lease, &args.advertised_url) {
        (Some((namespace, name)), Some(url)) => {
            let client = kube::Client::try_default()
                .await
                .context("creating the Kubernetes client for the writer Lease")?;
            let lease = Arc::new(LeaseElector::new(
                client,
                LeaseSettings {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    url: url.clone(),
                    timings,
                },
            ));
            tokio::spawn(lease.clone().run(store.clone()));
            tracing::info!(lease = %format!("{namespace}/{name}"), url, "electing the writer with a Lease");
            (lease.clone() as Arc<dyn Elector>, Some(lease))
        }
        _ => {
            // The only writer: start its term (fencing any earlier process) before serving.
            let offset = store
                .catch_up()
                .await
                .context("starting the writer's term on the schemas topic")?;
            tracing::info!(offset, "read the schemas topic to its end: writing");
            (Arc::new(Standalone) as Arc<dyn Elector>, None)
        }
    };
    let mut service = Service::new(state, store, elector);
    if let Some(pause) = args.pause_before_append {
        tracing::warn!(pause = %humantime::format_duration(pause), "stalling every write before its append (fault injection)");
        service = service.with_pause_before_append(pause);
    }
    let app = Arc::new(App {
        service,
        metrics: Metrics::new().context("creating the metrics")?,
        advertised_url: args.advertised_url.clone(),
        forward_read_wait: args.write_timeout,
        auth,
        forward_tls,
    });
    let listener = tokio::net::TcpListener::bind(args.listener)
        .await
        .with_context(|| format!("binding {}", args.listener))?;
    tracing::info!(listener = %args.listener, https = server_tls.is_some(), authentication = ?args.authentication, bootstrap = %args.bootstrap, topic = %args.topic, "schema registry listening");
    tokio::select! {
        () = serve(listener, app, server_tls) => {}
        signal = shutdown_signal() => {
            signal.context("waiting for a shutdown signal")?;
            tracing::info!("shutting down");
        }
    }
    if let Some(lease) = lease {
        if let Err(error) = lease.release().await {
            tracing::warn!(%error, "could not release the writer Lease; a follower takes over once it expires");
        }
    }
    Ok(())
}

/// The REST side's security from the flags: authentication, the HTTPS listener's TLS and the
/// TLS client forwarding to an HTTPS writer.
fn security(
    args: &Args,
) -> anyhow::Result<(Authentication, Option<Arc<ServerTls>>, Option<ForwardTls>)> {
    let files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        _ => None,
    };
    let auth = match args.authentication {
        AuthMode::None => Authentication::None,
        AuthMode::Basic => {
            let Some(path) = &args.scram_credentials else {
                bail!("--authentication basic needs --scram-credentials (the SCRAM credentials document)");
            };
            Authentication::Basic(Basic::new(path.clone())?)
        }
        AuthMode::Tls => {
            if args.tls_client_ca.is_empty() {
                bail!("--authentication tls needs --tls-cert, --tls-key and --tls-client-ca");
            }
            Authentication::Tls
        }
    };
    let forward_tls = match (&files, &args.forward_ca) {
        (Some(files), Some(ca)) => Some(ForwardTls::new(
            files.clone(),
            ca.clone(),
            args.forward_server_name.clone(),
        )?),
        _ => None,
    };
    if files.is_some()
        && args.lease.is_some()
        && forward_tls.is_none()
        && args
            .advertised_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    {
        bail!("an https:// --advertised-url needs --forward-ca so that followers reach the writer");
    }
    let server_tls = files.map(ServerTls::new).transpose()?.map(Arc::new);
    Ok((auth, server_tls, forward_tls))
}

/// Ctrl-C or SIGTERM (what Kubernetes sends a pod).
async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
