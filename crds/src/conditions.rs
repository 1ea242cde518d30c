//! Condition types and reasons shared by both resources, and a helper that keeps
//! `lastTransitionTime` honest (it changes only when the status flips).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The resource serves traffic as specified.
pub const READY: &str = "Ready";
/// The operator is changing something (rolling pods, placing partitions).
pub const PROGRESSING: &str = "Progressing";
/// Something is wrong that needs a human or time: invalid spec, missing brokers, offline
/// partitions.
pub const DEGRADED: &str = "Degraded";

/// Condition status strings, as Kubernetes spells them.
pub const TRUE: &str = "True";
/// See [`TRUE`].
pub const FALSE: &str = "False";

/// Inserts or replaces the condition of `type_`, keeping the old `lastTransitionTime` when the
/// status did not change so `kubectl` shows how long a state has lasted.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
) {
    let status = if status { TRUE } else { FALSE };
    let now = Time(Timestamp::now());
    let message = message.into();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status.to_owned();
            c.reason = reason.to_owned();
            c.message = message;
            c.observed_generation = observed_generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation,
            last_transition_time: now,
        }),
    }
}

/// True when the condition of `type_` exists and is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == TRUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_on_flip() {
        let mut c = Vec::new();
        set_condition(&mut c, READY, false, "Starting", "", Some(1));
        let first = c[0].last_transition_time.clone();
        set_condition(&mut c, READY, false, "StillStarting", "", Some(2));
        assert_eq!(c[0].last_transition_time, first);
        assert_eq!(c[0].reason, "StillStarting");
        set_condition(&mut c, READY, true, "AllBrokersReady", "", Some(2));
        assert!(is_true(&c, READY));
        assert_eq!(c.len(), 1);
    }
}
