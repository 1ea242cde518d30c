//! HTTPS for the REST listener with rustls: the certificate and key from PEM files, reloaded
//! when they change (a renewed certificate is served to new connections), and, for mTLS,
//! client certificates checked against a CA bundle. A verified client certificate names the
//! principal `User:<CN>`, as the broker's mTLS listeners map certificates (`CN=alice` is
//! `User:alice`, the same user as SCRAM user `alice`).
//!
//! Under basic authentication too, a verified certificate authenticates (the operator and
//! the other instances use theirs), so `--tls-client-ca` may be set in either mode.
//!
//! Client certificates are *requested*, not required, at the TLS layer: the kubelet's probes
//! and Prometheus reach `/` and `/metrics` without one, and every other path answers 401
//! without a verified certificate ([`crate::auth`]). A certificate from another CA fails the
//! handshake.
//!
//! The same module builds the client side that forwards writes to an HTTPS writer: it trusts
//! the CA bundle that signed the instances' certificates and presents this instance's own
//! certificate, so with mTLS one instance authenticates to another as itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::reload::FileBacked;

/// Why TLS could not be set up; each names the file or setting.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the kind needed.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificates, key or trust store.
    #[error("{what}: {reason}")]
    Config {
        /// What was being built.
        what: &'static str,
        /// rustls' reason.
        reason: String,
    },
}

/// The files of the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM (leaf first).
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1; unencrypted).
    pub key: PathBuf,
    /// CA bundles whose client certificates authenticate (mTLS): the clients CA, and the CA
    /// of the instances' own certificates so that instances and the operator authenticate
    /// too; empty: no certificate is asked for.
    pub client_ca: Vec<PathBuf>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The certificates of a PEM file; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let bad = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE in the PEM".to_owned()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        reason: format!("no usable private key: {e}"),
    })
}

fn roots(paths: &[PathBuf]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for path in paths {
        for cert in certificates(path)? {
            roots.add(cert).map_err(|e| TlsError::Pem {
                path: path.to_owned(),
                reason: format!("not a usable CA certificate: {e}"),
            })?;
        }
    }
    Ok(Arc::new(roots))
}

fn config_error(what: &'static str) -> impl Fn(rustls::Error) -> TlsError {
    move |e| TlsError::Config {
        what,
        reason: e.to_string(),
    }
}

impl TlsFiles {
    /// The files read, watched for changes.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.cert.clone(), self.key.clone()];
        paths.extend(self.client_ca.iter().cloned());
        paths
    }

    /// The server configuration for the files as they are now.
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error("TLS versions"))?;
        let builder = match self.client_ca.as_slice() {
            [] => builder.with_no_client_auth(),
            bundles => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots(bundles)?, provider())
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| TlsError::Config {
                            what: "client CA bundle",
                            reason: e.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certificates(&self.cert)?, private_key(&self.key)?)
            .map_err(config_error("certificate and key"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The client configuration forwarding writes to another instance: trusts `ca` (what
    /// signed the instances' certificates) and presents this instance's certificate.
    pub fn forward_config(&self, ca: &Path) -> Result<ClientConfig, TlsError> {
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error("TLS versions"))?
            .with_root_certificates(roots(&[ca.to_owned()])?)
            .with_client_auth_cert(certificates(&self.cert)?, private_key(&self.key)?)
            .map_err(config_error("client certificate and key"))
    }
}

/// The HTTPS listener's TLS: the server configuration, reloaded when its files change.
#[derive(Debug)]
pub struct ServerTls {
    config: FileBacked<ServerConfig, TlsError>,
}

impl ServerTls {
    /// Loads the files now; unusable files fail start-up.
    pub fn new(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let paths = files.paths();
        let config = FileBacked::new(
            "the HTTPS certificates",
            paths,
            Box::new(move || files.server_config()),
        )?;
        Ok(ServerTls { config })
    }

    /// An acceptor with the certificates as the files hold them now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.get())
    }
}

/// The client side of forwarding to an HTTPS writer, reloaded when its files change.
#[derive(Debug)]
pub struct ForwardTls {
    config: FileBacked<ClientConfig, TlsError>,
    /// The name the writer's certificate is checked for, when not its URL's host: instances
    /// advertise pod IPs, which their certificate (issued for the Service) does not name.
    pub server_name: Option<String>,
}

impl ForwardTls {
    /// Loads the files now: this instance's certificate and key, and the CA bundle `ca`;
    /// `server_name` is the name the writer's certificate must carry (its URL's host if none).
    pub fn new(
        files: TlsFiles,
        ca: PathBuf,
        server_name: Option<String>,
    ) -> Result<ForwardTls, TlsError> {
        let mut paths = vec![files.cert.clone(), files.key.clone(), ca.clone()];
        paths.dedup();
        let config = FileBacked::new(
            "the forwarding TLS client",
            paths,
            Box::new(move || files.forward_config(&ca)),
        )?;
        Ok(ForwardTls {
            config,
            server_name,
        })
    }

    /// A connector with the files as they are now.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.config.get())
    }
}

/// The principal a verified client certificate (DER, the leaf) names: `User:<CN>`; `None`
/// without a CN.
pub fn certificate_principal(der: &CertificateDer<'_>) -> Option<String> {
    let cert = webpki::EndEntityCert::try_from(der).ok()?;
    common_name(cert.subject()).map(|cn| format!("User:{cn}"))
}

/// DER tag of a SET (an RDN), a SEQUENCE (an attribute), an OID.
const SET: u8 = 0x31;
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// The last commonName of an X.509 Name's content (a sequence of RDN sets), as a string.
pub fn common_name(mut name: &[u8]) -> Option<String> {
    let mut found = None;
    while !name.is_empty() {
        let (tag, mut rdn, rest) = der(name)?;
        name = rest;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, attribute, rest) = der(rdn)?;
            rdn = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = der(attribute)?;
            if tag == OID && oid == COMMON_NAME {
                let (_, text, _) = der(value)?;
                found = Some(String::from_utf8(text.to_vec()).ok()?);
            }
        }
    }
    found
}

/// One DER element: (tag, content, what follows); `None` when truncated or too long.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (bytes, after) = rest.split_at(octets);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |len, b| (len << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    Some((tag, content, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(cn: &str) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Tributary");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        cert.der().clone()
    }

    #[test]
    fn a_certificate_names_the_user_of_its_common_name() {
        assert_eq!(
            certificate_principal(&certificate("alice")).as_deref(),
            Some("User:alice")
        );
    }

    #[test]
    fn names_without_a_common_name_or_broken_der_name_nobody() {
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[SET, 0x05, SEQUENCE]), None);
        assert_eq!(common_name(&[0x02, 0x01, 0x00]), None);
        assert_eq!(
            certificate_principal(&CertificateDer::from(vec![0x30, 0x03, 0x01])),
            None
        );
    }

    #[test]
    fn missing_or_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap_or_else(|e| panic!("{e}"));
        let files = TlsFiles {
            cert: empty.clone(),
            key: dir.path().join("missing.key"),
            client_ca: Vec::new(),
        };
        let error = files.server_config().err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("empty.pem") && e.contains("no CERTIFICATE")),
            "{error:?}"
        );
    }
}
