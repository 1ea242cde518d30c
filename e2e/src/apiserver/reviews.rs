//! The access reviews, answered on creation and never stored, as the real server answers
//! them: SelfSubjectAccessReview, SubjectAccessReview and LocalSubjectAccessReview from the
//! RBAC authorizer, SelfSubjectRulesReview from the rules bound to the requester, and
//! SelfSubjectReview (`kubectl auth whoami`) with the requester's identity. `kubectl auth
//! can-i` asks the first and the rules review. TokenReview ([`token_review`](super::token_review))
//! shares their shape.

use k8s_openapi::api::authorization::v1::{NonResourceAttributes, ResourceAttributes};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, FieldError};
use super::rbac::review::{access_review, review_request, rules_review};
use super::rbac::{Policy, Request, UserInfo};
use super::rest::Target;

/// `spec.<field>` of `body` as `T`, `None` when absent; 400 when malformed.
fn spec_field<T: serde::de::DeserializeOwned>(body: &Value, field: &str) -> ApiResult<Option<T>> {
    match body["spec"].get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("spec.{field}: {e}"))),
    }
}

fn invalid(target: &Target, errors: &[FieldError]) -> ApiError {
    ApiError::invalid(&target.rt.kind, &target.rt.group, "", errors)
}

/// The request a review's spec asks about: exactly one of resource or non-resource
/// attributes, as the real server validates it.
fn asked(target: &Target, body: &Value) -> ApiResult<(Request, Option<ResourceAttributes>)> {
    let resource: Option<ResourceAttributes> = spec_field(body, "resourceAttributes")?;
    let non_resource: Option<NonResourceAttributes> = spec_field(body, "nonResourceAttributes")?;
    if resource.is_some() && non_resource.is_some() {
        return Err(invalid(
            target,
            &[FieldError::invalid(
                "spec.nonResourceAttributes",
                &body["spec"]["nonResourceAttributes"],
                "cannot be specified in combination with resourceAttributes",
            )],
        ));
    }
    let request = review_request(resource.as_ref(), non_resource.as_ref()).ok_or_else(|| {
        invalid(
            target,
            &[FieldError::required(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
        )
    })?;
    Ok((request, resource))
}

/// The user a SubjectAccessReview names.
fn subject(target: &Target, body: &Value) -> ApiResult<UserInfo> {
    let name = body["spec"]["user"].as_str().unwrap_or_default().to_owned();
    let groups: Vec<String> = spec_field(body, "groups")?.unwrap_or_default();
    if name.is_empty() && groups.is_empty() {
        return Err(invalid(
            target,
            &[FieldError::invalid(
                "spec.user",
                &Value::String(String::new()),
                "at least one of user or group must be specified",
            )],
        ));
    }
    Ok(UserInfo {
        name,
        groups,
        ..UserInfo::default()
    })
}

/// The answer to creating review `body` of `target`'s kind as `requester`: the review with
/// its status (201), or the real server's refusal of a malformed one.
pub(crate) fn answer(
    policy: &Policy,
    requester: &UserInfo,
    target: &Target,
    body: Value,
) -> ApiResult<Value> {
    if !body.is_object() {
        return Err(ApiError::bad_request("a review must be an object"));
    }
    let status = match target.rt.plural.as_str() {
        "selfsubjectaccessreviews" => {
            let (request, _) = asked(target, &body)?;
            serde_json::to_value(access_review(policy, requester, &request))
        }
        "subjectaccessreviews" => {
            let user = subject(target, &body)?;
            let (request, _) = asked(target, &body)?;
            serde_json::to_value(access_review(policy, &user, &request))
        }
        "localsubjectaccessreviews" => {
            let user = subject(target, &body)?;
            let (request, resource) = asked(target, &body)?;
            let namespace = resource.and_then(|r| r.namespace).unwrap_or_default();
            if namespace != target.namespace {
                return Err(invalid(
                    target,
                    &[FieldError::invalid(
                        "spec.resourceAttributes.namespace",
                        &Value::String(namespace),
                        "must match metadata.namespace",
                    )],
                ));
            }
            if matches!(request, Request::NonResource { .. }) {
                return Err(invalid(
                    target,
                    &[FieldError::invalid(
                        "spec.nonResourceAttributes",
                        &body["spec"]["nonResourceAttributes"],
                        "disallowed on this kind of request",
                    )],
                ));
            }
            serde_json::to_value(access_review(policy, &user, &request))
        }
        "selfsubjectrulesreviews" => {
            let namespace = body["spec"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            serde_json::to_value(rules_review(policy, requester, &namespace))
        }
        "selfsubjectreviews" => Ok(json!({ "userInfo": user_info(requester) })),
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({other})"
            )))
        }
    }
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(answered(target, body, status))
}

/// A user as the authentication reviews show one (`userInfo`, a TokenReview's `user`):
/// `uid` and `extra` only when there are some.
pub(crate) fn user_info(user: &UserInfo) -> Value {
    let mut out = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        out["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        out["extra"] = json!(user.extra);
    }
    out
}

/// Review `body` of `target`'s kind answered with `status`, as the real server returns it.
pub(crate) fn answered(target: &Target, mut body: Value, status: Value) -> Value {
    body["apiVersion"] = Value::String(target.api_version());
    body["kind"] = Value::String(target.rt.kind.clone());
    body["metadata"]["creationTimestamp"] = Value::Null;
    if target.rt.namespaced {
        body["metadata"]["namespace"] = Value::String(target.namespace.clone());
    }
    body["status"] = status;
    body
}
