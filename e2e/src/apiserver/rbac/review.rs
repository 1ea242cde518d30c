//! The answers of `authorization.k8s.io/v1` SubjectAccessReview, SelfSubjectAccessReview and
//! SelfSubjectRulesReview, from the authorizer, as functions of the asking user (the server's
//! `reviews` module serves them).

use k8s_openapi::api::authorization::v1::{
    NonResourceRule, ResourceAttributes, ResourceRule, SubjectAccessReviewStatus,
    SubjectRulesReviewStatus,
};

use super::authorizer::{aggregate, Policy};
use super::rules::{Request, ResourceRequest, UserInfo};

/// The request a review's resource or non-resource attributes describe (`None` if neither).
pub fn review_request(
    resource: Option<&ResourceAttributes>,
    non_resource: Option<&k8s_openapi::api::authorization::v1::NonResourceAttributes>,
) -> Option<Request> {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    if let Some(r) = resource {
        return Some(Request::Resource(ResourceRequest {
            verb: s(&r.verb),
            group: s(&r.group),
            resource: s(&r.resource),
            subresource: s(&r.subresource),
            namespace: s(&r.namespace),
            name: s(&r.name),
        }));
    }
    non_resource.map(|n| Request::non_resource(&s(&n.verb), &s(&n.path)))
}

/// The status of a (Self)SubjectAccessReview for `user` asking `request`: RBAC allows or has
/// no opinion, so `denied` stays unset, as on a cluster whose only authorizer is RBAC.
pub fn access_review(
    policy: &Policy,
    user: &UserInfo,
    request: &Request,
) -> SubjectAccessReviewStatus {
    let d = policy.authorize(user, request);
    SubjectAccessReviewStatus {
        allowed: d.allowed,
        reason: (!d.reason.is_empty()).then_some(d.reason),
        ..Default::default()
    }
}

/// The status of a SelfSubjectRulesReview for `user` in `namespace`: every rule bound to it
/// there, split into resource and non-resource rules; `incomplete` when a bound role is
/// missing.
pub fn rules_review(policy: &Policy, user: &UserInfo, namespace: &str) -> SubjectRulesReviewStatus {
    let held = policy.rules_for(user, namespace);
    let some = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in held.rules {
        if r.non_resource_urls.as_ref().is_some_and(|u| !u.is_empty()) {
            non_resource_rules.push(NonResourceRule {
                verbs: r.verbs.clone(),
                non_resource_urls: some(&r.non_resource_urls),
            });
        }
        if r.resources.as_ref().is_some_and(|u| !u.is_empty()) {
            resource_rules.push(ResourceRule {
                verbs: r.verbs,
                api_groups: some(&r.api_groups),
                resources: some(&r.resources),
                resource_names: some(&r.resource_names),
            });
        }
    }
    SubjectRulesReviewStatus {
        incomplete: !held.errors.is_empty(),
        evaluation_error: (!held.errors.is_empty()).then(|| aggregate(&held.errors)),
        resource_rules,
        non_resource_rules,
    }
}
