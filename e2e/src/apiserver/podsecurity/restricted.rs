//! The `restricted` controls, on top of `baseline`: volume types, no privilege escalation,
//! non-root, a seccomp profile, and capabilities dropped.

use serde_json::Value;

use super::baseline::added;
use super::checks::{
    containers, join_quote, name, named_containers, plural, setters, user_namespaced, Violation,
};

/// Baseline controls the restricted ones replace.
pub(super) const OVERRIDES: &[&str] = &["capabilities_baseline", "seccompProfile_baseline"];

/// Volume sources a restricted pod may use.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every restricted-only violation of the pod.
pub(super) fn check(spec: &Value) -> Vec<Violation> {
    [
        allow_privilege_escalation(spec),
        capabilities(spec),
        volumes(spec),
        run_as_non_root(spec),
        run_as_user(spec),
        seccomp(spec),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn allow_privilege_escalation(spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["allowPrivilegeEscalation"].as_bool() != Some(false))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "allowPrivilegeEscalation",
            "allowPrivilegeEscalation != false",
            format!(
                "{} must set securityContext.allowPrivilegeEscalation=false",
                named_containers(&bad)
            ),
        )
    })
}

fn capabilities(spec: &Value) -> Option<Violation> {
    let (mut no_drop, mut adding, mut caps) = (Vec::new(), Vec::new(), Vec::new());
    for c in containers(spec) {
        let drops_all = c["securityContext"]["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")));
        if !drops_all {
            no_drop.push(name(c));
        }
        let extra: Vec<String> = added(c)
            .into_iter()
            .filter(|a| a != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            adding.push(name(c));
            caps.extend(extra);
        }
    }
    caps.sort();
    caps.dedup();
    let mut details = Vec::new();
    if !no_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            named_containers(&no_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            named_containers(&adding),
            join_quote(&caps)
        ));
    }
    (!details.is_empty()).then(|| {
        Violation::new(
            "capabilities_restricted",
            "unrestricted capabilities",
            details.join("; "),
        )
    })
}

fn volumes(spec: &Value) -> Option<Violation> {
    let (mut bad, mut types) = (Vec::new(), Vec::new());
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let Some(obj) = v.as_object() else { continue };
        let source = obj
            .iter()
            .find(|(k, x)| k.as_str() != "name" && !x.is_null())
            .map(|(k, _)| k.as_str());
        match source {
            Some(s) if ALLOWED_VOLUMES.contains(&s) => {}
            // No source at all is an emptyDir once defaulted.
            None => {}
            Some(s) => {
                bad.push(name(v));
                types.push(s.to_owned());
            }
        }
    }
    types.sort();
    types.dedup();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "restrictedVolumes",
            "restricted volume types",
            format!(
                "{} {} {} {} {}",
                plural("volume", "volumes", bad.len()),
                join_quote(&bad),
                plural("uses", "use", bad.len()),
                plural(
                    "restricted volume type",
                    "restricted volume types",
                    types.len()
                ),
                join_quote(&types)
            ),
        )
    })
}

fn run_as_non_root(spec: &Value) -> Option<Violation> {
    if user_namespaced(spec) {
        return None;
    }
    let pod = spec["securityContext"]["runAsNonRoot"].as_bool();
    let explicit: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["runAsNonRoot"].as_bool() == Some(false))
        .map(name)
        .collect();
    let who = setters(pod == Some(false), &explicit);
    if !who.is_empty() {
        return Some(Violation::new(
            "runAsNonRoot",
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                who.join(" and ")
            ),
        ));
    }
    let implicit: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["runAsNonRoot"].is_null() && pod != Some(true))
        .map(name)
        .collect();
    (!implicit.is_empty()).then(|| {
        Violation::new(
            "runAsNonRoot",
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                named_containers(&implicit)
            ),
        )
    })
}

fn run_as_user(spec: &Value) -> Option<Violation> {
    if user_namespaced(spec) {
        return None;
    }
    let root = |sc: &Value| sc["runAsUser"].as_i64() == Some(0);
    let pod = root(&spec["securityContext"]);
    let bad: Vec<String> = containers(spec)
        .filter(|c| root(&c["securityContext"]))
        .map(name)
        .collect();
    let who = setters(pod, &bad);
    (!who.is_empty()).then(|| {
        Violation::new(
            "runAsUser",
            "runAsUser=0",
            format!("{} must not set runAsUser=0", who.join(" and ")),
        )
    })
}

fn seccomp(spec: &Value) -> Option<Violation> {
    let mut values = Vec::new();
    let mut bad = |sc: &Value| match sc["seccompProfile"]["type"].as_str() {
        None | Some("RuntimeDefault") | Some("Localhost") => false,
        Some(t) => {
            values.push(t.to_owned());
            true
        }
    };
    let pod_type = spec["securityContext"]["seccompProfile"]["type"].as_str();
    let pod = bad(&spec["securityContext"]);
    let explicit: Vec<String> = containers(spec)
        .filter(|c| bad(&c["securityContext"]))
        .map(name)
        .collect();
    let who = setters(pod, &explicit);
    if !who.is_empty() {
        values.sort();
        values.dedup();
        return Some(Violation::new(
            "seccompProfile_restricted",
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                who.join(" and "),
                join_quote(&values)
            ),
        ));
    }
    let implicit: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["seccompProfile"]["type"].is_null() && pod_type.is_none())
        .map(name)
        .collect();
    (!implicit.is_empty()).then(|| {
        Violation::new(
            "seccompProfile_restricted",
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                named_containers(&implicit)
            ),
        )
    })
}
