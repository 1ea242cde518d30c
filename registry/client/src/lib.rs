//! The HTTP/1 client of a Confluent-compatible schema registry, shared by `trib schema` and
//! the operator's KafkaSchema controller so both reach a registry the same way: one request per
//! connection, bounded by a timeout, over plain HTTP or HTTPS (rustls: a CA bundle, the name
//! the certificate must carry when the URL's host is not it, a client certificate for mTLS),
//! with HTTP basic credentials when given. It returns the status and body; what an error body
//! means is the caller's business.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Confluent's media type, sent and accepted.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Why a call got no answer (an answer with an error status is not an error here).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one this client can call.
    #[error("registry URL {url:?} is not usable: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The TLS settings cannot be used.
    #[error("TLS settings for the registry: {0}")]
    Tls(String),
    /// A step of the exchange failed.
    #[error("registry at {url} unreachable ({step}): {reason}")]
    Transport {
        /// The registry.
        url: String,
        /// The step: connect, TLS handshake, send, read body...
        step: &'static str,
        /// What failed.
        reason: String,
    },
    /// No answer within the time limit.
    #[error("registry at {url} did not answer {method} {path} within {timeout:?}")]
    Timeout {
        /// The registry.
        url: String,
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// The limit.
        timeout: Duration,
    },
}

/// TLS to a registry serving HTTPS.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Trusts the CA certificates of `ca_pem`; presents `identity` (certificate chain PEM, key
    /// PEM) when given; checks the registry's certificate for `server_name`, or for the URL's
    /// host when `None`.
    pub fn new(
        ca_pem: &[u8],
        identity: Option<(&[u8], &[u8])>,
        server_name: Option<&str>,
    ) -> Result<TlsSettings, ClientError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| ClientError::Tls(format!("{what}: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| bad("CA bundle", &e))?;
            roots.add(cert).map_err(|e| bad("CA certificate", &e))?;
        }
        if roots.is_empty() {
            return Err(ClientError::Tls(
                "the CA bundle holds no certificate".to_owned(),
            ));
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", &e))?
        .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("client certificate", &e))?;
                let key =
                    PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad("client key", &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad("client certificate", &e))?
            }
        };
        let server_name = server_name
            .map(|n| ServerName::try_from(n.to_owned()).map_err(|e| bad("server name", &e)))
            .transpose()?;
        Ok(TlsSettings {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// A registry at one base URL, and how to reach it.
#[derive(Clone, Debug)]
pub struct RegistryHttp {
    url: String,
    authority: String,
    host: String,
    port: u16,
    prefix: String,
    tls: Option<TlsSettings>,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

/// A registry's answer: the status and the body (JSON, `Null` when empty, a string when it is
/// not JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl RegistryHttp {
    /// A client of the registry at `url` (`http://` or, with `tls`, `https://`, with an
    /// optional path prefix), each call bounded by `timeout`.
    pub fn new(
        url: &str,
        tls: Option<TlsSettings>,
        timeout: Duration,
    ) -> Result<RegistryHttp, ClientError> {
        let bad = |why: &str| ClientError::BadUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let default_port = match (uri.scheme_str(), &tls) {
            (Some("http"), _) => 80,
            (Some("https"), Some(_)) => 443,
            (Some("https"), None) => {
                return Err(bad("https:// needs TLS settings (a CA to trust)"))
            }
            _ => return Err(bad("expected http://HOST:PORT or https://HOST:PORT")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        Ok(RegistryHttp {
            url: url.trim_end_matches('/').to_owned(),
            authority: authority.as_str().to_owned(),
            host: authority.host().trim_matches(['[', ']']).to_owned(),
            port: authority.port_u16().unwrap_or(default_port),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            tls: tls.filter(|_| uri.scheme_str() == Some("https")),
            authorization: None,
            timeout,
        })
    }

    /// Sends HTTP basic credentials with every call.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Result<Self, ClientError> {
        let token = BASE64.encode(format!("{user}:{password}"));
        let value =
            HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| ClientError::BadUrl {
                url: self.url.clone(),
                why: "the user name or password holds characters a header cannot carry".to_owned(),
            })?;
        self.authorization = Some(value);
        Ok(self)
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One call: `path` (with its query) under the base URL, with a JSON body if given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let timeout = ClientError::Timeout {
            url: self.url.clone(),
            method: method.to_string(),
            path: path.to_owned(),
            timeout: self.timeout,
        };
        tokio::time::timeout(self.timeout, self.exchange(method, path, body))
            .await
            .map_err(|_| timeout)?
    }

    fn transport(&self, step: &'static str) -> impl FnOnce(String) -> ClientError {
        let url = self.url.clone();
        move |reason| ClientError::Transport { url, step, reason }
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.transport("connect")(e.to_string()))?;
        match &self.tls {
            None => self.send(stream, method, path, body).await,
            Some(tls) => {
                let name = match &tls.server_name {
                    Some(name) => name.clone(),
                    None => ServerName::try_from(self.host.clone())
                        .map_err(|e| self.transport("TLS server name")(e.to_string()))?,
                };
                let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| self.transport("TLS handshake")(e.to_string()))?;
                self.send(stream, method, path, body).await
            }
        }
    }

    async fn send<S>(
        &self,
        stream: S,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.transport("handshake")(e.to_string()))?;
        // The connection task ends when the exchange does (the sender is dropped).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, &self.authority)
            .header(header::ACCEPT, format!("{CONTENT_TYPE}, application/json"))
            .header(header::CONTENT_TYPE, CONTENT_TYPE);
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        let request = request
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| self.transport("build request")(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.transport("send")(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.transport("read body")(e.to_string()))?
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests;
