//! How this broker connects to the others' inter-broker listener (`inter.broker.listener.name`):
//! TLS with the listener's trust store (and this broker's own certificate when the listener asks
//! for client certificates), then SASL with `sasl.mechanism.inter.broker.protocol` and the
//! `username`/`password` of that mechanism's JAAS entry, as Kafka's brokers authenticate to
//! each other.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::jaas;
use super::listeners::Listeners;
use super::reload::Reloading;
use super::sasl::Mechanism;
use super::settings::SecurityProps;
use super::tls::{ClientAuth, TlsSettings};

/// Why the inter-broker client settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inter-broker listener {listener}: {reason}")]
pub struct PeerSecurityError {
    listener: String,
    reason: String,
}

/// The SASL identity this broker presents to others.
#[derive(Clone)]
pub struct PeerCredentials {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: Mechanism,
    /// The user.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for PeerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What a connection to another broker does after TCP connect.
#[derive(Debug, Clone, Default)]
pub struct PeerSecurity {
    /// TLS client settings, when the inter-broker listener speaks TLS: rebuilt when the
    /// certificate or trust store files change (a CA rotation), like the listeners' own.
    pub tls: Option<Arc<Reloading<ClientConfig>>>,
    /// SASL identity, when the inter-broker listener authenticates with SASL.
    pub sasl: Option<PeerCredentials>,
}

impl PeerSecurity {
    /// Plain TCP, no authentication.
    pub fn plaintext() -> PeerSecurity {
        PeerSecurity::default()
    }

    /// The client side of the inter-broker listener of `listeners`, with the security
    /// settings `props`.
    pub fn from_props(
        listeners: &Listeners,
        props: &SecurityProps,
    ) -> Result<PeerSecurity, PeerSecurityError> {
        let listener = listeners.inter_broker();
        let name = listener.name.as_str();
        let bad = |reason: String| PeerSecurityError {
            listener: name.to_string(),
            reason,
        };
        let tls = if listener.protocol.uses_tls() {
            let settings = TlsSettings::from_props(props, name).map_err(|e| bad(e.to_string()))?;
            let check_host = match props.get(name, "ssl.endpoint.identification.algorithm") {
                None => true,
                Some(a) if a.eq_ignore_ascii_case("https") => true,
                Some("") => false,
                Some(other) => {
                    return Err(bad(format!(
                        "ssl.endpoint.identification.algorithm={other}: use https or leave it empty"
                    )))
                }
            };
            let paths = settings.paths();
            let load = move || client_config(&settings, check_host);
            Some(Arc::new(
                Reloading::new("inter-broker TLS client", paths, Box::new(load)).map_err(bad)?,
            ))
        } else {
            None
        };
        let sasl = if listener.protocol.uses_sasl() {
            let mechanism_name = props.global("sasl.mechanism.inter.broker.protocol")
                .ok_or_else(|| bad("set sasl.mechanism.inter.broker.protocol (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)".into()))?;
            let mechanism = Mechanism::parse(mechanism_name)
                .filter(|m| *m != Mechanism::OAuthBearer)
                .ok_or_else(|| {
                    bad(format!(
                        "sasl.mechanism.inter.broker.protocol={mechanism_name}: brokers authenticate to each other with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                    ))
                })?;
            let text = props.get_for_mechanism(name, mechanism.name(), "sasl.jaas.config")
                .ok_or_else(|| {
                    bad(format!(
                        "set listener.name.{}.{}.sasl.jaas.config with this broker's username and password",
                        name.to_ascii_lowercase(),
                        mechanism.name().to_ascii_lowercase()
                    ))
                })?;
            let options = jaas::options(text).map_err(|e| bad(e.to_string()))?;
            let field = |key: &str| {
                options
                    .get(key)
                    .cloned()
                    .ok_or_else(|| bad(format!("the {} JAAS entry has no {key}", mechanism.name())))
            };
            Some(PeerCredentials {
                mechanism,
                username: field("username")?,
                password: field("password")?,
            })
        } else {
            None
        };
        Ok(PeerSecurity { tls, sasl })
    }

    /// The TLS name of `host` (a DNS name or an IP address).
    pub fn server_name(host: &str) -> Option<ServerName<'static>> {
        ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .ok()
    }
}

/// A rustls client trusting the listener's trust store, presenting the broker's own
/// certificate when the listener requires client certificates. Without `check_host`
/// (`ssl.endpoint.identification.algorithm` empty, as Kafka spells it) the other broker's
/// chain is still verified, but not that it names the host dialled: for brokers reached by
/// pod IP, which their certificates cannot name.
fn client_config(settings: &TlsSettings, check_host: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let trust = settings
        .trust
        .as_ref()
        .ok_or("TLS between brokers needs ssl.truststore.location to verify the other brokers")?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&trust.read()?) {
        let cert = cert.map_err(|e| format!("trust store: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("trust store certificate: {e}"))?;
    }
    let versions = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if check_host {
        versions.with_root_certificates(roots)
    } else {
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("trust store: {e}"))?;
        versions
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
    };
    if settings.client_auth == ClientAuth::None {
        return Ok(builder.with_no_client_auth());
    }
    let chain_pem = settings.chain.read()?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate chain: {e}"))?;
    let key_pem = match &settings.key {
        Some(key) => key.read()?,
        None => chain_pem,
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| format!("private key: {e}"))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("client certificate: {e}"))
}

/// Verifies a server's certificate chain and signatures as rustls does, but accepts a
/// certificate that does not name the host dialled.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked first; only a name mismatch is forgiven.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
