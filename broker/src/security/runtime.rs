//! What the network edge needs to secure each listener, built once at start-up from the
//! configuration: its TLS server and SASL mechanisms, and the limits on connections that
//! have not authenticated yet.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::listeners::{Listener, Listeners};
use super::principal::PrincipalMapper;
use super::sasl::SaslConfig;
use super::settings::SecurityProps;
use super::tls::{TlsServer, TlsSettings};

/// Kafka's `sasl.server.max.receive.size`: the largest frame read before authentication.
pub const MAX_UNAUTHENTICATED_FRAME: usize = 524_288;

/// Why the security settings cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A listener's TLS settings or files are unusable.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// The certificate files could not be loaded.
    #[error("listener {listener}: {reason}")]
    Certificates { listener: String, reason: String },
    /// A listener's SASL settings are unusable.
    #[error(transparent)]
    Sasl(#[from] super::sasl::SaslConfigError),
    /// `ssl.principal.mapping.rules` does not parse.
    #[error("listener {listener}: {source}")]
    Rules {
        listener: String,
        #[source]
        source: super::principal::RulesError,
    },
    /// A limit is not a positive number.
    #[error("{key}={value}: must be a positive number")]
    Limit { key: &'static str, value: String },
}

/// One listener as served.
#[derive(Debug)]
pub struct ListenerRuntime {
    /// Its name, protocol and addresses.
    pub listener: Listener,
    /// Its TLS server, on SSL and SASL_SSL listeners.
    pub tls: Option<TlsServer>,
    /// Its SASL mechanisms, on SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<Arc<SaslConfig>>,
}

impl ListenerRuntime {
    /// A PLAINTEXT listener (tests serve one).
    pub fn plaintext(listener: Listener) -> ListenerRuntime {
        ListenerRuntime {
            listener,
            tls: None,
            sasl: None,
        }
    }

    /// Whether a connection must complete a TLS handshake or a SASL exchange before it is
    /// served.
    pub fn authenticates(&self) -> bool {
        self.tls.is_some() || self.sasl.is_some()
    }
}

/// Bounds on connections that have not authenticated: how many at once
/// (`max.unauthenticated.connections`) and how long each may take
/// (`authentication.timeout.ms`), so a flood of idle or slow handshakes cannot exhaust the
/// broker.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Permits for connections still authenticating.
    pub unauthenticated: Arc<Semaphore>,
    /// Time from accept to the end of authentication.
    pub timeout: Duration,
}

impl Gate {
    /// The limits in the security settings `props` (defaults: 1000 connections, 10 s).
    pub fn from_props(props: &SecurityProps) -> Result<Gate, SecurityError> {
        let number =
            |key: &'static str, default: u64| -> Result<u64, SecurityError> {
                match props.global(key) {
                    None => Ok(default),
                    Some(v) => v.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or(
                        SecurityError::Limit {
                            key,
                            value: v.to_string(),
                        },
                    ),
                }
            };
        let count = number("max.unauthenticated.connections", 1000)?;
        let timeout_ms = number("authentication.timeout.ms", 10_000)?;
        Ok(Gate {
            unauthenticated: Arc::new(Semaphore::new(
                usize::try_from(count)
                    .unwrap_or(usize::MAX)
                    .min(Semaphore::MAX_PERMITS),
            )),
            timeout: Duration::from_millis(timeout_ms),
        })
    }
}

/// Builds the runtime of every listener in `listeners` from the security settings `props`,
/// loading certificates and credential files now so that mistakes stop the broker at start-up.
pub fn listeners(
    listeners: &Listeners,
    props: &SecurityProps,
) -> Result<Vec<Arc<ListenerRuntime>>, SecurityError> {
    for key in props.unknown_keys() {
        tracing::warn!(key, "ignoring unknown security setting");
    }
    listeners
        .all
        .iter()
        .map(|listener| {
            let name = listener.name.as_str();
            let tls = if listener.protocol.uses_tls() {
                let settings = TlsSettings::from_props(props, name)?;
                let mapper = match props.get(name, "ssl.principal.mapping.rules") {
                    Some(rules) => {
                        PrincipalMapper::parse(rules).map_err(|source| SecurityError::Rules {
                            listener: name.to_string(),
                            source,
                        })?
                    }
                    None => PrincipalMapper::default(),
                };
                Some(TlsServer::new(settings, mapper).map_err(|reason| {
                    SecurityError::Certificates {
                        listener: name.to_string(),
                        reason,
                    }
                })?)
            } else {
                None
            };
            let sasl = if listener.protocol.uses_sasl() {
                Some(Arc::new(SaslConfig::from_props(props, name)?))
            } else {
                None
            };
            Ok(Arc::new(ListenerRuntime {
                listener: listener.clone(),
                tls,
                sasl,
            }))
        })
        .collect()
}
