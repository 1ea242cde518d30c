//! Per-kind write rules (the real server's "strategies"): what create resets, what an update
//! of the main resource or of `/status` may change, and when `metadata.generation` moves.

use serde_json::{json, Value};

use super::Target;
use crate::apiserver::state::now;

/// Server-set metadata an update cannot change.
const IMMUTABLE_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "name",
    "namespace",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

/// Prepares a new object: system metadata, status reset, kind-specific initial state.
pub(super) fn prepare_create(target: &Target, obj: &mut Value, uid: String) {
    let rt = &target.rt;
    if let Some(m) = obj["metadata"].as_object_mut() {
        for f in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(f);
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now()));
        if rt.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    if target.has_status() {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "Pod") => obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
        _ => {}
    }
}

/// Applies the update rules to `new` given the stored `old` (both in the served form).
pub(super) fn prepare_update(target: &Target, old: &Value, new: &mut Value) {
    let status_write = target.subresource() == "status";
    if status_write {
        // Only status (and the managed fields recording the write) changes through /status.
        let status = new.get("status").cloned();
        let managed = new["metadata"].get("managedFields").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        match managed {
            Some(mf) => new["metadata"]["managedFields"] = mf,
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove("managedFields");
                }
            }
        }
    } else if target.has_status() {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    for field in IMMUTABLE_META {
        match old["metadata"].get(*field) {
            Some(v) => new["metadata"][*field] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(*field);
                }
            }
        }
    }
    if target.rt.kind == "Namespace" && target.rt.group.is_empty() && !status_write {
        // spec.finalizers only change through /finalize.
        new["spec"] = old["spec"].clone();
    }
    if target.rt.generation && spec_changed(target, old, new) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
        new["metadata"]["generation"] = json!(g + 1);
    }
}

/// Whether anything but metadata (and status, when it is a subresource) changed.
fn spec_changed(target: &Target, old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            if target.has_status() {
                m.remove("status");
            }
        }
        v
    };
    strip(old) != strip(new)
}

/// Whether an object's deletion waits for finalizers (metadata, or a namespace's spec).
pub(crate) fn has_finalizers(obj: &Value) -> bool {
    let non_empty = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    non_empty(&obj["metadata"]["finalizers"])
        || (obj["kind"] == "Namespace" && non_empty(&obj["spec"]["finalizers"]))
}
