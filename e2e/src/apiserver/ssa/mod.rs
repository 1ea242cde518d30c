//! Server-side apply and field ownership: every write records who set which fields in
//! `metadata.managedFields`; an apply merges the applied configuration into the live object
//! (associative lists by key, sets by value, atomic lists and maps whole), removes the fields
//! the same manager applied before and no longer does (unless someone else owns them), and
//! answers 409 Conflict when it would change a value another manager owns, unless forced.

pub(crate) mod fieldset;

use serde_json::{json, Value};

use fieldset::{
    from_fields_v1, leaves, remove, render, to_fields_v1, Comparison, FieldPath, FieldSet, Leaves,
    Types,
};

use super::error::ApiError;
use super::resources::{ListType, ResourceType, Seg};

/// Metadata fields nobody owns (the server sets them).
const RESET_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Type information of one served version.
pub(crate) struct VersionTypes<'a> {
    pub(crate) rt: &'a ResourceType,
    pub(crate) version: &'a str,
}

impl Types for VersionTypes<'_> {
    fn list_type(&self, path: &[Seg]) -> ListType {
        self.rt.list_type(self.version, path)
    }
    fn atomic_map(&self, path: &[Seg]) -> bool {
        self.rt.atomic_map(self.version, path)
    }
}

/// Who writes, through which endpoint.
pub(crate) struct Writer<'a> {
    /// Field manager.
    pub(crate) manager: &'a str,
    /// `group/version` the write used.
    pub(crate) api_version: &'a str,
    /// `""` for the main resource, `status` or `scale`.
    pub(crate) subresource: &'a str,
    /// Whether the resource has a status subresource (then the main resource owns no status).
    pub(crate) status_subresource: bool,
    /// RFC 3339 time of the write.
    pub(crate) now: &'a str,
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    fn is(&self, w: &Writer<'_>, operation: &str) -> bool {
        self.manager == w.manager
            && self.operation == operation
            && self.subresource == w.subresource
    }
}

/// The entries in `obj`'s metadata.
pub(crate) fn entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().to_owned(),
            operation: e["operation"].as_str().unwrap_or_default().to_owned(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_owned(),
            time: e["time"].as_str().unwrap_or_default().to_owned(),
            subresource: e["subresource"].as_str().unwrap_or_default().to_owned(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// The leaves a writer through `w`'s endpoint can own.
fn owned_leaves(obj: &Value, w: &Writer<'_>, types: &dyn Types) -> Leaves {
    let mut scoped = obj.clone();
    if let Some(m) = scoped.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if w.subresource == "status" {
            m.retain(|k, _| k == "status");
        } else if w.status_subresource {
            m.remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| !RESET_META.contains(&k.as_str()));
        }
    }
    let mut out = Leaves::new();
    leaves(&scoped, &mut Vec::new(), types, &mut out);
    out.retain(|p, _| !p.is_empty());
    out
}

/// Whether the client wrote managedFields itself (then they are kept as written).
fn client_set_managed_fields(old: Option<&Value>, new: &Value) -> bool {
    let written = &new["metadata"]["managedFields"];
    let before = old.map_or(&Value::Null, |o| &o["metadata"]["managedFields"]);
    !written.is_null() && written != before
}

/// Records a non-apply write (create, update, patch) that turned `old` into `new`: the writer
/// takes over what it changed; fields that are gone are nobody's.
pub(crate) fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    w: &Writer<'_>,
    types: &dyn Types,
) {
    if client_set_managed_fields(old, new) {
        if new["metadata"]["managedFields"]
            .as_array()
            .is_some_and(Vec::is_empty)
        {
            if let Some(m) = new["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
        return;
    }
    let mut list = old.map(entries).unwrap_or_default();
    let before = old.map(|o| owned_leaves(o, w, types)).unwrap_or_default();
    let after = owned_leaves(new, w, types);
    let cmp = Comparison::of(&before, &after);
    let changed = cmp.changed();
    for e in &mut list {
        e.fields.retain(|p| !cmp.removed.contains(p));
        if !e.is(w, "Update") {
            e.fields.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        match list.iter_mut().find(|e| e.is(w, "Update")) {
            Some(e) => {
                e.fields.extend(changed);
                e.time = w.now.to_owned();
                e.api_version = w.api_version.to_owned();
            }
            None => list.push(Entry {
                manager: w.manager.to_owned(),
                operation: "Update".into(),
                api_version: w.api_version.to_owned(),
                time: w.now.to_owned(),
                subresource: w.subresource.to_owned(),
                fields: changed,
            }),
        }
    }
    set_entries(new, &list);
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Merges an applied configuration into `live` by the types' list semantics.
fn merge(live: &mut Value, config: &Value, path: &mut Vec<Seg>, types: &dyn Types) {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !types.atomic_map(path) => {
            for (k, v) in c {
                path.push(Seg::Field(k.clone()));
                match l.get_mut(k) {
                    Some(existing) if existing.is_object() || existing.is_array() => {
                        merge(existing, v, path, types);
                    }
                    _ => {
                        l.insert(k.clone(), v.clone());
                    }
                }
                path.pop();
            }
        }
        (Value::Array(l), Value::Array(c)) => match types.list_type(path) {
            ListType::Set => {
                for item in c {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListType::Map(keys) => {
                path.push(Seg::Item);
                for item in c {
                    let key =
                        |v: &Value| keys.iter().map(|k| v.get(k).cloned()).collect::<Vec<_>>();
                    let wanted = key(item);
                    match l.iter_mut().find(|x| key(x) == wanted) {
                        Some(existing) => merge(existing, item, path, types),
                        None => l.push(item.clone()),
                    }
                }
                path.pop();
            }
            ListType::Atomic => *l = c.clone(),
        },
        (live, config) => *live = config.clone(),
    }
}

/// Server-side applies `config` by `w.manager` onto `live` (`None`: the object is created);
/// returns the new object with its managedFields, or a 409 listing the conflicts.
pub(crate) fn apply(
    live: Option<&Value>,
    config: &Value,
    w: &Writer<'_>,
    types: &dyn Types,
    force: bool,
) -> Result<Value, ApiError> {
    let mut config = config.clone();
    strip_nulls(&mut config);
    let mut list = live.map(entries).unwrap_or_default();
    let config_set: FieldSet = owned_leaves(&config, w, types).into_keys().collect();
    let previous: FieldSet = list
        .iter()
        .find(|e| e.is(w, "Apply"))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = list
        .iter()
        .filter(|e| !e.is(w, "Apply"))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();

    let mut merged = live.cloned().unwrap_or_else(|| json!({}));
    let mut dropped: Vec<&FieldPath> = previous
        .iter()
        .filter(|p| !config_set.contains(*p))
        .filter(|p| !others.iter().any(|o| o.starts_with(p)))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        remove(&mut merged, p);
    }
    merge(&mut merged, &config, &mut Vec::new(), types);

    let before = live.map(|l| owned_leaves(l, w, types)).unwrap_or_default();
    let after = owned_leaves(&merged, w, types);
    let cmp = Comparison::of(&before, &after);
    let changed = cmp.changed();
    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    for e in list.iter().filter(|e| e.manager != w.manager) {
        for p in e.fields.intersection(&changed) {
            conflicts.push((describe_manager(e), p.clone()));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    for e in &mut list {
        e.fields.retain(|p| !cmp.removed.contains(p));
        if e.manager != w.manager {
            e.fields.retain(|p| !changed.contains(p) || !force);
        }
    }
    match list.iter_mut().find(|e| e.is(w, "Apply")) {
        Some(e) => {
            e.fields = config_set;
            e.time = w.now.to_owned();
            e.api_version = w.api_version.to_owned();
        }
        None => list.push(Entry {
            manager: w.manager.to_owned(),
            operation: "Apply".into(),
            api_version: w.api_version.to_owned(),
            time: w.now.to_owned(),
            subresource: w.subresource.to_owned(),
            fields: config_set,
        }),
    }
    set_entries(&mut merged, &list);
    Ok(merged)
}

fn describe_manager(e: &Entry) -> String {
    let mut s = format!("{:?}", e.manager);
    if !e.subresource.is_empty() {
        s.push_str(&format!(" with subresource {:?}", e.subresource));
    }
    if e.operation == "Update" {
        s.push_str(&format!(" using {}", e.api_version));
        if !e.time.is_empty() {
            s.push_str(&format!(" at {}", e.time));
        }
    }
    s
}

/// The 409 structured-merge-diff reports, with one cause per conflicting field.
fn conflict_error(conflicts: &[(String, FieldPath)]) -> ApiError {
    let message = match conflicts {
        [(manager, path)] => format!(
            "Apply failed with 1 conflict: conflict with {manager}: {}",
            render(path)
        ),
        many => {
            let mut by_manager: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
            for (m, p) in many {
                by_manager.entry(m.as_str()).or_default().push(render(p));
            }
            let mut lines = Vec::new();
            for (m, paths) in by_manager {
                lines.push(format!("conflicts with {m}:"));
                lines.extend(paths.into_iter().map(|p| format!("- {p}")));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                many.len(),
                lines.join("\n")
            )
        }
    };
    ApiError::new(409, "Conflict", message).with_causes(
        conflicts
            .iter()
            .map(|(m, p)| json!({"type": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": render(p)}))
            .collect(),
    )
}

/// The default field manager for a request without `fieldManager`: the User-Agent's program
/// name, as the real server derives it.
pub(crate) fn manager_from_user_agent(user_agent: &str) -> String {
    let name = user_agent.split('/').next().unwrap_or_default().trim();
    if name.is_empty() {
        "unknown".to_owned()
    } else {
        name.chars().take(128).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    fn writer<'a>(manager: &'a str) -> Writer<'a> {
        Writer {
            manager,
            api_version: "apps/v1",
            subresource: "",
            status_subresource: true,
            now: "2024-01-01T00:00:00Z",
        }
    }

    fn sts(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s", "namespace": "ns"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
        })
    }

    #[test]
    fn apply_conflicts_with_another_managers_value_unless_forced() {
        let registry = Registry::default();
        let rt = registry.find("apps", "v1", "statefulsets").expect("sts");
        let types = VersionTypes {
            rt: &rt,
            version: "v1",
        };
        let created = apply(None, &sts(1, "a"), &writer("op"), &types, false).expect("create");
        // Another manager scales it with an update: it now owns .spec.replicas.
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(3);
        record_update(Some(&created), &mut scaled, &writer("kubectl"), &types);
        let again = apply(Some(&scaled), &sts(1, "b"), &writer("op"), &types, false);
        let err = again.expect_err("conflict");
        assert_eq!(err.code, 409);
        assert!(
            err.message.starts_with(
                "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1"
            ),
            "{}",
            err.message
        );
        assert!(err.message.ends_with(": .spec.replicas"), "{}", err.message);
        // The same value is shared, not a conflict; forcing takes it over.
        let shared =
            apply(Some(&scaled), &sts(3, "b"), &writer("op"), &types, false).expect("shared");
        assert_eq!(
            shared["spec"]["template"]["spec"]["containers"][0]["image"],
            "b"
        );
        let forced =
            apply(Some(&scaled), &sts(1, "b"), &writer("op"), &types, true).expect("forced");
        assert_eq!(forced["spec"]["replicas"], 1);
        let kubectl = entries(&forced)
            .into_iter()
            .find(|e| e.manager == "kubectl");
        assert!(
            kubectl.is_none(),
            "kubectl lost its only field: {kubectl:?}"
        );
    }

    #[test]
    fn reapplying_without_a_field_removes_it_and_keeps_other_managers_items() {
        let registry = Registry::default();
        let rt = registry.find("apps", "v1", "statefulsets").expect("sts");
        let types = VersionTypes {
            rt: &rt,
            version: "v1",
        };
        let mut with_label = sts(1, "a");
        with_label["metadata"]["labels"] = json!({"team": "x"});
        let created = apply(None, &with_label, &writer("op"), &types, false).expect("create");
        // Someone else adds a sidecar container.
        let mut sidecar = created.clone();
        sidecar["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "side", "image": "s"}));
        record_update(Some(&created), &mut sidecar, &writer("other"), &types);
        let reapplied =
            apply(Some(&sidecar), &sts(1, "a"), &writer("op"), &types, false).expect("apply");
        assert!(reapplied["metadata"]["labels"].get("team").is_none());
        let names: Vec<&str> = reapplied["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, vec!["c", "side"]);
        let ops: Vec<String> = entries(&reapplied)
            .iter()
            .map(|e| format!("{}:{}", e.manager, e.operation))
            .collect();
        assert_eq!(ops, vec!["op:Apply", "other:Update"]);
    }

    #[test]
    fn managers_default_from_the_user_agent() {
        assert_eq!(
            manager_from_user_agent("kubectl/v1.34.5 (linux/amd64)"),
            "kubectl"
        );
        assert_eq!(manager_from_user_agent(""), "unknown");
    }
}
