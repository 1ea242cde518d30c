//! Strategic merge patch, for built-in kinds: lists merge by their patch merge key (containers,
//! env and volumes by name, ports by number, conditions by type) instead of being replaced,
//! with the directives kubectl sends (`$patch`, `$setElementOrder/...`,
//! `$deleteFromPrimitiveList/...`, `$retainKeys`).

use serde_json::{Map, Value};

use crate::apiserver::resources::{ListType, Seg};

/// The list semantics of the patched type at a path.
pub(crate) type Types<'a> = &'a dyn Fn(&[Seg]) -> ListType;

/// Applies `patch` to `target`; the error text becomes a 422.
pub(crate) fn apply(target: &mut Value, patch: &Value, types: Types<'_>) -> Result<(), String> {
    if !patch.is_object() {
        return Err("a strategic merge patch is a JSON object".into());
    }
    let mut path = Vec::new();
    merge_object(target, patch, &mut path, types)
}

fn is_directive(k: &str) -> bool {
    k.starts_with('$')
}

/// The patch without directives, for values inserted as they are.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !is_directive(k))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_object(
    target: &mut Value,
    patch: &Value,
    path: &mut Vec<Seg>,
    types: Types<'_>,
) -> Result<(), String> {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = clean(patch);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch type: {other:?}")),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let drop = v.as_array().cloned().unwrap_or_default();
            if let Some(list) = target.get_mut(field).and_then(Value::as_array_mut) {
                list.retain(|item| !drop.contains(item));
            }
            continue;
        }
        if is_directive(k) {
            continue;
        }
        path.push(Seg::Field(k.clone()));
        let result = merge_field(target, k, v, path, types);
        path.pop();
        result?;
    }
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            path.push(Seg::Field(field.to_owned()));
            let key = match types(path) {
                ListType::Map(keys) => keys.first().cloned(),
                _ => None,
            };
            path.pop();
            if let (Some(list), Some(order)) = (
                target.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                reorder(list, order, key.as_deref());
            }
        }
    }
    if let Some(retain) = p.get("$retainKeys").and_then(Value::as_array) {
        if let Some(t) = target.as_object_mut() {
            t.retain(|k, _| retain.iter().any(|r| r == k));
        }
    }
    Ok(())
}

fn merge_field(
    target: &mut Value,
    k: &str,
    v: &Value,
    path: &mut Vec<Seg>,
    types: Types<'_>,
) -> Result<(), String> {
    let Some(t) = target.as_object_mut() else {
        return Ok(());
    };
    if v.is_null() || v.get("$patch").and_then(Value::as_str) == Some("delete") {
        t.remove(k);
        return Ok(());
    }
    match (t.get_mut(k), v) {
        (Some(existing @ Value::Object(_)), Value::Object(_)) => {
            merge_object(existing, v, path, types)
        }
        (Some(Value::Array(existing)), Value::Array(items)) => {
            merge_list(existing, items, path, types)
        }
        (_, Value::Array(items)) => {
            let mut fresh = Vec::new();
            merge_list(&mut fresh, items, path, types)?;
            t.insert(k.to_owned(), Value::Array(fresh));
            Ok(())
        }
        _ => {
            t.insert(k.to_owned(), clean(v));
            Ok(())
        }
    }
}

fn merge_list(
    target: &mut Vec<Value>,
    items: &[Value],
    path: &mut Vec<Seg>,
    types: Types<'_>,
) -> Result<(), String> {
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    let list_type = types(path);
    if replace || list_type == ListType::Atomic {
        *target = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(clean)
            .collect();
        return Ok(());
    }
    match list_type {
        ListType::Set => {
            for item in items {
                if !target.contains(item) {
                    target.push(item.clone());
                }
            }
        }
        ListType::Map(keys) => {
            let Some(key) = keys.first() else {
                *target = items.iter().map(clean).collect();
                return Ok(());
            };
            path.push(Seg::Item);
            for item in items {
                let Some(wanted) = item.get(key) else {
                    path.pop();
                    return Err(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    ));
                };
                let found = target.iter().position(|t| t.get(key) == Some(wanted));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (found, delete) {
                    (Some(i), true) => {
                        target.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => merge_object(&mut target[i], item, path, types)?,
                    (None, false) => target.push(clean(item)),
                }
            }
            path.pop();
        }
        ListType::Atomic => {}
    }
    Ok(())
}

/// `$setElementOrder`: the listed items first, in that order, then the rest as they were.
fn reorder(list: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let id = |v: &Value| match key {
        Some(k) => v.get(k).cloned(),
        None => Some(v.clone()),
    };
    let mut rest = std::mem::take(list);
    for o in order {
        let want = id(o);
        if let Some(i) = rest.iter().position(|v| id(v) == want) {
            list.push(rest.remove(i));
        }
    }
    list.extend(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::ListType;
    use serde_json::json;

    fn pod_types(path: &[Seg]) -> ListType {
        crate::apiserver::resources::builtin_list_type("Pod", path)
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"},
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
        ]}});
        apply(&mut pod, &patch, &pod_types).expect("patch");
        assert_eq!(pod["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(
            pod["spec"]["containers"][0]["env"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(pod["spec"]["containers"][1]["name"], "b");
    }

    #[test]
    fn directives_delete_replace_and_order() {
        let mut pod = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [
            {"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                "containers": [{"name": "b", "$patch": "delete"}],
            }
        });
        apply(&mut pod, &patch, &pod_types).expect("patch");
        assert_eq!(pod["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "c"}, {"name": "a"}])
        );
        let replace = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "z"}]}});
        apply(&mut pod, &replace, &pod_types).expect("patch");
        assert_eq!(pod["spec"]["containers"], json!([{"name": "z"}]));
    }

    #[test]
    fn lists_without_merge_keys_are_replaced_and_null_deletes() {
        let mut pod = json!({"spec": {"tolerations": [{"key": "a"}], "nodeName": "n"}});
        let patch = json!({"spec": {"tolerations": [{"key": "b"}], "nodeName": null}});
        apply(&mut pod, &patch, &pod_types).expect("patch");
        assert_eq!(pod["spec"], json!({"tolerations": [{"key": "b"}]}));
    }
}
