//! Object storage with resourceVersions, a full event history for watches, finalizers and
//! owner-reference garbage collection.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Key of one object: resource (`group/plural`), namespace (empty when cluster-scoped), name.
pub(super) type Key = (String, String, String);

/// One watch event as stored and broadcast.
#[derive(Clone, Debug)]
pub(super) struct WatchEvent {
    pub(super) rv: u64,
    pub(super) resource: String,
    pub(super) namespace: String,
    pub(super) kind: &'static str,
    pub(super) object: Value,
}

/// Resources whose `status` is only writable through `/status`.
const STATUS_SUBRESOURCE: &[&str] = &[
    "tributary.dev/kafkaclusters",
    "tributary.dev/kafkatopics",
    "apps/statefulsets",
    "apps/deployments",
    "/pods",
    "/services",
    "policy/poddisruptionbudgets",
];

pub(super) fn has_status_subresource(resource: &str) -> bool {
    STATUS_SUBRESOURCE.contains(&resource)
}

/// Failure reported to the client as a Kubernetes Status.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) code: u16,
    pub(super) reason: &'static str,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }
}

pub(super) struct Store {
    rv: u64,
    uid: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<WatchEvent>,
    pub(super) applied: BTreeMap<(Key, String), Value>,
    /// Writes still to fail per resource, and the HTTP status they fail with.
    pub(super) fail_next: BTreeMap<String, (usize, u16)>,
    pub(super) conflicts: u64,
    /// API groups answered with 404, as if their CRDs were not installed.
    pub(super) unserved: std::collections::BTreeSet<String>,
    pub(super) events: broadcast::Sender<WatchEvent>,
}

impl Default for Store {
    fn default() -> Self {
        let (events, _) = broadcast::channel(4096);
        Store {
            rv: 0,
            uid: 0,
            objects: BTreeMap::new(),
            history: Vec::new(),
            applied: BTreeMap::new(),
            fail_next: BTreeMap::new(),
            conflicts: 0,
            unserved: std::collections::BTreeSet::new(),
            events,
        }
    }
}

fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?.get(field)?.as_str().map(str::to_owned)
}

/// Parsed `labelSelector`: `k=v`, `k==v`, `k!=v`, `k`, `!k`.
pub(super) fn parse_selector(s: &str) -> Vec<(String, Option<String>, bool)> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            if let Some((k, v)) = p.split_once("!=") {
                (k.trim().to_owned(), Some(v.trim().to_owned()), false)
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                (k.trim().to_owned(), Some(v.trim().to_owned()), true)
            } else if let Some(k) = p.strip_prefix('!') {
                (k.trim().to_owned(), None, false)
            } else {
                (p.trim().to_owned(), None, true)
            }
        })
        .collect()
}

pub(super) fn matches(obj: &Value, selector: &[(String, Option<String>, bool)]) -> bool {
    let labels = obj.get("metadata").and_then(|m| m.get("labels"));
    selector.iter().all(|(k, v, eq)| {
        let actual = labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        match (v, eq) {
            (Some(v), true) => actual == Some(v.as_str()),
            (Some(v), false) => actual != Some(v.as_str()),
            (None, true) => actual.is_some(),
            (None, false) => actual.is_none(),
        }
    })
}

impl Store {
    pub(super) fn resource_version(&self) -> u64 {
        self.rv
    }

    pub(super) fn get(&self, resource: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(resource.to_owned(), ns.to_owned(), name.to_owned()))
    }

    pub(super) fn list(
        &self,
        resource: &str,
        ns: Option<&str>,
        selector: &[(String, Option<String>, bool)],
    ) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((r, n, _), o)| {
                r == resource && ns.is_none_or(|ns| ns == n) && matches(o, selector)
            })
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Events after `rv` for a watch, plus a receiver for later ones (taken under one lock, so
    /// nothing falls between them).
    pub(super) fn watch_from(&self, rv: u64) -> (Vec<WatchEvent>, broadcast::Receiver<WatchEvent>) {
        let past = self.history.iter().filter(|e| e.rv > rv).cloned().collect();
        (past, self.events.subscribe())
    }

    /// Consumes one injected conflict for `resource`, if any.
    pub(super) fn injected_conflict(&mut self, resource: &str) -> Option<ApiError> {
        let (n, code) = self.fail_next.get_mut(resource)?;
        if *n == 0 {
            return None;
        }
        *n -= 1;
        let reason = match *code {
            409 => "Conflict",
            403 => "Forbidden",
            _ => "InternalError",
        };
        Some(ApiError::new(
            *code,
            reason,
            format!("injected {reason} on {resource}"),
        ))
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, key: &Key, kind: &'static str, object: Value) {
        let rv = self.rv;
        let ev = WatchEvent {
            rv,
            resource: key.0.clone(),
            namespace: key.1.clone(),
            kind,
            object,
        };
        self.history.push(ev.clone());
        // No receivers is fine: nobody is watching yet.
        let _ = self.events.send(ev);
    }

    pub(super) fn create(
        &mut self,
        resource: &str,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let name = match meta(&obj, "name") {
            Some(n) => n,
            None => match meta(&obj, "generateName") {
                Some(prefix) => format!("{prefix}{:05x}", self.uid + 1),
                None => return Err(ApiError::new(422, "Invalid", "metadata.name is required")),
            },
        };
        let key: Key = (resource.to_owned(), ns.to_owned(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{resource} {name:?} already exists"),
            ));
        }
        if has_status_subresource(resource) && resource.starts_with("tributary.dev/") {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        self.uid += 1;
        let rv = self.bump();
        let m = &mut obj["metadata"];
        m["name"] = json!(name);
        if !ns.is_empty() {
            m["namespace"] = json!(ns);
        }
        m["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", self.uid));
        m["resourceVersion"] = json!(rv.to_string());
        m["generation"] = json!(1);
        m["creationTimestamp"] = json!(k8s_openapi::jiff::Timestamp::now().to_string());
        self.objects.insert(key.clone(), obj.clone());
        self.record(&key, "ADDED", obj.clone());
        Ok(obj)
    }

    /// Stores `new` in place of the current object, enforcing the status subresource split,
    /// bumping generation on spec changes, and finishing deletion when finalizers are gone.
    pub(super) fn update(
        &mut self,
        key: &Key,
        mut new: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let Some(current) = self.objects.get(key).cloned() else {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("{} {:?} not found", key.0, key.2),
            ));
        };
        if has_status_subresource(&key.0) {
            if status_only {
                let status = new.get("status").cloned();
                new = current.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            } else {
                match current.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
        }
        // Immutable metadata comes from the stored object.
        for field in [
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "deletionTimestamp",
        ] {
            match current["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        let mut generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("metadata");
                o.remove("status");
            }
            v
        };
        if strip(&current) != strip(&new) {
            generation += 1;
        }
        new["metadata"]["generation"] = json!(generation);
        let mut unchanged = new.clone();
        unchanged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if unchanged == current {
            return Ok(current);
        }
        let rv = self.bump();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let deleting = new["metadata"].get("deletionTimestamp").is_some();
        let finalizers_empty = new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if deleting && finalizers_empty {
            self.remove(key);
            return Ok(new);
        }
        self.objects.insert(key.clone(), new.clone());
        self.record(key, "MODIFIED", new.clone());
        Ok(new)
    }

    /// DELETE: marks objects with finalizers, removes the rest (and their dependents).
    pub(super) fn delete(&mut self, key: &Key) -> Result<Value, ApiError> {
        let Some(current) = self.objects.get(key).cloned() else {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("{} {:?} not found", key.0, key.2),
            ));
        };
        let has_finalizers = current["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if !has_finalizers {
            self.remove(key);
            return Ok(current);
        }
        if current["metadata"].get("deletionTimestamp").is_some() {
            return Ok(current);
        }
        let mut marked = current;
        marked["metadata"]["deletionTimestamp"] =
            json!(k8s_openapi::jiff::Timestamp::now().to_string());
        let rv = self.bump();
        marked["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(key.clone(), marked.clone());
        self.record(key, "MODIFIED", marked.clone());
        Ok(marked)
    }

    fn remove(&mut self, key: &Key) {
        let Some(mut obj) = self.objects.remove(key) else {
            return;
        };
        self.bump();
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let uid = obj["metadata"]["uid"].clone();
        self.record(key, "DELETED", obj);
        self.applied.retain(|(k, _), _| k != key);
        // Background garbage collection of dependents.
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for dep in dependents {
            let _ = self.delete(&dep);
        }
    }
}
