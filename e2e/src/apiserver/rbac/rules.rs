//! Rule matching as Kubernetes' RBAC authorizer does it (`RuleAllows` and the `rbacv1helpers`
//! matchers): what one PolicyRule grants to one request.

use k8s_openapi::api::rbac::v1::PolicyRule;

/// The wildcard of verbs, API groups, resources and non-resource URLs.
const ALL: &str = "*";

/// Who asks: the name and groups an authenticator yields (what RBAC reads), and the uid and
/// extra attributes it knows (what `kubectl auth whoami` shows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// `alice`, `system:serviceaccount:<ns>:<name>`.
    pub name: String,
    /// `system:authenticated`, `system:masters`, ...
    pub groups: Vec<String>,
    /// A ServiceAccount's uid, or the impersonated `Impersonate-Uid`; empty when unknown.
    pub uid: String,
    /// A pod-bound token's `authentication.kubernetes.io/pod-name` and `pod-uid`, or the
    /// impersonated `Impersonate-Extra-*`.
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with `groups`.
    pub fn new(name: &str, groups: &[&str]) -> Self {
        UserInfo {
            name: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..UserInfo::default()
        }
    }

    /// The identity a ServiceAccount's token authenticates as, with the groups Kubernetes
    /// gives every ServiceAccount.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        UserInfo {
            name: service_account_username(namespace, name),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_owned(),
            ],
            ..UserInfo::default()
        }
    }
}

/// `system:serviceaccount:<ns>:<name>`, the user name a ServiceAccount subject stands for.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// What a request asks for, as the API server's request-info resolver describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A request on an API resource.
    Resource(ResourceRequest),
    /// A request on a path outside the resource tree (`/healthz`, `/version`).
    NonResource {
        /// `get`, `post`, ... (lower case).
        verb: String,
        /// The URL path.
        path: String,
    },
}

/// The attributes of a resource request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRequest {
    /// get, list, watch, create, update, patch, delete, deletecollection, escalate, bind, ...
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource (`status`, `log`, `scale`), empty if none.
    pub subresource: String,
    /// Namespace, empty for cluster-scoped requests and all-namespace lists.
    pub namespace: String,
    /// Object name, empty for list, watch of a collection, create and deletecollection.
    pub name: String,
}

impl Request {
    /// A resource request without subresource.
    pub fn resource(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        Request::Resource(ResourceRequest {
            verb: verb.to_owned(),
            group: group.to_owned(),
            resource: resource.to_owned(),
            subresource: String::new(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The same request on `subresource`.
    pub fn with_subresource(mut self, subresource: &str) -> Self {
        if let Request::Resource(r) = &mut self {
            r.subresource = subresource.to_owned();
        }
        self
    }

    /// A non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Request::NonResource {
            verb: verb.to_owned(),
            path: path.to_owned(),
        }
    }

    /// The request's verb.
    pub fn verb(&self) -> &str {
        match self {
            Request::Resource(r) => &r.verb,
            Request::NonResource { verb, .. } => verb,
        }
    }

    /// The namespace whose RoleBindings apply (none for non-resource requests).
    pub fn namespace(&self) -> &str {
        match self {
            Request::Resource(r) => &r.namespace,
            Request::NonResource { .. } => "",
        }
    }
}

/// An optional list of a rule, empty when absent.
pub(super) fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

/// Whether `set` holds `s`.
pub(super) fn has(set: &[String], s: &str) -> bool {
    set.iter().any(|x| x == s)
}

/// Whether `rule` grants `request` (Kubernetes' `RuleAllows`).
pub fn rule_allows(rule: &PolicyRule, request: &Request) -> bool {
    if !verb_matches(rule, request.verb()) {
        return false;
    }
    match request {
        Request::Resource(r) => {
            let combined = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            group_matches(rule, &r.group)
                && resource_matches(rule, &combined, &r.subresource)
                && resource_name_matches(rule, &r.name)
        }
        Request::NonResource { path, .. } => list(&rule.non_resource_urls)
            .iter()
            .any(|u| non_resource_url_covers(u, path)),
    }
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

fn group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups)
        .iter()
        .any(|g| g == ALL || g == group)
}

/// `*`, the exact `resource[/subresource]`, or `*/subresource`.
fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty()
                && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
    })
}

/// A rule naming objects never grants a request without a name (list, create, watch of a
/// collection).
fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || has(names, name)
}

/// An exact path, or a prefix when `owner` ends in `*`.
pub(super) fn non_resource_url_covers(owner: &str, path: &str) -> bool {
    owner == path
        || owner
            .strip_suffix('*')
            .is_some_and(|_| path.starts_with(owner.trim_end_matches('*')))
}
