//! Forwarding a write to the writer: the request verbatim (method, path, query, body, content
//! type, accept and authorization headers), the writer's answer relayed as it came. The writer
//! stamps every answer with the offset its state has applied ([`APPLIED_HEADER`]), so the
//! forwarding instance can wait to have read the write before answering: a client that writes
//! through one instance and reads through it sees its write.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::MAX_BODY_BYTES;
use crate::tls::ForwardTls;

/// The header on every answer saying up to which `_schemas` offset (exclusive) the answering
/// instance's state is applied.
pub const APPLIED_HEADER: &str = "x-tributary-schemas-applied";

/// The header a forwarded request carries (the forwarding instance's URL), so that a request
/// is forwarded once at most and two instances with stale views never bounce it between them.
pub const FORWARDED_HEADER: &str = "x-tributary-forwarded-by";

/// How long connecting to the writer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The request headers passed on to the writer.
const PASSED_ON: [header::HeaderName; 3] =
    [header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION];

/// Why a write could not be forwarded; answered as 50003.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The writer's URL (from the Lease) is not an `http(s)://host:port` URL, or is HTTPS
    /// while this instance has no TLS client.
    #[error("the writer's URL {url:?} is not an http://HOST:PORT URL (nor https:// with --tls-cert and --forward-ca set)")]
    BadUrl {
        /// The URL.
        url: String,
    },
    /// Connecting to the writer failed or timed out.
    #[error("cannot connect to the writer at {url}: {reason}")]
    Connect {
        /// The writer's URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The HTTP exchange with the writer failed.
    #[error("forwarding to the writer at {url} failed: {reason}")]
    Exchange {
        /// The writer's URL.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// What the forwarding instance received: the writer's answer, ready to relay.
#[derive(Debug)]
pub struct Relayed {
    /// The answer.
    pub response: Response<Full<Bytes>>,
    /// The writer's applied offset, when it said.
    pub applied: Option<i64>,
}

/// The request to forward.
#[derive(Debug)]
pub struct Forward<'a> {
    /// The writer's advertised URL.
    pub writer: &'a str,
    /// The TLS client for an `https://` writer.
    pub tls: Option<&'a ForwardTls>,
    /// This instance's URL, for [`FORWARDED_HEADER`].
    pub from: &'a str,
    /// The method.
    pub method: &'a Method,
    /// The original request URI (its path and query are kept).
    pub uri: &'a Uri,
    /// The original request headers.
    pub headers: &'a HeaderMap,
    /// The original body.
    pub body: Bytes,
}

/// Sends `request` to the writer and returns its answer.
pub async fn forward(request: Forward<'_>) -> Result<Relayed, ForwardError> {
    let url = request.writer;
    let bad = || ForwardError::BadUrl {
        url: url.to_owned(),
    };
    let base: Uri = url.parse().map_err(|_| bad())?;
    let tls = match (base.scheme_str(), request.tls) {
        (Some("http"), _) => None,
        (Some("https"), Some(tls)) => Some(tls),
        _ => return Err(bad()),
    };
    let authority = base.authority().ok_or_else(bad)?.clone();
    let host = authority.host().to_owned();
    let port = authority
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });

    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(ForwardError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(ForwardError::Connect {
                url: url.to_owned(),
                reason: format!("no connection within {CONNECT_TIMEOUT:?}"),
            })
        }
    };
    match tls {
        None => send(stream, &authority, &request).await,
        Some(tls) => {
            let expected = tls
                .server_name
                .clone()
                .unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned());
            let name = ServerName::try_from(expected).map_err(|_| bad())?;
            let handshake = tls.connector().connect(name, stream);
            let stream = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return Err(ForwardError::Connect {
                        url: url.to_owned(),
                        reason: format!("TLS handshake: {e}"),
                    })
                }
                Err(_) => {
                    return Err(ForwardError::Connect {
                        url: url.to_owned(),
                        reason: format!("no TLS handshake within {CONNECT_TIMEOUT:?}"),
                    })
                }
            };
            send(stream, &authority, &request).await
        }
    }
}

/// The HTTP/1 exchange with the writer over `stream`.
async fn send<S>(
    stream: S,
    authority: &http::uri::Authority,
    request: &Forward<'_>,
) -> Result<Relayed, ForwardError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let url = request.writer;
    let base: Uri = url.parse().map_err(|_| ForwardError::BadUrl {
        url: url.to_owned(),
    })?;
    let prefix = base.path().trim_end_matches('/');
    let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let target = format!("{prefix}{path}");
    let exchange = |e: &dyn std::fmt::Display| ForwardError::Exchange {
        url: url.to_owned(),
        reason: e.to_string(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| exchange(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection to the writer ended with an error");
        }
    });

    let mut builder = Request::builder()
        .method(request.method.clone())
        .uri(target)
        .header(header::HOST, authority.as_str());
    for name in PASSED_ON {
        for value in request.headers.get_all(&name) {
            builder = builder.header(&name, value);
        }
    }
    if let Ok(from) = HeaderValue::from_str(request.from) {
        builder = builder.header(FORWARDED_HEADER, from);
    }
    let outgoing = builder
        .body(Full::new(request.body.clone()))
        .map_err(|e| exchange(&e))?;
    let answer = sender
        .send_request(outgoing)
        .await
        .map_err(|e| exchange(&e))?;
    let (parts, body) = answer.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| exchange(&e))?
        .to_bytes();
    let applied = parts
        .headers
        .get(APPLIED_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = parts.status;
    for name in [header::CONTENT_TYPE, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    Ok(Relayed { response, applied })
}
