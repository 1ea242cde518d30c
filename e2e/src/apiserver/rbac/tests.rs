//! Table tests from Kubernetes' documented RBAC examples
//! (kubernetes.io/docs/reference/access-authn-authz/rbac/).

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::escalation::{
    check_cluster_role_write, check_role_binding_write, check_role_write, Write,
};
use super::review::{access_review, rules_review};
use super::*;

fn de<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("test object: {e}"))
}

fn role(ns: &str, name: &str, rules: Value) -> Role {
    de(json!({"metadata": {"name": name, "namespace": ns}, "rules": rules}))
}

fn cluster_role(name: &str, labels: Value, rules: Value) -> ClusterRole {
    de(json!({"metadata": {"name": name, "labels": labels}, "rules": rules}))
}

fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> RoleBinding {
    de(json!({"metadata": {"name": name, "namespace": ns},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
              "subjects": subjects}))
}

fn crb(name: &str, role: &str, subjects: Value) -> ClusterRoleBinding {
    de(json!({"metadata": {"name": name},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
              "subjects": subjects}))
}

/// The documentation's objects, plus the built-in roles.
fn policy() -> Policy {
    let mut p = Policy {
        cluster_roles: builtin_roles::cluster_roles().into_iter().map(de).collect(),
        cluster_role_bindings: builtin_roles::cluster_role_bindings()
            .into_iter()
            .map(de)
            .collect(),
        ..Default::default()
    };
    p.roles = vec![
        role(
            "default",
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]),
        ),
        role(
            "default",
            "configmap-updater",
            json!([{"apiGroups": [""], "resources": ["configmaps"],
            "resourceNames": ["my-configmap"], "verbs": ["update", "get"]}]),
        ),
        role(
            "default",
            "pod-and-pod-logs-reader",
            json!([{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]),
        ),
    ];
    p.cluster_roles.extend([
        cluster_role("secret-reader", json!({}), json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}])),
        cluster_role("health-reader", json!({}), json!([{"nonResourceURLs": ["/healthz", "/healthz/*"], "verbs": ["get", "post"]}])),
        cluster_role("monitoring-endpoints", json!({"rbac.example.com/aggregate-to-monitoring": "true"}),
            json!([{"apiGroups": [""], "resources": ["services", "endpointslices", "pods"], "verbs": ["get", "list", "watch"]}])),
        de(json!({"metadata": {"name": "monitoring"}, "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}]}, "rules": []})),
        cluster_role("status-writer", json!({}), json!([{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["update"]}])),
        cluster_role("role-grantor", json!({}), json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["create"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["admin", "edit", "view"]}])),
        cluster_role("role-escalator", json!({}), json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["create", "escalate"]}])),
    ]);
    p.role_bindings = vec![
        rb(
            "default",
            "read-pods",
            "Role",
            "pod-reader",
            json!([{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]),
        ),
        rb(
            "development",
            "read-secrets",
            "ClusterRole",
            "secret-reader",
            json!([{"kind": "User", "name": "dave"}]),
        ),
        rb(
            "default",
            "cm",
            "Role",
            "configmap-updater",
            json!([{"kind": "Group", "name": "cm-editors"}]),
        ),
        rb(
            "default",
            "logs",
            "Role",
            "pod-and-pod-logs-reader",
            json!([{"kind": "ServiceAccount", "name": "logger"}]),
        ),
        rb(
            "default",
            "grantor",
            "ClusterRole",
            "role-grantor",
            json!([{"kind": "User", "name": "grantor"}]),
        ),
        rb(
            "default",
            "escalator",
            "ClusterRole",
            "role-escalator",
            json!([{"kind": "User", "name": "escalator"}]),
        ),
        rb(
            "default",
            "broken",
            "Role",
            "missing",
            json!([{"kind": "User", "name": "broken"}]),
        ),
    ];
    p.cluster_role_bindings.extend([
        crb(
            "read-secrets-global",
            "secret-reader",
            json!([{"kind": "Group", "name": "manager"}]),
        ),
        crb(
            "health",
            "health-reader",
            json!([{"kind": "User", "name": "prober"}]),
        ),
        crb(
            "monitoring",
            "monitoring",
            json!([{"kind": "ServiceAccount", "name": "prom", "namespace": "monitoring"}]),
        ),
        crb(
            "status",
            "status-writer",
            json!([{"kind": "User", "name": "statusbot"}]),
        ),
    ]);
    p
}

fn res(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Request {
    Request::resource(verb, group, resource, ns, name)
}

fn user(name: &str) -> UserInfo {
    UserInfo::new(name, &["system:authenticated"])
}

#[test]
fn documented_examples_allow_and_deny_as_kubernetes_does() {
    let sa = |ns, n| UserInfo::service_account(ns, n);
    let cases: Vec<(&str, UserInfo, Request, bool)> = vec![
        (
            "pod-reader get",
            user("jane"),
            res("get", "", "pods", "default", "p"),
            true,
        ),
        (
            "pod-reader watch",
            user("jane"),
            res("watch", "", "pods", "default", ""),
            true,
        ),
        (
            "pod-reader not delete",
            user("jane"),
            res("delete", "", "pods", "default", "p"),
            false,
        ),
        (
            "pod-reader other namespace",
            user("jane"),
            res("list", "", "pods", "kube-system", ""),
            false,
        ),
        (
            "pod-reader all namespaces",
            user("jane"),
            res("list", "", "pods", "", ""),
            false,
        ),
        (
            "pod-reader not log",
            user("jane"),
            res("get", "", "pods", "default", "p").with_subresource("log"),
            false,
        ),
        (
            "other user",
            user("bob"),
            res("get", "", "pods", "default", "p"),
            false,
        ),
        (
            "clusterrole by rolebinding in ns",
            user("dave"),
            res("get", "", "secrets", "development", "s"),
            true,
        ),
        (
            "clusterrole by rolebinding elsewhere",
            user("dave"),
            res("get", "", "secrets", "default", "s"),
            false,
        ),
        (
            "clusterrole by rolebinding cluster-wide",
            user("dave"),
            res("list", "", "secrets", "", ""),
            false,
        ),
        (
            "clusterrolebinding everywhere",
            UserInfo::new("m", &["manager"]),
            res("list", "", "secrets", "", ""),
            true,
        ),
        (
            "clusterrolebinding in ns",
            UserInfo::new("m", &["manager"]),
            res("get", "", "secrets", "x", "s"),
            true,
        ),
        (
            "resourceNames match",
            UserInfo::new("c", &["cm-editors"]),
            res("update", "", "configmaps", "default", "my-configmap"),
            true,
        ),
        (
            "resourceNames other",
            UserInfo::new("c", &["cm-editors"]),
            res("update", "", "configmaps", "default", "other"),
            false,
        ),
        (
            "resourceNames no list",
            UserInfo::new("c", &["cm-editors"]),
            res("list", "", "configmaps", "default", ""),
            false,
        ),
        (
            "resourceNames no create",
            UserInfo::new("c", &["cm-editors"]),
            res("create", "", "configmaps", "default", ""),
            false,
        ),
        (
            "pods/log",
            sa("default", "logger"),
            res("get", "", "pods", "default", "p").with_subresource("log"),
            true,
        ),
        (
            "pods/log sa other ns",
            sa("other", "logger"),
            res("get", "", "pods", "default", "p").with_subresource("log"),
            false,
        ),
        (
            "pods/exec not granted",
            sa("default", "logger"),
            res("get", "", "pods", "default", "p").with_subresource("exec"),
            false,
        ),
        (
            "*/status",
            user("statusbot"),
            res("update", "apps", "deployments", "a", "d").with_subresource("status"),
            true,
        ),
        (
            "*/status not main",
            user("statusbot"),
            res("update", "apps", "deployments", "a", "d"),
            false,
        ),
        (
            "*/status not scale",
            user("statusbot"),
            res("update", "apps", "deployments", "a", "d").with_subresource("scale"),
            false,
        ),
        (
            "healthz",
            user("prober"),
            Request::non_resource("get", "/healthz"),
            true,
        ),
        (
            "healthz/*",
            user("prober"),
            Request::non_resource("post", "/healthz/etcd"),
            true,
        ),
        (
            "healthzz not prefix",
            user("prober"),
            Request::non_resource("get", "/healthzz"),
            false,
        ),
        (
            "public info",
            UserInfo::new("anon", &["system:unauthenticated"]),
            Request::non_resource("get", "/version"),
            true,
        ),
        (
            "no metrics",
            user("prober"),
            Request::non_resource("get", "/metrics"),
            false,
        ),
        (
            "aggregated monitoring",
            sa("monitoring", "prom"),
            res("watch", "", "endpointslices", "", ""),
            true,
        ),
        (
            "aggregated no write",
            sa("monitoring", "prom"),
            res("create", "", "pods", "x", ""),
            false,
        ),
        (
            "cluster-admin",
            UserInfo::new("root", &["system:masters"]),
            res("deletecollection", "x.io", "y", "", ""),
            true,
        ),
        (
            "cluster-admin paths",
            UserInfo::new("root", &["system:masters"]),
            Request::non_resource("get", "/metrics"),
            true,
        ),
        (
            "basic user reviews",
            user("x"),
            res(
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                "",
            ),
            true,
        ),
        (
            "missing role",
            user("broken"),
            res("get", "", "pods", "default", "p"),
            false,
        ),
    ];
    let p = policy();
    for (what, u, req, want) in cases {
        assert_eq!(p.authorize(&u, &req).allowed, want, "{what}");
    }
}

#[test]
fn admin_edit_view_aggregate_their_labelled_roles() {
    let mut p = policy();
    p.role_bindings.push(rb(
        "team",
        "v",
        "ClusterRole",
        "view",
        json!([{"kind": "User", "name": "viewer"}]),
    ));
    p.role_bindings.push(rb(
        "team",
        "a",
        "ClusterRole",
        "admin",
        json!([{"kind": "User", "name": "owner"}]),
    ));
    p.cluster_roles.push(cluster_role(
        "kafka-view",
        json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
        json!([{"apiGroups": ["tributary.io"], "resources": ["kafkaclusters"], "verbs": ["get"]}]),
    ));
    let cases = [
        (
            "viewer",
            res("list", "apps", "statefulsets", "team", ""),
            true,
        ),
        (
            "viewer",
            res("get", "tributary.io", "kafkaclusters", "team", "k"),
            true,
        ),
        ("viewer", res("get", "", "secrets", "team", "s"), false),
        ("viewer", res("create", "", "pods", "team", ""), false),
        (
            "owner",
            res("get", "tributary.io", "kafkaclusters", "team", "k"),
            true,
        ),
        (
            "owner",
            res(
                "create",
                "rbac.authorization.k8s.io",
                "rolebindings",
                "team",
                "",
            ),
            true,
        ),
        ("owner", res("create", "", "pods", "team", ""), true),
        ("owner", res("create", "", "pods", "other", ""), false),
    ];
    for (who, req, want) in cases {
        assert_eq!(p.authorize(&user(who), &req).allowed, want, "{who} {req:?}");
    }
}

#[test]
fn allowed_reason_names_the_binding() {
    let d = policy().authorize(&user("jane"), &res("get", "", "pods", "default", "p"));
    assert_eq!(
        d.reason,
        r#"RBAC: allowed by RoleBinding "read-pods/default" of Role "pod-reader" to User "jane""#
    );
    let d = policy().authorize(&user("broken"), &res("get", "", "pods", "default", "p"));
    assert_eq!(
        d.reason,
        r#"RBAC: role.rbac.authorization.k8s.io "missing" not found"#
    );
}

#[test]
fn forbidden_messages_have_kubernetes_forms() {
    let alice = user("alice");
    let cases = [
        (
            res("list", "", "pods", "default", ""),
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#,
        ),
        (
            res("list", "apps", "deployments", "", ""),
            r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope"#,
        ),
        (
            res("get", "", "pods", "default", "p").with_subresource("log"),
            r#"pods "p" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "default""#,
        ),
        (
            Request::non_resource("get", "/healthz"),
            r#"forbidden: User "alice" cannot get path "/healthz""#,
        ),
    ];
    for (req, want) in cases {
        let e = forbidden(&alice, &req, "");
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (403, "Forbidden", want)
        );
        assert_eq!(e.status()["reason"], "Forbidden");
    }
}

fn new_role(rules: Value) -> Role {
    role("default", "new", rules)
}

#[test]
fn role_writes_need_held_permissions_or_escalate() {
    let p = policy();
    let read_pods = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]);
    let cases: Vec<(&str, UserInfo, Role, bool)> = vec![
        (
            "subset held",
            user("jane"),
            new_role(read_pods.clone()),
            true,
        ),
        (
            "more verbs",
            user("jane"),
            new_role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}])),
            false,
        ),
        (
            "other namespace",
            user("jane"),
            role("kube-system", "new", read_pods.clone()),
            false,
        ),
        (
            "subresource not held",
            user("jane"),
            new_role(json!([{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}])),
            false,
        ),
        (
            "named subset of held",
            UserInfo::new("c", &["cm-editors"]),
            new_role(
                json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["my-configmap"], "verbs": ["get"]}]),
            ),
            true,
        ),
        (
            "unnamed from named",
            UserInfo::new("c", &["cm-editors"]),
            new_role(json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])),
            false,
        ),
        (
            "escalate verb",
            user("escalator"),
            new_role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])),
            true,
        ),
        (
            "system:masters",
            UserInfo::new("root", &["system:masters"]),
            new_role(read_pods.clone()),
            true,
        ),
        ("nobody", user("bob"), new_role(read_pods), false),
    ];
    for (what, u, r, want) in cases {
        assert_eq!(
            check_role_write(&p, &u, Write::Create, &r).is_ok(),
            want,
            "{what}"
        );
    }
    let health: ClusterRole = cluster_role(
        "h",
        json!({}),
        json!([{"nonResourceURLs": ["/healthz/ready"], "verbs": ["get"]}]),
    );
    assert!(check_cluster_role_write(&p, &user("prober"), Write::Create, &health).is_ok());
    assert!(check_cluster_role_write(&p, &user("jane"), Write::Update, &health).is_err());
    let agg: ClusterRole =
        de(json!({"metadata": {"name": "a"}, "aggregationRule": {"clusterRoleSelectors": []}}));
    assert!(
        check_cluster_role_write(&p, &user("prober"), Write::Create, &agg).is_err(),
        "aggregation needs full authority"
    );
}

#[test]
fn escalation_refusal_is_worded_as_kubernetes_words_it() {
    let r = new_role(
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete", "create"]}]),
    );
    let e = check_role_write(&policy(), &user("jane"), Write::Update, &r)
        .err()
        .unwrap_or_else(|| panic!("allowed"));
    assert_eq!(e.code, 403);
    assert_eq!(e.message, "roles.rbac.authorization.k8s.io \"new\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) \
        is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"create\"]}");
}

#[test]
fn bindings_need_the_roles_permissions_or_bind() {
    let p = policy();
    let bind = |ns: &str, kind: &str, role: &str| {
        rb(ns, "b", kind, role, json!([{"kind": "User", "name": "x"}]))
    };
    let cases: Vec<(&str, &str, RoleBinding, bool)> = vec![
        (
            "holds the role",
            "jane",
            bind("default", "Role", "pod-reader"),
            true,
        ),
        (
            "does not hold it",
            "bob",
            bind("default", "Role", "pod-reader"),
            false,
        ),
        (
            "bind on view",
            "grantor",
            bind("default", "ClusterRole", "view"),
            true,
        ),
        (
            "bind not on cluster-admin",
            "grantor",
            bind("default", "ClusterRole", "cluster-admin"),
            false,
        ),
        (
            "bind only in its namespace",
            "grantor",
            bind("other", "ClusterRole", "view"),
            false,
        ),
        (
            "clusterrole held in namespace",
            "dave",
            bind("development", "ClusterRole", "secret-reader"),
            true,
        ),
        (
            "clusterrole not held there",
            "dave",
            bind("default", "ClusterRole", "secret-reader"),
            false,
        ),
    ];
    for (what, who, b, want) in cases {
        assert_eq!(
            check_role_binding_write(&p, &user(who), &b).is_ok(),
            want,
            "{what}"
        );
    }
    let missing = check_role_binding_write(&p, &user("jane"), &bind("default", "Role", "nope"));
    let missing = missing.err().map(|e| (e.code, e.message));
    let want = r#"roles.rbac.authorization.k8s.io "nope" not found"#;
    assert_eq!(missing, Some((404, want.to_owned())));
}

#[test]
fn reviews_answer_from_the_authorizer() {
    let p = policy();
    let yes = access_review(&p, &user("jane"), &res("list", "", "pods", "default", ""));
    assert!(yes.allowed && yes.reason.is_some_and(|r| r.contains("read-pods")));
    let no = access_review(
        &p,
        &user("jane"),
        &res("delete", "", "pods", "default", "p"),
    );
    assert!(!no.allowed && no.denied.is_none());
    let rules = rules_review(&p, &user("jane"), "default");
    assert!(!rules.incomplete);
    assert!(rules
        .resource_rules
        .iter()
        .any(|r| r.resources.as_deref() == Some(&["pods".to_owned()][..])));
    assert!(rules.non_resource_rules.iter().any(|r| r
        .non_resource_urls
        .as_deref()
        .is_some_and(|u| u.contains(&"/healthz".to_owned()))));
    assert!(rules_review(&p, &user("broken"), "default").incomplete);
}

#[test]
fn a_fresh_server_has_the_builtin_roles_and_bindings() {
    let p = crate::apiserver::FakeApiServer::new().rbac_policy();
    let names: Vec<&str> = p
        .cluster_roles
        .iter()
        .filter_map(|r| r.metadata.name.as_deref())
        .collect();
    for want in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let root = UserInfo::new("root", &["system:masters"]);
    assert!(
        p.authorize(
            &root,
            &res(
                "create",
                "rbac.authorization.k8s.io",
                "clusterroles",
                "",
                ""
            )
        )
        .allowed
    );
    let anyone = user("someone");
    assert!(
        p.authorize(&anyone, &Request::non_resource("get", "/apis/apps"))
            .allowed
    );
    assert!(
        !p.authorize(&anyone, &res("list", "", "pods", "", ""))
            .allowed
    );
}

#[test]
fn escalate_named_in_resource_names_covers_updates_not_creates() {
    let mut p = policy();
    p.roles.push(role(
        "default",
        "escalate-new",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles"], "resourceNames": ["new"], "verbs": ["escalate"]}]),
    ));
    p.role_bindings.push(rb(
        "default",
        "e",
        "Role",
        "escalate-new",
        json!([{"kind": "User", "name": "named"}]),
    ));
    let r = new_role(json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]));
    assert!(check_role_write(&p, &user("named"), Write::Update, &r).is_ok());
    assert!(check_role_write(&p, &user("named"), Write::Create, &r).is_err());
}
