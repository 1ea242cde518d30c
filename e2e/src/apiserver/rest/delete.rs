//! DELETE and deletecollection: preconditions, propagation policy (the `orphan` and
//! `foregroundDeletion` finalizers the garbage collector acts on), finalizers and
//! `deletionTimestamp`, and graceful deletion of pods bound to a node (their kubelet
//! finishes it).

use serde_json::{json, Value};

use super::read::ListOptions;
use super::strategy::has_finalizers;
use super::{Target, Written};
use crate::apiserver::convert::to_served;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::state::{now, now_plus, State};
use crate::apiserver::store::Key;

/// Finalizer that makes the garbage collector orphan the dependents first.
pub(crate) const ORPHAN: &str = "orphan";
/// Finalizer that makes the garbage collector delete the dependents first.
pub(crate) const FOREGROUND: &str = "foregroundDeletion";

/// `DeleteOptions`, from the body and the query.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOptions {
    /// `Background`, `Foreground` or `Orphan`.
    pub(crate) propagation: Option<String>,
    pub(crate) grace_period: Option<i64>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) dry_run: bool,
}

impl DeleteOptions {
    /// Reads a DeleteOptions body (JSON), then lets query parameters override it.
    pub(crate) fn from_request(
        body: Option<&Value>,
        query: &std::collections::BTreeMap<String, String>,
    ) -> ApiResult<Self> {
        let mut o = DeleteOptions::default();
        if let Some(b) = body {
            o.propagation = b["propagationPolicy"].as_str().map(str::to_owned);
            if b["orphanDependents"] == true && o.propagation.is_none() {
                o.propagation = Some("Orphan".into());
            }
            o.grace_period = b["gracePeriodSeconds"].as_i64();
            o.uid = b["preconditions"]["uid"].as_str().map(str::to_owned);
            o.resource_version = b["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_owned);
            o.dry_run = b["dryRun"].as_array().is_some_and(|d| !d.is_empty());
        }
        if let Some(p) = query.get("propagationPolicy") {
            o.propagation = Some(p.clone());
        }
        if query.get("orphanDependents").map(String::as_str) == Some("true")
            && o.propagation.is_none()
        {
            o.propagation = Some("Orphan".into());
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            o.grace_period =
                Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}"))
                })?);
        }
        if query.contains_key("dryRun") {
            o.dry_run = true;
        }
        match o.propagation.as_deref() {
            None | Some("Background" | "Foreground" | "Orphan") => Ok(o),
            Some(other) => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

impl State {
    /// DELETE of object `name`.
    pub(crate) fn delete(
        &mut self,
        target: &Target,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Written> {
        let rt = &target.rt;
        let key = target.key(name);
        let live = self
            .store
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), &rt.group, name))?;
        let meta = &live["metadata"];
        let mismatch = |what: &str, want: &str, have: &str| {
            ApiError::conflict(
                &rt.qualified(),
                &rt.group,
                name,
                &format!("Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"),
            )
        };
        if let Some(uid) = &opts.uid {
            let have = meta["uid"].as_str().unwrap_or_default();
            if uid != have {
                return Err(mismatch("UID", uid, have));
            }
        }
        if let Some(rv) = &opts.resource_version {
            let have = meta["resourceVersion"].as_str().unwrap_or_default();
            if rv != have {
                return Err(mismatch("ResourceVersion", rv, have));
            }
        }
        if opts.dry_run {
            return Ok(Written::new(to_served(rt, &target.version, &live), 200));
        }
        let result = self.delete_stored(&key, opts)?;
        self.settle();
        Ok(Written::new(to_served(rt, &target.version, &result), 200))
    }

    /// Deletes the object at `key` (no preconditions): marks it when finalizers or a grace
    /// period hold it, removes it otherwise. Returns its state after.
    pub(crate) fn delete_stored(&mut self, key: &Key, opts: &DeleteOptions) -> ApiResult<Value> {
        let Some(mut obj) = self.store.get(key).cloned() else {
            return Err(ApiError::not_found(&key.resource, "", &key.name));
        };
        if let Some(grace) = self.graceful_pod_deletion(key, &obj, opts) {
            let already = obj["metadata"]["deletionGracePeriodSeconds"].as_i64();
            if already.is_some_and(|a| a <= grace) {
                return Ok(obj);
            }
            obj["metadata"]["deletionTimestamp"] = json!(now_plus(grace));
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            return Ok(self.store.put(key, obj));
        }
        let policy_finalizer = match opts.propagation.as_deref() {
            Some("Orphan") => Some(ORPHAN),
            Some("Foreground") => Some(FOREGROUND),
            _ => None,
        };
        let deleting = obj["metadata"].get("deletionTimestamp").is_some();
        if let Some(f) = policy_finalizer {
            let finalizers = obj["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !finalizers.iter().any(|x| x == f) {
                let mut fs = finalizers;
                fs.push(json!(f));
                obj["metadata"]["finalizers"] = json!(fs);
            }
        }
        if !has_finalizers(&obj) {
            return Ok(self.store.remove(key).unwrap_or(obj));
        }
        if deleting && self.store.get(key) == Some(&obj) {
            return Ok(obj);
        }
        if !deleting {
            obj["metadata"]["deletionTimestamp"] = json!(now());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            if let Some(g) = obj["metadata"]["generation"].as_i64() {
                obj["metadata"]["generation"] = json!(g + 1);
            }
            if key.resource == "/namespaces" {
                obj["status"]["phase"] = json!("Terminating");
            }
        }
        Ok(self.store.put(key, obj))
    }

    /// The grace period of a pod that its kubelet must stop first: one bound to an existing
    /// node, not finished, deleted with a non-zero grace period.
    fn graceful_pod_deletion(&self, key: &Key, pod: &Value, opts: &DeleteOptions) -> Option<i64> {
        if key.resource != "/pods" {
            return None;
        }
        let node = pod["spec"]["nodeName"].as_str()?;
        self.store.get(&Key::new("/nodes", "", node))?;
        if matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        ) {
            return None;
        }
        let grace = opts
            .grace_period
            .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30);
        (grace > 0).then_some(grace)
    }

    /// DELETE of a collection: every object the selectors match.
    pub(crate) fn delete_collection(
        &mut self,
        target: &Target,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> ApiResult<Value> {
        let ns = (!target.namespace.is_empty()).then_some(target.namespace.as_str());
        let keys: Vec<Key> = self
            .store
            .scan(&target.rt.storage, ns)
            .filter(|(_, o)| list.matches(target, &to_served(&target.rt, &target.version, o)))
            .map(|(k, _)| k.clone())
            .collect();
        let mut items = Vec::new();
        for key in keys {
            if opts.dry_run {
                if let Some(o) = self.store.get(&key) {
                    items.push(to_served(&target.rt, &target.version, o));
                }
                continue;
            }
            let after = self.delete_stored(&key, opts)?;
            items.push(to_served(&target.rt, &target.version, &after));
        }
        self.settle();
        Ok(json!({
            "apiVersion": target.api_version(),
            "kind": format!("{}List", target.rt.kind),
            "metadata": {"resourceVersion": self.store.rv().to_string()},
            "items": items,
        }))
    }
}
