//! Who a request acts as, as kube-apiserver decides it: authentication by the bearer token
//! in `Authorization` ([`Tokens`]: the administrator's static token, or a ServiceAccount token
//! TokenRequest issued), `system:anonymous` for a request without credentials (then
//! authorized by RBAC like any other), 401 for a token the server does not accept; then,
//! if the request impersonates another user with Kubernetes' `Impersonate-*` headers
//! (`kubectl --as`, `--as-group`), that user, as the real server authorizes it: the
//! `impersonate` verb on `users`, `groups`, `serviceaccounts`, `uids` and `userextras`.

use http::HeaderMap;

use super::error::{ApiError, ApiResult};
use super::rbac::{forbidden, Policy, Request, UserInfo};
use super::store::Store;
use super::tokens::Tokens;

pub use super::tokens::ADMIN;

const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const ANONYMOUS: &str = "system:anonymous";
const SA_PREFIX: &str = "system:serviceaccount:";

/// The user of a request without credentials.
pub fn anonymous() -> UserInfo {
    UserInfo::new(ANONYMOUS, &[UNAUTHENTICATED])
}

/// 401 as Kubernetes answers a credential it does not accept (no hint why).
pub(crate) fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The bearer token of `headers`: `None` without one (no `Authorization`, or another scheme,
/// which no authenticator here reads), `Some("")` for an empty one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Whom the credentials of `headers` authenticate at `now`: a bearer token's user, anonymous
/// without credentials; 401 for a token that is unknown, expired, or whose ServiceAccount
/// or bound pod is gone (a bad token is never taken as anonymous, as in Kubernetes).
pub(crate) fn authenticate(
    headers: &HeaderMap,
    tokens: &Tokens,
    store: &Store,
    now: i64,
) -> ApiResult<UserInfo> {
    let Some(token) = bearer(headers) else {
        return Ok(anonymous());
    };
    tokens.authenticate(token, store, now).map_err(|why| {
        tracing::info!("unauthorized: {why}");
        unauthorized()
    })
}

/// What the `Impersonate-*` headers ask for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Impersonation {
    user: Option<String>,
    groups: Vec<String>,
    uid: Option<String>,
    extra: Vec<(String, String)>,
}

fn impersonation(headers: &HeaderMap) -> Impersonation {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let extra = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("impersonate-extra-")?;
            Some((key.to_owned(), v.to_str().ok()?.to_owned()))
        })
        .collect();
    Impersonation {
        user: values("impersonate-user").into_iter().next(),
        groups: values("impersonate-group"),
        uid: values("impersonate-uid").into_iter().next(),
        extra,
    }
}

/// The namespace and name of a service account user name.
fn service_account(user: &str) -> Option<(&str, &str)> {
    user.strip_prefix(SA_PREFIX)?.split_once(':')
}

/// The `impersonate` checks of `asked`, in the real server's order.
fn impersonate_requests(asked: &Impersonation, user: &str) -> Vec<Request> {
    let mut out = vec![match service_account(user) {
        Some((ns, name)) => Request::resource("impersonate", "", "serviceaccounts", ns, name),
        None => Request::resource("impersonate", "", "users", "", user),
    }];
    out.extend(
        asked
            .groups
            .iter()
            .map(|g| Request::resource("impersonate", "", "groups", "", g)),
    );
    if let Some(uid) = &asked.uid {
        out.push(Request::resource(
            "impersonate",
            "authentication.k8s.io",
            "uids",
            "",
            uid,
        ));
    }
    for (key, value) in &asked.extra {
        out.push(
            Request::resource(
                "impersonate",
                "authentication.k8s.io",
                "userextras",
                "",
                value,
            )
            .with_subresource(key),
        );
    }
    out
}

/// The user `asked` makes of an authorized impersonation: a service account's groups when
/// none are asked for, and `system:authenticated` added as the real server adds it.
fn impersonated(asked: Impersonation, user: String) -> UserInfo {
    let mut groups = asked.groups;
    if groups.is_empty() {
        if let Some((ns, _)) = service_account(&user) {
            groups = vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
    }
    let implied = if user == ANONYMOUS {
        UNAUTHENTICATED
    } else {
        AUTHENTICATED
    };
    if !groups.iter().any(|g| g == implied) {
        groups.push(implied.to_owned());
    }
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (key, value) in asked.extra {
        extra.entry(key).or_default().push(value);
    }
    UserInfo {
        name: user,
        groups,
        uid: asked.uid.unwrap_or_default(),
        extra,
    }
}

/// Whether `user` is in `system:masters`, which no authorizer ever refuses.
pub fn privileged(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == "system:masters")
}

/// The user `headers` make a request of authenticated user `me` act as: `me`, or whom it
/// impersonates if the RBAC `policy` (read only when needed) allows that (403 naming the
/// refused impersonation otherwise).
pub fn requester<'p>(
    me: UserInfo,
    headers: &HeaderMap,
    policy: impl FnOnce() -> &'p Policy,
) -> ApiResult<UserInfo> {
    let asked = impersonation(headers);
    if asked == Impersonation::default() {
        return Ok(me);
    }
    let policy = policy();
    let Some(user) = asked.user.clone().filter(|u| !u.is_empty()) else {
        return Err(ApiError::bad_request(
            "requested impersonation of groups, a uid or extras without impersonating a user",
        ));
    };
    for request in impersonate_requests(&asked, &user) {
        let decision = policy.authorize(&me, &request);
        if !decision.allowed {
            return Err(forbidden(&me, &request, &decision.reason));
        }
    }
    Ok(impersonated(asked, user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append(*k, v);
            }
        }
        h
    }

    fn admin_policy() -> Policy {
        Policy {
            cluster_roles: crate::apiserver::rbac::builtin_roles::cluster_roles()
                .into_iter()
                .filter_map(|r| serde_json::from_value(r).ok())
                .collect(),
            cluster_role_bindings: crate::apiserver::rbac::builtin_roles::cluster_role_bindings()
                .into_iter()
                .filter_map(|b| serde_json::from_value(b).ok())
                .collect(),
            ..Policy::default()
        }
    }

    fn the_admin() -> UserInfo {
        UserInfo::new(ADMIN, &["system:masters", AUTHENTICATED])
    }

    #[test]
    fn without_impersonation_a_request_is_its_authenticated_user() {
        let none = Policy::default();
        let u = requester(the_admin(), &HeaderMap::new(), || &none).unwrap_or_default();
        assert_eq!(u, the_admin());
    }

    #[test]
    fn credentials_decide_the_authenticated_user() {
        let tokens = Tokens::default();
        let store = Store::new(10);
        let admin_token = format!("Bearer {}", tokens.admin());
        let who = |h: &HeaderMap| authenticate(h, &tokens, &store, 0).map_err(|e| e.status());
        assert_eq!(who(&HeaderMap::new()), Ok(anonymous()));
        assert_eq!(anonymous().groups, ["system:unauthenticated"]);
        assert_eq!(
            who(&headers(&[("authorization", &admin_token)])),
            Ok(the_admin())
        );
        let lower = admin_token.replacen("Bearer", "bearer", 1);
        assert_eq!(who(&headers(&[("authorization", &lower)])), Ok(the_admin()));
        // Another scheme is no credential this server reads: anonymous, as in Kubernetes.
        let basic = headers(&[("authorization", "Basic YWRtaW46YWRtaW4=")]);
        assert_eq!(who(&basic), Ok(anonymous()));
        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
        for refused in ["Bearer bogus", "Bearer ", "Bearer"] {
            assert_eq!(
                who(&headers(&[("authorization", refused)])),
                Err(status.clone()),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_service_account_is_impersonated_with_its_groups() {
        let admin = admin_policy();
        let h = headers(&[(
            "impersonate-user",
            "system:serviceaccount:kafka:demo-broker",
        )]);
        let u = requester(the_admin(), &h, || &admin).unwrap_or_default();
        assert_eq!(u.name, "system:serviceaccount:kafka:demo-broker");
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:kafka",
                "system:authenticated"
            ]
        );
    }

    #[test]
    fn asked_groups_replace_the_implied_ones_but_authenticated_stays() {
        let admin = admin_policy();
        let h = headers(&[
            ("impersonate-user", "alice"),
            ("impersonate-group", "devs"),
            ("impersonate-group", "ops"),
        ]);
        let u = requester(the_admin(), &h, || &admin).unwrap_or_default();
        assert_eq!(u.groups, ["devs", "ops", "system:authenticated"]);
        let anon = headers(&[("impersonate-user", "system:anonymous")]);
        let u = requester(the_admin(), &anon, || &admin).unwrap_or_default();
        assert_eq!(u.groups, ["system:unauthenticated"]);
    }

    #[test]
    fn impersonation_needs_the_impersonate_verb_and_a_user() {
        let admin = admin_policy();
        let none = Policy::default();
        let h = headers(&[("impersonate-user", "alice")]);
        let refused = requester(the_admin(), &h, || &none).err().map(|e| e.code);
        assert_eq!(refused, Some(403));
        let groups_only = headers(&[("impersonate-group", "devs")]);
        let refused = requester(the_admin(), &groups_only, || &admin)
            .err()
            .map(|e| e.code);
        assert_eq!(refused, Some(400));
    }

    #[test]
    fn every_impersonated_attribute_is_checked() {
        let asked = impersonation(&headers(&[
            ("impersonate-user", "system:serviceaccount:ns:sa"),
            ("impersonate-group", "g"),
            ("impersonate-uid", "u-1"),
            ("impersonate-extra-scopes", "view"),
        ]));
        let checks = impersonate_requests(&asked, "system:serviceaccount:ns:sa");
        let resources: Vec<String> = checks
            .iter()
            .filter_map(|r| match r {
                Request::Resource(r) => Some(format!(
                    "{}/{}/{}/{}/{}",
                    r.group, r.resource, r.subresource, r.namespace, r.name
                )),
                Request::NonResource { .. } => None,
            })
            .collect();
        assert_eq!(
            resources,
            [
                "/serviceaccounts//ns/sa",
                "/groups///g",
                "authentication.k8s.io/uids///u-1",
                "authentication.k8s.io/userextras/scopes//view",
            ]
        );
    }
}
