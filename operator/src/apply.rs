//! The "apply it" half: server-side apply of rendered objects with one field manager.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result, FIELD_MANAGER};

/// Server-side applies `obj` in its namespace, forcing ownership of the fields we set.
pub async fn apply<K>(client: &Client, obj: &K) -> Result<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let name = obj.name_any();
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &ns);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(obj))
        .await
        .map_err(|e| Error::kube(format!("apply {} {ns}/{name}", K::kind(&())), e))
}

/// Writes `status` into `obj`'s status subresource only if nobody changed the object since it
/// was read (a merge patch carrying its resourceVersion: compare-and-swap), so a status
/// computed from a stale read is never stored.
pub async fn write_status<K>(client: &Client, obj: &K, status: &impl Serialize) -> Result<()>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize,
{
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let kind = K::kind(&());
    let rv = obj.resource_version().ok_or_else(|| Error::MissingField {
        what: format!("{kind} {ns}/{name}"),
        field: "resourceVersion",
    })?;
    let old = serde_json::to_value(obj)
        .ok()
        .and_then(|o| o.get("status").cloned())
        .unwrap_or(Value::Null);
    let new = serde_json::to_value(status).map_err(|e| Error::Encode {
        what: format!("status of {kind} {ns}/{name}"),
        source: e,
    })?;
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": rv },
        "status": merge_patch(&old, &new),
    });
    Api::<K>::namespaced(client.clone(), &ns)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("update status of {kind} {ns}/{name}"), e))?;
    Ok(())
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`: what a merge patch omits it
/// keeps, so a key `new` no longer has (a removed topic config, a cleared status field) must
/// be sent as null to go away.
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(was) if was == value => {}
                    Some(was) => {
                        patch.insert(key.clone(), merge_patch(was, value));
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// Deletes `name` if it exists (used when a spec turns an optional child off).
pub async fn delete_if_exists<K>(client: &Client, ns: &str, name: &str) -> Result<()>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(
            format!("delete {} {ns}/{name}", K::kind(&())),
            e,
        )),
    }
}

/// Server-side applies an object of a resource the operator has no Rust type for. Returns the
/// raw kube error so callers can tell "resource not served" (404) from other failures.
pub async fn apply_dynamic(
    client: &Client,
    resource: &ApiResource,
    obj: &DynamicObject,
) -> std::result::Result<DynamicObject, kube::Error> {
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, resource);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&obj.name_any(), &params, &Patch::Apply(obj))
        .await
}

/// Deletes a dynamic object if it exists; a missing object or resource is not an error.
pub async fn delete_dynamic_if_exists(
    client: &Client,
    resource: &ApiResource,
    ns: &str,
    name: &str,
) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(
            format!("delete {} {ns}/{name}", resource.kind),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    #[test]
    fn a_removed_key_is_sent_as_null_and_unchanged_ones_are_left_out() {
        let old = json!({"effectiveConfig": {"retention.ms": "1", "max.message.bytes": "2048"},
                         "phase": "Ready", "roll": {"restarting": 1, "waitingFor": "x"}});
        let new = json!({"effectiveConfig": {"max.message.bytes": "2048"}, "phase": "Ready"});
        assert_eq!(
            merge_patch(&old, &new),
            json!({"effectiveConfig": {"retention.ms": null}, "roll": null})
        );
    }

    #[test]
    fn applying_the_patch_to_the_old_value_gives_the_new_one() {
        let old = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x", "gone": {"deep": true}});
        let new = json!({"a": {"b": 2, "c": [3]}, "d": "x", "e": {"f": 1}});
        let mut applied = old.clone();
        json_patch_merge(&mut applied, &merge_patch(&old, &new));
        assert_eq!(applied, new);
    }

    /// RFC 7386's apply, as the API server runs it.
    fn json_patch_merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
        let serde_json::Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        if let serde_json::Value::Object(map) = target {
            for (k, v) in patch {
                if v.is_null() {
                    map.remove(k);
                } else {
                    json_patch_merge(map.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
    }
}
