//! ClusterRole aggregation through the in-process client: the stored `rules` of a ClusterRole
//! with an `aggregationRule` are those of the ClusterRoles its selectors match, kept current as
//! they are created, changed and deleted, as kube-controller-manager's
//! clusterrole-aggregation controller keeps them (the built-in admin, edit and view too).

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

use crate::support::server;

fn role(v: Value) -> ClusterRole {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("test role: {e}"))
}

fn rule(resource: &str, verbs: &[&str]) -> PolicyRule {
    serde_json::from_value(json!({"apiGroups": [""], "resources": [resource], "verbs": verbs}))
        .unwrap_or_else(|e| panic!("test rule: {e}"))
}

async fn stored_rules(roles: &Api<ClusterRole>, name: &str) -> Vec<PolicyRule> {
    let role = roles
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e}"));
    role.rules.unwrap_or_default()
}

#[tokio::test]
async fn an_aggregated_cluster_role_stores_the_rules_of_the_roles_it_selects_and_follows_them() {
    let (_server, client) = server("aggregation");
    let roles: Api<ClusterRole> = Api::all(client);
    let pp = PostParams::default();
    roles
        .create(
            &pp,
            &role(json!({"metadata": {"name": "monitoring"}, "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}]}})),
        )
        .await
        .expect("create the aggregate");
    assert_eq!(stored_rules(&roles, "monitoring").await, []);

    let labels = json!({"example.com/aggregate-to-monitoring": "true"});
    for (name, resource) in [
        ("monitoring-services", "services"),
        ("monitoring-pods", "pods"),
    ] {
        roles
            .create(
                &pp,
                &role(json!({"metadata": {"name": name, "labels": labels},
                    "rules": [{"apiGroups": [""], "resources": [resource], "verbs": ["get"]}]})),
            )
            .await
            .expect("create a labelled role");
    }
    assert_eq!(
        stored_rules(&roles, "monitoring").await,
        [rule("pods", &["get"]), rule("services", &["get"])],
        "the selected roles' rules, by role name"
    );

    let more =
        json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    roles
        .patch(
            "monitoring-pods",
            &PatchParams::default(),
            &Patch::Merge(&more),
        )
        .await
        .expect("change a labelled role");
    assert_eq!(
        stored_rules(&roles, "monitoring").await,
        [rule("pods", &["get", "list"]), rule("services", &["get"])]
    );

    let unlabel = json!({"metadata": {"labels": {"example.com/aggregate-to-monitoring": null}}});
    roles
        .patch(
            "monitoring-services",
            &PatchParams::default(),
            &Patch::Merge(&unlabel),
        )
        .await
        .expect("unlabel a role");
    roles
        .delete("monitoring-pods", &DeleteParams::default())
        .await
        .expect("delete a labelled role");
    assert_eq!(stored_rules(&roles, "monitoring").await, []);
}

#[tokio::test]
async fn the_built_in_admin_edit_and_view_store_their_rules_and_take_labelled_roles() {
    let (_server, client) = server("aggregation");
    let roles: Api<ClusterRole> = Api::all(client);
    for name in ["admin", "edit", "view"] {
        assert!(
            !stored_rules(&roles, name).await.is_empty(),
            "{name} stores its aggregated rules"
        );
    }
    let crd_reader = rule("kafkatopics", &["get", "list", "watch"]);
    roles
        .create(
            &PostParams::default(),
            &role(json!({"metadata": {"name": "kafkatopics-view",
                "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                "rules": [crd_reader]})),
        )
        .await
        .expect("create a role aggregated to view");
    for name in ["admin", "edit", "view"] {
        assert!(
            stored_rules(&roles, name).await.contains(&crd_reader),
            "{name} takes what is aggregated to view"
        );
    }
}
