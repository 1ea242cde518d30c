//! The REST listener: hyper HTTP/1 with bounded request bodies, a per-request time limit and a
//! connection limit, Confluent's content type on every answer, and `/metrics`.

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
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::service::Service;
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

/// Answers one request: never fails, never panics on input.
pub async fn serve_request(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = Route::parse(req.uri().path());
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
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
        match handlers::handle(&app.service, &method, &route, &query, &body).await {
            Ok(Reply::Json(v)) => response(200, CONTENT_TYPE, v.to_string()),
            Ok(Reply::Text(t)) => response(200, CONTENT_TYPE, t),
            Err(e) => error_response(&e),
        }
    })
    .await
    .unwrap_or_else(|_| error_response(&ApiError::store_timeout("the request took too long")));
    app.metrics
        .request(route.template(), method.as_str(), answer.status().as_u16());
    Ok(answer)
}

/// Serves the REST API on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, app: Arc<App>) {
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
        tokio::spawn(async move {
            let service = service_fn(move |req| serve_request(app.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
}
