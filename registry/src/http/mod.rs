//! The REST listener: hyper HTTP/1 (over TLS when configured, [`crate::tls`]) with bounded
//! request bodies, a per-request time limit and a connection limit, authentication
//! ([`crate::auth`]) before any handler, Confluent's content type on every answer, and
//! `/metrics`.

pub mod forward;
pub mod handlers;
pub mod router;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::auth::Authentication;
use crate::elector::Role;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::service::Service;
use crate::tls::{certificate_principal, ForwardTls, ServerTls};
use handlers::Reply;
use router::{Query, Route};

/// Confluent's media type, used for every JSON answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The largest request body taken; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How long one request may take, body read included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once; more wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 1024;

/// What a request handler shares.
pub struct App {
    /// The registry.
    pub service: Service,
    /// The metrics.
    pub metrics: Metrics,
    /// This instance's advertised URL, named in the requests it forwards to the writer.
    pub advertised_url: Option<String>,
    /// How long an answer to a forwarded write waits for this instance to have read the
    /// write (read-your-writes through a follower).
    pub forward_read_wait: Duration,
    /// How clients authenticate.
    pub auth: Authentication,
    /// The TLS client for forwarding to an `https://` writer (it presents this instance's
    /// certificate); `None` forwards over plain HTTP only.
    pub forward_tls: Option<ForwardTls>,
}

fn response(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    response(e.status, CONTENT_TYPE, e.body().to_string())
}

/// The 401 of `auth`, asking for basic credentials when that is the mode.
fn unauthorized_response(auth: &Authentication, e: &ApiError) -> Response<Full<Bytes>> {
    let mut answer = error_response(e);
    if auth.challenges_basic() {
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"schema-registry\""),
        );
    }
    answer
}

/// Answers one request on a connection whose verified client certificate names
/// `certificate` (the principal): never fails, never panics on input.
pub async fn serve_request(
    app: Arc<App>,
    certificate: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = Route::parse(req.uri().path());
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = app
            .auth
            .admit(&route, authorization, certificate.as_deref())
        {
            return unauthorized_response(&app.auth, &e);
        }
        if route == Route::Metrics && method == http::Method::GET {
            let text = app.service.read(|reg| app.metrics.render(reg));
            return response(200, "text/plain; version=0.0.4", text);
        }
        let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let error = if e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    ApiError {
                        status: 413,
                        code: 413,
                        message: format!("Request body larger than {MAX_BODY_BYTES} bytes"),
                    }
                } else {
                    ApiError::bad_request(format!("Cannot read the request body: {e}"))
                };
                return error_response(&error);
            }
        };
        let mut answer = match handlers::handle(&app.service, &method, &route, &query, &body).await
        {
            Ok(Reply::Json(v)) => response(200, CONTENT_TYPE, v.to_string()),
            Ok(Reply::Text(t)) => response(200, CONTENT_TYPE, t),
            Err(e) if e.is_not_writer() => {
                return forward_write(&app, e, &method, &uri, &headers, body).await;
            }
            Err(e) => error_response(&e),
        };
        stamp_applied(&app, &mut answer);
        answer
    })
    .await
    .unwrap_or_else(|_| error_response(&ApiError::store_timeout("the request took too long")));
    app.metrics
        .request(route.template(), method.as_str(), answer.status().as_u16());
    Ok(answer)
}

/// Says how far this instance's state has read the topic, for [`forward`]'s read-your-writes.
fn stamp_applied(app: &App, answer: &mut Response<Full<Bytes>>) {
    if let Ok(v) = header::HeaderValue::from_str(&app.service.store().applied().to_string()) {
        answer.headers_mut().insert(forward::APPLIED_HEADER, v);
    }
}

/// A write this instance may not do: forwarded to the writer when one is known (once: never a
/// request another instance already forwarded), else answered with `refused`.
async fn forward_write(
    app: &App,
    refused: ApiError,
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let Role::Follower { writer } = app.service.role() else {
        return error_response(&refused);
    };
    if let Some(by) = headers.get(forward::FORWARDED_HEADER) {
        let by = by.to_str().unwrap_or("another instance");
        return error_response(&ApiError::not_writer(format!(
            "This instance is not the writer (it sees {writer} as the writer) and does not \
             forward a request {by} already forwarded; retry shortly"
        )));
    }
    let request = forward::Forward {
        writer: &writer,
        tls: app.forward_tls.as_ref(),
        from: app.advertised_url.as_deref().unwrap_or_default(),
        method,
        uri,
        headers,
        body,
    };
    match forward::forward(request).await {
        Ok(relayed) => {
            if let Some(offset) = relayed.applied {
                let store = app.service.store();
                if !store.wait_applied(offset, app.forward_read_wait).await {
                    tracing::warn!(
                        offset,
                        applied = store.applied(),
                        "this instance has not read a forwarded write yet; answering anyway"
                    );
                }
            }
            relayed.response
        }
        Err(e) => error_response(&ApiError::not_writer(format!(
            "Error while forwarding the request to the writer: {e}"
        ))),
    }
}

/// Serves the REST API on `listener` (HTTPS with `tls`) until the future is dropped.
pub async fn serve(listener: TcpListener, app: Arc<App>, tls: Option<Arc<ServerTls>>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(app, None, stream, peer).await,
                Some(tls) => {
                    let accept = tls.acceptor().accept(stream);
                    match tokio::time::timeout(HEADER_TIMEOUT, accept).await {
                        Ok(Ok(stream)) => {
                            let certificate = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(<[_]>::first)
                                .and_then(certificate_principal)
                                .map(Arc::from);
                            serve_connection(app, certificate, stream, peer).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "no TLS handshake in time"),
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Serves HTTP/1 on one accepted connection (plain or TLS) until it closes.
async fn serve_connection<S>(
    app: Arc<App>,
    certificate: Option<Arc<str>>,
    stream: S,
    peer: std::net::SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| serve_request(app.clone(), certificate.clone(), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
