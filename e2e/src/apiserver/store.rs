//! Object storage: one global resourceVersion counter (etcd's revision), objects in key
//! order (list order), a uid index for owner references, and every change recorded in the
//! watch [`History`].

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::history::{Change, EventType, History};

/// Where an object lives: resource storage id (`group/plural`), namespace (empty when
/// cluster-scoped), name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub(crate) resource: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl Key {
    /// A key.
    pub(crate) fn new(resource: &str, namespace: &str, name: &str) -> Self {
        Key {
            resource: resource.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// The objects and their history.
pub(crate) struct Store {
    rv: u64,
    uid: u64,
    objects: BTreeMap<Key, Value>,
    uids: HashMap<String, Key>,
    pub(crate) history: History,
}

impl Store {
    /// An empty store keeping `history` events for watches.
    pub(crate) fn new(history: usize) -> Self {
        Store {
            rv: 0,
            uid: 0,
            objects: BTreeMap::new(),
            uids: HashMap::new(),
            history: History::new(history),
        }
    }

    /// The current resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// The object at `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// The object with `uid`.
    pub(crate) fn by_uid(&self, uid: &str) -> Option<(&Key, &Value)> {
        let key = self.uids.get(uid)?;
        self.objects.get_key_value(key)
    }

    /// Objects of `resource`, in `namespace` if given, in key order.
    pub(crate) fn scan<'a>(
        &'a self,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let start = Key::new(resource, namespace.unwrap_or_default(), "");
        self.objects.range(start..).take_while(move |(k, _)| {
            k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// Every object in key order, for the controllers' sweeps.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter()
    }

    /// A fresh uid.
    pub(crate) fn next_uid(&mut self) -> String {
        self.uid += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uid)
    }

    /// Stores `obj` at `key` with the next resourceVersion, recording ADDED or MODIFIED.
    pub(crate) fn put(&mut self, key: &Key, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if let Some(uid) = obj["metadata"]["uid"].as_str() {
            self.uids.insert(uid.to_owned(), key.clone());
        }
        let previous = self.objects.insert(key.clone(), obj.clone());
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.history.record(Change {
            rv: self.rv,
            key: key.clone(),
            kind,
            object: obj.clone(),
            previous,
        });
        obj
    }

    /// Removes the object at `key`, recording DELETED with its last state.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Value> {
        let previous = self.objects.remove(key)?;
        if let Some(uid) = previous["metadata"]["uid"].as_str() {
            self.uids.remove(uid);
        }
        self.rv += 1;
        let mut last = previous.clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.history.record(Change {
            rv: self.rv,
            key: key.clone(),
            kind: EventType::Deleted,
            object: last.clone(),
            previous: Some(previous),
        });
        Some(last)
    }

    /// The objects of `resource` (in `namespace`) as they were at resourceVersion `rv`, or
    /// `Err(compacted)` when the history no longer reaches back that far.
    pub(crate) fn snapshot(
        &self,
        resource: &str,
        namespace: Option<&str>,
        rv: u64,
    ) -> Result<Vec<(Key, Value)>, u64> {
        let later = self.history.since(rv)?;
        let mut state: BTreeMap<Key, Value> = self
            .scan(resource, namespace)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for change in later.iter().rev() {
            let k = &change.key;
            if k.resource != resource || namespace.is_some_and(|ns| ns != k.namespace) {
                continue;
            }
            match &change.previous {
                Some(prev) => state.insert(k.clone(), prev.clone()),
                None => state.remove(k),
            };
        }
        Ok(state.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_bumps_the_resource_version_and_snapshots_see_the_past() {
        let mut s = Store::new(100);
        let a = Key::new("/configmaps", "ns", "a");
        let b = Key::new("/configmaps", "ns", "b");
        s.put(&a, json!({"metadata": {"name": "a"}, "data": {"v": "1"}}));
        let rv1 = s.rv();
        s.put(&a, json!({"metadata": {"name": "a"}, "data": {"v": "2"}}));
        s.put(&b, json!({"metadata": {"name": "b"}}));
        s.remove(&a);
        assert_eq!(s.rv(), 4);
        let now: Vec<String> = s
            .scan("/configmaps", Some("ns"))
            .map(|(k, _)| k.name.clone())
            .collect();
        assert_eq!(now, vec!["b"]);
        let then = s
            .snapshot("/configmaps", Some("ns"), rv1)
            .expect("in history");
        assert_eq!(then.len(), 1);
        assert_eq!(then[0].1["data"]["v"], "1");
        assert_eq!(then[0].1["metadata"]["resourceVersion"], "1");
    }

    #[test]
    fn a_snapshot_older_than_the_history_is_refused() {
        let mut s = Store::new(1);
        let a = Key::new("/configmaps", "ns", "a");
        for _ in 0..3 {
            s.put(&a, json!({"metadata": {"name": "a"}}));
        }
        assert_eq!(s.snapshot("/configmaps", None, 1).err(), Some(2));
    }
}
