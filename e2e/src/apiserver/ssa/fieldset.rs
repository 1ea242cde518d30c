//! Field sets as structured-merge-diff sees them: the leaves of an object, list items of
//! associative lists by their keys (`k:{"name":"c"}`), set members by value (`v:"x"`), and the
//! `FieldsV1` JSON form `managedFields` carries them in.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::apiserver::resources::{ListType, Seg};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Pe {
    /// `f:name`: a field of an object.
    Field(String),
    /// `k:{...}`: an item of an associative list, by its key fields (canonical JSON).
    Key(String),
    /// `v:...`: a member of a set (canonical JSON).
    Value(String),
    /// `i:N`: an item of an atomic list (only seen in managedFields others wrote).
    Index(usize),
}

/// A path to a field.
pub(crate) type FieldPath = Vec<Pe>;

/// What is at a path: a leaf value, or a list item or set member that exists.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Leaf {
    Value(Value),
    Member,
}

/// The fields an object sets, with their values (for comparing two objects).
pub(crate) type Leaves = BTreeMap<FieldPath, Leaf>;

/// A set of field paths (a manager's ownership).
pub(crate) type FieldSet = BTreeSet<FieldPath>;

/// The type information field sets need: list types and atomic maps at schema paths.
pub(crate) trait Types {
    fn list_type(&self, path: &[Seg]) -> ListType;
    fn atomic_map(&self, path: &[Seg]) -> bool;
}

/// JSON with object keys sorted, so equal values have one text.
pub(crate) fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let ordered: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = Map::new();
                for (k, v) in ordered {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

fn schema_path(path: &[Pe]) -> Vec<Seg> {
    path.iter()
        .map(|pe| match pe {
            Pe::Field(f) => Seg::Field(f.clone()),
            _ => Seg::Item,
        })
        .collect()
}

/// Key fields of an associative list item, if it has them all uniquely... or `None`.
fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let obj = item.as_object()?;
    let mut k = Map::new();
    for key in keys {
        if let Some(v) = obj.get(key) {
            k.insert(key.clone(), v.clone());
        }
    }
    (!k.is_empty()).then(|| canonical(&Value::Object(k)))
}

/// The leaves of `v` below `path`.
pub(crate) fn leaves(v: &Value, path: &mut FieldPath, types: &dyn Types, out: &mut Leaves) {
    let sp = schema_path(path);
    match v {
        Value::Object(m) if !m.is_empty() && !types.atomic_map(&sp) => {
            for (k, child) in m {
                path.push(Pe::Field(k.clone()));
                leaves(child, path, types, out);
                path.pop();
            }
        }
        Value::Array(items) => match types.list_type(&sp) {
            ListType::Set => {
                for item in items {
                    path.push(Pe::Value(canonical(item)));
                    out.insert(path.clone(), Leaf::Member);
                    path.pop();
                }
            }
            ListType::Map(keys) => {
                let ks: Option<Vec<String>> = items.iter().map(|i| item_key(i, &keys)).collect();
                let unique = ks
                    .as_ref()
                    .is_some_and(|ks| ks.iter().collect::<BTreeSet<_>>().len() == ks.len());
                match ks {
                    Some(ks) if unique => {
                        for (item, k) in items.iter().zip(ks) {
                            path.push(Pe::Key(k));
                            out.insert(path.clone(), Leaf::Member);
                            leaves(item, path, types, out);
                            path.pop();
                        }
                    }
                    _ => {
                        out.insert(path.clone(), Leaf::Value(v.clone()));
                    }
                }
            }
            ListType::Atomic => {
                out.insert(path.clone(), Leaf::Value(v.clone()));
            }
        },
        _ => {
            out.insert(path.clone(), Leaf::Value(v.clone()));
        }
    }
}

/// Added, modified and removed paths from `old` to `new`.
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// Compares two leaf maps.
    pub(crate) fn of(old: &Leaves, new: &Leaves) -> Self {
        let mut c = Comparison {
            added: FieldSet::new(),
            modified: FieldSet::new(),
            removed: FieldSet::new(),
        };
        for (p, v) in new {
            match old.get(p) {
                None => {
                    c.added.insert(p.clone());
                }
                Some(o) if o != v => {
                    c.modified.insert(p.clone());
                }
                Some(_) => {}
            }
        }
        c.removed = old
            .keys()
            .filter(|p| !new.contains_key(*p))
            .cloned()
            .collect();
        c
    }

    /// Added or modified: what a writer took over.
    pub(crate) fn changed(&self) -> FieldSet {
        self.added.union(&self.modified).cloned().collect()
    }
}

/// `.spec.containers[name="c"].image`, as conflicts name fields.
pub(crate) fn render(path: &[Pe]) -> String {
    let mut out = String::new();
    for pe in path {
        match pe {
            Pe::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            Pe::Key(k) => {
                let fields: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                out.push('[');
                out.push_str(&fields.join(","));
                out.push(']');
            }
            Pe::Value(v) => {
                out.push_str("[=");
                out.push_str(v);
                out.push(']');
            }
            Pe::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Encodes a field set as `FieldsV1`.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    fn key(pe: &Pe) -> String {
        match pe {
            Pe::Field(f) => format!("f:{f}"),
            Pe::Key(k) => format!("k:{k}"),
            Pe::Value(v) => format!("v:{v}"),
            Pe::Index(i) => format!("i:{i}"),
        }
    }
    fn render(n: &Node) -> Value {
        let mut m = Map::new();
        if n.member && !n.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &n.children {
            m.insert(k.clone(), render(c));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(key(pe)).or_default();
        }
        node.member = true;
    }
    render(&root)
}

/// Decodes `FieldsV1`; unreadable entries are skipped.
pub(crate) fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        if m.is_empty() && !path.is_empty() {
            out.insert(path.clone());
            return;
        }
        for (k, child) in m {
            if k == "." {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
                continue;
            }
            let pe = match k.split_at_checked(2) {
                Some(("f:", f)) => Pe::Field(f.to_owned()),
                Some(("k:", key)) => match serde_json::from_str::<Value>(key) {
                    Ok(v) => Pe::Key(canonical(&v)),
                    Err(_) => continue,
                },
                Some(("v:", val)) => match serde_json::from_str::<Value>(val) {
                    Ok(v) => Pe::Value(canonical(&v)),
                    Err(_) => continue,
                },
                Some(("i:", i)) => match i.parse() {
                    Ok(i) => Pe::Index(i),
                    Err(_) => continue,
                },
                _ => continue,
            };
            path.push(pe);
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// Removes the field at `path` from `obj` (a field, a list item by key, or a set member).
pub(crate) fn remove(obj: &mut Value, path: &[Pe]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = obj;
    for pe in parents {
        let next = match (pe, node) {
            (Pe::Field(f), Value::Object(m)) => m.get_mut(f),
            (Pe::Key(k), Value::Array(items)) => items.iter_mut().find(|i| key_matches(i, k)),
            (Pe::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    match (last, node) {
        (Pe::Field(f), Value::Object(m)) => {
            m.remove(f);
        }
        (Pe::Key(k), Value::Array(items)) => items.retain(|i| !key_matches(i, k)),
        (Pe::Value(v), Value::Array(items)) => items.retain(|i| canonical(i) != *v),
        _ => {}
    }
}

fn key_matches(item: &Value, key: &str) -> bool {
    let Ok(Value::Object(k)) = serde_json::from_str::<Value>(key) else {
        return false;
    };
    k.iter().all(|(f, v)| item.get(f) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct PodTypes;
    impl Types for PodTypes {
        fn list_type(&self, path: &[Seg]) -> ListType {
            crate::apiserver::resources::builtin_list_type("Pod", path)
        }
        fn atomic_map(&self, _: &[Seg]) -> bool {
            false
        }
    }

    #[test]
    fn associative_list_items_are_keyed_and_round_trip_through_fields_v1() {
        let pod = json!({"metadata": {"finalizers": ["x"]}, "spec": {"containers": [{"name": "c", "image": "i", "args": ["a"]}]}});
        let mut l = Leaves::new();
        leaves(&pod, &mut Vec::new(), &PodTypes, &mut l);
        let set: FieldSet = l.keys().cloned().collect();
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({
                "f:metadata": {"f:finalizers": {"v:\"x\"": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                    ".": {}, "f:args": {}, "f:image": {}, "f:name": {}
                }}}
            })
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn comparison_and_removal_by_key() {
        let old = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}});
        let new = json!({"spec": {"containers": [{"name": "a", "image": "2"}]}});
        let (mut lo, mut ln) = (Leaves::new(), Leaves::new());
        leaves(&old, &mut Vec::new(), &PodTypes, &mut lo);
        leaves(&new, &mut Vec::new(), &PodTypes, &mut ln);
        let c = Comparison::of(&lo, &ln);
        assert_eq!(c.modified.len(), 1);
        assert_eq!(c.removed.len(), 3, "item b, its name and image");
        let path = c.modified.iter().next().cloned().unwrap_or_default();
        assert_eq!(render(&path), ".spec.containers[name=\"a\"].image");
        let mut obj = old.clone();
        remove(
            &mut obj,
            &[
                Pe::Field("spec".into()),
                Pe::Field("containers".into()),
                Pe::Key("{\"name\":\"b\"}".into()),
            ],
        );
        assert_eq!(obj["spec"]["containers"].as_array().map(Vec::len), Some(1));
    }
}
