//! The accept loop: every listener's socket, a connection limit, a task per connection,
//! background maintenance, and a graceful shutdown that lets connections finish and flushes
//! every partition.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::connection;
use crate::security::runtime::{Gate, ListenerRuntime};

/// A bound listener socket and how its connections are secured.
pub struct Bound {
    /// The socket.
    pub socket: TcpListener,
    /// Its TLS and SASL settings.
    pub runtime: Arc<ListenerRuntime>,
}

/// How long shutdown lets open connections finish their requests before closing them, as
/// Kafka closes its sockets: clients keep connections open, so the whole grace is usually
/// spent, and it only needs to cover a request already being answered (an fsync, a fetch's
/// long poll), not a client's next one. A rolling restart pays it once per broker.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How often high-watermark and recovery-point checkpoints are written.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Serves Kafka clients on `listener`, as the configuration's inter-broker listener without
/// TLS or SASL, until `shutdown` resolves (tests serve a socket they bound themselves).
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let runtime = Arc::new(ListenerRuntime::plaintext(
        broker.config.listeners.inter_broker().clone(),
    ));
    let gate = Gate {
        unauthenticated: Arc::new(Semaphore::new(1)),
        timeout: Duration::from_secs(10),
    };
    let bound = vec![Bound {
        socket: listener,
        runtime,
    }];
    serve(broker, bound, gate, shutdown).await;
}

/// Serves Kafka clients on every `bound` listener until `shutdown` resolves.
pub async fn serve(
    broker: Arc<Broker>,
    bound: Vec<Bound>,
    gate: Gate,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let mut connections = JoinSet::new();
    // Held in a set so it ends with this future even when the future is dropped unfinished.
    let mut maintenance = JoinSet::new();
    maintenance.spawn(maintain(broker.clone()));
    if let Some(tiered) = &broker.tiered {
        maintenance.spawn(crate::tiered::run(tiered.clone(), Arc::downgrade(&broker)));
    }
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        // Accepting is cancel-safe: the sockets not chosen lose nothing.
        let accepts = bound.iter().map(|b| {
            let runtime = b.runtime.clone();
            b.socket.accept().map(move |r| (r, runtime)).boxed()
        });
        let (accepted, runtime) = tokio::select! {
            _ = &mut shutdown => break,
            (accepted, _, _) = futures::future::select_all(accepts) => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                buffer_sizes(&stream, &broker.config);
                let gate = gate.clone();
                let ip = peer.ip().to_canonical().to_string();
                let now = crate::clock::now_ms();
                let throttle_ms = broker.quotas.record_connection(&ip, now);
                let broker = broker.clone();
                connections.spawn(async move {
                    if throttle_ms > 0 {
                        // Over its connection_creation_rate: closed unserved after the
                        // throttle time, as Kafka does, so the client backs off. It gives
                        // its connection slot back at once, so it cannot crowd others out.
                        drop(permit);
                        tracing::info!(%ip, throttle_ms, "connection over its creation rate quota");
                        let pause = u64::try_from(throttle_ms).unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                        drop(stream);
                    } else {
                        connection::accept(broker, stream, peer, runtime, gate).await;
                        drop(permit);
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    tracing::info!(open = connections.len(), "shutting down");
    drop(bound);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    maintenance.abort_all();
    broker.flush_all();
    tracing::info!("shutdown complete");
}

/// Applies `socket.send.buffer.bytes` / `socket.receive.buffer.bytes` when set (positive);
/// a failure leaves the kernel's sizes, with a log line.
fn buffer_sizes(stream: &tokio::net::TcpStream, config: &crate::config::BrokerConfig) {
    let socket = socket2::SockRef::from(stream);
    let sizes = [
        ("socket.send.buffer.bytes", config.socket_send_buffer_bytes),
        (
            "socket.receive.buffer.bytes",
            config.socket_receive_buffer_bytes,
        ),
    ];
    for (key, size) in sizes {
        let Ok(bytes) = usize::try_from(size) else {
            continue;
        };
        if bytes == 0 {
            continue;
        }
        let set = if key == "socket.send.buffer.bytes" {
            socket.set_send_buffer_size(bytes)
        } else {
            socket.set_recv_buffer_size(bytes)
        };
        if let Err(error) = set {
            tracing::warn!(key, bytes, %error, "cannot size the socket buffer");
        }
    }
}

/// Periodic work: retention, compaction, age-based segment rolls and checkpoints.
async fn maintain(broker: Arc<Broker>) {
    let every = |ms: u64| tokio::time::interval(Duration::from_millis(ms.max(10)));
    let mut retention = every(broker.config.retention_check_interval_ms);
    // Like Kafka's cleaner, compaction looks for work on its own schedule
    // (log.cleaner.backoff.ms): clients expect a compacted topic cleaned within seconds of a
    // segment roll, not at the next retention check.
    let mut cleaner = every(broker.config.cleaner_backoff_ms);
    let mut checkpoint = tokio::time::interval(CHECKPOINT_INTERVAL);
    loop {
        tokio::select! {
            _ = retention.tick() => {
                let now = crate::clock::now_ms();
                let broker = broker.clone();
                // File deletion and fsyncs block: keep them off the async workers.
                let _ = tokio::task::spawn_blocking(move || {
                    let expiration = broker.config.producer_id_expiration_ms;
                    for_each_partition(&broker, |p| {
                        p.expire_producers(now, expiration);
                        p.enforce_retention(now)
                    });
                })
                .await;
            }
            _ = cleaner.tick() => {
                let now = crate::clock::now_ms();
                let broker = broker.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for_each_partition(&broker, |p| p.compact(now).map(|_| ()));
                })
                .await;
            }
            _ = checkpoint.tick() => {
                // Segments rolled by age and writes past flush.ms or flush.messages.
                for partition in broker.replicas.all() {
                    broker.flusher.after_write(&partition, partition.flush_due());
                }
                let broker = broker.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for_each_partition(&broker, |p| p.checkpoint());
                })
                .await;
            }
        }
    }
}

fn for_each_partition(
    broker: &Broker,
    task: impl Fn(&crate::partition::Partition) -> Result<(), crate::storage::StorageError>,
) {
    for partition in broker.replicas.all() {
        if let Err(error) = task(&partition) {
            tracing::warn!(?partition, %error, "partition maintenance failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, Flags};

    #[tokio::test]
    async fn socket_buffer_settings_size_accepted_connections_and_minus_one_keeps_the_kernels() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let socket = socket2::SockRef::from(&accepted);
        let kernel_send = socket.send_buffer_size().unwrap();
        let kept = BrokerConfig::resolve(Flags::default()).unwrap();
        buffer_sizes(&accepted, &kept);
        assert_eq!(
            socket.send_buffer_size().unwrap(),
            kernel_send,
            "-1: untouched"
        );
        let sized = BrokerConfig::resolve(Flags {
            socket_send_buffer_bytes: Some(32_768),
            socket_receive_buffer_bytes: Some(65_536),
            ..Flags::default()
        })
        .unwrap();
        buffer_sizes(&accepted, &sized);
        // Linux doubles what it is given, for its bookkeeping.
        assert_eq!(socket.send_buffer_size().unwrap(), 65_536);
        assert_eq!(socket.recv_buffer_size().unwrap(), 131_072);
    }
}
