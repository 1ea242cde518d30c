//! Everything behind the server's one lock: the objects, the resources served, and the faults
//! tests inject.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::error::ApiError;
use super::rbac::Policy;
use super::resources::Registry;
use super::store::Store;
use super::tokens::Tokens;
use crate::clock::Clock;

/// The fault key of one object's writes: `resource` (`group/plural[/sub]`) and its name.
pub(crate) fn object_key(resource: &str, name: &str) -> String {
    format!("{resource}#{name}")
}

/// Failures a test asks for.
#[derive(Default)]
pub(crate) struct Faults {
    /// Writes still to fail per resource (`group/plural[/sub]`) or per object of one
    /// ([`object_key`]), and the HTTP code.
    pub(crate) fail_next: BTreeMap<String, (usize, u16)>,
    /// 409 Conflicts answered so far (injected or real).
    pub(crate) conflicts: u64,
    /// API groups answered with 404 and left out of discovery.
    pub(crate) unserved: BTreeSet<String>,
    /// Resources (`group/plural`) whose watch events are held back until released, as a
    /// watch connection stalled in the network would.
    pub(crate) held_watches: tokio::sync::watch::Sender<BTreeSet<String>>,
}

impl Faults {
    /// Consumes one injected failure for `resource`, if any.
    pub(crate) fn take(&mut self, resource: &str) -> Option<ApiError> {
        let (n, code) = self.fail_next.get_mut(resource)?;
        if *n == 0 {
            return None;
        }
        *n -= 1;
        let reason = match *code {
            409 => "Conflict",
            403 => "Forbidden",
            422 => "Invalid",
            _ => "InternalError",
        };
        Some(ApiError::new(
            *code,
            reason,
            format!("injected {reason} on {resource}"),
        ))
    }
}

/// The server's state.
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
    pub(crate) faults: Faults,
    /// `uid:generation` of each CRD whose resources are registered, to re-register on change.
    pub(crate) crd_stamps: BTreeMap<String, String>,
    /// The RBAC objects decoded, with the state of the store they were decoded from.
    rbac: Option<(RbacStamp, Arc<Policy>)>,
    /// The RBAC objects ClusterRole aggregation last found nothing stale in (it runs after
    /// every write, and has nothing to do until one of them changes).
    pub(crate) aggregated: Option<Arc<Policy>>,
    /// The bearer tokens requests authenticate with.
    pub(crate) tokens: Tokens,
    /// The time tokens are issued and expire by.
    pub(crate) clock: Clock,
}

/// What changes whenever a Role, ClusterRole or binding is written or deleted: per kind, the
/// count and the highest resourceVersion.
type RbacStamp = [(usize, u64); 4];

const RBAC_RESOURCES: [&str; 4] = [
    "rbac.authorization.k8s.io/roles",
    "rbac.authorization.k8s.io/clusterroles",
    "rbac.authorization.k8s.io/rolebindings",
    "rbac.authorization.k8s.io/clusterrolebindings",
];

impl State {
    /// An empty state keeping `history` watch events.
    pub(crate) fn new(history: usize) -> Self {
        State {
            store: Store::new(history),
            registry: Registry::default(),
            faults: Faults::default(),
            crd_stamps: BTreeMap::new(),
            rbac: None,
            aggregated: None,
            tokens: Tokens::default(),
            clock: Clock::default(),
        }
    }

    /// The stored RBAC objects, decoded again only after one of them changed: every request
    /// of a user outside `system:masters` is authorized from them.
    pub(crate) fn rbac_policy(&mut self) -> Arc<Policy> {
        let stamp = RBAC_RESOURCES.map(|resource| {
            self.store
                .scan(resource, None)
                .fold((0, 0), |(n, rv), (_, v)| {
                    let this = v["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|r| r.parse::<u64>().ok())
                        .unwrap_or(0);
                    (n + 1, rv.max(this))
                })
        });
        match &self.rbac {
            Some((cached, policy)) if *cached == stamp => Arc::clone(policy),
            _ => {
                let policy = Arc::new(Policy::from_store(&self.store));
                self.rbac = Some((stamp, Arc::clone(&policy)));
                policy
            }
        }
    }
}

/// The current time as Kubernetes writes timestamps (RFC 3339, whole seconds).
pub(crate) fn now() -> String {
    let secs = k8s_openapi::jiff::Timestamp::now().as_second();
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `now` plus `secs` seconds, for graceful deletion deadlines.
pub(crate) fn now_plus(secs: i64) -> String {
    let t = k8s_openapi::jiff::Timestamp::now().as_second() + secs;
    k8s_openapi::jiff::Timestamp::from_second(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
