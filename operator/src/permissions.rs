//! The operator's own permissions, checked when it starts leading: what it needs in the
//! namespaces it watches, compared with what the API server says it holds
//! (SelfSubjectRulesReview), so a ServiceAccount missing a rule is named at once, in the log
//! and in each KafkaCluster's `Authorized` condition, instead of surfacing later as a
//! reconcile failing on a 403.

use k8s_openapi::api::authorization::v1::{
    ResourceRule, SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::{Api, Client};

use tributary_crds::conditions::set_condition;

/// Condition type naming the permissions the operator lacks (present only while some are).
pub const AUTHORIZED: &str = "Authorized";
/// Its reason.
pub const MISSING_PERMISSIONS: &str = "MissingPermissions";

/// Permissions on one resource.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Plural resource, with `/subresource` where one is meant.
    pub resource: &'static str,
    /// The verbs the operator uses on it.
    pub verbs: &'static [&'static str],
}

const fn need(group: &'static str, resource: &'static str, verbs: &'static [&'static str]) -> Need {
    Need {
        group,
        resource,
        verbs,
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const GROUP: &str = tributary_crds::GROUP;

/// What the operator does in a namespace it watches (the chart's namespaced rules grant
/// exactly this; a test holds the two together).
pub const NEEDED: &[Need] = &[
    need(GROUP, "kafkaclusters", READ),
    need(
        GROUP,
        "kafkatopics",
        &[
            "get", "list", "watch", "create", "update", "patch", "delete",
        ],
    ),
    need(
        GROUP,
        "kafkapartitions",
        &["get", "list", "watch", "create", "update", "patch"],
    ),
    need(
        GROUP,
        "kafkausers",
        &[
            "get", "list", "watch", "create", "update", "patch", "delete",
        ],
    ),
    need(
        GROUP,
        "kafkaschemas",
        &["get", "list", "watch", "update", "patch"],
    ),
    need(GROUP, "kafkaclusters/status", &["get", "update", "patch"]),
    need(GROUP, "kafkatopics/status", &["get", "update", "patch"]),
    need(GROUP, "kafkapartitions/status", &["get", "update", "patch"]),
    need(GROUP, "kafkausers/status", &["get", "update", "patch"]),
    need(GROUP, "kafkaschemas/status", &["get", "update", "patch"]),
    need(
        "apps",
        "statefulsets",
        &["get", "list", "watch", "create", "patch"],
    ),
    need(
        "apps",
        "deployments",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    need(
        "",
        "configmaps",
        &["get", "list", "watch", "create", "update", "patch"],
    ),
    need(
        "",
        "secrets",
        &["get", "list", "watch", "create", "update", "delete"],
    ),
    need(
        "",
        "serviceaccounts",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    need(
        "",
        "services",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    need("", "pods", &["get", "list", "watch", "delete"]),
    need(
        "policy",
        "poddisruptionbudgets",
        &["get", "create", "patch", "delete"],
    ),
    need(
        "networking.k8s.io",
        "networkpolicies",
        &["get", "create", "patch", "delete"],
    ),
    need(
        "rbac.authorization.k8s.io",
        "roles",
        &["get", "create", "patch", "delete"],
    ),
    need(
        "rbac.authorization.k8s.io",
        "rolebindings",
        &["get", "create", "patch", "delete"],
    ),
    need(
        "coordination.k8s.io",
        "leases",
        &["get", "list", "watch", "create", "update", "patch"],
    ),
    need("events.k8s.io", "events", &["create", "patch"]),
];

fn matches(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

/// Whether `rule` grants `verb` on every object of `group`/`resource` (a rule limited to
/// resource names does not).
fn grants(rule: &ResourceRule, group: &str, resource: &str, verb: &str) -> bool {
    let all = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    all(&rule.resource_names).is_empty()
        && matches(&rule.verbs, verb)
        && matches(&all(&rule.api_groups), group)
        && matches(&all(&rule.resources), resource)
}

/// Each permission of `needed` that no rule in `held` grants, as `verb resource.group`.
pub fn missing(needed: &[Need], held: &[ResourceRule]) -> Vec<String> {
    let mut out = Vec::new();
    for n in needed {
        for verb in n.verbs {
            if !held.iter().any(|r| grants(r, n.group, n.resource, verb)) {
                let qualified = if n.group.is_empty() {
                    n.resource.to_owned()
                } else {
                    format!("{}.{}", n.resource, n.group)
                };
                out.push(format!("{verb} {qualified}"));
            }
        }
    }
    out
}

/// What the operator lacks of [`NEEDED`] in `namespace`, as the API server reports its rules
/// there; an incomplete review (a bound role missing) is logged and judged on what it lists.
pub async fn check(client: &Client, namespace: &str) -> Result<Vec<String>, kube::Error> {
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(namespace.to_owned()),
        },
        ..SelfSubjectRulesReview::default()
    };
    let answer = Api::<SelfSubjectRulesReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    let status = answer.status.unwrap_or_default();
    if status.incomplete {
        tracing::warn!(
            namespace,
            error = status.evaluation_error.as_deref().unwrap_or_default(),
            "the API server's list of the operator's rules is incomplete"
        );
    }
    Ok(missing(NEEDED, &status.resource_rules))
}

/// Sets the `Authorized` condition while `missing` names something, and removes it otherwise.
pub fn set_authorized(
    conditions: &mut Vec<Condition>,
    missing: &[String],
    generation: Option<i64>,
) {
    if missing.is_empty() {
        conditions.retain(|c| c.type_ != AUTHORIZED);
        return;
    }
    set_condition(
        conditions,
        AUTHORIZED,
        false,
        MISSING_PERMISSIONS,
        format!(
            "the operator's ServiceAccount may not: {}",
            missing.join(", ")
        ),
        generation,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> ResourceRule {
        let list = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect());
        ResourceRule {
            api_groups: list(groups),
            resources: list(resources),
            verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
            resource_names: (!names.is_empty())
                .then(|| names.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn everything_is_missing_without_rules_and_nothing_with_a_wildcard() {
        let all = missing(NEEDED, &[]);
        assert!(all.contains(&"list kafkatopics.tributary.dev".to_owned()));
        assert!(all.contains(&"delete pods".to_owned()));
        assert!(missing(NEEDED, &[rule(&["*"], &["*"], &["*"], &[])]).is_empty());
    }

    #[test]
    fn a_rule_limited_to_names_or_another_group_does_not_count() {
        let needed = [need("", "configmaps", &["get", "list"])];
        let named = rule(&[""], &["configmaps"], &["get", "list"], &["one"]);
        assert_eq!(
            missing(&needed, &[named]),
            ["get configmaps", "list configmaps"]
        );
        let other_group = rule(&["apps"], &["configmaps"], &["*"], &[]);
        assert_eq!(missing(&needed, &[other_group]).len(), 2);
        let some_verbs = rule(&[""], &["configmaps"], &["get"], &[]);
        assert_eq!(missing(&needed, &[some_verbs]), ["list configmaps"]);
    }

    #[test]
    fn the_condition_names_what_is_missing_and_goes_when_nothing_is() {
        let mut conditions = Vec::new();
        set_authorized(&mut conditions, &["list pods".to_owned()], Some(3));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, AUTHORIZED);
        assert_eq!(conditions[0].status, "False");
        assert!(conditions[0].message.contains("list pods"));
        set_authorized(&mut conditions, &[], Some(3));
        assert!(conditions.is_empty());
    }
}
