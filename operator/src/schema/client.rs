//! A small client of the schema registry's REST API (Confluent's), over one HTTP/1 connection
//! per request with hyper: the few calls the KafkaSchema reconciler makes (read and set a
//! subject's compatibility, look a schema up, register it, soft-delete the subject). Every
//! call is bounded by a timeout; the registry's error bodies (`error_code`, `message`) come
//! back as [`RegistryError::Api`] so the reconciler can tell a refused schema from an outage.
//! A registry serving HTTPS is called over TLS ([`RegistryTls`]): its certificate checked
//! for the Service's name (the operator calls a pod by IP) and the operator's own client
//! certificate presented, which the registry admits in every authentication mode.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The content type Confluent's clients send and the registry answers with.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// How long one call may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Confluent's error code for a subject that does not exist.
pub const SUBJECT_NOT_FOUND: i64 = 40401;
/// Confluent's error code for a schema not found under a subject.
pub const SCHEMA_NOT_FOUND: i64 = 40403;
/// Confluent's error code for a subject without a compatibility level of its own.
pub const SUBJECT_LEVEL_NOT_CONFIGURED: i64 = 40408;
/// Confluent's error code for an incompatible schema.
pub const INCOMPATIBLE: i64 = 409;
/// Confluent's error code for a schema that does not parse.
pub const INVALID_SCHEMA: i64 = 42201;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry URL is not one this client can call.
    #[error("schema registry URL {url:?} is not usable: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The connection or the exchange failed.
    #[error("schema registry at {url} unreachable ({what}): {source}")]
    Transport {
        /// The registry.
        url: String,
        /// The step that failed.
        what: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The call took longer than its bound.
    #[error("schema registry at {url} did not answer {method} {path} within {timeout:?}")]
    Timeout {
        /// The registry.
        url: String,
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// The bound.
        timeout: Duration,
    },
    /// The registry answered with an error body.
    #[error("schema registry answered {status} (error code {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Confluent's error code.
        code: i64,
        /// The registry's message.
        message: String,
    },
    /// The registry's answer is not what the API documents.
    #[error("schema registry answered {path} with an unreadable body: {source}")]
    Decode {
        /// The path called.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl RegistryError {
    /// Confluent's error code, when the registry answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            RegistryError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A schema as the registry's register and lookup calls take it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaBody {
    /// The schema text.
    pub schema: String,
    /// `AVRO`, `JSON` or `PROTOBUF`.
    pub schema_type: String,
    /// References to other subjects' versions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceBody>,
}

/// One reference, as the REST API spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReferenceBody {
    /// Name the schema uses.
    pub name: String,
    /// Referenced subject.
    pub subject: String,
    /// Referenced version.
    pub version: i32,
}

/// Where a schema is registered under a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Registered {
    /// Global schema id.
    pub id: i64,
    /// The subject's version.
    pub version: i32,
}

/// TLS to a registry serving HTTPS.
#[derive(Clone)]
pub struct RegistryTls {
    config: Arc<rustls::ClientConfig>,
    server_name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for RegistryTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Why TLS to the registry could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("TLS to the schema registry: {0}")]
pub struct TlsSetupError(String);

impl RegistryTls {
    /// Trusts the CA certificates in `ca_pem`, presents `identity` (certificate PEM, key PEM)
    /// when given, and checks the registry's certificate for `server_name`.
    pub fn new(
        ca_pem: &str,
        identity: Option<(&str, &str)>,
        server_name: &str,
    ) -> Result<RegistryTls, TlsSetupError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let bad = |what: &str, e: &dyn std::fmt::Display| TlsSetupError(format!("{what}: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| bad("CA bundle", &e))?;
            roots.add(cert).map_err(|e| bad("CA certificate", &e))?;
        }
        if roots.is_empty() {
            return Err(TlsSetupError(
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
                let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("client certificate", &e))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                    .map_err(|e| bad("client key", &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad("client certificate", &e))?
            }
        };
        let server_name =
            ServerName::try_from(server_name.to_owned()).map_err(|e| bad("server name", &e))?;
        Ok(RegistryTls {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// A registry at one base URL (`http://host:port`, or `https://` with [`RegistryTls`]).
#[derive(Clone, Debug)]
pub struct RegistryClient {
    url: String,
    authority: String,
    host: String,
    port: u16,
    tls: Option<RegistryTls>,
}

impl RegistryClient {
    /// A client of the registry at `url`: `http://`, or `https://` with `tls`.
    pub fn new(url: &str, tls: Option<RegistryTls>) -> Result<Self, RegistryError> {
        let bad = |why: &str| RegistryError::BadUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let port =
            match (uri.scheme_str(), &tls) {
                (Some("http"), _) => 80,
                (Some("https"), Some(_)) => 443,
                (Some("https"), None) => return Err(bad(
                    "an https:// registry needs TLS settings (the cluster's registry has no tls)",
                )),
                _ => return Err(bad("neither http:// nor https://")),
            };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        Ok(RegistryClient {
            url: url.trim_end_matches('/').to_owned(),
            authority: authority.as_str().to_owned(),
            host: authority.host().to_owned(),
            port: authority.port_u16().unwrap_or(port),
            tls: tls.filter(|_| uri.scheme_str() == Some("https")),
        })
    }

    /// The registry's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The subject's own compatibility level; `None` when it has none (the global applies).
    pub async fn subject_compatibility(
        &self,
        subject: &str,
    ) -> Result<Option<String>, RegistryError> {
        let path = format!("/config/{}?defaultToGlobal=false", encode(subject));
        match self.call(Method::GET, &path, None).await {
            Ok(body) => Ok(body
                .get("compatibilityLevel")
                .or_else(|| body.get("compatibility"))
                .and_then(Value::as_str)
                .map(str::to_owned)),
            Err(e)
                if matches!(
                    e.code(),
                    Some(SUBJECT_LEVEL_NOT_CONFIGURED | SUBJECT_NOT_FOUND)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the subject's compatibility level.
    pub async fn set_subject_compatibility(
        &self,
        subject: &str,
        level: &str,
    ) -> Result<(), RegistryError> {
        let path = format!("/config/{}", encode(subject));
        let body = serde_json::json!({ "compatibility": level });
        self.call(Method::PUT, &path, Some(body)).await.map(|_| ())
    }

    /// Where `schema` is registered under `subject`, if it is.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &SchemaBody,
        normalize: bool,
    ) -> Result<Option<Registered>, RegistryError> {
        let path = format!("/subjects/{}?normalize={normalize}", encode(subject));
        match self.call(Method::POST, &path, Some(to_json(schema))).await {
            Ok(body) => decode(&path, body).map(Some),
            Err(e) if matches!(e.code(), Some(SUBJECT_NOT_FOUND | SCHEMA_NOT_FOUND)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers `schema` as the subject's next version (the registry checks compatibility);
    /// returns its id.
    pub async fn register(
        &self,
        subject: &str,
        schema: &SchemaBody,
        normalize: bool,
    ) -> Result<i64, RegistryError> {
        #[derive(Deserialize)]
        struct Id {
            id: i64,
        }
        let path = format!(
            "/subjects/{}/versions?normalize={normalize}",
            encode(subject)
        );
        let body = self
            .call(Method::POST, &path, Some(to_json(schema)))
            .await?;
        decode::<Id>(&path, body).map(|r| r.id)
    }

    /// Soft-deletes the subject; a subject already gone is success.
    pub async fn soft_delete_subject(&self, subject: &str) -> Result<(), RegistryError> {
        let path = format!("/subjects/{}", encode(subject));
        match self.call(Method::DELETE, &path, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(SUBJECT_NOT_FOUND) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One call, bounded by [`CALL_TIMEOUT`].
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RegistryError> {
        let timeout = RegistryError::Timeout {
            url: self.url.clone(),
            method: method.to_string(),
            path: path.to_owned(),
            timeout: CALL_TIMEOUT,
        };
        tokio::time::timeout(CALL_TIMEOUT, self.exchange(method, path, body))
            .await
            .map_err(|_| timeout)?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RegistryError> {
        let transport = |what| self.transport(what);
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| transport("connect")(e.into()))?;
        match &self.tls {
            None => self.send(stream, method, path, body).await,
            Some(tls) => {
                let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                    .connect(tls.server_name.clone(), stream)
                    .await
                    .map_err(|e| transport("TLS handshake")(e.into()))?;
                self.send(stream, method, path, body).await
            }
        }
    }

    /// Makes a transport error of step `what`.
    fn transport(
        &self,
        what: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> RegistryError {
        let url = self.url.clone();
        move |source| RegistryError::Transport { url, what, source }
    }

    /// The HTTP/1 exchange over a connected stream.
    async fn send<S>(
        &self,
        stream: S,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RegistryError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let transport = |what| self.transport(what);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport("handshake")(e.into()))?;
        // The connection task ends when the exchange does (the sender is dropped).
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "schema registry connection ended with an error");
            }
        });
        let payload = match &body {
            Some(v) => Bytes::from(v.to_string()),
            None => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::ACCEPT, CONTENT_TYPE)
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(payload))
            .map_err(|e| transport("build request")(e.into()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport("send")(e.into()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport("read body")(e.into()))?
            .to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|source| RegistryError::Decode {
                path: path.to_owned(),
                source,
            })?
        };
        if status.is_success() {
            Ok(value)
        } else {
            Err(api_error(status, &value))
        }
    }
}

/// The registry's error body as an error (Confluent's `error_code` and `message`).
fn api_error(status: StatusCode, body: &Value) -> RegistryError {
    RegistryError::Api {
        status: status.as_u16(),
        code: body
            .get("error_code")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| i64::from(status.as_u16())),
        message: body
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| body.to_string(), str::to_owned),
    }
}

fn to_json(schema: &SchemaBody) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, body: Value) -> Result<T, RegistryError> {
    serde_json::from_value(body).map_err(|source| RegistryError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Percent-encodes a subject for a path segment: subjects may hold any character.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_encoded_into_one_path_segment() {
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn http_urls_and_https_urls_with_tls_are_accepted() {
        let c = RegistryClient::new("http://demo-schema-registry.kafka.svc:8081/", None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.url(), "http://demo-schema-registry.kafka.svc:8081");
        assert_eq!(
            (c.host.as_str(), c.port),
            ("demo-schema-registry.kafka.svc", 8081)
        );
        assert!(matches!(
            RegistryClient::new("https://x:8081", None),
            Err(RegistryError::BadUrl { .. })
        ));
        assert!(RegistryClient::new("ftp://x:8081", None).is_err());
        assert!(RegistryClient::new("not a url", None).is_err());
    }

    #[test]
    fn error_bodies_keep_the_registry_code_and_message() {
        let body = serde_json::json!({"error_code": 409, "message": "incompatible: field x"});
        let e = api_error(StatusCode::CONFLICT, &body);
        assert_eq!(e.code(), Some(409));
        assert!(e.to_string().contains("incompatible: field x"));
        let bare = api_error(StatusCode::BAD_GATEWAY, &Value::Null);
        assert_eq!(bare.code(), Some(502));
    }

    #[test]
    fn the_schema_body_is_the_rest_api_shape() {
        let body = SchemaBody {
            schema: "\"string\"".into(),
            schema_type: "AVRO".into(),
            references: vec![],
        };
        assert_eq!(
            to_json(&body),
            serde_json::json!({"schema": "\"string\"", "schemaType": "AVRO"})
        );
    }

    /// A one-request HTTPS server requiring a client certificate of `ca`, answering `body`.
    async fn https_server(
        ca_pem: &str,
        server: &crate::pki::Issued,
        body: &'static str,
    ) -> (u16, tokio::task::JoinHandle<()>) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(cert.unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
        let chain = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("{e}"))
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap_or_else(|e| panic!("{e}"));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map_or(0, |a| a.port());
        let task = tokio::spawn(async move {
            // Two connections: the one with a client certificate, the one without.
            for _ in 0..2 {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    continue;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        (port, task)
    }

    #[tokio::test]
    async fn an_https_registry_is_called_with_the_operators_certificate_for_the_service_name() {
        use crate::pki::{issue, new_ca, Ca, Usage};
        let now = std::time::SystemTime::now();
        let day = Duration::from_secs(86_400);
        let ca = new_ca("demo-cluster-ca", day, now).unwrap_or_else(|e| panic!("{e}"));
        let signer = Ca {
            common_name: "demo-cluster-ca",
            key_pem: &ca.key_pem,
        };
        let service = "demo-schema-registry.kafka.svc";
        let server = issue(
            &signer,
            "demo-schema-registry",
            &[service.to_owned()],
            Usage::Broker,
            day,
            now,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let operator = issue(&signer, "tributary-operator", &[], Usage::Client, day, now)
            .unwrap_or_else(|e| panic!("{e}"));
        let (port, server_task) =
            https_server(&ca.cert_pem, &server, r#"{"compatibilityLevel":"FULL"}"#).await;
        // Called by IP, the certificate checked for the Service's name.
        let url = format!("https://127.0.0.1:{port}");
        let tls = RegistryTls::new(
            &ca.cert_pem,
            Some((&operator.cert_pem, &operator.key_pem)),
            service,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let client = RegistryClient::new(&url, Some(tls)).unwrap_or_else(|e| panic!("{e}"));
        let level = client.subject_compatibility("orders-value").await;
        assert_eq!(level.ok().flatten().as_deref(), Some("FULL"));
        // Without a client certificate the registry refuses the handshake.
        let anonymous =
            RegistryTls::new(&ca.cert_pem, None, service).unwrap_or_else(|e| panic!("{e}"));
        let client = RegistryClient::new(&url, Some(anonymous)).unwrap_or_else(|e| panic!("{e}"));
        let refused = client.subject_compatibility("orders-value").await;
        assert!(
            matches!(refused, Err(RegistryError::Transport { .. })),
            "{refused:?}"
        );
        server_task.abort();
    }
}
