//! Create, replace (PUT), patch and server-side apply.

use serde_json::Value;

use super::admission::{decode, namespace_admits, validate};
use super::strategy::{has_finalizers, prepare_create, prepare_update};
use super::{defaults, service_account, services};
use super::{escalation, Target, WriteOptions, Written};
use crate::apiserver::convert::{to_served, to_stored};
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::patch::{self, strategic, PatchKind};
use crate::apiserver::podsecurity;
use crate::apiserver::ssa::{self, VersionTypes, Writer};
use crate::apiserver::state::{now, State};
use crate::apiserver::store::Key;

/// Characters of a `generateName` suffix (no vowels, as the real server's).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn writer<'a>(
    target: &'a Target,
    opts: &'a WriteOptions,
    api_version: &'a str,
    time: &'a str,
) -> Writer<'a> {
    Writer {
        manager: &opts.manager,
        api_version,
        subresource: target.subresource(),
        status_subresource: target.has_status(),
        now: time,
    }
}

/// Records the write of `new` (from `old`) by `opts.manager` in its managedFields.
fn record(target: &Target, opts: &WriteOptions, old: Option<&Value>, new: &mut Value) {
    let time = now();
    let api_version = target.api_version();
    let types = VersionTypes {
        rt: &target.rt,
        version: &target.version,
    };
    ssa::record_update(old, new, &writer(target, opts, &api_version, &time), &types);
}

/// Pod Security admission of a write of the main resource: pods are admitted on creation
/// (403 for `enforce`), workloads' pod templates and namespaces' `enforce` labels warn.
fn pod_security(
    st: &State,
    target: &Target,
    old: Option<&Value>,
    new: &Value,
) -> ApiResult<Vec<String>> {
    let rt = &target.rt;
    if !target.subresource().is_empty() {
        return Ok(Vec::new());
    }
    Ok(match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") if old.is_none() => podsecurity::admit_pod(&st.store, &target.namespace, new)?,
        ("", "Namespace") => podsecurity::admit_namespace(&st.store, old, new),
        (group, kind) => {
            podsecurity::admit_workload(&st.store, &target.namespace, group, kind, new)
        }
    })
}

impl State {
    /// POST: creates an object from `body`.
    pub(crate) fn create(
        &mut self,
        target: &Target,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let decoded = decode(target, body, None, opts.validation)?;
        let mut obj = decoded.object;
        if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
            if let Some(prefix) = obj["metadata"]["generateName"].as_str() {
                let name = format!("{prefix}{}", self.suffix());
                obj["metadata"]["name"] = Value::String(name);
            }
        }
        if obj["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut written = self.create_prepared(target, obj, opts)?;
        written.warnings.splice(0..0, decoded.warnings);
        Ok(written)
    }

    /// Five characters for a `generateName` object, from a fresh uid.
    fn suffix(&mut self) -> String {
        let uid = self.store.next_uid();
        let mut n = uid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (0..5)
            .map(|_| {
                let c = SUFFIX_ALPHABET[(n % SUFFIX_ALPHABET.len() as u64) as usize];
                n /= SUFFIX_ALPHABET.len() as u64;
                char::from(c)
            })
            .collect()
    }

    /// Creates a decoded object: admission, strategy, validation, ownership, storage.
    fn create_prepared(
        &mut self,
        target: &Target,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let rt = &target.rt;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !name.is_empty() {
            namespace_admits(self, target, &name)?;
            if self.store.get(&target.key(&name)).is_some() {
                return Err(ApiError::already_exists(&rt.qualified(), &rt.group, &name));
            }
        }
        defaults::apply(rt, &mut obj);
        if rt.group.is_empty() && rt.kind == "Service" {
            self.allocate_service(&mut obj)?;
        }
        let uid = self.store.next_uid();
        prepare_create(target, &mut obj, uid);
        if rt.group.is_empty() && rt.kind == "Pod" && target.subresource().is_empty() {
            let namespace = &target.namespace;
            service_account::admit(namespace, &mut obj, |sa| {
                let key = Key::new("/serviceaccounts", namespace, sa);
                self.store.get(&key).is_some()
            })?;
        }
        validate(target, &obj, None)?;
        escalation::admit(self, target, opts.user.as_ref(), &obj, false)?;
        let warnings = pod_security(self, target, None, &obj)?;
        record(target, opts, None, &mut obj);
        if opts.dry_run {
            return Ok(Written::new(obj, 201).with_warnings(warnings));
        }
        let storage = self.storage_type(target)?;
        let stored = self
            .store
            .put(&target.key(&name), to_stored(rt, &storage, &obj));
        self.settle();
        Ok(Written::new(to_served(rt, &target.version, &stored), 201).with_warnings(warnings))
    }

    fn storage_type(
        &self,
        target: &Target,
    ) -> ApiResult<std::sync::Arc<crate::apiserver::resources::ResourceType>> {
        self.registry
            .by_storage(&target.rt.storage)
            .ok_or_else(|| ApiError::internal(format!("no storage for {}", target.rt.storage)))
    }

    fn live(&self, target: &Target, name: &str) -> ApiResult<Value> {
        self.store
            .get(&target.key(name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&target.rt.qualified(), &target.rt.group, name))
    }

    /// PUT: replaces object `name` with `body`.
    pub(crate) fn replace(
        &mut self,
        target: &Target,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let live = self.live(target, name)?;
        let decoded = decode(target, body, Some(name), opts.validation)?;
        let mut written = self.commit_update(target, name, &live, decoded.object, opts)?;
        written.warnings.splice(0..0, decoded.warnings);
        Ok(written)
    }

    /// PATCH with a merge, JSON or strategic merge patch, or a server-side apply.
    pub(crate) fn patch(
        &mut self,
        target: &Target,
        name: &str,
        kind: PatchKind,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let rt = &target.rt;
        if kind == PatchKind::Apply {
            return self.apply(target, name, body, opts);
        }
        if kind == PatchKind::Strategic && rt.is_custom() {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json",
                PatchKind::accepted(true),
            ));
        }
        let live = self.live(target, name)?;
        let mut patched = to_served(rt, &target.version, &live);
        // A patch that does not apply, as the apiserver's patcher reports it.
        let invalid_patch = |e: String| {
            ApiError::new(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
            )
            .with_causes(vec![
                serde_json::json!({"reason": "UnexpectedServerResponse", "message": e}),
            ])
        };
        match kind {
            PatchKind::Merge => patch::merge(&mut patched, &body),
            PatchKind::Json => patch::json(&mut patched, &body).map_err(invalid_patch)?,
            PatchKind::Strategic => {
                let types =
                    |p: &[crate::apiserver::resources::Seg]| rt.list_type(&target.version, p);
                strategic::apply(&mut patched, &body, &types).map_err(invalid_patch)?;
            }
            PatchKind::Apply => {}
        }
        let decoded = decode(target, patched, Some(name), opts.validation)?;
        let mut written = self.commit_update(target, name, &live, decoded.object, opts)?;
        written.warnings.splice(0..0, decoded.warnings);
        Ok(written)
    }

    /// Server-side apply of `config` to object `name` (created when absent).
    fn apply(
        &mut self,
        target: &Target,
        name: &str,
        config: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let rt = &target.rt;
        if config
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            || config
                .get("kind")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!(
                "invalid object type: apply configurations must set apiVersion and kind (want {} {})",
                target.api_version(),
                rt.kind
            )));
        }
        let decoded = decode(target, config, Some(name), opts.validation)?;
        let live = self.store.get(&target.key(name)).cloned();
        let time = now();
        let api_version = target.api_version();
        let types = VersionTypes {
            rt,
            version: &target.version,
        };
        let w = writer(target, opts, &api_version, &time);
        let mut written = match live {
            None if !target.subresource().is_empty() => {
                return Err(ApiError::not_found(&rt.qualified(), &rt.group, name))
            }
            None => {
                let merged = ssa::apply(None, &decoded.object, &w, &types, opts.force)?;
                self.create_prepared(target, merged, opts)?
            }
            Some(live) => {
                let old = to_served(rt, &target.version, &live);
                let merged = ssa::apply(Some(&old), &decoded.object, &w, &types, opts.force)
                    .inspect_err(|_| self.faults.conflicts += 1)?;
                self.commit_update(target, name, &live, merged, opts)?
            }
        };
        written.warnings.splice(0..0, decoded.warnings);
        Ok(written)
    }

    /// Stores `new` in place of the stored `live`: precondition, strategy, validation,
    /// ownership, then storage (or removal, when a deleting object lost its last finalizer).
    pub(super) fn commit_update(
        &mut self,
        target: &Target,
        name: &str,
        live: &Value,
        mut new: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let rt = &target.rt;
        let old = to_served(rt, &target.version, live);
        let current_rv = old["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        if let Some(wanted) = new["metadata"]["resourceVersion"].as_str() {
            if !wanted.is_empty() && wanted != current_rv {
                self.faults.conflicts += 1;
                return Err(ApiError::stale(&rt.qualified(), &rt.group, name));
            }
        }
        defaults::apply(rt, &mut new);
        if rt.group.is_empty() && rt.kind == "Service" {
            services::keep_allocations(&old, &mut new);
        }
        prepare_update(target, &old, &mut new);
        validate(target, &new, Some(&old))?;
        escalation::admit(self, target, opts.user.as_ref(), &new, true)?;
        let warnings = pod_security(self, target, Some(&old), &new)?;
        record(target, opts, Some(&old), &mut new);
        new["metadata"]["resourceVersion"] = Value::String(current_rv.to_owned());
        if new == old {
            return Ok(Written::new(old, 200));
        }
        if opts.dry_run {
            return Ok(Written::new(new, 200).with_warnings(warnings));
        }
        let storage = self.storage_type(target)?;
        let key: Key = target.key(name);
        let stored = to_stored(rt, &storage, &new);
        let result =
            if stored["metadata"].get("deletionTimestamp").is_some() && !has_finalizers(&stored) {
                self.store.remove(&key);
                let mut last = stored;
                last["metadata"]["resourceVersion"] = Value::String(self.store.rv().to_string());
                last
            } else {
                self.store.put(&key, stored)
            };
        self.settle();
        Ok(Written::new(to_served(rt, &target.version, &result), 200).with_warnings(warnings))
    }
}
