//! The control loops of kube-controller-manager and apiextensions that API semantics depend
//! on, run to a fixed point after every write (so each request sees their effect, as a real
//! cluster shows it a moment later):
//!
//! - CRDs: establish them (status), serve their resources, and on deletion remove every
//!   custom resource before the CRD goes;
//! - garbage collection: orphan or delete dependents by ownerReferences (background,
//!   foreground, orphan), drop dangling owner references;
//! - namespaces: a `default` ServiceAccount in each, and deletion of a namespace's contents
//!   before the namespace itself;
//! - ClusterRole aggregation: each ClusterRole with an `aggregationRule` stores the rules of
//!   the ClusterRoles its selectors match.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::convert::to_stored;
use super::rbac::aggregation::stale_aggregates;
use super::resources::crd::{self, CLEANUP_FINALIZER};
use super::rest::{has_finalizers, DeleteOptions, FOREGROUND, ORPHAN};
use super::state::{now, State};
use super::store::Key;

const CRDS: &str = "apiextensions.k8s.io/customresourcedefinitions";
const NAMESPACES: &str = "/namespaces";
const CLUSTER_ROLES: &str = "rbac.authorization.k8s.io/clusterroles";
/// A bound on fixed-point passes, in case two rules ever fight.
const MAX_PASSES: usize = 100;

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"].get("deletionTimestamp").is_some()
}

fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

impl State {
    /// Runs every controller until nothing changes.
    pub(crate) fn settle(&mut self) {
        for _ in 0..MAX_PASSES {
            let changed = self.crds()
                | self.garbage_collect()
                | self.namespaces()
                | self.aggregate_cluster_roles();
            if !changed {
                return;
            }
        }
        tracing::warn!("controllers did not settle after {MAX_PASSES} passes");
    }

    /// Writes `obj` at `key` unless it has no finalizers left while deleting (then removes it).
    fn put_or_finish(&mut self, key: &Key, obj: Value) {
        if deleting(&obj) && !has_finalizers(&obj) {
            self.store.remove(key);
        } else {
            self.store.put(key, obj);
        }
    }

    fn remove_finalizer(&mut self, key: &Key, finalizer: &str) {
        if let Some(mut obj) = self.store.get(key).cloned() {
            let kept: Vec<String> = finalizers(&obj)
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            obj["metadata"]["finalizers"] = json!(kept);
            if kept.is_empty() {
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove("finalizers");
                }
            }
            self.put_or_finish(key, obj);
        }
    }

    fn background_delete(&mut self, key: &Key, propagation: &str) {
        let opts = DeleteOptions {
            propagation: Some(propagation.to_owned()),
            grace_period: None,
            ..Default::default()
        };
        if let Err(e) = self.delete_stored(key, &opts) {
            tracing::debug!(?key, "controller delete: {e}");
        }
    }

    /// CRD controllers; true when anything changed.
    fn crds(&mut self) -> bool {
        let mut changed = false;
        let stored: Vec<(Key, Value)> = self
            .store
            .scan(CRDS, None)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Serve what the CRDs define, and nothing for CRDs that are gone.
        let mut live_names = Vec::new();
        for (key, obj) in &stored {
            live_names.push(key.name.clone());
            let stamp = format!("{}:{}", uid(obj), obj["metadata"]["generation"]);
            if self.crd_stamps.get(&key.name) != Some(&stamp) {
                let types = crd::resource_type(obj).into_iter().collect();
                self.registry.set_crd(&key.name, types);
                self.crd_stamps.insert(key.name.clone(), stamp);
            }
        }
        let gone: Vec<String> = self
            .crd_stamps
            .keys()
            .filter(|n| !live_names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            self.registry.set_crd(&name, Vec::new());
            self.crd_stamps.remove(&name);
        }
        for (key, mut obj) in stored {
            if deleting(&obj) {
                changed |= self.remove_custom_resources(&key, &obj);
            } else if !finalizers(&obj).iter().any(|f| f == CLEANUP_FINALIZER) {
                let mut fs = finalizers(&obj);
                fs.push(CLEANUP_FINALIZER.to_owned());
                obj["metadata"]["finalizers"] = json!(fs);
                self.store.put(&key, obj.clone());
                changed = true;
            }
            if let Some(status) = self
                .store
                .get(&key)
                .and_then(|o| crd::settled_status(o, &now()))
            {
                if let Some(mut current) = self.store.get(&key).cloned() {
                    current["status"] = status;
                    self.store.put(&key, current);
                    changed = true;
                }
            }
        }
        changed
    }

    /// Deletes the custom resources of a deleting CRD; drops its finalizer once none remain.
    fn remove_custom_resources(&mut self, key: &Key, crd_obj: &Value) -> bool {
        let group = crd_obj["spec"]["group"].as_str().unwrap_or_default();
        let plural = crd_obj["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default();
        let storage = format!("{group}/{plural}");
        let instances: Vec<(Key, bool)> = self
            .store
            .scan(&storage, None)
            .map(|(k, v)| (k.clone(), deleting(v)))
            .collect();
        if instances.is_empty() {
            if finalizers(crd_obj).iter().any(|f| f == CLEANUP_FINALIZER) {
                self.remove_finalizer(key, CLEANUP_FINALIZER);
                return true;
            }
            return false;
        }
        let mut changed = false;
        for (k, already) in instances {
            if !already {
                self.background_delete(&k, "Background");
                changed = true;
            }
        }
        changed
    }

    /// The garbage collector; true when anything changed.
    fn garbage_collect(&mut self) -> bool {
        // One pass over the objects, without copying them: dependents by owner uid, owners
        // waiting for the collector (orphan or foreground), and dependents with owners gone.
        let mut dependents: HashMap<String, Vec<Key>> = HashMap::new();
        let mut waiting: Vec<(Key, String, &'static str)> = Vec::new();
        let mut dangling: Vec<(Key, Vec<Value>)> = Vec::new();
        for (key, obj) in self.store.iter() {
            let refs = obj["metadata"]["ownerReferences"].as_array();
            for u in refs.into_iter().flatten().filter_map(|r| r["uid"].as_str()) {
                dependents
                    .entry(u.to_owned())
                    .or_default()
                    .push(key.clone());
            }
            if deleting(obj) {
                let fs = finalizers(obj);
                let policy = [ORPHAN, FOREGROUND]
                    .into_iter()
                    .find(|p| fs.iter().any(|f| f == p));
                if let Some(p) = policy {
                    waiting.push((key.clone(), uid(obj).to_owned(), p));
                }
            } else if let Some(refs) = refs.filter(|r| !r.is_empty()) {
                let solid: Vec<Value> = refs
                    .iter()
                    .filter(|r| self.owner_exists(key, r))
                    .cloned()
                    .collect();
                if solid.len() != refs.len() {
                    dangling.push((key.clone(), solid));
                }
            }
        }
        let mut changed = false;
        for (key, owner_uid, policy) in waiting {
            let deps = dependents.get(&owner_uid).cloned().unwrap_or_default();
            if policy == ORPHAN {
                for d in &deps {
                    self.drop_owner_ref(d, &owner_uid);
                }
                self.remove_finalizer(&key, ORPHAN);
                changed = true;
                continue;
            }
            let mut blocking = false;
            for d in &deps {
                let Some(dep) = self.store.get(d) else {
                    continue;
                };
                blocking |= dep["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["uid"] == owner_uid.as_str() && r["blockOwnerDeletion"] == true);
                if !deleting(dep) {
                    let has_own = dependents.get(uid(dep)).is_some_and(|v| !v.is_empty());
                    self.background_delete(d, if has_own { "Foreground" } else { "Background" });
                    changed = true;
                }
            }
            if !blocking {
                self.remove_finalizer(&key, FOREGROUND);
                changed = true;
            }
        }
        for (key, solid) in dangling {
            if solid.is_empty() {
                self.background_delete(&key, "Background");
            } else if let Some(mut updated) = self.store.get(&key).cloned() {
                updated["metadata"]["ownerReferences"] = json!(solid);
                self.store.put(&key, updated);
            }
            changed = true;
        }
        changed
    }

    /// Whether the owner `r` of the object at `key` exists (same uid, and in the dependent's
    /// namespace when the owner is namespaced).
    fn owner_exists(&self, key: &Key, r: &Value) -> bool {
        let Some((owner_key, _)) = r["uid"].as_str().and_then(|u| self.store.by_uid(u)) else {
            return false;
        };
        owner_key.namespace.is_empty() || owner_key.namespace == key.namespace
    }

    fn drop_owner_ref(&mut self, key: &Key, owner_uid: &str) {
        let Some(mut obj) = self.store.get(key).cloned() else {
            return;
        };
        let refs: Vec<Value> = obj["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["uid"] != owner_uid)
            .cloned()
            .collect();
        if refs.is_empty() {
            if let Some(m) = obj["metadata"].as_object_mut() {
                m.remove("ownerReferences");
            }
        } else {
            obj["metadata"]["ownerReferences"] = json!(refs);
        }
        self.store.put(key, obj);
    }

    /// The namespace controllers; true when anything changed.
    fn namespaces(&mut self) -> bool {
        let mut changed = false;
        let namespaces: Vec<(Key, Value)> = self
            .store
            .scan(NAMESPACES, None)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, ns) in namespaces {
            if deleting(&ns) {
                changed |= self.empty_namespace(&key, &ns);
            } else {
                changed |= self.default_service_account(&key.name);
            }
        }
        changed
    }

    /// The clusterrole-aggregation controller: writes each aggregated ClusterRole's rules
    /// when they differ from what its selectors match; true when any was written.
    fn aggregate_cluster_roles(&mut self) -> bool {
        let policy = self.rbac_policy();
        if self
            .aggregated
            .as_ref()
            .is_some_and(|done| Arc::ptr_eq(done, &policy))
        {
            return false;
        }
        let stale = stale_aggregates(&policy);
        if stale.is_empty() {
            self.aggregated = Some(policy);
            return false;
        }
        for role in &stale {
            let key = Key::new(CLUSTER_ROLES, "", &role.name);
            let Some(mut obj) = self.store.get(&key).cloned() else {
                continue;
            };
            if role.rules.is_empty() {
                if let Some(m) = obj.as_object_mut() {
                    m.remove("rules");
                }
            } else {
                obj["rules"] = json!(role.rules);
            }
            self.store.put(&key, obj);
        }
        true
    }

    fn default_service_account(&mut self, namespace: &str) -> bool {
        let key = Key::new("/serviceaccounts", namespace, "default");
        if self.store.get(&key).is_some() {
            return false;
        }
        let Some(sa_type) = self.registry.by_storage("/serviceaccounts") else {
            return false;
        };
        let sa = json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace, "uid": self.store.next_uid(), "creationTimestamp": now()},
        });
        self.store.put(&key, to_stored(&sa_type, &sa_type, &sa));
        true
    }

    /// Deletes everything in a terminating namespace; finalizes it once it is empty.
    fn empty_namespace(&mut self, key: &Key, ns: &Value) -> bool {
        let contents: Vec<(Key, bool)> = self
            .store
            .iter()
            .filter(|(k, _)| k.namespace == key.name)
            .map(|(k, o)| (k.clone(), deleting(o)))
            .collect();
        if contents.is_empty() {
            let spec_finalizers = ns["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            if spec_finalizers {
                let mut done = ns.clone();
                done["spec"]["finalizers"] = json!([]);
                self.put_or_finish(key, done);
                return true;
            }
            return false;
        }
        let mut changed = false;
        for (k, already) in contents {
            if !already {
                self.background_delete(&k, "Background");
                changed = true;
            }
        }
        changed
    }
}
