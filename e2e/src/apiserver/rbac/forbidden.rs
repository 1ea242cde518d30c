//! The 403 a denied request gets: a Forbidden Status with the message the API server's
//! `responsewriters.Forbidden` writes.

use super::rules::{Request, UserInfo};
use crate::apiserver::error::{ApiError, Subject};

/// `User "alice" cannot list resource "pods" in API group "" in the namespace "default"`.
fn forbidden_message(user: &UserInfo, request: &Request) -> String {
    match request {
        Request::NonResource { verb, path } => {
            format!("User {:?} cannot {verb} path {path:?}", user.name)
        }
        Request::Resource(r) => {
            let resource = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            let head = format!(
                "User {:?} cannot {} resource {resource:?} in API group {:?}",
                user.name, r.verb, r.group
            );
            if r.namespace.is_empty() {
                format!("{head} at the cluster scope")
            } else {
                format!("{head} in the namespace {:?}", r.namespace)
            }
        }
    }
}

/// The Forbidden error for a denied `request`; `reason` is the authorizer's (appended after
/// `: ` when not empty).
pub fn forbidden(user: &UserInfo, request: &Request, reason: &str) -> ApiError {
    let mut why = forbidden_message(user, request);
    if !reason.is_empty() {
        why = format!("{why}: {reason}");
    }
    match request {
        Request::NonResource { .. } => ApiError::forbidden(format!("forbidden: {why}")),
        Request::Resource(r) => forbidden_on(&r.resource, &r.group, &r.name, &why),
    }
}

/// `apierrors.NewForbidden(groupResource, name, err)`: `<resource>[.<group>] ["<name>"] is
/// forbidden: <why>`, with the details' group, kind (the resource) and name.
pub(super) fn forbidden_on(resource: &str, group: &str, name: &str, why: &str) -> ApiError {
    let qualified = if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    };
    let message = if name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} {name:?} is forbidden: {why}")
    };
    ApiError::forbidden(message).with_subject(Subject {
        group: group.to_owned(),
        kind: resource.to_owned(),
        name: name.to_owned(),
    })
}
