//! Who a request acts as. The server does not authenticate yet, so every request comes from
//! the cluster administrator (in `system:masters`, as the admin kubeconfig of a kubeadm or kind
//! cluster), unless it impersonates another user with Kubernetes' `Impersonate-*` headers
//! (`kubectl --as`, `--as-group`), which is authorized as the real server authorizes it: the
//! `impersonate` verb on `users`, `groups`, `serviceaccounts`, `uids` and `userextras`.

use http::HeaderMap;

use super::error::{ApiError, ApiResult};
use super::rbac::{forbidden, Policy, Request, UserInfo};

/// The identity of every request until the server authenticates: the admin.
pub const ADMIN: &str = "kubernetes-admin";

const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const ANONYMOUS: &str = "system:anonymous";
const SA_PREFIX: &str = "system:serviceaccount:";

/// The user a request comes from before impersonation.
pub fn authenticated() -> UserInfo {
    UserInfo::new(ADMIN, &["system:masters", AUTHENTICATED])
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
    UserInfo { name: user, groups }
}

/// Whether `user` is in `system:masters`, which no authorizer ever refuses.
pub fn privileged(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == "system:masters")
}

/// The user `headers` make a request act as: the authenticated user, or whom it impersonates
/// if the RBAC `policy` (read only when needed) allows that (403 naming the refused
/// impersonation otherwise).
pub fn requester<'p>(
    headers: &HeaderMap,
    policy: impl FnOnce() -> &'p Policy,
) -> ApiResult<UserInfo> {
    let me = authenticated();
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

    #[test]
    fn without_headers_a_request_is_the_admin() {
        let none = Policy::default();
        let u = requester(&HeaderMap::new(), || &none).unwrap_or_default();
        assert_eq!(u, authenticated());
    }

    #[test]
    fn a_service_account_is_impersonated_with_its_groups() {
        let admin = admin_policy();
        let h = headers(&[(
            "impersonate-user",
            "system:serviceaccount:kafka:demo-broker",
        )]);
        let u = requester(&h, || &admin).unwrap_or_default();
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
        let u = requester(&h, || &admin).unwrap_or_default();
        assert_eq!(u.groups, ["devs", "ops", "system:authenticated"]);
        let anon = headers(&[("impersonate-user", "system:anonymous")]);
        let u = requester(&anon, || &admin).unwrap_or_default();
        assert_eq!(u.groups, ["system:unauthenticated"]);
    }

    #[test]
    fn impersonation_needs_the_impersonate_verb_and_a_user() {
        let admin = admin_policy();
        let none = Policy::default();
        let h = headers(&[("impersonate-user", "alice")]);
        let refused = requester(&h, || &none).err().map(|e| e.code);
        assert_eq!(refused, Some(403));
        let groups_only = headers(&[("impersonate-group", "devs")]);
        let refused = requester(&groups_only, || &admin).err().map(|e| e.code);
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
