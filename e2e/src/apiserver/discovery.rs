//! Discovery: the legacy documents (`/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`)
//! and aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`), which kubectl
//! and helm ask for first.

use std::sync::Arc;

use serde_json::{json, Value};

use super::resources::{ResourceType, Version};

/// The verbs every resource type serves, as discovery lists them (RBAC's read-write roles
/// grant the same set).
pub(super) const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

/// What discovery lists for `t`: an access review can only be created.
fn verbs(t: &ResourceType) -> &'static [&'static str] {
    if t.create_only {
        &["create"]
    } else {
        VERBS
    }
}

/// Served groups in discovery order (core first), each with its versions, preferred first.
pub(crate) fn groups(types: &[Arc<ResourceType>]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in types {
        let idx = match out.iter().position(|(g, _)| *g == t.group) {
            Some(i) => i,
            None => {
                out.push((t.group.clone(), Vec::new()));
                out.len() - 1
            }
        };
        for v in &t.versions {
            if !out[idx].1.contains(&v.name) {
                out[idx].1.push(v.name.clone());
            }
        }
    }
    for (_, versions) in &mut out {
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    }
    out
}

/// Kubernetes version ordering: GA over beta over alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (level, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (level, major, minor)
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// `/api`: the core group's versions.
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs.first()})
}

/// `/apis`: every named group.
pub(crate) fn api_group_list(types: &[Arc<ResourceType>]) -> Value {
    let groups: Vec<Value> = groups(types)
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, if served.
pub(crate) fn api_group_doc(types: &[Arc<ResourceType>], group: &str) -> Option<Value> {
    groups(types)
        .iter()
        .find(|(g, _)| g == group)
        .map(|(g, vs)| api_group(g, vs))
}

fn serves(t: &ResourceType, version: &str) -> Option<Version> {
    t.version(version).cloned()
}

/// `/api/v1` or `/apis/<group>/<version>`, if served.
pub(crate) fn api_resource_list(
    types: &[Arc<ResourceType>],
    group: &str,
    version: &str,
) -> Option<Value> {
    let mut resources = Vec::new();
    for t in types.iter().filter(|t| t.group == group) {
        let Some(v) = serves(t, version) else {
            continue;
        };
        let mut r = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": verbs(t),
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if v.status {
            resources.push(
                json!({"name": format!("{}/status", t.plural), "singularName": "",
                "namespaced": t.namespaced, "kind": t.kind, "verbs": SUB_VERBS}),
            );
        }
        if is_service_accounts(t) {
            resources.push(json!({"name": "serviceaccounts/token", "singularName": "",
                "namespaced": true, "group": "authentication.k8s.io", "version": "v1",
                "kind": "TokenRequest", "verbs": ["create"]}));
        }
        if v.scale.is_some() {
            resources.push(
                json!({"name": format!("{}/scale", t.plural), "singularName": "",
                "namespaced": t.namespaced, "group": "autoscaling", "version": "v1",
                "kind": "Scale", "verbs": SUB_VERBS}),
            );
        }
    }
    (!resources.is_empty()).then(|| {
        json!({"kind": "APIResourceList", "apiVersion": "v1",
               "groupVersion": group_version(group, version), "resources": resources})
    })
}

/// The aggregated discovery media type a request accepts (`v2` or `v2beta1`), if any.
pub(crate) fn aggregated_version(accept: &str) -> Option<&'static str> {
    accept.split(',').find_map(|part| {
        let p = part.replace(' ', "");
        if !p.contains("g=apidiscovery.k8s.io") || !p.contains("as=APIGroupDiscoveryList") {
            return None;
        }
        if p.contains("v=v2beta1") {
            Some("v2beta1")
        } else if p.contains("v=v2") {
            Some("v2")
        } else {
            None
        }
    })
}

/// The Content-Type of an aggregated discovery answer.
pub(crate) fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// `/api` (`core`) or `/apis` as an APIGroupDiscoveryList.
pub(crate) fn aggregated(types: &[Arc<ResourceType>], core: bool, version: &str) -> Value {
    let items: Vec<Value> = groups(types)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = types
                        .iter()
                        .filter(|t| t.group == g)
                        .filter_map(|t| serves(t, v).map(|sv| discovery_resource(t, v, &sv)))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": vs})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"),
           "metadata": {}, "items": items})
}

/// Whether `t` is the core ServiceAccounts, whose `token` subresource issues tokens.
fn is_service_accounts(t: &ResourceType) -> bool {
    t.group.is_empty() && t.plural == "serviceaccounts"
}

fn discovery_resource(t: &ResourceType, version: &str, v: &Version) -> Value {
    let kind = json!({"group": t.group, "version": version, "kind": t.kind});
    let mut subresources = Vec::new();
    if v.scale.is_some() {
        subresources.push(json!({"subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": SUB_VERBS}));
    }
    if is_service_accounts(t) {
        subresources.push(json!({"subresource": "token", "verbs": ["create"],
            "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}}));
    }
    if v.status {
        subresources
            .push(json!({"subresource": "status", "responseKind": kind, "verbs": SUB_VERBS}));
    }
    let mut r = json!({
        "resource": t.plural, "responseKind": kind,
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular, "verbs": verbs(t),
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    if !subresources.is_empty() {
        r["subresources"] = json!(subresources);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    #[test]
    fn aggregated_discovery_lists_resources_with_scope_and_subresources() {
        let r = Registry::default();
        let doc = aggregated(r.all(), false, "v2");
        let apps = doc["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == "apps"))
            .expect("apps");
        let sts = apps["versions"][0]["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["resource"] == "statefulsets"))
            .expect("statefulsets");
        assert_eq!(sts["scope"], "Namespaced");
        assert_eq!(sts["subresources"][0]["subresource"], "scale");
        let core = aggregated(r.all(), true, "v2");
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn accept_headers_select_aggregated_discovery() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(kubectl), Some("v2"));
        assert_eq!(aggregated_version("application/json"), None);
    }

    #[test]
    fn preferred_versions_are_ga_then_beta_then_alpha() {
        let mut vs = vec!["v1alpha1", "v1", "v2beta1", "v1beta2"];
        vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(vs, vec!["v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }
}
