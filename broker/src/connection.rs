//! One client connection: frames are read and dispatched in arrival order while a writer task
//! sends the answers in the same order, so pipelined requests overlap their waiting (fsync, long
//! polls) but never reorder.

use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::broker::Broker;
use crate::handlers::{dispatch, Client, PendingResponse, Reply};
use crate::protocol::{read_frame, FrameError, RequestPrefix};
use kafka_protocol::messages::ApiKey;
use std::time::Instant;

/// Requests dispatched but not yet answered, per connection (Kafka clients keep at most a few
/// in flight; this bounds memory when one does not).
const PIPELINE_DEPTH: usize = 64;

/// Serves `stream` until the client disconnects or sends something that must close it.
pub async fn serve(broker: Arc<Broker>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let client = Arc::new(Client::new(
        stream
            .peer_addr()
            .map_or_else(|_| "/unknown".into(), |a| format!("/{}", a.ip()).into()),
    ));
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    broker.metrics.connections.inc();
    let _open = ConnectionGuard(broker.clone());
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::channel::<PendingResponse>(PIPELINE_DEPTH);
    let writer = tokio::spawn(write_responses(rx, write_half));
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let max = broker.config.socket_request_max_bytes;
    loop {
        let frame = match read_frame(&mut reader, max).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(FrameError::Io(error)) => {
                tracing::debug!(%peer, %error, "connection closed");
                break;
            }
            Err(error) => {
                tracing::warn!(%peer, %error, "closing connection");
                break;
            }
        };
        if let Some(pause) = client.paused_for() {
            // Over its quota: like Kafka's muted channel, nothing more is read meanwhile.
            tokio::time::sleep(pause).await;
        }
        let api = RequestPrefix::parse(&frame)
            .and_then(|p| ApiKey::try_from(p.api_key).ok())
            .map_or_else(|| "Unknown".to_string(), |api| format!("{api:?}"));
        let started = Instant::now();
        match dispatch(&broker, frame, &client) {
            Ok(pending) => {
                let metrics = broker.clone();
                let timed = async move {
                    let response = pending.await;
                    let m = &metrics.metrics;
                    m.requests.with_label_values(&[&api]).inc();
                    m.request_seconds
                        .with_label_values(&[&api])
                        .observe(started.elapsed().as_secs_f64());
                    response
                };
                if tx.send(Box::pin(timed)).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                broker.metrics.rejected_requests.inc();
                tracing::warn!(%peer, %error, "closing connection");
                break;
            }
        }
    }
    // Answer what was already accepted, then close.
    drop(tx);
    if let Err(error) = writer.await {
        tracing::debug!(%peer, %error, "writer task failed");
    }
}

async fn write_responses(
    mut rx: mpsc::Receiver<PendingResponse>,
    write_half: tokio::net::tcp::OwnedWriteHalf,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
    while let Some(pending) = rx.recv().await {
        match pending.await {
            Reply::Frame(frame) => {
                if writer.write_all(&frame).await.is_err() {
                    return;
                }
            }
            Reply::Nothing => {}
            Reply::Close => break,
        }
        // Flush when nothing else is ready, so back-to-back answers share a syscall.
        if rx.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
}

/// Decrements the open-connection gauge however the connection ends.
struct ConnectionGuard(Arc<Broker>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.metrics.connections.dec();
    }
}
