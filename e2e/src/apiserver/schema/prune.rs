//! Structural pruning: fields a schema does not declare are dropped (what a real server
//! stores), and reported so strict field validation can refuse them instead.

use serde_json::Value;

/// ObjectMeta's fields: the rest of `metadata` is unknown.
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Prunes `obj` (a whole custom resource) by `schema`; returns the pruned fields' paths
/// (`spec.foo`, `spec.items[0].bar`).
pub(crate) fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    let Some(map) = obj.as_object_mut() else {
        return pruned;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if let Some(m) = map.get_mut("metadata") {
                    prune_meta(m, "metadata", &mut pruned);
                }
            }
            _ => match props.and_then(|p| p.get(&k)) {
                Some(s) => {
                    if let Some(v) = map.get_mut(&k) {
                        node(s, v, &k, &mut pruned);
                    }
                }
                None if schema["x-kubernetes-preserve-unknown-fields"] == true => {}
                None => {
                    map.remove(&k);
                    pruned.push(k);
                }
            },
        }
    }
    pruned
}

/// Prunes an ObjectMeta (of a resource or an embedded one).
pub(crate) fn prune_meta(meta: &mut Value, path: &str, pruned: &mut Vec<String>) {
    if let Some(m) = meta.as_object_mut() {
        let unknown: Vec<String> = m
            .keys()
            .filter(|k| !OBJECT_META.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            m.remove(&k);
            pruned.push(format!("{path}.{k}"));
        }
    }
}

fn node(s: &Value, v: &mut Value, path: &str, pruned: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            let preserve = s["x-kubernetes-preserve-unknown-fields"] == true
                || s["additionalProperties"] == true;
            let embedded = s["x-kubernetes-embedded-resource"] == true;
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let child_path = format!("{path}.{k}");
                if embedded && matches!(k.as_str(), "apiVersion" | "kind") {
                    continue;
                }
                if embedded && k == "metadata" {
                    if let Some(m) = map.get_mut(&k) {
                        prune_meta(m, &child_path, pruned);
                    }
                    continue;
                }
                let child = props.and_then(|p| p.get(&k)).or(additional);
                match child {
                    Some(cs) => {
                        if let Some(cv) = map.get_mut(&k) {
                            let cp = if props.is_some_and(|p| p.contains_key(&k)) {
                                child_path
                            } else {
                                format!("{path}[{k}]")
                            };
                            node(cs, cv, &cp, pruned);
                        }
                    }
                    None if preserve => {}
                    None => {
                        map.remove(&k);
                        pruned.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    node(is, item, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn undeclared_fields_are_pruned_and_reported_with_their_paths() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "a": {"type": "integer"},
                "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }}
        }});
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "X",
            "metadata": {"name": "n", "bogus": 1},
            "spec": {"a": 1, "b": 2, "items": [{"n": "x", "m": 1}], "free": {"anything": 1}, "labels": {"k": "v"}},
            "extra": true,
        });
        let mut pruned = prune(&schema, &mut obj);
        pruned.sort();
        assert_eq!(
            pruned,
            vec!["extra", "metadata.bogus", "spec.b", "spec.items[0].m"]
        );
        assert_eq!(obj["spec"]["free"]["anything"], 1);
        assert_eq!(obj["spec"]["labels"]["k"], "v");
        assert!(obj["spec"].get("b").is_none());
    }
}
