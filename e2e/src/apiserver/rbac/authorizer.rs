//! The RBAC authorizer over the stored objects: which rules apply to a user (ClusterRoleBindings
//! everywhere, RoleBindings in their namespace), ClusterRole aggregation as the
//! clusterrole-aggregation controller keeps it, and the decision with Kubernetes' reasons.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::de::DeserializeOwned;

use super::rules::{rule_allows, service_account_username, Request, UserInfo};
use crate::apiserver::store::Store;

/// A bound role's rules, or why they could not be read.
type RoleRules = Result<Vec<PolicyRule>, String>;

/// The RBAC objects a decision reads.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Namespaced Roles.
    pub roles: Vec<Role>,
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// Namespaced RoleBindings.
    pub role_bindings: Vec<RoleBinding>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

/// The answer for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether some bound rule grants the request.
    pub allowed: bool,
    /// `RBAC: allowed by ...` when allowed; the resolution errors (roles not found) when not.
    pub reason: String,
}

/// The rules a user holds in a namespace, and the bindings whose roles could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedRules {
    /// Every rule of every role bound to the user there.
    pub rules: Vec<PolicyRule>,
    /// `clusterrole.rbac.authorization.k8s.io "x" not found`, one per broken reference.
    pub errors: Vec<String>,
}

fn decode_all<T: DeserializeOwned>(store: &Store, plural: &str) -> Vec<T> {
    store
        .scan(&format!("rbac.authorization.k8s.io/{plural}"), None)
        .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
        .collect()
}

impl Policy {
    /// The RBAC objects in `store` (objects that do not decode are skipped: validation keeps
    /// them out).
    pub(crate) fn from_store(store: &Store) -> Self {
        Policy {
            roles: decode_all(store, "roles"),
            cluster_roles: decode_all(store, "clusterroles"),
            role_bindings: decode_all(store, "rolebindings"),
            cluster_role_bindings: decode_all(store, "clusterrolebindings"),
        }
    }

    fn cluster_role(&self, name: &str) -> Option<&ClusterRole> {
        self.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
    }

    /// A ClusterRole's rules; with an aggregationRule, the union of the rules of the
    /// ClusterRoles its selectors match (transitively, as the controller converges to).
    pub fn cluster_role_rules(&self, role: &ClusterRole) -> Vec<PolicyRule> {
        let mut seen = BTreeSet::new();
        self.aggregated(role, &mut seen)
    }

    fn aggregated(&self, role: &ClusterRole, seen: &mut BTreeSet<String>) -> Vec<PolicyRule> {
        let Some(agg) = &role.aggregation_rule else {
            return role.rules.clone().unwrap_or_default();
        };
        seen.insert(role.metadata.name.clone().unwrap_or_default());
        let selectors = agg.cluster_role_selectors.as_deref().unwrap_or_default();
        let mut rules: Vec<PolicyRule> = Vec::new();
        // Selector by selector, each one's roles by name, as the controller orders them.
        for selector in selectors {
            let mut matching: Vec<&ClusterRole> = self
                .cluster_roles
                .iter()
                .filter(|c| !seen.contains(c.metadata.name.as_deref().unwrap_or_default()))
                .filter(|c| selector_matches(selector, c))
                .collect();
            matching.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            for c in matching {
                for rule in self.aggregated(c, seen) {
                    if !rules.contains(&rule) {
                        rules.push(rule);
                    }
                }
            }
        }
        rules
    }

    /// The rules `role_ref` names, read in `namespace` for a Role (`GetRoleReferenceRules`).
    pub fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .iter()
                .find(|r| {
                    r.metadata.name.as_deref() == Some(&role_ref.name)
                        && r.metadata.namespace.as_deref() == Some(namespace)
                })
                .map(|r| r.rules.clone().unwrap_or_default())
                .ok_or_else(|| {
                    format!(
                        "role.rbac.authorization.k8s.io {:?} not found",
                        role_ref.name
                    )
                }),
            "ClusterRole" => self
                .cluster_role(&role_ref.name)
                .map(|r| self.cluster_role_rules(r))
                .ok_or_else(|| {
                    format!(
                        "clusterrole.rbac.authorization.k8s.io {:?} not found",
                        role_ref.name
                    )
                }),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Visits each binding applying to `user` in `namespace` (cluster bindings first), with a
    /// description of it as Kubernetes' audit reason words it, until `visit` returns false.
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        visit: &mut dyn FnMut(&str, RoleRules) -> bool,
    ) {
        for b in &self.cluster_role_bindings {
            let Some(subject) = applies(b.subjects.as_deref(), user, "") else {
                continue;
            };
            let source = format!(
                "ClusterRoleBinding {:?} of ClusterRole {:?} to {}",
                b.metadata.name.as_deref().unwrap_or_default(),
                b.role_ref.name,
                describe_subject(subject, "")
            );
            if !visit(&source, self.role_ref_rules(&b.role_ref, "")) {
                return;
            }
        }
        if namespace.is_empty() {
            return;
        }
        for b in &self.role_bindings {
            if b.metadata.namespace.as_deref() != Some(namespace) {
                continue;
            }
            let Some(subject) = applies(b.subjects.as_deref(), user, namespace) else {
                continue;
            };
            let source = format!(
                "RoleBinding {:?} of {} {:?} to {}",
                format!(
                    "{}/{namespace}",
                    b.metadata.name.as_deref().unwrap_or_default()
                ),
                b.role_ref.kind,
                b.role_ref.name,
                describe_subject(subject, namespace)
            );
            if !visit(&source, self.role_ref_rules(&b.role_ref, namespace)) {
                return;
            }
        }
    }

    /// Allow or deny `request` by `user`, as Kubernetes' RBAC authorizer decides.
    pub fn authorize(&self, user: &UserInfo, request: &Request) -> Decision {
        let mut errors = Vec::new();
        let mut allowed_by = None;
        self.visit(
            user,
            request.namespace(),
            &mut |source, rules| match rules {
                Ok(rules) if rules.iter().any(|r| rule_allows(r, request)) => {
                    allowed_by = Some(format!("RBAC: allowed by {source}"));
                    false
                }
                Ok(_) => true,
                Err(e) => {
                    errors.push(e);
                    true
                }
            },
        );
        match allowed_by {
            Some(reason) => Decision {
                allowed: true,
                reason,
            },
            None if errors.is_empty() => Decision {
                allowed: false,
                reason: String::new(),
            },
            None => Decision {
                allowed: false,
                reason: format!("RBAC: {}", aggregate(&errors)),
            },
        }
    }

    /// Every rule `user` holds in `namespace` (`RulesFor`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> ResolvedRules {
        let mut out = ResolvedRules::default();
        self.visit(user, namespace, &mut |_, rules| {
            match rules {
                Ok(r) => out.rules.extend(r),
                Err(e) => out.errors.push(e),
            }
            true
        });
        out
    }
}

/// Go's `utilerrors.NewAggregate` text: one error alone, or `[a, b]`.
pub(super) fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// The first subject of a binding that is `user` (`appliesToUser`).
fn applies<'a>(
    subjects: Option<&'a [Subject]>,
    user: &UserInfo,
    namespace: &str,
) -> Option<&'a Subject> {
    subjects?.iter().find(|s| match s.kind.as_str() {
        "User" => s.name == user.name,
        "Group" => user.groups.contains(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            !ns.is_empty() && user.name == service_account_username(ns, &s.name)
        }
        _ => false,
    })
}

fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    if s.kind == "ServiceAccount" {
        let ns = s
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(binding_namespace);
        return format!("{} {:?}", s.kind, format!("{}/{ns}", s.name));
    }
    format!("{} {:?}", s.kind, s.name)
}

/// matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) against a ClusterRole's
/// labels; an empty selector matches every role, as the controller's does.
fn selector_matches(sel: &LabelSelector, role: &ClusterRole) -> bool {
    let empty = Default::default();
    let labels = role.metadata.labels.as_ref().unwrap_or(&empty);
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}
