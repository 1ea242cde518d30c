//! Serving the API over HTTPS (HTTP/1.1) on a local address with the server's own certificate
//! ([`super::tls`]; client-go sends credentials only over TLS), with a shutdown that also ends
//! long-running watches.
//!
//! Like kube-apiserver (Go's HTTP server), it caps no connections: an idle keep-alive connection
//! costs a descriptor, nothing more. Clients keep idle connections pooled for 90 s, so a burst
//! of concurrent requests (every broker restarted at once writing each partition's ISR) leaves
//! hundreds open; a cap on connections would stop accepting until those idled out. Requests are
//! served one at a time under the state's lock anyway.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpListener;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::error::ApiError;
use super::router;
use super::tls::Identity;
use super::FakeApiServer;
use crate::kubeconfig::Endpoint;

/// A request answered later than this is logged: the server serves one at a time, so a slow
/// one stalls every client (the Leases' renewals included).
const SLOW_REQUEST: Duration = Duration::from_secs(1);

/// How long accepting pauses after it failed (out of descriptors: until some close).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A running HTTP server; dropping it stops it.
pub struct Served {
    addr: SocketAddr,
    tls: std::sync::Arc<Identity>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Served {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>`, the kubeconfig's server.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The URL and the CA certificate clients verify the server by, for a kubeconfig.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.url(),
            ca_pem: Some(self.tls.ca_pem.clone()),
        }
    }

    /// The CA certificate (DER), for clients that speak HTTPS themselves.
    pub fn ca_der(&self) -> &[u8] {
        &self.tls.ca_der
    }

    /// Stops accepting, closes every connection (watches included) and waits for that.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Raises this process's soft descriptor limit to its hard limit, as Go's runtime does for
/// kube-apiserver, so the connections it holds are bounded by the hard limit.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.maximum.is_some() && limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the file descriptor limit: {e}");
        }
    }
}

/// Binds `addr` and serves `server` on it over TLS with `tls`.
pub(super) async fn serve(
    server: FakeApiServer,
    addr: SocketAddr,
    tls: std::sync::Arc<Identity>,
) -> std::io::Result<Served> {
    raise_fd_limit();
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let acceptor = tls.acceptor.clone();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, _) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let server = server.clone();
            let acceptor = acceptor.clone();
            connections.spawn(async move {
                let stream = match acceptor.accept(stream).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!("TLS handshake: {e}");
                        return;
                    }
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let server = server.clone();
                        async move {
                            let started = std::time::Instant::now();
                            let what = format!("{} {}", req.method(), req.uri());
                            let (parts, body) = req.into_parts();
                            let resp = match body.collect().await {
                                Ok(b) => {
                                    router::handle(
                                        &server,
                                        hyper::Request::from_parts(parts, b.to_bytes()),
                                    )
                                    .await
                                }
                                Err(e) => router::error_for(&ApiError::bad_request(format!(
                                    "cannot read body: {e}"
                                ))),
                            };
                            let took = started.elapsed();
                            if took > SLOW_REQUEST {
                                tracing::warn!(
                                    "slow request: {what} answered {} after {took:?}",
                                    resp.status()
                                );
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    },
                );
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("connection: {e}");
                }
            });
            while connections.try_join_next().is_some() {}
        }
        connections.shutdown().await;
    });
    Ok(Served {
        addr,
        tls,
        stop,
        task: Some(task),
    })
}
