//! `serviceaccounts/<name>/token` (TokenRequest, what `kubectl create token` and the kubelet's
//! projected volumes call): a token for the ServiceAccount, optionally bound to one of its pods,
//! valid for `spec.expirationSeconds`, as the real server's token storage issues one.

use serde_json::{json, Value};

use super::Written;
use crate::apiserver::error::{ApiError, ApiResult, FieldError};
use crate::apiserver::state::State;
use crate::apiserver::store::Key;
use crate::apiserver::tokens::{BoundPod, Claims, PodNode, API_AUDIENCE};

/// The lifetime of a token whose request names none (Kubernetes' defaulting).
const DEFAULT_EXPIRATION: i64 = 3600;
/// The shortest and longest lifetimes a request may ask for.
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;

const GROUP: &str = "authentication.k8s.io";

fn invalid(field: &str, value: &Value, detail: &str) -> ApiError {
    ApiError::invalid(
        "TokenRequest",
        GROUP,
        "",
        &[FieldError::invalid(field, value, detail)],
    )
}

/// The requested lifetime: the default when unset, 422 outside Kubernetes' bounds.
fn expiration(spec: &Value) -> ApiResult<i64> {
    let asked = &spec["expirationSeconds"];
    let Some(secs) = (if asked.is_null() {
        Some(DEFAULT_EXPIRATION)
    } else {
        asked.as_i64()
    }) else {
        return Err(invalid(
            "spec.expirationSeconds",
            asked,
            "must be an integer",
        ));
    };
    if secs < MIN_EXPIRATION {
        return Err(invalid(
            "spec.expirationSeconds",
            asked,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if secs > MAX_EXPIRATION {
        return Err(invalid(
            "spec.expirationSeconds",
            asked,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    Ok(secs)
}

impl State {
    /// POST `serviceaccounts/<account>/token` in `namespace` with TokenRequest `body`: 201 and
    /// the request with `status.token` and `status.expirationTimestamp`; 404 for a missing
    /// ServiceAccount or bound pod, 400 for a pod of another ServiceAccount or an object kind
    /// tokens cannot be bound to, 409 for a bound object whose uid differs, 422 for a
    /// lifetime outside 10 minutes to 2^32 seconds.
    pub(crate) fn request_token(
        &mut self,
        namespace: &str,
        account: &str,
        body: Option<Value>,
    ) -> ApiResult<Written> {
        let mut req = body.unwrap_or_else(|| json!({}));
        if let Some(asked) = req["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
            if asked != account {
                let errors = [FieldError::invalid(
                    "metadata.name",
                    &json!(asked),
                    "must match the service account name if specified",
                )];
                return Err(ApiError::invalid("TokenRequest", GROUP, account, &errors));
            }
        }
        let secs = expiration(&req["spec"])?;
        let sa = self
            .store
            .get(&Key::new("/serviceaccounts", namespace, account))
            .ok_or_else(|| ApiError::not_found("serviceaccounts", "", account))?;
        let account_uid = sa["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let pod = match req["spec"].get("boundObjectRef").filter(|r| !r.is_null()) {
            Some(bound) => Some(self.bound_pod(namespace, account, bound)?),
            None => None,
        };
        let audiences = match req["spec"]["audiences"].as_array() {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => vec![API_AUDIENCE.to_owned()],
        };
        let now = self.clock.now();
        let expires = now + secs;
        let id = self.store.next_uid();
        let token = self.tokens.issue(
            Claims {
                id,
                namespace: namespace.to_owned(),
                account: account.to_owned(),
                account_uid,
                pod,
                audiences: audiences.clone(),
                issued: now,
                expires,
            },
            now,
        );
        req["apiVersion"] = json!("authentication.k8s.io/v1");
        req["kind"] = json!("TokenRequest");
        req["metadata"]["name"] = json!(account);
        req["metadata"]["namespace"] = json!(namespace);
        req["metadata"]["creationTimestamp"] = json!(crate::clock::rfc3339(now));
        req["spec"]["audiences"] = json!(audiences);
        req["spec"]["expirationSeconds"] = json!(secs);
        req["status"] = json!({
            "token": token,
            "expirationTimestamp": crate::clock::rfc3339(expires),
        });
        Ok(Written {
            object: req,
            code: 201,
            warnings: Vec::new(),
        })
    }

    /// The pod `bound` names, checked as the real server checks a bound object reference.
    fn bound_pod(&self, namespace: &str, account: &str, bound: &Value) -> ApiResult<BoundPod> {
        let kind = bound["kind"].as_str().unwrap_or_default();
        let api_version = bound["apiVersion"].as_str().unwrap_or_default();
        if kind != "Pod" || !matches!(api_version, "v1" | "") {
            let gvk = format!("{api_version}, Kind={kind}");
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {gvk}"
            )));
        }
        let name = bound["name"].as_str().unwrap_or_default();
        let pod = self
            .store
            .get(&Key::new("/pods", namespace, name))
            .ok_or_else(|| ApiError::not_found("pods", "", name))?;
        let runs_as = pod["spec"]["serviceAccountName"]
            .as_str()
            .filter(|a| !a.is_empty())
            .unwrap_or("default");
        if runs_as != account {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {account:?} to pod running with different serviceaccount name."
            )));
        }
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        if let Some(asked) = bound["uid"].as_str().filter(|u| !u.is_empty()) {
            if asked != uid {
                let why = format!(
                    "the UID in the bound object reference ({asked}) does not match the UID in record. The object might have been deleted and then recreated"
                );
                return Err(ApiError::conflict("Pod", "", name, &why));
            }
        }
        let node = pod["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(|node| PodNode {
                name: node.to_owned(),
                uid: self
                    .store
                    .get(&Key::new("/nodes", "", node))
                    .and_then(|n| n["metadata"]["uid"].as_str())
                    .map(str::to_owned),
            });
        Ok(BoundPod {
            name: name.to_owned(),
            uid: uid.to_owned(),
            node,
        })
    }
}
