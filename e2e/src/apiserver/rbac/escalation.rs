//! Escalation prevention as Kubernetes' RBAC REST storage applies it: a Role or ClusterRole
//! may only grant what its writer holds (or the writer holds `escalate` on it); a binding may
//! only bind a role whose every permission the writer holds (or the writer holds `bind` on it).
//! Members of `system:masters` pass, as the API server's privileged loopback identity does.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
};

use super::authorizer::{aggregate, Policy};
use super::forbidden::forbidden_on;
use super::rules::{has, list, non_resource_url_covers, Request, UserInfo};
use crate::apiserver::error::ApiError;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The group whose members may write any RBAC object (`EscalationAllowed`).
const SYSTEM_MASTERS: &str = "system:masters";

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn one(s: &str) -> Option<Vec<String>> {
    Some(vec![s.to_owned()])
}

/// One rule per (group, resource, verb[, name]) and per (URL, verb) (`BreakdownRule`).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    api_groups: one(group),
                    resources: one(resource),
                    verbs: vec![verb.clone()],
                    ..Default::default()
                };
                if list(&rule.resource_names).is_empty() {
                    out.push(base);
                } else {
                    for name in list(&rule.resource_names) {
                        out.push(PolicyRule {
                            resource_names: one(name),
                            ..base.clone()
                        });
                    }
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..Default::default()
            });
        }
    }
    out
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// Whether `owner` grants everything `sub` (one broken-down rule) does (`ruleCovers`).
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(list(&owner.api_groups), "*")
        || has_all(list(&owner.api_groups), list(&sub.api_groups));
    let resources = resources_cover(list(&owner.resources), list(&sub.resources));
    let urls = list(&sub.non_resource_urls).iter().all(|p| {
        list(&owner.non_resource_urls)
            .iter()
            .any(|o| non_resource_url_covers(o, p))
    });
    let owner_names = list(&owner.resource_names);
    let names = if list(&sub.resource_names).is_empty() {
        owner_names.is_empty()
    } else {
        owner_names.is_empty() || has_all(owner_names, list(&sub.resource_names))
    };
    verbs && groups && resources && names && urls
}

/// Whether `owner` covers every rule of `servant`, and the broken-down rules it does not
/// (`Covers`).
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> = servant
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (missing.is_empty(), missing)
}

/// Merges the verbs of rules on one group, one resource and at most one name
/// (`CompactRules`).
fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let is_simple = list(&rule.resource_names).len() <= 1
            && list(&rule.non_resource_urls).is_empty()
            && list(&rule.api_groups).len() == 1
            && list(&rule.resources).len() == 1;
        if !is_simple {
            out.push(rule);
            continue;
        }
        let same = simple.iter_mut().find(|s| {
            s.api_groups == rule.api_groups
                && s.resources == rule.resources
                && list(&s.resource_names) == list(&rule.resource_names)
        });
        match same {
            Some(s) => {
                for verb in rule.verbs {
                    if !s.verbs.contains(&verb) {
                        s.verbs.push(verb);
                    }
                }
            }
            None => simple.push(rule),
        }
    }
    out.extend(simple);
    out
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}` (`CompactString`).
pub fn compact_string(rule: &PolicyRule) -> String {
    let parts: Vec<String> = [
        ("APIGroups", list(&rule.api_groups)),
        ("Resources", list(&rule.resources)),
        ("NonResourceURLs", list(&rule.non_resource_urls)),
        ("ResourceNames", list(&rule.resource_names)),
        ("Verbs", rule.verbs.as_slice()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}:{}", go_quoted(v)))
    .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Refuses unless `user` holds every rule of `rules` in `namespace` (`ConfirmNoEscalation`);
/// the refusal text as Kubernetes words it.
pub fn confirm_no_escalation(
    policy: &Policy,
    user: &UserInfo,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    let held = policy.rules_for(user, namespace);
    let (ok, missing) = covers(&held.rules, rules);
    if ok {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(missing).iter().map(compact_string).collect();
    lines.sort();
    lines.dedup();
    let mut msg = format!(
        "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        go_quoted(&user.groups),
        lines.join("\n")
    );
    if !held.errors.is_empty() {
        msg.push_str(&format!(
            "; resolution errors: [{}]",
            aggregate(&held.errors)
        ));
    }
    Err(msg)
}

fn is_master(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == SYSTEM_MASTERS)
}

fn may(
    policy: &Policy,
    user: &UserInfo,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    policy
        .authorize(
            user,
            &Request::resource(verb, RBAC_GROUP, resource, namespace, name),
        )
        .allowed
}

/// Everything, which is what a role with an aggregationRule may come to grant.
fn full_authority() -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            api_groups: one("*"),
            resources: one("*"),
            verbs: vec!["*".into()],
            ..Default::default()
        },
        PolicyRule {
            non_resource_urls: one("*"),
            verbs: vec!["*".into()],
            ..Default::default()
        },
    ]
}

/// Which write of a role is checked: the `escalate` check sees the name only when the URL
/// carries it (an update), as Kubernetes reads it from the request, not the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// POST to the collection.
    Create,
    /// PUT or PATCH of the named object.
    Update,
}

struct RoleWrite<'a> {
    resource: &'a str,
    namespace: &'a str,
    name: &'a str,
    rules: &'a [PolicyRule],
}

fn check_role(
    policy: &Policy,
    user: &UserInfo,
    write: Write,
    role: RoleWrite<'_>,
) -> Result<(), ApiError> {
    let RoleWrite {
        resource,
        namespace,
        name,
        rules,
    } = role;
    let url_name = if write == Write::Update { name } else { "" };
    if is_master(user) || may(policy, user, "escalate", resource, namespace, url_name) {
        return Ok(());
    }
    confirm_no_escalation(policy, user, namespace, rules)
        .map_err(|why| forbidden_on(resource, RBAC_GROUP, name, &why))
}

/// Whether `user` may create or update `role` (403 Forbidden if not).
pub fn check_role_write(
    policy: &Policy,
    user: &UserInfo,
    write: Write,
    role: &Role,
) -> Result<(), ApiError> {
    let target = RoleWrite {
        resource: "roles",
        namespace: role.metadata.namespace.as_deref().unwrap_or_default(),
        name: role.metadata.name.as_deref().unwrap_or_default(),
        rules: role.rules.as_deref().unwrap_or_default(),
    };
    check_role(policy, user, write, target)
}

/// Whether `user` may create or update `role`; an aggregated role counts as granting
/// everything, since its rules are whatever later matches its selectors.
pub fn check_cluster_role_write(
    policy: &Policy,
    user: &UserInfo,
    write: Write,
    role: &ClusterRole,
) -> Result<(), ApiError> {
    let name = role.metadata.name.as_deref().unwrap_or_default();
    let rules = match role.aggregation_rule {
        Some(_) => full_authority(),
        None => role.rules.clone().unwrap_or_default(),
    };
    let target = RoleWrite {
        resource: "clusterroles",
        namespace: "",
        name,
        rules: &rules,
    };
    check_role(policy, user, write, target)
}

fn check_binding(
    policy: &Policy,
    user: &UserInfo,
    resource: &str,
    namespace: &str,
    name: &str,
    role_ref: &RoleRef,
) -> Result<(), ApiError> {
    if is_master(user) {
        return Ok(());
    }
    let role_resource = match role_ref.kind.as_str() {
        "Role" => Some("roles"),
        "ClusterRole" => Some("clusterroles"),
        _ => None,
    };
    if role_resource.is_some_and(|r| may(policy, user, "bind", r, namespace, &role_ref.name)) {
        return Ok(());
    }
    // The registry's own lookup fails as a Get would: 404 on the plural resource.
    let rules = policy
        .role_ref_rules(role_ref, namespace)
        .map_err(|e| match role_resource {
            Some(r) => {
                ApiError::not_found(&format!("{r}.{RBAC_GROUP}"), RBAC_GROUP, &role_ref.name)
            }
            None => ApiError::bad_request(e),
        })?;
    confirm_no_escalation(policy, user, namespace, &rules)
        .map_err(|why| forbidden_on(resource, RBAC_GROUP, name, &why))
}

/// Whether `user` may create or update `binding` in its namespace (403 Forbidden if not).
pub fn check_role_binding_write(
    policy: &Policy,
    user: &UserInfo,
    binding: &RoleBinding,
) -> Result<(), ApiError> {
    let ns = binding.metadata.namespace.as_deref().unwrap_or_default();
    let name = binding.metadata.name.as_deref().unwrap_or_default();
    check_binding(policy, user, "rolebindings", ns, name, &binding.role_ref)
}

/// Whether `user` may create or update `binding` (403 Forbidden if not).
pub fn check_cluster_role_binding_write(
    policy: &Policy,
    user: &UserInfo,
    binding: &ClusterRoleBinding,
) -> Result<(), ApiError> {
    let name = binding.metadata.name.as_deref().unwrap_or_default();
    check_binding(
        policy,
        user,
        "clusterrolebindings",
        "",
        name,
        &binding.role_ref,
    )
}
