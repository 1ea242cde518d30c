//! What every workload controller asks of objects: who controls them, whether a selector
//! matches, whether a pod is ready or available, and the short hashes that name revisions.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use serde::Serialize;

/// Characters of Kubernetes' "safe" encoding of hashes (no vowels, no look-alikes).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Whether `meta` names the object with `uid` as its controller.
pub(crate) fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// An owner reference to `owner`, as the controllers set it (`controller` when it manages the
/// dependent's lifecycle; `blockOwnerDeletion` so foreground deletion waits for it).
pub(crate) fn owner_ref<K>(owner: &K, controller: bool) -> Option<OwnerReference>
where
    K: Resource<DynamicType = ()>,
{
    let meta = owner.meta();
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: controller.then_some(true),
        block_owner_deletion: Some(true),
    })
}

/// Whether the object is being deleted.
pub(crate) fn terminating(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// The pod's phase, `Pending` when the kubelet has not written one.
pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// A pod that counts towards its controller's replicas: not being deleted, not finished.
pub(crate) fn active(pod: &Pod) -> bool {
    !terminating(&pod.metadata) && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// When the pod's Ready condition became True, if it is True.
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (c.status == "True").then(|| c.last_transition_time.as_ref().map(|t| t.0))
}

/// Running with its Ready condition True.
pub(crate) fn ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now` (Kubernetes' "available").
pub(crate) fn available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod)
        .flatten()
        .is_some_and(|since| now.as_second() - since.as_second() >= i64::from(min_ready_seconds))
}

/// FNV-1a (32 bits) of the object's JSON, encoded as Kubernetes encodes `pod-template-hash`
/// and revision names: stable for equal objects, different when anything changes.
pub(crate) fn hash<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let h = bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    h.to_string()
        .bytes()
        .map(|d| char::from(SAFE_ALPHABET[usize::from(d - b'0') % SAFE_ALPHABET.len()]))
        .collect()
}

/// An `IntOrString` count or percentage of `total`, rounded up or down as the field asks.
pub(crate) fn scaled(
    value: Option<&IntOrString>,
    total: i32,
    default: &str,
    round_up: bool,
) -> i32 {
    let fallback = IntOrString::String(default.to_owned());
    match value.unwrap_or(&fallback) {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let exact = pct * f64::from(total) / 100.0;
            let rounded = if round_up {
                exact.ceil()
            } else {
                exact.floor()
            };
            // Percentages of an i32 stay within i32.
            #[allow(clippy::cast_possible_truncation)]
            let n = rounded as i32;
            n
        }
    }
}

/// The object's name, empty when it has none.
pub(crate) fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// The object's namespace, empty when cluster-scoped.
pub(crate) fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

/// The object's uid, empty when it was never stored.
pub(crate) fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_safe_encoded() {
        let a = hash(&serde_json::json!({"x": 1}));
        assert_eq!(a, hash(&serde_json::json!({"x": 1})));
        assert_ne!(a, hash(&serde_json::json!({"x": 2})));
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
    }

    #[test]
    fn surge_rounds_up_and_unavailability_down() {
        let pct = IntOrString::String("25%".into());
        assert_eq!(scaled(Some(&pct), 3, "25%", true), 1);
        assert_eq!(scaled(Some(&pct), 3, "25%", false), 0);
        assert_eq!(scaled(None, 8, "25%", false), 2);
        assert_eq!(scaled(Some(&IntOrString::Int(2)), 8, "25%", false), 2);
    }
}
