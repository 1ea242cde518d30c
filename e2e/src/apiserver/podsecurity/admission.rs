//! The admission answers, as Kubernetes' PodSecurity plugin gives them: pods created in a
//! namespace whose `enforce` level they violate are refused (403); `warn` violations, and
//! `enforce` violations of a workload's pod template, come back as `Warning` headers; `audit`
//! violations are logged with the audit annotation's key and value (this server keeps no audit
//! log); labelling a namespace with a stricter `enforce` level warns about its existing pods.

use std::collections::BTreeMap;

use serde_json::Value;

use super::checks::{evaluate, Violation};
use super::levels::{Level, LevelVersion, Policy};
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::store::{Key, Store};

/// The audit annotation Kubernetes adds for `audit` violations.
const AUDIT_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";

/// A namespace object's labels.
fn labels(ns: &Value) -> BTreeMap<String, String> {
    ns["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// The policy of `namespace` (privileged everywhere when it is missing or unlabelled).
fn policy(store: &Store, namespace: &str) -> Option<Policy> {
    let ns = store.get(&Key::new("/namespaces", "", namespace))?;
    let p = Policy::from_labels(&labels(ns));
    (!p.fully_privileged()).then_some(p)
}

/// Violations of `lv` (none when privileged).
fn violations(lv: LevelVersion, meta: &Value, spec: &Value) -> Vec<Violation> {
    if lv.level == Level::Privileged {
        return Vec::new();
    }
    evaluate(lv.level, meta, spec)
}

fn would_violate(lv: LevelVersion, v: &[Violation]) -> String {
    format!(
        "would violate PodSecurity {:?}: {}",
        lv.to_string(),
        Violation::join(v)
    )
}

fn audit(namespace: &str, what: &str, lv: LevelVersion, meta: &Value, spec: &Value) {
    let v = violations(lv, meta, spec);
    if !v.is_empty() {
        tracing::info!(
            namespace,
            object = what,
            "{AUDIT_ANNOTATION}={:?}",
            would_violate(lv, &v)
        );
    }
}

/// Admits pod `obj` created in `namespace`: `Err` 403 when it violates `enforce`, else the
/// `warn` warnings.
pub(crate) fn admit_pod(store: &Store, namespace: &str, obj: &Value) -> ApiResult<Vec<String>> {
    let Some(p) = policy(store, namespace) else {
        return Ok(Vec::new());
    };
    let (meta, spec) = (&obj["metadata"], &obj["spec"]);
    let name = meta["name"].as_str().unwrap_or_default();
    audit(namespace, name, p.audit, meta, spec);
    let enforced = violations(p.enforce, meta, spec);
    if !enforced.is_empty() {
        return Err(ApiError::forbidden(format!(
            "pods {name:?} is forbidden: violates PodSecurity {:?}: {}",
            p.enforce.to_string(),
            Violation::join(&enforced)
        )));
    }
    let warned = violations(p.warn, meta, spec);
    Ok(if warned.is_empty() {
        Vec::new()
    } else {
        vec![would_violate(p.warn, &warned)]
    })
}

/// The pod template (metadata, spec) of a workload kind, `None` for any other kind.
fn pod_template<'a>(group: &str, kind: &str, obj: &'a Value) -> Option<(&'a Value, &'a Value)> {
    let template = match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("", "ReplicationController" | "PodTemplate") => {
            if kind == "PodTemplate" {
                &obj["template"]
            } else {
                &obj["spec"]["template"]
            }
        }
        ("batch", "CronJob") => &obj["spec"]["jobTemplate"]["spec"]["template"],
        _ => return None,
    };
    template
        .is_object()
        .then(|| (&template["metadata"], &template["spec"]))
}

/// Warnings for workload `obj` (of `group`/`kind`) written in `namespace`: its pod template
/// against the `warn` level (which defaults to the `enforce` level). Workloads are never
/// refused: their controllers' pods are.
pub(crate) fn admit_workload(
    store: &Store,
    namespace: &str,
    group: &str,
    kind: &str,
    obj: &Value,
) -> Vec<String> {
    let Some((meta, spec)) = pod_template(group, kind, obj) else {
        return Vec::new();
    };
    let Some(p) = policy(store, namespace) else {
        return Vec::new();
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    audit(namespace, name, p.audit, meta, spec);
    let warned = violations(p.warn, meta, spec);
    if warned.is_empty() {
        Vec::new()
    } else {
        vec![would_violate(p.warn, &warned)]
    }
}

/// Warnings for namespace `new` replacing `old`: when its `enforce` level changes, each
/// existing pod that violates the new one, as Kubernetes lists them.
pub(crate) fn admit_namespace(store: &Store, old: Option<&Value>, new: &Value) -> Vec<String> {
    let after = Policy::from_labels(&labels(new));
    let before = old.map(|o| Policy::from_labels(&labels(o)).enforce);
    if after.enforce.level == Level::Privileged
        || before.is_some_and(|b| b.equivalent(&after.enforce))
        || old.is_none()
    {
        return Vec::new();
    }
    let namespace = new["metadata"]["name"].as_str().unwrap_or_default();
    let mut pods: Vec<String> = Vec::new();
    for (key, pod) in store.scan("/pods", Some(namespace)) {
        let v = evaluate(after.enforce.level, &pod["metadata"], &pod["spec"]);
        if !v.is_empty() {
            let reasons: Vec<&str> = v.iter().map(|x| x.reason.as_str()).collect();
            pods.push(format!("{}: {}", key.name, reasons.join(", ")));
        }
    }
    if pods.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!(
        "existing pods in namespace {namespace:?} violate the new PodSecurity enforce level {:?}",
        after.enforce.to_string()
    )];
    out.extend(pods);
    out
}
