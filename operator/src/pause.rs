//! The pause annotation as a condition: a paused object says so in its status instead of being
//! skipped silently, and resuming removes the condition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use tributary_crds::conditions::{is_true, set_condition};
use tributary_crds::PAUSE_ANNOTATION;

/// Condition type (and reason) shown while the pause annotation is set.
pub const PAUSED: &str = "Paused";

/// Sets the `Paused` condition when `paused`, removes it otherwise. Returns whether the
/// conditions changed, so a paused object is written once, not on every reconcile.
pub fn set_paused(conditions: &mut Vec<Condition>, paused: bool, generation: Option<i64>) -> bool {
    if paused {
        let already = is_true(conditions, PAUSED)
            && conditions
                .iter()
                .any(|c| c.type_ == PAUSED && c.observed_generation == generation);
        if !already {
            let message =
                format!("not reconciling: {PAUSE_ANNOTATION} is \"true\"; remove it to resume");
            set_condition(conditions, PAUSED, true, PAUSED, message, generation);
        }
        !already
    } else {
        let before = conditions.len();
        conditions.retain(|c| c.type_ != PAUSED);
        conditions.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pausing_sets_the_condition_once_and_resuming_removes_it() {
        let mut conds = Vec::new();
        assert!(set_paused(&mut conds, true, Some(1)));
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].type_, PAUSED);
        assert_eq!(conds[0].status, "True");
        assert_eq!(conds[0].reason, PAUSED);
        assert!(
            !set_paused(&mut conds, true, Some(1)),
            "no rewrite while paused"
        );
        assert!(
            set_paused(&mut conds, true, Some(2)),
            "a spec change is acknowledged"
        );
        assert!(set_paused(&mut conds, false, Some(2)));
        assert!(conds.is_empty());
        assert!(!set_paused(&mut conds, false, Some(2)));
    }
}
