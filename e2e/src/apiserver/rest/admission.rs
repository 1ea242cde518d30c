//! Decoding a written object (type, identity, unknown fields, defaults) and validating the
//! result, with the real server's answers: 400 for what cannot be decoded (strict unknown
//! fields included), 422 Invalid for what does not validate.

use serde_json::Value;

use super::{FieldValidation, Target};
use crate::apiserver::error::{ApiError, ApiResult, FieldError};
use crate::apiserver::names::validate_meta;
use crate::apiserver::resources::crd;
use crate::apiserver::schema::prune;
use crate::apiserver::state::State;

/// A decoded object and the warnings decoding produced.
pub(super) struct Decoded {
    pub(super) object: Value,
    pub(super) warnings: Vec<String>,
}

/// Decodes `body` written to `target` (object `name` when the URL names one).
pub(super) fn decode(
    target: &Target,
    body: Value,
    name: Option<&str>,
    validation: FieldValidation,
) -> ApiResult<Decoded> {
    let rt = &target.rt;
    let api_version = target.api_version();
    let Value::Object(mut map) = body else {
        return Err(ApiError::bad_request(format!(
            "the body of the request is not a {} object",
            rt.kind
        )));
    };
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {why}",
            rt.kind, target.version, rt.kind
        ))
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::String(api_version.clone()));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::String(rt.kind.clone()));
        }
        Some(k) if k == rt.kind => {}
        Some(k) => return Err(cannot(format!("unexpected kind {k:?}"))),
    }
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if !meta.is_object() {
        return Err(cannot("metadata must be an object".into()));
    }
    if rt.namespaced {
        match meta["namespace"].as_str() {
            None | Some("") => meta["namespace"] = Value::String(target.namespace.clone()),
            Some(ns) if ns == target.namespace => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
        }
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    if let Some(url_name) = name {
        match meta["name"].as_str() {
            None | Some("") => meta["name"] = Value::String(url_name.to_owned()),
            Some(n) if n == url_name => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({url_name})"
                )))
            }
        }
    }
    let mut object = Value::Object(map);
    let unknown = unknown_fields(target, &mut object).map_err(cannot)?;
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        let listed: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect();
        match validation {
            FieldValidation::Strict => {
                return Err(cannot(format!(
                    "strict decoding error: {}",
                    listed.join(", ")
                )))
            }
            FieldValidation::Warn => warnings = listed,
            FieldValidation::Ignore => {}
        }
    }
    if let Some(schema) = rt.version(&target.version).and_then(|v| v.schema.as_ref()) {
        object = schema.default(&object);
    }
    Ok(Decoded { object, warnings })
}

/// Prunes what the type does not declare and returns those paths; `Err` when the object does
/// not decode as its type at all.
fn unknown_fields(target: &Target, obj: &mut Value) -> Result<Vec<String>, String> {
    let rt = &target.rt;
    if let Some(schema) = rt.version(&target.version).and_then(|v| v.schema.as_ref()) {
        return Ok(prune(&schema.raw, obj));
    }
    let Some(round_trip) = rt.round_trip else {
        // A custom resource version without a schema keeps everything.
        return Ok(Vec::new());
    };
    let typed = round_trip(obj.clone()).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    drop_unknown(obj, &typed, "", &mut unknown);
    Ok(unknown)
}

/// Removes from `obj` what `typed` (its round trip through the Rust type) lost.
fn drop_unknown(obj: &mut Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (obj, typed) {
        (Value::Object(m), Value::Object(t)) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (m.get_mut(&k), t.get(&k)) {
                    (Some(Value::Null), None) => {
                        m.remove(&k);
                    }
                    (Some(_), None) => {
                        m.remove(&k);
                        out.push(child);
                    }
                    (Some(v), Some(tv)) => drop_unknown(v, tv, &child, out),
                    (None, _) => {}
                }
            }
        }
        (Value::Array(items), Value::Array(t)) if items.len() == t.len() => {
            for (i, (item, ti)) in items.iter_mut().zip(t).enumerate() {
                drop_unknown(item, ti, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Validates the object about to be stored (`old`: the stored one on update), 422 if invalid.
pub(super) fn validate(target: &Target, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    let rt = &target.rt;
    let mut errs: Vec<FieldError> = validate_meta(&rt.kind, &rt.group, &obj["metadata"]);
    if let Some(schema) = rt.version(&target.version).and_then(|v| v.schema.as_ref()) {
        errs.extend(schema.validate(obj, old));
    }
    if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
        errs.extend(crd::validate(obj, old));
    }
    if let (Some(old), true) = (old, obj["metadata"].get("deletionTimestamp").is_some()) {
        let before: Vec<&Value> = old["metadata"]["finalizers"]
            .as_array()
            .map(|f| f.iter().collect())
            .unwrap_or_default();
        let added = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| !before.contains(&x)));
        if added {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted",
            ));
        }
    }
    if errs.is_empty() {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid(&rt.kind, &rt.group, name, &errs))
}

/// NamespaceLifecycle admission: namespaced objects are created only in existing namespaces
/// that are not being deleted.
pub(super) fn namespace_admits(st: &State, target: &Target, name: &str) -> ApiResult<()> {
    if !target.rt.namespaced {
        return Ok(());
    }
    let key = crate::apiserver::store::Key::new("/namespaces", "", &target.namespace);
    match st.store.get(&key) {
        None => Err(ApiError::not_found("namespaces", "", &target.namespace)),
        Some(ns) if ns["metadata"].get("deletionTimestamp").is_some() => {
            Err(ApiError::forbidden(format!(
                "{} {name:?} is forbidden: unable to create new content in namespace {} because it is being terminated",
                target.rt.qualified(),
                target.namespace
            )))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_of_built_ins_are_found_through_their_types() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "bogus": 1},
            "data": {"k": "v"}, "extra": {"x": 1}, "immutable": null});
        let typed = crate::apiserver::resources::Registry::default()
            .find("", "v1", "configmaps")
            .and_then(|rt| rt.round_trip)
            .map(|rt| rt(obj.clone()))
            .expect("configmaps")
            .expect("decodes");
        let mut unknown = Vec::new();
        drop_unknown(&mut obj, &typed, "", &mut unknown);
        unknown.sort();
        assert_eq!(unknown, vec!["extra", "metadata.bogus"]);
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
        );
    }
}
