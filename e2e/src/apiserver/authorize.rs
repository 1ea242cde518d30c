//! Authorization of every request, as kube-apiserver's RBAC authorizer does it: the request's
//! attributes (verb, API group, resource, subresource, namespace, name; or the path of a
//! non-resource URL) as its request-info resolver reads them from the method and URL, checked
//! against the stored roles and bindings for whom the request acts as ([`identity`]), with the
//! 403 Kubernetes answers. `system:masters` is allowed everything without evaluating RBAC, as
//! the real server's privileged-group authorizer allows it.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderMap, Method};

use super::error::ApiResult;
use super::identity;
use super::rbac::{forbidden, Policy, Request, UserInfo};
use super::route::Route;
use super::state::State;

/// The attributes of a request for `path` by `method`: a resource request when `route` is one.
pub(crate) fn attributes(
    method: &Method,
    path: &str,
    route: Option<&Route>,
    q: &BTreeMap<String, String>,
) -> Request {
    let Some(route) = route else {
        let verb = if *method == Method::HEAD {
            "get".to_owned()
        } else {
            method.as_str().to_lowercase()
        };
        return Request::non_resource(&verb, path);
    };
    let watching = route.watch || matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let named = route.name.is_some();
    let verb = match *method {
        Method::GET | Method::HEAD if watching => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "",
    };
    // A list or watch selecting one name by field is about that name, as kube-apiserver's
    // request-info resolver reads it (so `resourceNames` rules can allow it).
    let selected = matches!(verb, "list" | "watch")
        .then(|| selected_name(q.get("fieldSelector")?))
        .flatten();
    let request = Request::resource(
        verb,
        &route.group,
        &route.plural,
        route.namespace.as_deref().unwrap_or_default(),
        route.name.as_deref().or(selected).unwrap_or_default(),
    );
    match route.sub.as_deref() {
        Some(sub) => request.with_subresource(sub),
        None => request,
    }
}

/// The name a field selector requires exactly (`metadata.name=<n>` or `==`), if any.
fn selected_name(selector: &str) -> Option<&str> {
    selector.split(',').find_map(|term| {
        let value = term.trim().strip_prefix("metadata.name")?;
        let value = value
            .strip_prefix("==")
            .or_else(|| value.strip_prefix('='))?;
        (!value.is_empty()).then_some(value)
    })
}

/// Whom the request acts as, if its credentials authenticate it (401 otherwise) and RBAC
/// allows it what it asks (403 otherwise, or the impersonation's refusal).
pub(crate) fn check(st: &mut State, headers: &HeaderMap, request: &Request) -> ApiResult<UserInfo> {
    let me = identity::authenticate(headers, &st.tokens, &st.store, st.clock.now())?;
    let mut read: Option<Arc<Policy>> = None;
    let user = identity::requester(me, headers, || &**read.insert(st.rbac_policy()))?;
    if identity::privileged(&user) {
        return Ok(user);
    }
    let policy = read.unwrap_or_else(|| st.rbac_policy());
    let decision = policy.authorize(&user, request);
    if decision.allowed {
        Ok(user)
    } else {
        tracing::info!(user = %user.name, ?request, "forbidden: {}", decision.reason);
        Err(forbidden(&user, request, &decision.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str, query: &[(&str, &str)]) -> Request {
        let q = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        attributes(&method, path, Route::parse(path).as_ref(), &q)
    }

    fn res(verb: &str, group: &str, resource: &str, ns: &str, name: &str, sub: &str) -> Request {
        Request::resource(verb, group, resource, ns, name).with_subresource(sub)
    }

    #[test]
    fn verbs_follow_the_method_the_name_and_watching() {
        let pods = "/api/v1/namespaces/kafka/pods";
        assert_eq!(
            attrs(Method::GET, pods, &[]),
            res("list", "", "pods", "kafka", "", "")
        );
        assert_eq!(
            attrs(Method::GET, pods, &[("watch", "true")]),
            res("watch", "", "pods", "kafka", "", "")
        );
        assert_eq!(
            attrs(Method::GET, "/api/v1/watch/namespaces/kafka/pods", &[]),
            res("watch", "", "pods", "kafka", "", "")
        );
        assert_eq!(
            attrs(Method::GET, &format!("{pods}/p-0"), &[]),
            res("get", "", "pods", "kafka", "p-0", "")
        );
        assert_eq!(
            attrs(Method::POST, pods, &[]),
            res("create", "", "pods", "kafka", "", "")
        );
        assert_eq!(
            attrs(Method::PUT, &format!("{pods}/p-0/status"), &[]),
            res("update", "", "pods", "kafka", "p-0", "status")
        );
        assert_eq!(
            attrs(Method::PATCH, &format!("{pods}/p-0"), &[]),
            res("patch", "", "pods", "kafka", "p-0", "")
        );
        assert_eq!(
            attrs(Method::DELETE, &format!("{pods}/p-0"), &[]),
            res("delete", "", "pods", "kafka", "p-0", "")
        );
        assert_eq!(
            attrs(Method::DELETE, pods, &[]),
            res("deletecollection", "", "pods", "kafka", "", "")
        );
        assert_eq!(
            attrs(
                Method::GET,
                pods,
                &[("watch", "1"), ("fieldSelector", "metadata.name=p-0")]
            ),
            res("watch", "", "pods", "kafka", "p-0", "")
        );
        assert_eq!(
            attrs(
                Method::GET,
                pods,
                &[("fieldSelector", "status.phase=Running,metadata.name==p-1")]
            ),
            res("list", "", "pods", "kafka", "p-1", "")
        );
        assert_eq!(
            attrs(
                Method::GET,
                pods,
                &[("fieldSelector", "metadata.name!=p-1")]
            ),
            res("list", "", "pods", "kafka", "", "")
        );
        assert_eq!(
            attrs(Method::GET, &format!("{pods}/p-0/log"), &[]),
            res("get", "", "pods", "kafka", "p-0", "log")
        );
    }

    #[test]
    fn groups_cluster_scope_and_non_resource_urls() {
        assert_eq!(
            attrs(
                Method::GET,
                "/apis/coordination.k8s.io/v1/namespaces/kafka/leases/demo-0",
                &[]
            ),
            res(
                "get",
                "coordination.k8s.io",
                "leases",
                "kafka",
                "demo-0",
                ""
            )
        );
        assert_eq!(
            attrs(
                Method::PUT,
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
                &[]
            ),
            res(
                "update",
                "rbac.authorization.k8s.io",
                "clusterroles",
                "",
                "view",
                ""
            )
        );
        assert_eq!(
            attrs(Method::GET, "/api/v1/namespaces/kafka", &[]),
            res("get", "", "namespaces", "", "kafka", "")
        );
        assert_eq!(
            attrs(Method::GET, "/healthz", &[]),
            Request::non_resource("get", "/healthz")
        );
        assert_eq!(
            attrs(Method::GET, "/apis/tributary.dev/v1alpha1", &[]),
            Request::non_resource("get", "/apis/tributary.dev/v1alpha1")
        );
    }

    fn bearer(headers: &mut HeaderMap, token: &str) {
        if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
    }

    #[test]
    fn the_admin_passes_and_an_impersonated_user_gets_what_it_is_bound_to() {
        use crate::apiserver::FakeApiServer;
        let server = FakeApiServer::new();
        let allowed = |headers: &HeaderMap, request: &Request| {
            server.with(|st| check(st, headers, request).map_err(|e| e.code))
        };
        let delete = res("delete", "", "pods", "kafka", "p-0", "");
        let mut admin = HeaderMap::new();
        bearer(&mut admin, &server.admin_token());
        assert!(allowed(&admin, &delete).is_ok());
        let mut as_sa = admin.clone();
        as_sa.insert(
            "impersonate-user",
            http::HeaderValue::from_static("system:serviceaccount:kafka:demo-broker"),
        );
        assert_eq!(allowed(&as_sa, &delete).err(), Some(403));
        // Discovery is every authenticated user's (system:discovery).
        let discovery = Request::non_resource("get", "/apis");
        assert!(allowed(&as_sa, &discovery).is_ok());
    }

    #[test]
    fn requests_are_authenticated_before_they_are_authorized() {
        use crate::apiserver::FakeApiServer;
        let server = FakeApiServer::new();
        let mut bogus = HeaderMap::new();
        bearer(&mut bogus, "not-a-token");
        let mut admin = HeaderMap::new();
        bearer(&mut admin, &server.admin_token());
        let anonymous = HeaderMap::new();
        let get = |path: &str| Request::non_resource("get", path);
        let delete = res("delete", "", "pods", "kafka", "p-0", "");
        // (credentials, request, the user it acts as or the refusal's code)
        let cases: [(&HeaderMap, Request, Result<&str, u16>); 9] = [
            (&admin, delete.clone(), Ok("kubernetes-admin")),
            (&admin, get("/api"), Ok("kubernetes-admin")),
            // Anonymous requests are authorized like any other: public-info-viewer lets
            // everyone read the version and health, nothing else.
            (&anonymous, delete.clone(), Err(403)),
            (&anonymous, get("/version"), Ok("system:anonymous")),
            (&anonymous, get("/readyz"), Ok("system:anonymous")),
            (&anonymous, get("/api"), Err(403)),
            (&anonymous, get("/apis"), Err(403)),
            // A token the server does not know is refused before anything is authorized.
            (&bogus, get("/version"), Err(401)),
            (&bogus, delete, Err(401)),
        ];
        for (headers, request, expected) in cases {
            let got = server.with(|st| check(st, headers, &request));
            let got = got.as_ref().map(|u| u.name.as_str()).map_err(|e| e.code);
            assert_eq!(got, expected, "{request:?}");
        }
    }

    #[tokio::test]
    async fn a_role_granted_or_revoked_takes_effect_on_the_next_request() {
        use crate::apiserver::FakeApiServer;
        use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
        use kube::api::{Api, DeleteParams, PostParams};
        let server = FakeApiServer::new();
        server.create_namespace("kafka");
        let admin = server.client("kafka");
        let mut as_sa = HeaderMap::new();
        bearer(&mut as_sa, &server.admin_token());
        as_sa.insert(
            "impersonate-user",
            http::HeaderValue::from_static("system:serviceaccount:kafka:demo-broker"),
        );
        let list = res("list", "", "configmaps", "kafka", "", "");
        let allowed = || server.with(|st| check(st, &as_sa, &list).is_ok());
        assert!(!allowed());
        let role: Role = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]
        }))
        .unwrap_or_default();
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "demo-broker", "namespace": "kafka"}]
        }))
        .unwrap_or_default();
        let post = PostParams::default();
        let roles: Api<Role> = Api::namespaced(admin.clone(), "kafka");
        let bindings: Api<RoleBinding> = Api::namespaced(admin, "kafka");
        assert!(roles.create(&post, &role).await.is_ok());
        assert!(!allowed(), "a role bound to no one grants nothing");
        assert!(bindings.create(&post, &binding).await.is_ok());
        assert!(allowed());
        assert!(bindings
            .delete("reader", &DeleteParams::default())
            .await
            .is_ok());
        assert!(!allowed());
    }
}
