//! The broker's HTTP endpoint for operators: `/metrics` (Prometheus text), `/healthz` (the
//! process serves) and `/readyz` (it serves its partitions). A deliberately small HTTP/1.1
//! responder: one GET per connection, bounded request size, no keep-alive.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::broker::Broker;

/// Largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the HTTP endpoint until the task is aborted.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer(broker.clone(), stream));
            }
            Err(error) => {
                tracing::warn!(%error, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(broker: Arc<Broker>, mut stream: TcpStream) {
    let path = match tokio::time::timeout(READ_TIMEOUT, read_path(&mut stream)).await {
        Ok(Some(path)) => path,
        _ => return,
    };
    let (status, content_type, body) = route(&broker, &path);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The response for a GET of `path`.
fn route(broker: &Broker, path: &str) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match path.split('?').next().unwrap_or("") {
        "/metrics" => {
            broker.refresh_gauges();
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                broker.metrics.render(),
            )
        }
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" => {
            if broker.is_ready() {
                ("200 OK", TEXT, "ready\n".into())
            } else {
                ("503 Service Unavailable", TEXT, "not ready\n".into())
            }
        }
        _ => ("404 Not Found", TEXT, "not found\n".into()),
    }
}

/// Reads the request head and returns the path of a GET, or None for anything else.
async fn read_path(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let line = std::str::from_utf8(&head).ok()?.lines().next()?;
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) => Some(path.to_string()),
        _ => None,
    }
}
