//! Real kubectl's RBAC commands as against a real cluster: `create serviceaccount|role|
//! clusterrole|rolebinding|clusterrolebinding` (sent as protobuf), and `auth can-i` (yes and
//! no, `--list`, impersonating a service account or a user with groups) and `auth whoami`
//! answered from the stored roles and bindings; `get clusterrole` shows the rules an
//! aggregated ClusterRole stores.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::Api;

use super::cluster::Cluster;

const NS: &str = "kafka";
const BROKER: &str = "system:serviceaccount:kafka:demo-broker";

async fn can_i(c: &Cluster, args: &[&str]) -> String {
    // `auth can-i` exits 1 for "no": the answer is what it prints.
    let out = c.kubectl(&[&["auth", "can-i"], args].concat()).await;
    assert!(
        out.stderr.is_empty() || out.stderr.starts_with("Warning"),
        "kubectl auth can-i {args:?}: {}",
        out.stderr
    );
    out.stdout.trim().to_owned()
}

/// `kubectl create clusterrole monitoring` aggregating the roles labelled
/// `example.com/aggregate-to-monitoring=true`.
async fn create_monitoring_aggregate(c: &Cluster) {
    c.kubectl_ok(&[
        "create",
        "clusterrole",
        "monitoring",
        "--aggregation-rule=example.com/aggregate-to-monitoring=true",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_rbac_objects_and_answers_auth_can_i_from_them() {
    let c = Cluster::start(NS).await;
    c.kubectl_ok(&["-n", NS, "create", "serviceaccount", "demo-broker"])
        .await;
    c.kubectl_ok(&[
        "-n",
        NS,
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods,pods/log",
    ])
    .await;
    c.kubectl_ok(&[
        "-n",
        NS,
        "create",
        "rolebinding",
        "broker-reads-pods",
        "--role=pod-reader",
        "--serviceaccount=kafka:demo-broker",
    ])
    .await;
    c.kubectl_ok(&[
        "create",
        "clusterrole",
        "node-reader",
        "--verb=get",
        "--resource=nodes",
    ])
    .await;
    create_monitoring_aggregate(&c).await;
    c.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "ops-read-nodes",
        "--clusterrole=node-reader",
        "--group=ops",
    ])
    .await;

    let binding: RoleBinding = Api::namespaced(c.client.clone(), NS)
        .get("broker-reads-pods")
        .await
        .expect("role binding");
    let subject = binding.subjects.unwrap_or_default();
    assert_eq!(
        subject
            .iter()
            .map(|s| (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()))
            .collect::<Vec<_>>(),
        [("ServiceAccount", "demo-broker", Some(NS))]
    );
    let aggregated: ClusterRole = Api::all(c.client.clone())
        .get("monitoring")
        .await
        .expect("cluster role");
    let selector = aggregated
        .aggregation_rule
        .and_then(|a| a.cluster_role_selectors)
        .unwrap_or_default();
    assert_eq!(
        selector
            .first()
            .and_then(|s| s.match_labels.as_ref())
            .and_then(|l| l.get("example.com/aggregate-to-monitoring"))
            .map(String::as_str),
        Some("true")
    );
    let ops: ClusterRoleBinding = Api::all(c.client.clone())
        .get("ops-read-nodes")
        .await
        .expect("cluster role binding");
    assert_eq!(ops.role_ref.name, "node-reader");

    // The service account holds what its Role grants, in its namespace only.
    let as_broker = ["--as", BROKER];
    assert_eq!(
        can_i(&c, &[&["list", "pods", "-n", NS], &as_broker[..]].concat()).await,
        "yes"
    );
    assert_eq!(
        can_i(
            &c,
            &[
                &["get", "pods", "--subresource=log", "-n", NS],
                &as_broker[..]
            ]
            .concat()
        )
        .await,
        "yes"
    );
    assert_eq!(
        can_i(
            &c,
            &[&["delete", "pods", "-n", NS], &as_broker[..]].concat()
        )
        .await,
        "no"
    );
    assert_eq!(
        can_i(
            &c,
            &[&["list", "pods", "-n", "default"], &as_broker[..]].concat()
        )
        .await,
        "no"
    );
    // A user is granted through a group it is impersonated with, and only through it.
    assert_eq!(
        can_i(&c, &["get", "nodes", "--as", "alice", "--as-group", "ops"]).await,
        "yes"
    );
    assert_eq!(can_i(&c, &["get", "nodes", "--as", "alice"]).await, "no");
    // Discovery is open to every authenticated user; the admin may do anything.
    assert_eq!(can_i(&c, &["get", "/api", "--as", "alice"]).await, "yes");
    assert_eq!(can_i(&c, &["*", "*"]).await, "yes");

    let list = c
        .kubectl_ok(&[&["auth", "can-i", "--list", "-n", NS], &as_broker[..]].concat())
        .await;
    let pods = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("no pods rule in:\n{list}"));
    assert!(pods.ends_with("[get list watch]"), "{pods}");
    assert!(
        list.lines().any(|l| l.starts_with("pods/log ")),
        "no pods/log rule in:\n{list}"
    );
    assert!(!list.contains("nodes"), "{list}");

    let me = c.kubectl_ok(&["auth", "whoami", "-o", "json"]).await;
    let me: serde_json::Value = serde_json::from_str(&me).expect("whoami json");
    assert_eq!(me["status"]["userInfo"]["username"], "kubernetes-admin");
    let broker = c
        .kubectl_ok(&[&["auth", "whoami", "-o", "json"], &as_broker[..]].concat())
        .await;
    let broker: serde_json::Value = serde_json::from_str(&broker).expect("whoami json");
    assert_eq!(broker["status"]["userInfo"]["username"], BROKER);
    assert_eq!(
        broker["status"]["userInfo"]["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:kafka",
            "system:authenticated"
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_authorized_for_whom_they_impersonate_and_rbac_writes_cannot_escalate() {
    let c = Cluster::start(NS).await;
    c.kubectl_ok(&["-n", NS, "create", "serviceaccount", "demo-broker"])
        .await;
    c.kubectl_ok(&[
        "-n",
        NS,
        "create",
        "configmap",
        "settings",
        "--from-literal=a=b",
    ])
    .await;
    c.kubectl_ok(&[
        "-n",
        NS,
        "create",
        "role",
        "config-reader",
        "--verb=get,list",
        "--resource=configmaps",
    ])
    .await;
    c.kubectl_ok(&[
        "-n",
        NS,
        "create",
        "rolebinding",
        "broker-reads-config",
        "--role=config-reader",
        "--serviceaccount=kafka:demo-broker",
    ])
    .await;
    let listed = c
        .kubectl_ok(&["-n", NS, "get", "configmaps", "-o", "name", "--as", BROKER])
        .await;
    assert!(listed.contains("configmap/settings"), "{listed}");
    let refused = c
        .kubectl(&["-n", NS, "delete", "configmap", "settings", "--as", BROKER])
        .await;
    assert!(!refused.ok, "a delete the role does not grant succeeded");
    assert!(
        refused.stderr.contains(
            "configmaps \"settings\" is forbidden: User \"system:serviceaccount:kafka:demo-broker\" \
             cannot delete resource \"configmaps\" in API group \"\" in the namespace \"kafka\""
        ),
        "{}",
        refused.stderr
    );
    let elsewhere = c
        .kubectl(&["-n", "default", "get", "configmaps", "--as", BROKER])
        .await;
    assert!(
        !elsewhere.ok && elsewhere.stderr.contains("Forbidden"),
        "{}",
        elsewhere.stderr
    );

    // A user who may create Roles may grant only what it holds.
    c.kubectl_ok(&[
        "-n",
        NS,
        "create",
        "role",
        "role-writer",
        "--verb=create,get",
        "--resource=roles,configmaps",
    ])
    .await;
    c.kubectl_ok(&[
        "-n",
        NS,
        "create",
        "rolebinding",
        "alice-writes-roles",
        "--role=role-writer",
        "--user=alice",
    ])
    .await;
    c.kubectl_ok(&[
        "-n",
        NS,
        "create",
        "role",
        "within",
        "--verb=get",
        "--resource=configmaps",
        "--as",
        "alice",
    ])
    .await;
    let beyond = c
        .kubectl(&[
            "-n",
            NS,
            "create",
            "role",
            "beyond",
            "--verb=delete",
            "--resource=secrets",
            "--as",
            "alice",
        ])
        .await;
    assert!(!beyond.ok, "an escalating Role was created");
    assert!(
        beyond
            .stderr
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        beyond.stderr
    );
    // She may not bind what she may not create bindings for, whatever the role.
    let bind = c
        .kubectl(&[
            "-n",
            NS,
            "create",
            "rolebinding",
            "sneaky",
            "--role=config-reader",
            "--user=alice",
            "--as",
            "alice",
        ])
        .await;
    assert!(
        !bind.ok
            && bind
                .stderr
                .contains("cannot create resource \"rolebindings\""),
        "{}",
        bind.stderr
    );
}

/// A copy of the cluster's kubeconfig presenting `token` instead of the admin's.
fn kubeconfig_with_token(c: &Cluster, name: &str, token: &str) -> String {
    let admin = std::fs::read_to_string(&c.kubeconfig).expect("the admin kubeconfig");
    let admin_token = c.server.admin_token();
    assert!(
        admin.contains(&admin_token),
        "the admin kubeconfig carries the admin token"
    );
    let path = c.home.path().join(name);
    std::fs::write(&path, admin.replace(&admin_token, token)).expect("write the kubeconfig");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_authenticates_with_the_admin_token_or_a_created_service_account_token_and_is_refused_a_bogus_one(
) {
    let c = Cluster::start(NS).await;
    let me = c.kubectl_ok(&["auth", "whoami", "-o", "json"]).await;
    let me: serde_json::Value = serde_json::from_str(&me).expect("whoami json");
    assert_eq!(me["status"]["userInfo"]["username"], "kubernetes-admin");
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        serde_json::json!(["system:masters", "system:authenticated"])
    );

    c.kubectl_ok(&["-n", NS, "create", "serviceaccount", "demo-broker"])
        .await;
    let token = c
        .kubectl_ok(&["-n", NS, "create", "token", "demo-broker", "--duration=20m"])
        .await;
    let broker = kubeconfig_with_token(&c, "broker.kubeconfig", token.trim());
    let who = c
        .kubectl_ok(&["--kubeconfig", &broker, "auth", "whoami", "-o", "json"])
        .await;
    let who: serde_json::Value = serde_json::from_str(&who).expect("whoami json");
    assert_eq!(who["status"]["userInfo"]["username"], BROKER);
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:kafka",
            "system:authenticated"
        ])
    );
    // Authenticated, the account is still authorized by RBAC: bound to nothing, refused.
    let refused = c
        .kubectl(&["--kubeconfig", &broker, "-n", NS, "get", "pods"])
        .await;
    assert!(
        !refused.ok && refused.stderr.contains("Forbidden"),
        "{}",
        refused.stderr
    );
    let short = c
        .kubectl(&["-n", NS, "create", "token", "demo-broker", "--duration=5m"])
        .await;
    assert!(
        !short.ok
            && short
                .stderr
                .contains("may not specify a duration less than 10 minutes"),
        "{}",
        short.stderr
    );

    let bogus = kubeconfig_with_token(&c, "bogus.kubeconfig", "not-a-token");
    for args in [&["auth", "whoami"][..], &["-n", NS, "get", "pods"][..]] {
        let out = c
            .kubectl(&[&["--kubeconfig", bogus.as_str()][..], args].concat())
            .await;
        assert!(
            !out.ok && out.stderr.contains("Unauthorized"),
            "kubectl {args:?} with a bogus token: {}",
            out.stderr
        );
    }
    // Deleting the account revokes its tokens.
    c.kubectl_ok(&["-n", NS, "delete", "serviceaccount", "demo-broker"])
        .await;
    let revoked = c
        .kubectl(&["--kubeconfig", &broker, "auth", "whoami"])
        .await;
    assert!(
        !revoked.ok && revoked.stderr.contains("Unauthorized"),
        "{}",
        revoked.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_shows_the_rules_an_aggregated_cluster_role_stores() {
    let c = Cluster::start(NS).await;
    let admin = c
        .kubectl_ok(&["get", "clusterrole", "admin", "-o", "yaml"])
        .await;
    assert!(
        admin.contains("rules:") && admin.contains("- rolebindings"),
        "admin stores the rules it aggregates:\n{admin}"
    );
    create_monitoring_aggregate(&c).await;
    c.kubectl_ok(&[
        "create",
        "clusterrole",
        "endpoint-reader",
        "--verb=get",
        "--resource=endpoints",
    ])
    .await;
    let rules = [
        "get",
        "clusterrole",
        "monitoring",
        "-o",
        "jsonpath={.rules}",
    ];
    assert_eq!(c.kubectl_ok(&rules).await.trim(), "");
    c.kubectl_ok(&[
        "label",
        "clusterrole",
        "endpoint-reader",
        "example.com/aggregate-to-monitoring=true",
    ])
    .await;
    assert_eq!(
        c.kubectl_ok(&rules).await.trim(),
        r#"[{"apiGroups":[""],"resources":["endpoints"],"verbs":["get"]}]"#
    );
}

/// The uid of `kind/name` (in the test namespace when namespaced).
async fn uid(c: &Cluster, kind: &str, name: &str) -> String {
    let jsonpath = "jsonpath={.metadata.uid}";
    c.kubectl_ok(&["-n", NS, "get", kind, name, "-o", jsonpath])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_whoami_shows_a_pod_bound_tokens_credential_id_pod_and_node() {
    let c = Cluster::start(NS).await;
    let manifest = c.home.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: node-a}}\n---\n\
             apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: demo-broker, namespace: {NS}}}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {{name: broker-0, namespace: {NS}}}\n\
             spec: {{serviceAccountName: demo-broker, nodeName: node-a, containers: [{{name: c, image: i}}]}}\n"
        ),
    )
    .expect("write the manifest");
    c.kubectl_ok(&["create", "-f", &manifest.to_string_lossy()])
        .await;
    let (pod_uid, node_uid) = (
        uid(&c, "pod", "broker-0").await,
        uid(&c, "node", "node-a").await,
    );
    let token = c
        .kubectl_ok(&[
            "-n",
            NS,
            "create",
            "token",
            "demo-broker",
            "--bound-object-kind=Pod",
            "--bound-object-name=broker-0",
        ])
        .await;
    let broker = kubeconfig_with_token(&c, "bound.kubeconfig", token.trim());
    let who = c
        .kubectl_ok(&["--kubeconfig", &broker, "auth", "whoami", "-o", "yaml"])
        .await;
    let who: serde_json::Value = serde_yaml::from_str(&who).expect("whoami yaml");
    let extra = &who["status"]["userInfo"]["extra"];
    let one = |key: &str| {
        extra[format!("authentication.kubernetes.io/{key}")][0]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(one("pod-name"), "broker-0", "{who}");
    assert_eq!(one("pod-uid"), pod_uid);
    assert_eq!(one("node-name"), "node-a");
    assert_eq!(one("node-uid"), node_uid);
    let credential = one("credential-id");
    assert!(
        credential.len() > "JTI=".len() && credential.starts_with("JTI="),
        "{credential}"
    );
}
