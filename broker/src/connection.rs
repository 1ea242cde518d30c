//! One client connection: the TLS handshake and SASL exchange its listener asks for, then
//! frames read and dispatched in arrival order while a writer task sends the answers in the
//! same order, so pipelined requests overlap their waiting (fsync, long polls) but never
//! reorder. A request whose effects wait for something before they are applied (a verified
//! transactional produce) is finished before the next frame is dispatched, as Kafka mutes a
//! connection while it handles a request.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant as Deadline;

use crate::broker::Broker;
use crate::frame_parts::{cork, write_parts, SendsFiles};
use crate::handlers::{dispatch, Client, Dispatched, PendingResponse, Reply};
use crate::protocol::{read_sized, FrameError, RequestPrefix};
use crate::security::runtime::{Gate, ListenerRuntime, MAX_UNAUTHENTICATED_FRAME};
use crate::security::sasl::session::{Action, SaslSession};
use crate::security::sasl::Stores;
use crate::security::{x509, Principal};
use kafka_protocol::messages::ApiKey;
use std::time::Instant;

/// Requests dispatched but not yet answered, per connection (Kafka clients keep at most a few
/// in flight; this bounds memory when one does not).
const PIPELINE_DEPTH: usize = 64;
/// How long a connection refused by SASL stays open after its answer (Kafka's
/// `connection.failed.authentication.delay.ms` default).
const FAILED_AUTHENTICATION_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// How a connection authenticates before it is served.
struct Admission {
    /// Its listener.
    runtime: Arc<ListenerRuntime>,
    /// Whether it is plain TCP: bytes written are the bytes sent, so record sets can be sent
    /// from their segment files (not TLS, which encrypts them).
    plaintext: bool,
    /// Who it is so far: from its certificate, or ANONYMOUS.
    principal: Principal,
    /// Held while it has not authenticated (`max.unauthenticated.connections`).
    permit: Option<OwnedSemaphorePermit>,
    /// When it must have authenticated.
    deadline: Deadline,
}

/// Secures `stream` as its listener asks (TLS handshake, client certificate) and serves it.
/// Whatever goes wrong here closes this connection only, with a log line.
pub async fn accept(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    runtime: Arc<ListenerRuntime>,
    gate: Gate,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let listener = runtime.listener.name.clone();
    let deadline = Deadline::now() + gate.timeout;
    let permit = if runtime.authenticates() {
        match gate.unauthenticated.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                broker.metrics.rejected_requests.inc();
                tracing::warn!(%peer, listener, "too many connections still authenticating (max.unauthenticated.connections); closing");
                return;
            }
        }
    } else {
        None
    };
    let Some(tls) = &runtime.tls else {
        let admission = Admission {
            runtime: runtime.clone(),
            plaintext: true,
            principal: Principal::anonymous(),
            permit,
            deadline,
        };
        let (reader, writer) = stream.into_split();
        serve(broker, reader, writer, peer, admission).await;
        return;
    };
    let accept = tls
        .acceptor()
        .accept(crate::security::tls::buffered(stream));
    let stream = match tokio::time::timeout_at(deadline, accept).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::warn!(%peer, listener, %error, "TLS handshake failed; closing the connection");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, listener, "TLS handshake not completed in time (authentication.timeout.ms); closing");
            return;
        }
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| x509::subject_dn(cert.as_ref()));
    let principal = match certificate {
        None => Principal::anonymous(),
        Some(None) => {
            tracing::warn!(%peer, listener, "client certificate subject does not parse; closing");
            return;
        }
        Some(Some(dn)) => match tls.mapper.map(&dn) {
            Some(name) => Principal::user(name),
            None => {
                tracing::warn!(%peer, listener, dn, "no ssl.principal.mapping.rules rule matches the client certificate; closing");
                return;
            }
        },
    };
    // Without SASL the handshake was the authentication.
    let permit = if runtime.sasl.is_some() { permit } else { None };
    if runtime.sasl.is_none() {
        tracing::debug!(%peer, listener, %principal, "TLS client authenticated");
    }
    let admission = Admission {
        runtime: runtime.clone(),
        plaintext: false,
        principal,
        permit,
        deadline,
    };
    let (reader, writer) = tokio::io::split(stream);
    serve(broker, reader, writer, peer, admission).await;
}

/// Serves one connection until the client disconnects or sends something that must close it.
async fn serve<R, W>(
    broker: Arc<Broker>,
    read_half: R,
    write_half: W,
    peer_addr: SocketAddr,
    admission: Admission,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + SendsFiles + Unpin + Send + 'static,
{
    let mut session = Session::open(broker, peer_addr, admission);
    session.broker.metrics.connections.inc();
    let _open = ConnectionGuard(session.broker.clone());
    let (tx, rx) = mpsc::channel::<PendingResponse>(PIPELINE_DEPTH);
    let sent_from_files = session.broker.metrics.fetch_sendfile_bytes.clone();
    let writer = tokio::spawn(write_responses(rx, write_half, sent_from_files));
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    session.read_until_closed(&mut reader, &tx).await;
    // Answer what was already accepted, then close.
    drop(tx);
    if let Err(error) = writer.await {
        tracing::debug!(peer = %session.peer, %error, "writer task failed");
    }
    // Share sessions live as long as their connection: their members' records go back.
    crate::handlers::end_share_sessions(&session.broker, session.client.connection_id()).await;
}

/// One served connection: who it is, how far its authentication is, and its limits.
struct Session {
    broker: Arc<Broker>,
    /// The client its requests are dispatched for.
    client: Arc<Client>,
    /// The peer's address, for log lines.
    peer: String,
    /// Its listener's name, for log lines.
    listener: String,
    /// The SASL exchange its listener asks for, if any.
    sasl: Option<SaslSession>,
    /// Held while it has not authenticated (`max.unauthenticated.connections`).
    permit: Option<OwnedSemaphorePermit>,
    /// When it must have authenticated.
    deadline: Deadline,
    /// The largest request it may send (`socket.request.max.bytes`).
    max_frame: usize,
}

/// What becomes of a frame once the SASL exchange has seen it.
enum Flow {
    /// An ordinary request: dispatch it.
    Dispatch,
    /// The exchange answered it: read on.
    Answered,
    /// Close the connection.
    Close,
}

impl Session {
    /// The session of a connection admitted as `admission` says, with its client's principal.
    fn open(broker: Arc<Broker>, peer_addr: SocketAddr, admission: Admission) -> Session {
        let Admission {
            runtime,
            plaintext,
            principal,
            permit,
            deadline,
        } = admission;
        let listener = runtime.listener.name.clone();
        let client = Arc::new(
            Client::on_listener(
                format!("/{}", peer_addr.ip()).into(),
                Arc::from(listener.as_str()),
            )
            .sending_files(plaintext),
        );
        client.set_principal(principal);
        let max_frame = broker.config.socket_request_max_bytes;
        Session {
            broker,
            client,
            peer: peer_addr.to_string(),
            listener,
            sasl: runtime.sasl.clone().map(SaslSession::new),
            permit,
            deadline,
            max_frame,
        }
    }

    /// Reads frames and dispatches them in arrival order, sending their answers to `tx`,
    /// until the client disconnects or sends something that must close the connection.
    async fn read_until_closed<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        tx: &mpsc::Sender<PendingResponse>,
    ) {
        loop {
            let raw_token = self
                .sasl
                .as_ref()
                .is_some_and(SaslSession::expects_raw_token);
            let Some(frame) = self.next_frame(reader, raw_token).await else {
                return;
            };
            match self.authenticate(&frame, raw_token, tx).await {
                Flow::Dispatch => {}
                Flow::Answered => continue,
                Flow::Close => return,
            }
            if let Some(pause) = self.client.paused_for() {
                // Over its quota: like Kafka's muted channel, nothing more is read meanwhile.
                tokio::time::sleep(pause).await;
            }
            if !self.dispatch_request(frame, tx).await {
                return;
            }
        }
    }

    /// The next frame, or `None` (logged) when the client went away, sent a frame that must
    /// close the connection, or did not authenticate in time.
    async fn next_frame<R: AsyncRead + Unpin>(
        &self,
        reader: &mut R,
        raw_token: bool,
    ) -> Option<Bytes> {
        let (peer, listener) = (&self.peer, &self.listener);
        let authenticated = self.sasl.as_ref().is_none_or(SaslSession::is_authenticated);
        let (min, max) = frame_bounds(authenticated, raw_token, self.max_frame);
        let read = if authenticated {
            read_sized(reader, min, max).await
        } else {
            let read = read_sized(reader, min, max);
            match tokio::time::timeout_at(self.deadline, read).await {
                Ok(read) => read,
                Err(_) => {
                    tracing::warn!(%peer, listener, "SASL authentication not completed in time (authentication.timeout.ms); closing");
                    return None;
                }
            }
        };
        match read {
            Ok(Some(frame)) => Some(frame),
            Ok(None) => None,
            Err(FrameError::Io(error)) => {
                tracing::debug!(%peer, %error, "connection closed");
                None
            }
            Err(error) => {
                tracing::warn!(%peer, listener, %error, "closing connection");
                None
            }
        }
    }

    /// Passes `frame` through the listener's SASL exchange, if it has one: records a
    /// completed authentication and sends the exchange's own answers.
    async fn authenticate(
        &mut self,
        frame: &Bytes,
        raw_token: bool,
        tx: &mpsc::Sender<PendingResponse>,
    ) -> Flow {
        let Some(session) = self.sasl.as_mut() else {
            return Flow::Dispatch;
        };
        let now = crate::clock::now_ms();
        let stores = Stores::new(&self.broker.scram, Some(&self.broker.tokens));
        let step = if raw_token {
            session.on_raw_token(frame, stores, now)
        } else {
            session.on_request(frame, stores, now)
        };
        if let Some(principal) = step.authenticated {
            let (peer, listener) = (&self.peer, &self.listener);
            tracing::info!(%peer, listener, %principal, "SASL authentication succeeded");
            self.client.set_principal(principal);
            self.permit.take();
        }
        match step.action {
            Action::Dispatch => Flow::Dispatch,
            Action::Reply(answer) => {
                if tx.send(answered(answer)).await.is_err() {
                    return Flow::Close;
                }
                Flow::Answered
            }
            Action::Close(answer, reason) => {
                self.refuse(answer, reason, tx).await;
                Flow::Close
            }
        }
    }

    /// Closes an exchange SASL refused: counts and logs it, and sends its answer, if any,
    /// before a pause.
    async fn refuse(
        &self,
        answer: Option<Bytes>,
        reason: String,
        tx: &mpsc::Sender<PendingResponse>,
    ) {
        let (peer, listener) = (&self.peer, &self.listener);
        self.broker.metrics.rejected_requests.inc();
        tracing::warn!(%peer, listener, principal = %self.client.principal(), reason, "closing connection");
        if let Some(answer) = answer {
            let _ = tx.send(answered(answer)).await;
            // Kafka's connection.failed.authentication.delay.ms: a client
            // retrying bad credentials in a loop is slowed down.
            tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
        }
    }

    /// Dispatches `frame`, finishing its ordered effects before it returns, and queues its
    /// answer, timed for the request metrics; false when the connection must close.
    async fn dispatch_request(&self, frame: Bytes, tx: &mpsc::Sender<PendingResponse>) -> bool {
        let api = api_label(&frame);
        let started = Instant::now();
        match dispatch(&self.broker, frame, &self.client) {
            Ok(dispatched) => {
                let pending = match dispatched {
                    Dispatched::Applied(pending) => pending,
                    Dispatched::Ordered(ordered) => ordered.await,
                };
                let times = Times {
                    started,
                    local_done: Instant::now(),
                };
                let timed = timed(self.broker.clone(), api, times, pending);
                tx.send(timed).await.is_ok()
            }
            Err(error) => {
                self.broker.metrics.rejected_requests.inc();
                tracing::warn!(peer = %self.peer, %error, "closing connection");
                false
            }
        }
    }
}

/// The smallest and largest frame to accept: before authentication at most
/// [`MAX_UNAUTHENTICATED_FRAME`], and a raw SASL token may be shorter than a request header.
fn frame_bounds(authenticated: bool, raw_token: bool, max: usize) -> (usize, usize) {
    if authenticated {
        (8, max)
    } else {
        let min = if raw_token { 0 } else { 8 };
        (min, MAX_UNAUTHENTICATED_FRAME.min(max))
    }
}

/// The request metrics' label for `frame`: its API's name, or "Unknown".
fn api_label(frame: &Bytes) -> String {
    RequestPrefix::parse(frame)
        .and_then(|p| ApiKey::try_from(p.api_key).ok())
        .map_or_else(|| "Unknown".to_string(), |api| format!("{api:?}"))
}

/// When a request's phases ended, for the request metrics.
#[derive(Debug, Clone, Copy)]
struct Times {
    /// Its frame was read and dispatch began.
    started: Instant,
    /// Dispatch returned what the response waits on.
    local_done: Instant,
}

/// `pending`, counting the request under `api` and observing its time, whole and by phase,
/// once answered. The writer polls responses in order, so this future first runs when every
/// response before it was written: the time until then is `queued`, the rest `remote`.
fn timed(
    broker: Arc<Broker>,
    api: String,
    times: Times,
    pending: PendingResponse,
) -> PendingResponse {
    Box::pin(async move {
        let reached = Instant::now();
        let response = pending.await;
        let now = Instant::now();
        let m = &broker.metrics;
        m.requests.with_label_values(&[&api]).inc();
        m.request_seconds
            .with_label_values(&[&api])
            .observe((now - times.started).as_secs_f64());
        let phases = [
            ("local", times.local_done - times.started),
            (
                "queued",
                reached.saturating_duration_since(times.local_done),
            ),
            ("remote", now - reached),
        ];
        for (phase, took) in phases {
            m.request_phase_seconds
                .with_label_values(&[&api, phase])
                .observe(took.as_secs_f64());
        }
        response
    })
}

/// An answer that is ready now.
fn answered(frame: Bytes) -> PendingResponse {
    futures::future::ready(Reply::Frame(frame)).boxed()
}

/// Writes the answers in the order they were queued; a Fetch response's record sets go from
/// their segment files when `write_half` is plain TCP (their bytes counted in
/// `sent_from_files`).
async fn write_responses<W: AsyncWrite + SendsFiles + Unpin>(
    mut rx: mpsc::Receiver<PendingResponse>,
    write_half: W,
    sent_from_files: prometheus::IntCounter,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
    // Set while responses sent from files are written, until the next flush.
    let mut corked = false;
    while let Some(pending) = rx.recv().await {
        match pending.await {
            Reply::Frame(frame) => {
                if writer.write_all(&frame).await.is_err() {
                    return;
                }
            }
            Reply::Parts(parts) => {
                corked = corked || cork(writer.get_ref(), true);
                if let Err(error) = write_parts(&mut writer, &parts, &sent_from_files).await {
                    tracing::debug!(%error, "cannot send a response; closing the connection");
                    return;
                }
            }
            Reply::Nothing => {}
            Reply::Close => break,
        }
        // Flush when nothing else is ready, so back-to-back answers share a syscall.
        if rx.is_empty() {
            if writer.flush().await.is_err() {
                return;
            }
            if corked {
                cork(writer.get_ref(), false);
                corked = false;
            }
        }
    }
    let _ = writer.flush().await;
    if corked {
        cork(writer.get_ref(), false);
    }
    // A TLS stream says close_notify; a TCP one closes its write side.
    let _ = writer.shutdown().await;
}

/// Decrements the open-connection gauge however the connection ends.
struct ConnectionGuard(Arc<Broker>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.metrics.connections.dec();
    }
}
