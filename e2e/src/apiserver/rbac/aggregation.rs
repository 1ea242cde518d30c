//! The clusterrole-aggregation controller's decision: which ClusterRoles with an
//! `aggregationRule` store rules other than those of the ClusterRoles their selectors match,
//! so the stored objects (what `kubectl get clusterrole admin -o yaml` shows) carry the
//! aggregated rules as on a real cluster, and follow the labelled roles as they change.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::authorizer::Policy;

/// An aggregated ClusterRole whose stored rules are out of date.
#[derive(Clone, Debug, PartialEq)]
pub struct StaleAggregate {
    /// The ClusterRole's name.
    pub name: String,
    /// The rules it should store.
    pub rules: Vec<PolicyRule>,
}

/// Every ClusterRole of `policy` with an aggregationRule whose stored rules differ from the
/// union its selectors make now.
pub fn stale_aggregates(policy: &Policy) -> Vec<StaleAggregate> {
    policy
        .cluster_roles
        .iter()
        .filter(|role| role.aggregation_rule.is_some())
        .filter_map(|role| {
            let rules = policy.cluster_role_rules(role);
            (role.rules.as_deref().unwrap_or_default() != rules.as_slice()).then(|| {
                StaleAggregate {
                    name: role.metadata.name.clone().unwrap_or_default(),
                    rules,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use serde_json::{json, Value};

    use super::*;

    fn role(v: Value) -> ClusterRole {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("test role: {e}"))
    }

    fn aggregate(stored: Value) -> ClusterRole {
        role(
            json!({"metadata": {"name": "monitoring"}, "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}]}, "rules": stored}),
        )
    }

    fn labelled(name: &str, resource: &str) -> ClusterRole {
        role(
            json!({"metadata": {"name": name, "labels": {"example.com/aggregate-to-monitoring": "true"}},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": ["get"]}]}),
        )
    }

    fn rules(v: Value) -> Vec<PolicyRule> {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("test rules: {e}"))
    }

    #[test]
    fn an_aggregate_takes_its_matches_rules_by_name_and_is_left_alone_once_it_has_them() {
        let unlabelled = role(json!({"metadata": {"name": "other"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}));
        let mut policy = Policy {
            cluster_roles: vec![
                aggregate(json!([])),
                labelled("b-pods", "pods"),
                labelled("a-services", "services"),
                unlabelled,
            ],
            ..Policy::default()
        };
        let want = rules(json!([
            {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        ]));
        assert_eq!(
            stale_aggregates(&policy),
            [StaleAggregate {
                name: "monitoring".into(),
                rules: want.clone()
            }]
        );
        policy.cluster_roles[0].rules = Some(want);
        assert!(stale_aggregates(&policy).is_empty());
    }

    #[test]
    fn an_aggregate_whose_matches_are_gone_stores_no_rules() {
        let stored = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
        let policy = Policy {
            cluster_roles: vec![aggregate(stored)],
            ..Policy::default()
        };
        assert_eq!(stale_aggregates(&policy)[0].rules, []);
    }
}
