//! Patch semantics: JSON merge patch, JSON patch, and a server-side apply that also removes
//! fields the same manager applied before but no longer sets.

use serde_json::Value;

/// RFC 7386 merge patch.
pub(super) fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch; the error text becomes a 422 message. Like the API server, a `test`
/// for `null` passes when the path does not exist (kube's finalizer helper relies on it).
pub(super) fn json(target: &mut Value, patch: &Value) -> Result<(), String> {
    let ops: Vec<Value> = patch
        .as_array()
        .ok_or("a JSON patch is an array")?
        .iter()
        .filter(|op| {
            let absent_null_test = op["op"] == "test"
                && op["value"].is_null()
                && op["path"]
                    .as_str()
                    .is_some_and(|p| target.pointer(p).is_none());
            !absent_null_test
        })
        .cloned()
        .collect();
    let p: json_patch::Patch =
        serde_json::from_value(Value::Array(ops)).map_err(|e| e.to_string())?;
    json_patch::patch(target, &p).map_err(|e| e.to_string())
}

/// Server-side apply, simplified: maps merge recursively, lists and scalars are replaced, and
/// fields present in `previous` (this manager's last applied config) but absent from `applied`
/// are removed.
pub(super) fn apply(target: &mut Value, previous: Option<&Value>, applied: &Value) {
    if let Some(prev) = previous {
        prune(target, prev, applied);
    }
    overlay(target, applied);
}

fn overlay(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => overlay(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

fn prune(target: &mut Value, previous: &Value, applied: &Value) {
    let (Value::Object(t), Value::Object(p)) = (target, previous) else {
        return;
    };
    for (k, pv) in p {
        match applied.get(k) {
            None => {
                t.remove(k);
            }
            Some(av) => {
                if let Some(tv) = t.get_mut(k) {
                    prune(tv, pv, av);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_removes_fields_the_manager_dropped_and_keeps_others() {
        let mut obj = json!({"spec": {"a": 1, "b": 2, "other": 3}});
        apply(
            &mut obj,
            Some(&json!({"spec": {"a": 1, "b": 2}})),
            &json!({"spec": {"a": 5}}),
        );
        assert_eq!(obj, json!({"spec": {"a": 5, "other": 3}}));
    }
}
