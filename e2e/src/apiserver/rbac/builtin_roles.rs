//! The ClusterRoles and ClusterRoleBindings a fresh cluster has (Kubernetes' bootstrap
//! policy) that the chart, the operator and kubectl rely on.

use serde_json::{json, Value};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = crate::apiserver::discovery::VERBS;

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
}

fn cluster_role(name: &str, labels: Value, body: Value) -> Value {
    let mut role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
    });
    if let (Some(r), Some(b)) = (role.as_object_mut(), body.as_object()) {
        r.extend(b.clone());
    }
    role
}

fn bootstrap(extra: Option<(&str, &str)>) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let (Some((k, v)), Some(m)) = (extra, labels.as_object_mut()) {
        m.insert(k.to_owned(), json!(v));
    }
    labels
}

fn aggregated(name: &str, from: &str, into: Option<&str>) -> Value {
    let into_label = into.map(|i| format!("rbac.authorization.k8s.io/aggregate-to-{i}"));
    cluster_role(
        name,
        bootstrap(into_label.as_deref().map(|l| (l, "true"))),
        json!({"aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{from}"): "true"}}]},
            "rules": []}),
    )
}

fn aggregate_to(level: &str, rules: Vec<Value>) -> Value {
    cluster_role(
        &format!("system:aggregate-to-{level}"),
        bootstrap(Some((
            &format!("rbac.authorization.k8s.io/aggregate-to-{level}"),
            "true",
        ))),
        json!({ "rules": rules }),
    )
}

fn non_resource(name: &str, urls: &[&str]) -> Value {
    cluster_role(
        name,
        bootstrap(None),
        json!({"rules": [{"nonResourceURLs": urls, "verbs": ["get"]}]}),
    )
}

/// The built-in ClusterRoles: cluster-admin, admin, edit and view (aggregating the
/// `system:aggregate-to-*` roles and anything labelled `aggregate-to-<role>`),
/// system:discovery, system:basic-user, system:auth-delegator (TokenReview and
/// SubjectAccessReview, for delegated authentication) and system:public-info-viewer.
pub fn cluster_roles() -> Vec<Value> {
    vec![
        cluster_role(
            "cluster-admin",
            bootstrap(None),
            json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                              {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
        ),
        aggregated("admin", "admin", None),
        aggregated("edit", "edit", Some("admin")),
        aggregated("view", "view", Some("edit")),
        aggregate_to(
            "admin",
            vec![
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["localsubjectaccessreviews"],
                ),
                rule(
                    READ_WRITE,
                    "rbac.authorization.k8s.io",
                    &["rolebindings", "roles"],
                ),
            ],
        ),
        aggregate_to(
            "edit",
            vec![
                rule(
                    READ,
                    "",
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                ),
                rule(&["impersonate"], "", &["serviceaccounts"]),
                rule(
                    WRITE,
                    "",
                    &[
                        "pods",
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                    ],
                ),
                rule(&["create"], "", &["pods/eviction"]),
                rule(
                    WRITE,
                    "",
                    &[
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                ),
                rule(&["create"], "", &["serviceaccounts/token"]),
                rule(
                    WRITE,
                    "apps",
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                ),
                rule(WRITE, "autoscaling", &["horizontalpodautoscalers"]),
                rule(WRITE, "batch", &["cronjobs", "jobs"]),
                rule(WRITE, "policy", &["poddisruptionbudgets"]),
                rule(
                    WRITE,
                    "networking.k8s.io",
                    &["ingresses", "networkpolicies"],
                ),
                rule(READ_WRITE, "coordination.k8s.io", &["leases"]),
            ],
        ),
        aggregate_to(
            "view",
            vec![
                rule(
                    READ,
                    "",
                    &[
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                    ],
                ),
                rule(
                    READ,
                    "",
                    &[
                        "bindings",
                        "events",
                        "limitranges",
                        "namespaces/status",
                        "pods/log",
                        "pods/status",
                        "replicationcontrollers/status",
                        "resourcequotas",
                        "resourcequotas/status",
                    ],
                ),
                rule(READ, "", &["namespaces"]),
                rule(READ, "discovery.k8s.io", &["endpointslices"]),
                rule(
                    READ,
                    "apps",
                    &[
                        "controllerrevisions",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "statefulsets",
                        "statefulsets/scale",
                        "statefulsets/status",
                    ],
                ),
                rule(
                    READ,
                    "autoscaling",
                    &[
                        "horizontalpodautoscalers",
                        "horizontalpodautoscalers/status",
                    ],
                ),
                rule(
                    READ,
                    "batch",
                    &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                ),
                rule(
                    READ,
                    "policy",
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                ),
                rule(
                    READ,
                    "networking.k8s.io",
                    &["ingresses", "ingresses/status", "networkpolicies"],
                ),
            ],
        ),
        non_resource(
            "system:discovery",
            &[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ],
        ),
        cluster_role(
            "system:basic-user",
            bootstrap(None),
            json!({"rules": [
                rule(&["create"], "authorization.k8s.io", &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule(&["create"], "authentication.k8s.io", &["selfsubjectreviews"]),
            ]}),
        ),
        cluster_role(
            "system:auth-delegator",
            bootstrap(None),
            json!({"rules": [
                rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
                rule(&["create"], "authorization.k8s.io", &["subjectaccessreviews"]),
            ]}),
        ),
        non_resource(
            "system:public-info-viewer",
            &["/healthz", "/livez", "/readyz", "/version", "/version/"],
        ),
    ]
}

fn binding(role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role, "labels": bootstrap(None),
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// The default ClusterRoleBindings: cluster-admin to `system:masters`, discovery and
/// basic-user to every authenticated user, public-info-viewer to everyone.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", &["system:masters"]),
        binding("system:discovery", &["system:authenticated"]),
        binding("system:basic-user", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}
