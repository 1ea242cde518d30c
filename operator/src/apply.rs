//! The "apply it" half: server-side apply of rendered objects with one field manager.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

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
        + DeserializeOwned,
{
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let kind = K::kind(&());
    let rv = obj.resource_version().ok_or_else(|| Error::MissingField {
        what: format!("{kind} {ns}/{name}"),
        field: "resourceVersion",
    })?;
    let patch = serde_json::json!({ "metadata": { "resourceVersion": rv }, "status": status });
    Api::<K>::namespaced(client.clone(), &ns)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("update status of {kind} {ns}/{name}"), e))?;
    Ok(())
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
