//! An in-memory Kubernetes API server with Kubernetes' semantics, for the operator's
//! in-process tests (a `kube::Client` through a tower service) and for the real `kubectl`,
//! `helm`, `tributary-operator` and `tributary-broker` binaries (HTTP on 127.0.0.1 and a
//! kubeconfig). See the crate documentation for what is and is not modelled.

mod authorize;
mod controllers;
mod convert;
mod discovery;
mod error;
mod history;
mod http;
pub mod identity;
mod jsonpath;
mod names;
mod openapi;
mod openapi_v2;
mod patch;
pub mod podsecurity;
mod protobuf;
pub mod rbac;
mod resources;
mod rest;
mod reviews;
mod route;
mod router;
mod schema;
mod selector;
mod ssa;
mod state;
mod store;
mod table;
pub mod tls;
mod token_review;
mod tokens;
mod watch;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{json, Value};

pub use self::error::{ApiError, FieldError, FieldErrorKind};
pub use self::http::Served;
pub use self::rest::PodLogs;

use self::convert::to_served;
use self::rest::{FieldValidation, Target, WriteOptions};
use self::state::State;
use self::store::Key;

/// Tunables of the server; the defaults are a real cluster's behaviour at small scale.
#[derive(Clone, Debug)]
pub struct Config {
    /// Changes kept for watch resumption and consistent pagination; resuming from a
    /// resourceVersion older than that answers 410 Gone (Expired). Tests make it small to
    /// force compaction.
    pub watch_history: usize,
    /// How often a watch that allows bookmarks gets one (the real server sends one about
    /// every minute).
    pub bookmark_interval: Duration,
    /// Install the prometheus-operator CRDs (ServiceMonitor, PodMonitor, PrometheusRule) at
    /// start, as clusters that run the chart's monitoring have them.
    pub monitoring_crds: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(60),
            monitoring_crds: true,
        }
    }
}

/// Namespaces every cluster starts with.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The in-memory API server. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
    config: Arc<Config>,
    /// `host:port` once served over HTTP (for discovery's server address).
    address: Arc<Mutex<String>>,
    /// Where `pods/log` reads from (the kubelet stand-in), once one registered.
    pod_logs: Arc<Mutex<Option<Arc<dyn PodLogs>>>>,
    /// The serving certificate and its CA, made when first served.
    tls: Arc<Mutex<Option<Arc<tls::Identity>>>>,
}

impl Default for FakeApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApiServer {
    /// A server with the default [`Config`]: the system namespaces and the
    /// prometheus-operator CRDs, nothing else.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A server with `config`.
    pub fn with_config(config: Config) -> Self {
        let server = FakeApiServer {
            state: Arc::new(Mutex::new(State::new(config.watch_history))),
            config: Arc::new(config),
            address: Arc::new(Mutex::new("127.0.0.1:6443".to_owned())),
            pod_logs: Arc::new(Mutex::new(None)),
            tls: Arc::new(Mutex::new(None)),
        };
        for ns in SYSTEM_NAMESPACES {
            server.create_namespace(ns);
        }
        server.install_rbac_defaults();
        if server.config.monitoring_crds {
            for crd in monitoring_crds() {
                server.system_create(
                    "apiextensions.k8s.io",
                    "v1",
                    "customresourcedefinitions",
                    "",
                    crd,
                );
            }
        }
        server
    }

    /// The built-in ClusterRoles and their bindings a fresh cluster has (cluster-admin bound to
    /// `system:masters`, admin, edit, view, discovery, basic-user, public-info-viewer).
    fn install_rbac_defaults(&self) {
        for role in rbac::builtin_roles::cluster_roles() {
            self.system_create("rbac.authorization.k8s.io", "v1", "clusterroles", "", role);
        }
        for binding in rbac::builtin_roles::cluster_role_bindings() {
            let plural = "clusterrolebindings";
            self.system_create("rbac.authorization.k8s.io", "v1", plural, "", binding);
        }
    }

    /// The stored RBAC objects, for the authorizer and escalation checks of [`rbac`] (not yet
    /// enforced on requests).
    pub fn rbac_policy(&self) -> rbac::Policy {
        self.with(|st| rbac::Policy::from_store(&st.store))
    }

    /// Creates namespace `name` (tests create the namespaces they use, as on a real cluster).
    pub fn create_namespace(&self, name: &str) {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        self.system_create("", "v1", "namespaces", "", ns);
    }

    /// Creates an object as the system would; failures (it already exists) are ignored.
    fn system_create(&self, group: &str, version: &str, plural: &str, namespace: &str, obj: Value) {
        self.with(|st| {
            let Some(rt) = st.registry.find(group, version, plural) else {
                return;
            };
            let target = Target {
                rt,
                version: version.to_owned(),
                namespace: namespace.to_owned(),
                name: None,
                sub: None,
            };
            let opts = WriteOptions {
                manager: "kube-apiserver".into(),
                validation: FieldValidation::Strict,
                dry_run: false,
                force: false,
                user: None,
            };
            if let Err(e) = st.create(&target, obj, &opts) {
                tracing::debug!("system create of {plural}: {e}");
            }
        });
    }

    /// A client whose requests this server answers in-process, as the administrator (its
    /// token, [`FakeApiServer::admin_token`]); `namespace` is the client's default.
    pub fn client(&self, namespace: &str) -> kube::Client {
        let token = self.admin_token();
        self.client_with_headers(namespace, &[("authorization", format!("Bearer {token}"))])
    }

    /// An in-process administrator's client acting as `user` (`Impersonate-User`, which
    /// `system:masters` may), so its requests are authorized for that user.
    pub fn client_as(&self, namespace: &str, user: &str) -> kube::Client {
        let token = self.admin_token();
        self.client_with_headers(
            namespace,
            &[
                ("authorization", format!("Bearer {token}")),
                ("impersonate-user", user.to_owned()),
            ],
        )
    }

    /// An in-process client presenting bearer `token`, or no credentials at all (then it
    /// acts as `system:anonymous`).
    pub fn client_with_token(&self, namespace: &str, token: Option<&str>) -> kube::Client {
        let headers: Vec<_> = token
            .map(|t| ("authorization", format!("Bearer {t}")))
            .into_iter()
            .collect();
        self.client_with_headers(namespace, &headers)
    }

    fn client_with_headers(&self, namespace: &str, add: &[(&'static str, String)]) -> kube::Client {
        let server = self.clone();
        let add: Vec<_> = add
            .iter()
            .filter_map(|(k, v)| Some((*k, ::http::HeaderValue::from_str(v).ok()?)))
            .collect();
        let service = tower::service_fn(move |req: ::http::Request<kube::client::Body>| {
            let server = server.clone();
            let add = add.clone();
            async move {
                let (mut parts, body) = req.into_parts();
                for (name, value) in add {
                    parts.headers.insert(name, value);
                }
                let bytes = match body.collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(e) => {
                        let err = ApiError::bad_request(format!("cannot read body: {e}"));
                        return Ok::<_, Infallible>(router::error_for(&err));
                    }
                };
                Ok(router::handle(&server, ::http::Request::from_parts(parts, bytes)).await)
            }
        });
        kube::Client::new(service, namespace)
    }

    /// The administrator's bearer token: identity `kubernetes-admin` in `system:masters`, a
    /// random token per server (as `--token-auth-file` gives one to a real server), for the
    /// kubeconfig `kubectl` and `helm` use.
    pub fn admin_token(&self) -> String {
        self.with(|st| st.tokens.admin().to_owned())
    }

    /// The clock tokens are issued and expire by (the kubelet rotates by it too); tests
    /// advance it to expire tokens without waiting.
    pub fn clock(&self) -> crate::clock::Clock {
        self.with(|st| st.clock.clone())
    }

    /// Serves the API over HTTPS on `127.0.0.1` (an ephemeral port) until the returned handle
    /// is dropped or shut down.
    pub async fn serve(&self) -> std::io::Result<Served> {
        self.serve_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
    }

    /// Serves the API over HTTPS on `addr`, with the certificate every serving of this server
    /// shares.
    pub async fn serve_on(&self, addr: std::net::SocketAddr) -> std::io::Result<Served> {
        let tls = self.tls_identity().map_err(std::io::Error::other)?;
        let served = http::serve(self.clone(), addr, tls).await?;
        *self.address.lock().unwrap_or_else(PoisonError::into_inner) = served.addr().to_string();
        Ok(served)
    }

    fn tls_identity(&self) -> Result<Arc<tls::Identity>, tls::TlsError> {
        let mut slot = self.tls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(identity) = slot.as_ref() {
            return Ok(Arc::clone(identity));
        }
        let identity = Arc::new(tls::Identity::generate()?);
        *slot = Some(Arc::clone(&identity));
        Ok(identity)
    }

    /// The CA certificate (PEM) the server's HTTPS certificate chains to, once served.
    pub fn ca_pem(&self) -> Option<String> {
        self.tls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|t| t.ca_pem.clone())
    }

    fn address(&self) -> String {
        self.address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Serves `pods/log` from `logs` (the kubelet stand-in registers itself, as a real node's
    /// kubelet serves the logs the API server proxies).
    pub fn set_pod_logs(&self, logs: Arc<dyn PodLogs>) {
        *self.pod_logs.lock().unwrap_or_else(PoisonError::into_inner) = Some(logs);
    }

    fn pod_logs(&self) -> Option<Arc<dyn PodLogs>> {
        self.pod_logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A feed of every change to stored objects, for control loops that react to any change
    /// at once (the workload controllers, the kubelet stand-in) rather than through one watch
    /// per resource.
    pub fn changes(&self) -> Changes {
        Changes(self.with(|s| s.store.history.subscribe()))
    }

    /// Makes the next `n` writes to `resource` (e.g. `tributary.dev/kafkatopics/status`) fail
    /// with 409 Conflict, as if another writer got there first.
    pub fn fail_next_writes(&self, resource: &str, n: usize) {
        self.fail_next_writes_with(resource, n, 409);
    }

    /// Makes the next `n` writes to `resource` fail with HTTP `code` (403 Forbidden, 500, ...).
    pub fn fail_next_writes_with(&self, resource: &str, n: usize, code: u16) {
        self.with(|s| s.faults.fail_next.insert(resource.to_owned(), (n, code)));
    }

    /// Makes the next `n` writes to object `name` of `resource` (e.g.
    /// `coordination.k8s.io/leases`, `demo-broker-1`) fail with HTTP `code`, as a network
    /// partition between one client and the API server would; other objects are unaffected.
    pub fn fail_next_object_writes_with(&self, resource: &str, name: &str, n: usize, code: u16) {
        let key = state::object_key(resource, name);
        self.with(|s| s.faults.fail_next.insert(key, (n, code)));
    }

    /// Holds back the events of every watch of `resource` (`group/plural`, e.g.
    /// `tributary.dev/kafkapartitions`) until [`FakeApiServer::release_watches`]: watchers
    /// see nothing change meanwhile while reads and writes go on, as when watch connections
    /// stall in the network. Held events are delivered in order on release.
    pub fn hold_watches(&self, resource: &str) {
        self.with(|s| {
            s.faults.held_watches.send_modify(|held| {
                held.insert(resource.to_owned());
            })
        });
    }

    /// Delivers the events held back by [`FakeApiServer::hold_watches`] and stops holding.
    pub fn release_watches(&self, resource: &str) {
        self.with(|s| {
            s.faults.held_watches.send_modify(|held| {
                held.remove(resource);
            })
        });
    }

    /// Answers every request for API `group` with 404 and leaves it out of discovery, as if
    /// it were not installed.
    pub fn unserve_group(&self, group: &str) {
        self.with(|s| s.faults.unserved.insert(group.to_owned()));
    }

    /// 409 Conflicts answered so far (injected or real).
    pub fn conflicts(&self) -> u64 {
        self.with(|s| s.faults.conflicts)
    }

    /// Forgets the watch history, as etcd compaction does: resuming a watch or continuing a
    /// list from any earlier resourceVersion answers 410 Gone.
    pub fn compact_history(&self) {
        self.with(|s| {
            let rv = s.store.rv();
            s.store.history.compact_all(rv);
        });
    }

    /// The object as `resource` serves it, in its preferred version. `resource` is
    /// `group/plural` (`/pods` for the core group).
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.with(|s| {
            let rt = s
                .registry
                .all()
                .iter()
                .find(|t| t.id() == resource)?
                .clone();
            let version = rt.versions.first()?.name.clone();
            s.store
                .get(&Key::new(&rt.storage, namespace, name))
                .map(|o| to_served(&rt, &version, o))
        })
    }

    /// Every object of `resource` in `namespace`, as `resource` serves them.
    pub fn list(&self, resource: &str, namespace: &str) -> Vec<Value> {
        self.with(|s| {
            let Some(rt) = s
                .registry
                .all()
                .iter()
                .find(|t| t.id() == resource)
                .cloned()
            else {
                return Vec::new();
            };
            let Some(version) = rt.versions.first().map(|v| v.name.clone()) else {
                return Vec::new();
            };
            s.store
                .scan(&rt.storage, Some(namespace))
                .map(|(_, o)| to_served(&rt, &version, o))
                .collect()
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

/// Changes to stored objects, in order (see [`FakeApiServer::changes`]).
pub struct Changes(tokio::sync::broadcast::Receiver<Arc<history::Change>>);

impl Changes {
    /// Waits for the next change and returns the resource it touched (`group/plural`,
    /// `/pods` for the core group), `*` when changes were missed by a slow reader, `None`
    /// once the server is gone.
    pub async fn next(&mut self) -> Option<String> {
        use tokio::sync::broadcast::error::RecvError;
        match self.0.recv().await {
            Ok(change) => Some(change.key.resource.clone()),
            Err(RecvError::Lagged(_)) => Some("*".to_owned()),
            Err(RecvError::Closed) => None,
        }
    }

    /// Drops the changes already queued, returning how many there were.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while !matches!(
            self.0.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty
                | tokio::sync::broadcast::error::TryRecvError::Closed)
        ) {
            n += 1;
        }
        n
    }
}

/// The prometheus-operator CRDs the chart's monitoring objects need, with permissive schemas.
fn monitoring_crds() -> Vec<Value> {
    [
        ("servicemonitors", "ServiceMonitor", "smon"),
        ("podmonitors", "PodMonitor", "pmon"),
        ("prometheusrules", "PrometheusRule", "promrule"),
    ]
    .into_iter()
    .map(|(plural, kind, short)| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.monitoring.coreos.com")},
            "spec": {
                "group": "monitoring.coreos.com", "scope": "Namespaced",
                "names": {"plural": plural, "kind": kind, "singular": kind.to_lowercase(),
                          "listKind": format!("{kind}List"), "shortNames": [short], "categories": ["prometheus-operator"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}],
            },
        })
    })
    .collect()
}
