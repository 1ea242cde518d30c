//! WATCH: a stream of ADDED/MODIFIED/DELETED events from a resourceVersion (synthetic ADDED
//! events for the current state when none is given, or with `sendInitialEvents`), BOOKMARKs
//! when asked for, selector transitions seen as ADDED/DELETED, and an `ERROR` event with a
//! 410 Expired Status when the history no longer reaches the requested resourceVersion.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::convert::to_served;
use super::error::ApiError;
use super::history::{Change, EventType};
use super::rest::{ListOptions, Target};
use super::state::State;
use super::table::{self, Include};

/// A watch request.
pub(crate) struct WatchRequest {
    pub(crate) target: Target,
    pub(crate) list: ListOptions,
    pub(crate) bookmarks: bool,
    pub(crate) send_initial_events: Option<bool>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) bookmark_interval: Duration,
    /// `Some` when the client asked for Table rows.
    pub(crate) table: Option<Include>,
}

/// What the stream task needs.
struct Stream {
    req: WatchRequest,
    rx: broadcast::Receiver<Arc<Change>>,
    tx: mpsc::Sender<Bytes>,
    /// Resources whose events are held back for now (a fault tests inject).
    held: tokio::sync::watch::Receiver<BTreeSet<String>>,
    /// Every change up to this resourceVersion has been considered.
    seen: u64,
    headers_sent: bool,
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// An `ERROR` watch event carrying `e` as a Status.
pub(crate) fn error_event(e: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": e.status()}))
}

impl Stream {
    fn wanted(&self, obj: &Value) -> bool {
        self.req.list.matches(&self.req.target, obj)
    }

    fn event(&mut self, kind: &str, obj: Value) -> Bytes {
        let object = match self.req.table {
            Some(include) => {
                let t = &self.req.target;
                let headers = !self.headers_sent;
                self.headers_sent = true;
                table::table(&t.rt, &t.version, &[obj], json!({}), include, headers)
            }
            None => obj,
        };
        line(&json!({"type": kind, "object": object}))
    }

    fn bookmark(&self, initial_events_end: bool) -> Bytes {
        let t = &self.req.target;
        let mut meta = json!({"resourceVersion": self.seen.to_string()});
        if initial_events_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(&json!({"type": "BOOKMARK", "object": {
            "kind": t.rt.kind, "apiVersion": t.api_version(), "metadata": meta,
        }}))
    }

    /// The event a change produces for this watch, if any.
    fn translate(&mut self, change: &Change) -> Option<Bytes> {
        let t = &self.req.target;
        if change.key.resource != t.rt.storage
            || (!t.namespace.is_empty() && change.key.namespace != t.namespace)
        {
            return None;
        }
        let now = to_served(&t.rt, &t.version, &change.object);
        let was = change
            .previous
            .as_ref()
            .map(|p| to_served(&t.rt, &t.version, p))
            .is_some_and(|p| self.wanted(&p));
        let is = self.wanted(&now);
        let kind = match (change.kind, was, is) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            (EventType::Deleted, _, true) => "DELETED",
            _ => return None,
        };
        Some(self.event(kind, now))
    }

    async fn send(&self, b: Bytes) -> bool {
        self.tx.send(b).await.is_ok()
    }

    /// Waits while a test holds this watch's resource back.
    async fn unheld(&mut self) {
        let resource = self.req.target.rt.storage.clone();
        // An error means the server is gone; the stream ends with its channel.
        let _ = self.held.wait_for(|held| !held.contains(&resource)).await;
    }

    async fn run(mut self, initial: Vec<Bytes>) {
        for b in initial {
            if !self.send(b).await {
                return;
            }
        }
        let mut ticker = tokio::time::interval(self.req.bookmark_interval);
        ticker.tick().await;
        let deadline = self.req.timeout.map(|t| tokio::time::Instant::now() + t);
        let expired = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        loop {
            tokio::select! {
                () = &mut expired => return,
                _ = ticker.tick(), if self.req.bookmarks => {
                    let b = self.bookmark(false);
                    if !self.send(b).await { return; }
                }
                () = self.tx.closed() => return,
                got = self.rx.recv() => match got {
                    Ok(change) => {
                        if change.rv <= self.seen {
                            continue;
                        }
                        self.seen = change.rv;
                        if let Some(b) = self.translate(&change) {
                            self.unheld().await;
                            if !self.send(b).await { return; }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::expired("too old resource version: the watch fell behind; re-list and watch again");
                        let _ = self.send(error_event(&e)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Starts a watch under the state lock; the returned receiver yields the stream's lines.
pub(crate) fn start(st: &State, req: WatchRequest) -> mpsc::Receiver<Bytes> {
    let (tx, out) = mpsc::channel(256);
    let rx = st.store.history.subscribe();
    let held = st.faults.held_watches.subscribe();
    let current = st.store.rv();
    let requested = req
        .list
        .resource_version
        .as_deref()
        .filter(|v| *v != "0")
        .map(str::parse::<u64>);
    let mut stream = Stream {
        req,
        rx,
        tx,
        held,
        seen: current,
        headers_sent: false,
    };
    let mut initial = Vec::new();
    let send_initial = stream
        .req
        .send_initial_events
        .unwrap_or(!matches!(requested, Some(Ok(_))));
    match requested {
        Some(Err(_)) => {
            let e = ApiError::bad_request("invalid resourceVersion");
            initial.push(error_event(&e));
            drop(stream.rx);
            tokio::spawn(async move {
                for b in initial {
                    let _ = stream.tx.send(b).await;
                }
            });
            return out;
        }
        Some(Ok(rv)) if !send_initial => match st.store.history.since(rv) {
            Err(compacted) => {
                let e = ApiError::expired(format!("too old resource version: {rv} ({compacted})"));
                tokio::spawn(async move {
                    let _ = stream.tx.send(error_event(&e)).await;
                });
                return out;
            }
            Ok(changes) => {
                stream.seen = rv;
                for c in &changes {
                    if let Some(b) = stream.translate(c) {
                        initial.push(b);
                    }
                }
                stream.seen = current;
            }
        },
        _ => {
            let t = stream.req.target.clone();
            let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
            let objs: Vec<Value> = st
                .store
                .scan(&t.rt.storage, ns)
                .map(|(_, o)| to_served(&t.rt, &t.version, o))
                .filter(|o| stream.wanted(o))
                .collect();
            for o in objs {
                let b = stream.event("ADDED", o);
                initial.push(b);
            }
            if stream.req.send_initial_events == Some(true) {
                initial.push(stream.bookmark(true));
            }
        }
    }
    tokio::spawn(stream.run(initial));
    out
}
