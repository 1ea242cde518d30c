//! CustomResourceDefinitions: validating them as the apiextensions server does, turning an
//! accepted one into the [`ResourceType`] it serves, and the status its controllers write
//! (`NamesAccepted`, `Established`, `storedVersions`).

use std::sync::Arc;

use serde_json::{json, Value};

use super::{Column, Conversion, ResourceType, ScaleSpec, Version};
use crate::apiserver::error::FieldError;
use crate::apiserver::schema::Schema;

/// Finalizer the CRD cleanup controller keeps until every custom resource is gone.
pub(crate) const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Errors that make the CRD invalid (422), `old` being the stored one on update.
pub(crate) fn validate(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            "spec.group",
            &spec["group"],
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    } else if plural != plural.to_lowercase() {
        errs.push(FieldError::invalid(
            "spec.names.plural",
            &spec["names"]["plural"],
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        ));
    }
    if spec["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        errs.push(FieldError::required("spec.names.kind", ""));
    }
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            &crd["metadata"]["name"],
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        _ => errs.push(FieldError::new(
            crate::apiserver::error::FieldErrorKind::NotSupported,
            "spec.scope",
            Some(crate::apiserver::error::go_value(&spec["scope"])),
            "supported values: \"Cluster\", \"Namespaced\"",
        )),
    }
    if let Some(old) = old {
        if old["spec"]["scope"] != spec["scope"] {
            errs.push(FieldError::invalid(
                "spec.scope",
                &spec["scope"],
                "field is immutable",
            ));
        }
    }
    let versions = spec["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    } else if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            &Value::Array(versions.to_vec()),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
        match v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            None => errs.push(FieldError::required(path, "schemas are required")),
            Some(schema) => {
                structural(schema, &path, &mut errs);
                let (_, rule_errors) = Schema::new(schema.clone());
                for e in rule_errors {
                    errs.push(FieldError::invalid(
                        format!("{path}.x-kubernetes-validations"),
                        &Value::String(e.clone()),
                        format!("compilation failed: {e}"),
                    ));
                }
            }
        }
    }
    errs
}

/// A structural schema names a type on every node, except where unknown fields are preserved
/// or a value is int-or-string.
fn structural(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let free = s["x-kubernetes-int-or-string"] == true
        || s["x-kubernetes-preserve-unknown-fields"] == true;
    if s.get("type").is_none() && !free {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must not be empty for specified object fields",
        ));
    }
    if let Some(props) = s["properties"].as_object() {
        for (k, child) in props {
            structural(child, &format!("{path}.properties[{k}]"), errs);
        }
    }
    if s["items"].is_object() {
        structural(&s["items"], &format!("{path}.items"), errs);
    }
    if s["additionalProperties"].is_object() {
        structural(
            &s["additionalProperties"],
            &format!("{path}.additionalProperties"),
            errs,
        );
    }
}

/// The resource an accepted CRD serves (only its served versions).
pub(crate) fn resource_type(crd: &Value) -> Option<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str()?.to_owned();
    let plural = names["plural"].as_str()?.to_owned();
    let kind = names["kind"].as_str()?.to_owned();
    let versions: Vec<Version> = spec["versions"]
        .as_array()?
        .iter()
        .filter(|v| v["served"] != false)
        .filter_map(version)
        .collect();
    if versions.is_empty() {
        return None;
    }
    Some(ResourceType {
        group: group.clone(),
        plural: plural.clone(),
        singular: names["singular"]
            .as_str()
            .map_or_else(|| kind.to_lowercase(), str::to_owned),
        kind,
        short_names: str_list(&names["shortNames"]),
        categories: str_list(&names["categories"]),
        namespaced: spec["scope"] != "Cluster",
        versions,
        storage: format!("{group}/{plural}"),
        conversion: Conversion::ApiVersion,
        round_trip: None,
        generation: true,
        crd: crd["metadata"]["name"].as_str().map(str::to_owned),
        create_only: false,
    })
}

fn version(v: &Value) -> Option<Version> {
    let schema = v["schema"]["openAPIV3Schema"].clone();
    let schema = (!schema.is_null()).then(|| Arc::new(Schema::new(schema).0));
    let columns = v["additionalPrinterColumns"]
        .as_array()
        .map(|cols| cols.iter().filter_map(column).collect())
        .unwrap_or_default();
    let sub = &v["subresources"];
    let scale = sub.get("scale").map(|s| ScaleSpec {
        spec_replicas: s["specReplicasPath"]
            .as_str()
            .unwrap_or(".spec.replicas")
            .to_owned(),
        status_replicas: s["statusReplicasPath"]
            .as_str()
            .unwrap_or(".status.replicas")
            .to_owned(),
        label_selector: s["labelSelectorPath"].as_str().map(str::to_owned),
    });
    Some(Version {
        name: v["name"].as_str()?.to_owned(),
        storage: v["storage"] == true,
        schema,
        columns,
        status: sub.get("status").is_some(),
        scale,
    })
}

fn column(c: &Value) -> Option<Column> {
    Some(Column {
        name: c["name"].as_str()?.to_owned(),
        type_: c["type"].as_str().unwrap_or("string").to_owned(),
        format: c["format"].as_str().unwrap_or_default().to_owned(),
        description: c["description"].as_str().unwrap_or_default().to_owned(),
        priority: c["priority"].as_i64().unwrap_or(0),
        json_path: c["jsonPath"].as_str()?.to_owned(),
    })
}

/// The status the CRD controllers converge on: names accepted, established, and every storage
/// version ever used recorded. `None` when the stored status already says so.
pub(crate) fn settled_status(crd: &Value, now: &str) -> Option<Value> {
    let spec = &crd["spec"];
    let status = &crd["status"];
    let names = &spec["names"];
    let mut accepted = json!({
        "plural": names["plural"], "kind": names["kind"],
        "singular": names["singular"].as_str().map_or_else(
            || names["kind"].as_str().unwrap_or_default().to_lowercase(), str::to_owned),
        "listKind": names["listKind"].as_str().map_or_else(
            || format!("{}List", names["kind"].as_str().unwrap_or_default()), str::to_owned),
    });
    for key in ["shortNames", "categories"] {
        if names[key].is_array() {
            accepted[key] = names[key].clone();
        }
    }
    let mut stored = str_list(&status["storedVersions"]);
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["storage"] == true {
            if let Some(name) = v["name"].as_str() {
                if !stored.iter().any(|s| s == name) {
                    stored.push(name.to_owned());
                }
            }
        }
    }
    let terminating = crd["metadata"].get("deletionTimestamp").is_some();
    let mut conditions = vec![
        condition(
            status,
            "NamesAccepted",
            "True",
            "NoConflicts",
            "no conflicts found",
            now,
        ),
        condition(
            status,
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
            now,
        ),
    ];
    if terminating {
        conditions.push(condition(
            status,
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            now,
        ));
    }
    let want = json!({
        "acceptedNames": accepted,
        "conditions": conditions,
        "storedVersions": stored,
    });
    (status != &want).then_some(want)
}

/// A condition, keeping its lastTransitionTime when its status did not change.
fn condition(
    status: &Value,
    type_: &str,
    s: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> Value {
    let since = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_ && c["status"] == s)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now);
    json!({"type": type_, "status": s, "reason": reason, "message": message, "lastTransitionTime": since})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                }],
            },
        })
    }

    #[test]
    fn an_accepted_crd_serves_its_names_scope_and_subresources() {
        assert!(validate(&crd(), None).is_empty());
        let t = resource_type(&crd()).expect("resource type");
        assert_eq!(
            (t.group.as_str(), t.plural.as_str(), t.kind.as_str()),
            ("example.com", "widgets", "Widget")
        );
        assert_eq!(t.singular, "widget");
        assert!(t.namespaced);
        let v = &t.versions[0];
        assert!(v.status);
        assert_eq!(
            v.scale.as_ref().map(|s| s.spec_replicas.as_str()),
            Some(".spec.size")
        );
        assert_eq!(v.columns[0].name, "Size");
    }

    #[test]
    fn a_crd_named_unlike_its_plural_and_group_or_without_storage_is_invalid() {
        let mut bad = crd();
        bad["metadata"]["name"] = json!("gadgets.example.com");
        bad["spec"]["versions"][0]["storage"] = json!(false);
        bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] =
            json!({"properties": {}});
        let errs: Vec<String> = validate(&bad, None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errs.iter()
                .any(|e| e.starts_with("metadata.name: Invalid value")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("exactly one version marked as storage")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("properties[spec].type: Required value")),
            "{errs:?}"
        );
    }

    #[test]
    fn status_is_established_once_and_then_stable() {
        let mut c = crd();
        let status = settled_status(&c, "2024-01-01T00:00:00Z").expect("first status");
        assert_eq!(status["conditions"][1]["type"], "Established");
        assert_eq!(status["storedVersions"], json!(["v1"]));
        c["status"] = status;
        assert!(settled_status(&c, "2025-01-01T00:00:00Z").is_none());
    }
}
