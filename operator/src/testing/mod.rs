//! An in-memory Kubernetes API server for tests: `kube::Client` talks to it through a tower
//! service, so the real controller code runs unchanged.
//!
//! It keeps the semantics the operator and brokers rely on: resourceVersion preconditions on
//! update and patch (409 Conflict), the status subresource separate from the main resource,
//! `metadata.generation` bumped on spec changes, list and watch with label selectors,
//! server-side apply (with per-manager field removal, lists atomic), merge and JSON patches,
//! finalizers with `deletionTimestamp`, owner-reference garbage collection, and Leases (as
//! ordinary objects). Not modelled: admission/validation, strategic-merge list keys,
//! field-level SSA conflicts, watch bookmarks and 410 Gone (the full history is kept).

mod patch;
mod router;
mod store;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

pub use router::Route;
use store::Store;

/// The in-memory API server. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeApiServer {
    store: Arc<Mutex<Store>>,
}

impl Default for FakeApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApiServer {
    /// An empty server.
    pub fn new() -> Self {
        FakeApiServer {
            store: Arc::new(Mutex::new(Store::default())),
        }
    }

    /// A client whose requests this server answers; `namespace` is the client's default.
    pub fn client(&self, namespace: &str) -> kube::Client {
        let server = self.clone();
        let service = tower::service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(router::handle(&server, req).await) }
        });
        kube::Client::new(service, namespace)
    }

    /// Makes the next `n` writes to `resource` (e.g. `tributary.dev/kafkatopics/status`) fail
    /// with 409 Conflict, as if another writer got there first.
    pub fn fail_next_writes(&self, resource: &str, n: usize) {
        self.fail_next_writes_with(resource, n, 409);
    }

    /// Makes the next `n` writes to `resource` fail with HTTP `code` (403 Forbidden, 500, ...).
    pub fn fail_next_writes_with(&self, resource: &str, n: usize, code: u16) {
        self.with(|s| s.fail_next.insert(resource.to_owned(), (n, code)));
    }

    /// Answers every request for API `group` with 404, as if its CRDs were not installed.
    pub fn unserve_group(&self, group: &str) {
        self.with(|s| s.unserved.insert(group.to_owned()));
    }

    /// Conflicts answered so far (injected or real).
    pub fn conflicts(&self) -> u64 {
        self.with(|s| s.conflicts)
    }

    /// The stored object, as JSON. `resource` is `group/plural` (`/pods` for the core group).
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.with(|s| s.get(resource, namespace, name).cloned())
    }

    /// Every stored object of `resource` in `namespace`.
    pub fn list(&self, resource: &str, namespace: &str) -> Vec<Value> {
        self.with(|s| s.list(resource, Some(namespace), &[]))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut guard = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}
