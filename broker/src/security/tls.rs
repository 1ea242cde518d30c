//! TLS for SSL and SASL_SSL listeners with rustls: the certificate chain and key from PEM
//! (`ssl.keystore.type=PEM`, KIP-651), client certificates checked against a PEM trust store
//! as `ssl.client.auth` asks, and the whole configuration rebuilt when the files change, so a
//! rotated certificate is served to new connections while open ones carry on.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use tokio::io::BufStream;
use tokio::net::TcpStream;

use super::principal::PrincipalMapper;
use super::reload::Reloading;
use super::settings::SecurityProps;

/// Bytes of ciphertext read from the socket at once beneath a TLS session.
const TLS_READ_BUFFER: usize = 64 * 1024;
/// Bytes of ciphertext gathered before a write to the socket (a flush writes sooner).
const TLS_WRITE_BUFFER: usize = 64 * 1024;

/// The socket a TLS session runs over, buffered: rustls asks its transport for at most 4 KiB
/// at a time, so without a buffer beneath it every 4 KiB of a produce request or fetch
/// response costs a system call; with one, 64 KiB do. Writes are gathered the same way and
/// sent when the session flushes.
pub fn buffered(socket: TcpStream) -> BufStream<TcpStream> {
    BufStream::with_capacity(TLS_READ_BUFFER, TLS_WRITE_BUFFER, socket)
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate asked for; clients are ANONYMOUS (unless SASL says otherwise).
    None,
    /// A certificate is asked for; clients without one are ANONYMOUS.
    Requested,
    /// A certificate signed by the trust store is required.
    Required,
}

/// PEM text from a file (reloadable) or given inline in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// A file, re-read when it changes.
    File(PathBuf),
    /// Inline PEM (Kafka's `ssl.keystore.certificate.chain`, `ssl.keystore.key`,
    /// `ssl.truststore.certificates`).
    Inline(String),
}

impl Pem {
    pub(crate) fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())),
            Pem::Inline(text) => Ok(text.clone().into_bytes()),
        }
    }

    fn path(&self) -> Option<PathBuf> {
        match self {
            Pem::File(path) => Some(path.clone()),
            Pem::Inline(_) => None,
        }
    }
}

/// A listener's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain (and the key, unless `key` is set).
    pub chain: Pem,
    /// The private key, when it is not in `chain`'s PEM.
    pub key: Option<Pem>,
    /// Trusted CA certificates for client certificates.
    pub trust: Option<Pem>,
    /// Whether client certificates are asked for.
    pub client_auth: ClientAuth,
}

/// Why TLS settings were refused; each names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listener {listener}: {reason}")]
pub struct TlsError {
    listener: String,
    reason: String,
}

impl TlsSettings {
    /// Reads the `ssl.*` settings of `listener` (with `listener.name.<l>.` overrides).
    pub fn from_props(props: &SecurityProps, listener: &str) -> Result<TlsSettings, TlsError> {
        let bad = |reason: String| TlsError {
            listener: listener.to_string(),
            reason,
        };
        let get = |key: &str| props.get(listener, key);
        for key in ["ssl.keystore.type", "ssl.truststore.type"] {
            if let Some(kind) = get(key) {
                if !kind.eq_ignore_ascii_case("PEM") {
                    return Err(bad(format!("{key}={kind}: only PEM is supported")));
                }
            }
        }
        if get("ssl.key.password").is_some_and(|p| !p.is_empty()) {
            return Err(bad(
                "ssl.key.password: encrypted private keys are not supported; give an unencrypted PKCS#8, PKCS#1 or SEC1 key".into(),
            ));
        }
        let chain = match (get("ssl.keystore.location"), get("ssl.keystore.certificate.chain")) {
            (Some(path), None) => Pem::File(PathBuf::from(path)),
            (None, Some(text)) => Pem::Inline(text.to_string()),
            (Some(_), Some(_)) => {
                return Err(bad(
                    "set one of ssl.keystore.location and ssl.keystore.certificate.chain".into(),
                ))
            }
            (None, None) => {
                return Err(bad(
                    "a TLS listener needs ssl.keystore.location (PEM with the certificate chain and key)".into(),
                ))
            }
        };
        let key = match (get("ssl.keystore.key.location"), get("ssl.keystore.key")) {
            (Some(path), None) => Some(Pem::File(PathBuf::from(path))),
            (None, Some(text)) => Some(Pem::Inline(text.to_string())),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(bad(
                    "set one of ssl.keystore.key.location and ssl.keystore.key".into(),
                ))
            }
        };
        let trust = match (
            get("ssl.truststore.location"),
            get("ssl.truststore.certificates"),
        ) {
            (Some(path), None) => Some(Pem::File(PathBuf::from(path))),
            (None, Some(text)) => Some(Pem::Inline(text.to_string())),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(bad(
                    "set one of ssl.truststore.location and ssl.truststore.certificates".into(),
                ))
            }
        };
        let client_auth = match get("ssl.client.auth")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("none") => ClientAuth::None,
            Some("requested") => ClientAuth::Requested,
            Some("required") => ClientAuth::Required,
            Some(other) => {
                return Err(bad(format!(
                    "ssl.client.auth={other}: use none, requested or required"
                )))
            }
        };
        if client_auth != ClientAuth::None && trust.is_none() {
            return Err(bad(
                "ssl.client.auth asks for client certificates: set ssl.truststore.location".into(),
            ));
        }
        Ok(TlsSettings {
            chain,
            key,
            trust,
            client_auth,
        })
    }

    /// The files the settings read (watched for changes).
    pub fn paths(&self) -> Vec<PathBuf> {
        [Some(&self.chain), self.key.as_ref(), self.trust.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(Pem::path)
            .collect()
    }

    /// Builds the rustls configuration from the files as they are now.
    pub fn server_config(&self) -> Result<ServerConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain_pem = self.chain.read()?;
        let certs = certificates(&chain_pem, "certificate chain")?;
        let key_pem = match &self.key {
            Some(key) => key.read()?,
            None => chain_pem,
        };
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("no usable private key in the PEM: {e}"))?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match (&self.trust, self.client_auth) {
            (_, ClientAuth::None) | (None, _) => builder.with_no_client_auth(),
            (Some(trust), auth) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(&trust.read()?, "trust store")? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("trust store certificate: {e}"))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier.build().map_err(|e| format!("trust store: {e}"))?,
                )
            }
        };
        builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("certificate chain and key: {e}"))
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no CERTIFICATE in the PEM"));
    }
    Ok(certs)
}

/// A listener's TLS server side: the current configuration and how client certificates map
/// to principals.
#[derive(Debug)]
pub struct TlsServer {
    config: Reloading<ServerConfig>,
    /// `ssl.principal.mapping.rules`.
    pub mapper: PrincipalMapper,
}

impl TlsServer {
    /// Loads the certificates now; unusable files fail start-up.
    pub fn new(settings: TlsSettings, mapper: PrincipalMapper) -> Result<TlsServer, String> {
        let paths = settings.paths();
        let config = Reloading::new(
            "TLS certificates",
            paths,
            Box::new(move || settings.server_config()),
        )?;
        Ok(TlsServer { config, mapper })
    }

    /// An acceptor with the certificates as the files hold them now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_kafkas_pem_keys_with_listener_overrides() {
        let p = SecurityProps::from_pairs(&[
            ("ssl.keystore.location", "/certs/tls.crt"),
            ("ssl.keystore.key.location", "/certs/tls.key"),
            ("listener.name.mtls.ssl.client.auth", "required"),
            (
                "listener.name.mtls.ssl.truststore.location",
                "/certs/ca.crt",
            ),
        ]);
        let plain = TlsSettings::from_props(&p, "SSL").unwrap();
        assert_eq!(plain.client_auth, ClientAuth::None);
        assert_eq!(plain.key, Some(Pem::File("/certs/tls.key".into())));
        let mtls = TlsSettings::from_props(&p, "MTLS").unwrap();
        assert_eq!(mtls.client_auth, ClientAuth::Required);
        assert_eq!(mtls.trust, Some(Pem::File("/certs/ca.crt".into())));
    }

    #[test]
    fn unusable_settings_are_named() {
        let err = |pairs: &[(&str, &str)]| {
            TlsSettings::from_props(&SecurityProps::from_pairs(pairs), "SSL")
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[]).contains("ssl.keystore.location"));
        assert!(
            err(&[("ssl.keystore.location", "x"), ("ssl.keystore.type", "JKS")])
                .contains("only PEM")
        );
        assert!(err(&[
            ("ssl.keystore.location", "x"),
            ("ssl.client.auth", "required")
        ])
        .contains("ssl.truststore.location"));
        assert!(
            err(&[("ssl.keystore.location", "x"), ("ssl.client.auth", "maybe")])
                .contains("none, requested or required")
        );
        assert!(
            err(&[("ssl.keystore.location", "x"), ("ssl.key.password", "pw")])
                .contains("encrypted")
        );
        let missing = TlsSettings::from_props(
            &SecurityProps::from_pairs(&[("ssl.keystore.location", "/nonexistent.pem")]),
            "SSL",
        )
        .unwrap();
        assert!(missing
            .server_config()
            .unwrap_err()
            .contains("/nonexistent.pem"));
        let empty = TlsSettings::from_props(
            &SecurityProps::from_pairs(&[("ssl.keystore.certificate.chain", "junk")]),
            "SSL",
        )
        .unwrap();
        assert!(empty
            .server_config()
            .unwrap_err()
            .contains("no CERTIFICATE"));
    }
}
