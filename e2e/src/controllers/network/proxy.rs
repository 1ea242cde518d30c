//! The socket side of the kube-proxy stand-in: one TCP listener per [`Route`], each accepted
//! connection spliced to one backend picked round robin (`copy_bidirectional`, so a
//! half-close travels through). A connection arriving while its Service port has no ready
//! endpoint, or whose endpoint refuses it, is reset, as kube-proxy's REJECT rule refuses it.
//! Listeners are bound and closed as the routes come and go; a changed set of endpoints is
//! handed to the running listener and applies to its next connections, while established
//! connections carry on (as conntrack keeps them).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::routes::Route;

/// Pause after a failed accept (out of file descriptors, say) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// One bound listener.
struct Listener {
    /// The route its accept loop reads for each connection.
    route: watch::Sender<Route>,
    /// The accept loop, which owns the socket: aborting it closes the socket.
    task: JoinHandle<()>,
}

impl Listener {
    /// Closes the socket and waits until it is closed.
    async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The listeners; dropping it closes them all and ends every forwarded connection.
pub(crate) struct Proxy {
    listeners: BTreeMap<SocketAddr, Listener>,
    /// Addresses that would not bind, warned about once until they bind or are not wanted.
    unbound: BTreeSet<SocketAddr>,
    /// Dropped with the proxy: every connection task watches it and ends.
    stop: watch::Sender<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for l in self.listeners.values() {
            l.task.abort();
        }
    }
}

impl Proxy {
    /// No listeners yet.
    pub(crate) fn new() -> Proxy {
        Proxy {
            listeners: BTreeMap::new(),
            unbound: BTreeSet::new(),
            stop: watch::Sender::new(()),
        }
    }

    /// Makes the listeners those of `routes`: closes the ones no longer wanted (closed when
    /// this returns), gives the others their current endpoints, binds the new ones (an
    /// address that will not bind is tried again at the next call).
    pub(crate) async fn apply(&mut self, routes: BTreeMap<SocketAddr, Route>) {
        let gone: Vec<SocketAddr> = self
            .listeners
            .keys()
            .filter(|addr| !routes.contains_key(addr))
            .copied()
            .collect();
        for addr in gone {
            if let Some(l) = self.listeners.remove(&addr) {
                tracing::debug!("service proxy: closing {addr}");
                l.close().await;
            }
        }
        self.unbound.retain(|addr| routes.contains_key(addr));
        for (addr, route) in routes {
            if let Some(l) = self.listeners.get(&addr) {
                l.route.send_if_modified(|current| {
                    let changed = *current != route;
                    *current = route;
                    changed
                });
                continue;
            }
            match TcpListener::bind(addr).await {
                Ok(socket) => {
                    tracing::debug!("service proxy: {} listens on {addr}", route.service);
                    self.unbound.remove(&addr);
                    let (tx, rx) = watch::channel(route);
                    let task = tokio::spawn(accept_loop(socket, rx, self.stop.subscribe()));
                    self.listeners.insert(addr, Listener { route: tx, task });
                }
                Err(e) if self.unbound.insert(addr) => {
                    tracing::warn!(
                        "service proxy: cannot listen on {addr} for {}: {e}; retrying",
                        route.service
                    );
                }
                Err(_) => {}
            }
        }
    }

    /// Closes every listener, waiting until they are closed; forwarded connections end as
    /// the proxy is dropped.
    pub(crate) async fn close(mut self) {
        for (_, l) in std::mem::take(&mut self.listeners) {
            l.close().await;
        }
    }
}

/// Accepts connections until aborted, sending each to the next backend of the route.
async fn accept_loop(
    socket: TcpListener,
    route: watch::Receiver<Route>,
    stop: watch::Receiver<()>,
) {
    let mut next: usize = 0;
    loop {
        let client = match socket.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::debug!("service proxy: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (backend, service) = {
            let r = route.borrow();
            let backend = (!r.backends.is_empty()).then(|| r.backends[next % r.backends.len()]);
            (backend, r.service.clone())
        };
        next = next.wrapping_add(1);
        match backend {
            Some(backend) => {
                tokio::spawn(forward(client, backend, service, stop.clone()));
            }
            None => {
                tracing::debug!("service proxy: {service} has no ready endpoint; refusing");
                reset(&client);
            }
        }
    }
}

/// Splices `client` to `backend` until both directions are done or the proxy stops.
async fn forward(
    client: TcpStream,
    backend: SocketAddr,
    service: String,
    mut stop: watch::Receiver<()>,
) {
    let mut upstream = match TcpStream::connect(backend).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("service proxy: {service}: endpoint {backend} refused: {e}");
            reset(&client);
            return;
        }
    };
    let mut client = client;
    // Small writes (Kafka requests) go through at once, as they would without the proxy.
    for s in [&client, &upstream] {
        if let Err(e) = s.set_nodelay(true) {
            tracing::debug!("service proxy: {service}: TCP_NODELAY: {e}");
        }
    }
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(e) = r {
                tracing::debug!("service proxy: {service} via {backend}: {e}");
            }
        }
        _ = stop.changed() => {}
    }
}

/// Makes the coming close of `client` a reset (SO_LINGER 0), as a refused connection.
fn reset(client: &TcpStream) {
    if let Err(e) = client.set_zero_linger() {
        tracing::debug!("service proxy: SO_LINGER: {e}");
    }
}
