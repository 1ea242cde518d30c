//! OpenAPI v3, as far as kubectl and helm use it: the root index of group versions, and per
//! group version the PATCH operations with their `x-kubernetes-group-version-kind`, the
//! `fieldValidation` parameter (so clients leave field validation to the server) and the patch
//! media types; custom resources' schemas as components (for `kubectl explain`). OpenAPI v2 is
//! not served (clients fall back to their compiled-in types).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::discovery::groups;
use super::patch::PatchKind;
use super::resources::ResourceType;

pub(super) const VERSION_TITLE: &str = "v1.34.0";

/// `core` group versions are `api/v1`; others `apis/<group>/<version>`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// FNV-1a of a document, for the `hash` clients cache by.
fn hash(doc: &Value) -> String {
    let h = doc
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{h:016X}")
}

/// `/openapi/v3`.
pub(crate) fn root(types: &[Arc<ResourceType>]) -> Value {
    let mut paths = Map::new();
    for (group, versions) in groups(types) {
        for v in versions {
            let p = gv_path(&group, &v);
            let doc = group_version(types, &group, &v).unwrap_or(Value::Null);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

/// Reverse-DNS component name of a custom resource: `dev.tributary.v1alpha1.KafkaTopic`.
pub(super) fn component_name(t: &ResourceType, version: &str) -> String {
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    format!("{}.{version}.{}", reversed.join("."), t.kind)
}

pub(super) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

pub(super) fn object_meta_schema() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "properties": {
            "name": s("Name must be unique within a namespace."),
            "generateName": s("Prefix the server uses to generate a unique name."),
            "namespace": s("Namespace defines the space within which each name must be unique."),
            "uid": s("UID is the unique in time and space value for this object."),
            "resourceVersion": s("An opaque value that represents the internal version of this object."),
            "generation": {"type": "integer", "format": "int64"},
            "creationTimestamp": {"type": "string", "format": "date-time"},
            "deletionTimestamp": {"type": "string", "format": "date-time"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "ownerReferences": {"type": "array", "items": {"type": "object"}},
            "managedFields": {"type": "array", "items": {"type": "object"}},
        }
    })
}

fn parameter(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(t: &ResourceType, version: &str, action: &str, body_types: &[&str]) -> Value {
    let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
    let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
        .into_iter()
        .map(parameter)
        .collect();
    let mut op = json!({
        "operationId": format!("{action}{}", t.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
    });
    if !body_types.is_empty() {
        let content: Map<String, Value> = body_types
            .iter()
            .map(|ct| ((*ct).to_owned(), json!({"schema": {"type": "object"}})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`, if served.
pub(crate) fn group_version(
    types: &[Arc<ResourceType>],
    group: &str,
    version: &str,
) -> Option<Value> {
    let served: Vec<&Arc<ResourceType>> = types
        .iter()
        .filter(|t| t.group == group && t.version(version).is_some())
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in served {
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let collection = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("{base}/{}", t.plural)
        };
        let json_body = ["application/json", "application/yaml"];
        paths.insert(
            collection.clone(),
            json!({"get": operation(t, version, "list", &[]), "post": operation(t, version, "post", &json_body)}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(t, version, "get", &[]),
                "put": operation(t, version, "put", &json_body),
                "patch": operation(t, version, "patch", PatchKind::accepted(t.is_custom())),
                "delete": operation(t, version, "delete", &[]),
            }),
        );
        if let Some(schema) = t.version(version).and_then(|v| v.schema.as_ref()) {
            let mut s = schema.raw.clone();
            s["properties"]["metadata"] =
                json!({"$ref": format!("#/components/schemas/{OBJECT_META}")});
            s["x-kubernetes-group-version-kind"] =
                json!([{"group": t.group, "version": version, "kind": t.kind}]);
            schemas.insert(component_name(t, version), s);
            schemas.insert(OBJECT_META.to_owned(), object_meta_schema());
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION_TITLE},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    #[test]
    fn patch_operations_declare_field_validation_and_their_kind() {
        let r = Registry::default();
        let doc = group_version(r.all(), "apps", "v1").expect("apps/v1");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "StatefulSet"
        );
        assert!(patch["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation")));
        assert!(patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some());
        let root = root(r.all());
        assert!(root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .is_some_and(|u| u.starts_with("/openapi/v3/apis/apps/v1?hash=")));
    }
}
