//! TokenReview (`authentication.k8s.io/v1`, create only, never stored): whom a bearer token
//! authenticates as and for which audiences, as kube-apiserver answers the webhook token
//! authenticators and proxies that delegate authentication to it (`system:auth-delegator`
//! grants the `create`). The same authenticator as every request's decides.

use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::rest::Target;
use super::reviews::{answered, user_info};
use super::store::Store;
use super::tokens::{Tokens, API_AUDIENCE};

/// The answer to creating TokenReview `body` at `now`: `status.authenticated`, `user` and
/// `audiences` for a token that authenticates for the audiences asked (this server's when
/// none are), otherwise an empty `user` and, when the token was recognised, `error`.
pub(crate) fn answer(
    tokens: &Tokens,
    store: &Store,
    now: i64,
    target: &Target,
    body: Value,
) -> ApiResult<Value> {
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let asked: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let wanted = if asked.is_empty() {
        vec![API_AUDIENCE.to_owned()]
    } else {
        asked
    };
    let status = match tokens.authenticate_for(token, store, now, &wanted) {
        Ok(who) => json!({
            "authenticated": true,
            "user": user_info(&who.user),
            "audiences": who.audiences,
        }),
        Err(refusal) => {
            let mut status = json!({"user": {}});
            if let Some(error) = refusal.review_error() {
                status["error"] = json!(error);
            }
            status
        }
    };
    Ok(answered(target, body, status))
}
