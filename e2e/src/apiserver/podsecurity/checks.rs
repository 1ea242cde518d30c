//! What the controls share: the containers they visit, Kubernetes' wording helpers, and the
//! evaluation of one level (each control's result, in Kubernetes' order of check ids).

use serde_json::Value;

use super::levels::Level;
use super::{baseline, restricted};

/// One control's refusal: Kubernetes' reason and detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which control (Kubernetes' check id), to order and override by.
    pub id: &'static str,
    /// The short reason, e.g. `allowPrivilegeEscalation != false`.
    pub reason: String,
    /// What in the pod violates it.
    pub detail: String,
}

impl Violation {
    pub(super) fn new(id: &'static str, reason: impl Into<String>, detail: String) -> Self {
        Violation {
            id,
            reason: reason.into(),
            detail,
        }
    }

    /// `reason (detail)`, as Kubernetes joins them; a list joins with `, `.
    pub fn join(violations: &[Violation]) -> String {
        violations
            .iter()
            .map(|v| {
                if v.detail.is_empty() {
                    v.reason.clone()
                } else {
                    format!("{} ({})", v.reason, v.detail)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Evaluates a pod (its `metadata` and `spec`) against `level` at `latest`: every violation,
/// ordered by check id as Kubernetes reports them. `privileged` allows everything.
pub fn evaluate(level: Level, metadata: &Value, spec: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    if level >= Level::Baseline {
        out.extend(baseline::check(metadata, spec));
    }
    if level >= Level::Restricted {
        let strict = restricted::check(spec);
        // The restricted capability and seccomp controls replace the baseline ones.
        out.retain(|v| !restricted::OVERRIDES.contains(&v.id));
        out.extend(strict);
    }
    out.sort_by(|a, b| a.id.cmp(b.id));
    out
}

/// Every container of the pod: containers, initContainers and ephemeralContainers.
pub(super) fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |f| spec[f].as_array().into_iter().flatten())
}

/// A container's name.
pub(super) fn name(c: &Value) -> String {
    c["name"].as_str().unwrap_or_default().to_owned()
}

/// `"a", "b"`, as Kubernetes' joinQuote.
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("{:?}", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `singular` for one, `plural` otherwise.
pub(super) fn plural<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 {
        singular
    } else {
        plural
    }
}

/// `container "a"` or `containers "a", "b"`.
pub(super) fn named_containers(names: &[String]) -> String {
    format!(
        "{} {}",
        plural("container", "containers", names.len()),
        join_quote(names)
    )
}

/// `pod and containers "a"`: who set a forbidden value.
pub(super) fn setters(pod: bool, containers: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if pod {
        out.push("pod".to_owned());
    }
    if !containers.is_empty() {
        out.push(named_containers(containers));
    }
    out
}

/// Whether the pod runs in its own user namespace (`hostUsers: false`), which relaxes the
/// run-as-root controls.
pub(super) fn user_namespaced(spec: &Value) -> bool {
    spec["hostUsers"].as_bool() == Some(false)
}
