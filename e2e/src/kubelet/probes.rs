//! Container probes as the kubelet runs them: HTTP GET (success is a status from 200 to 399;
//! with `scheme: HTTPS` over TLS without checking the certificate, as the kubelet does) and
//! TCP connect, against the pod IP unless `host` is given, with the probe's
//! initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and
//! failureThreshold. `exec` and `grpc` probes are not modelled: they always fail, with a
//! message saying so.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// What a probe checks.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    Http {
        host: String,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
        /// `scheme: HTTPS`.
        tls: bool,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Unsupported(String),
}

/// A probe with its timing.
#[derive(Clone, Debug)]
pub(crate) struct Prober {
    pub(crate) action: Action,
    pub(crate) initial_delay: Duration,
    pub(crate) period: Duration,
    pub(crate) timeout: Duration,
    pub(crate) success_threshold: u32,
    pub(crate) failure_threshold: u32,
}

fn secs(v: Option<i32>, default: u64) -> Duration {
    Duration::from_secs(v.and_then(|s| u64::try_from(s).ok()).unwrap_or(default))
}

fn count(v: Option<i32>, default: u32) -> u32 {
    v.and_then(|s| u32::try_from(s).ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// A port given by number or by the name of one of the container's ports.
fn port(container: &Container, port: &IntOrString) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

impl Prober {
    /// The prober for `probe` of `container` in a pod with IP `pod_ip`.
    pub(crate) fn new(probe: &Probe, container: &Container, pod_ip: &str) -> Prober {
        let action = if let Some(h) = &probe.http_get {
            match port(container, &h.port) {
                Some(p) if matches!(h.scheme.as_deref(), None | Some("HTTP" | "HTTPS")) => {
                    Action::Http {
                        host: h.host.clone().unwrap_or_else(|| pod_ip.to_owned()),
                        port: p,
                        path: h.path.clone().unwrap_or_else(|| "/".to_owned()),
                        headers: h
                            .http_headers
                            .iter()
                            .flatten()
                            .map(|hh| (hh.name.clone(), hh.value.clone()))
                            .collect(),
                        tls: h.scheme.as_deref() == Some("HTTPS"),
                    }
                }
                Some(_) => Action::Unsupported(format!("probe scheme {:?}", h.scheme)),
                None => {
                    Action::Unsupported(format!("port {:?} is not a port of the container", h.port))
                }
            }
        } else if let Some(t) = &probe.tcp_socket {
            match port(container, &t.port) {
                Some(p) => Action::Tcp {
                    host: t.host.clone().unwrap_or_else(|| pod_ip.to_owned()),
                    port: p,
                },
                None => {
                    Action::Unsupported(format!("port {:?} is not a port of the container", t.port))
                }
            }
        } else {
            Action::Unsupported(
                "exec and grpc probes are not modelled by the kubelet stand-in".to_owned(),
            )
        };
        Prober {
            action,
            initial_delay: secs(probe.initial_delay_seconds, 0),
            period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
        }
    }

    /// Runs the check once: `Ok` on success, `Err(why)` on failure.
    pub(crate) async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, attempt(&self.action)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }
}

async fn attempt(action: &Action) -> Result<(), String> {
    match action {
        Action::Tcp { host, port } => TcpStream::connect((host.as_str(), *port))
            .await
            .map(drop)
            .map_err(|e| format!("dial tcp {host}:{port}: {e}")),
        Action::Http {
            host,
            port,
            path,
            headers,
            tls,
        } => {
            let scheme = if *tls { "https" } else { "http" };
            let stream = TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| format!("Get \"{scheme}://{host}:{port}{path}\": dial tcp: {e}"))?;
            let mut request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.34\r\nAccept: */*\r\nConnection: close\r\n"
            );
            for (k, v) in headers {
                request.push_str(&format!("{k}: {v}\r\n"));
            }
            request.push_str("\r\n");
            let code = if *tls {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| format!("server name {host:?}: {e}"))?;
                let stream = tokio_rustls::TlsConnector::from(unverified_tls()?)
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("Get \"{scheme}://{host}:{port}{path}\": {e}"))?;
                status_of(stream, &request).await?
            } else {
                status_of(stream, &request).await?
            };
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        }
        Action::Unsupported(why) => Err(why.clone()),
    }
}

/// Sends `request` and reads the status code of the answer.
async fn status_of(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
) -> Result<u16, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0_u8; 64];
    let mut read = 0;
    while read < head.len() && !head[..read].contains(&b'\n') {
        let n = stream
            .read(&mut head[read..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]).into_owned();
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("malformed HTTP response {line:?}"))
}

/// TLS for HTTPS probes: like the kubelet, it does not check who the certificate names or
/// who signed it (only that the handshake is sound).
fn unverified_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts any server certificate, checking the handshake signatures only.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
