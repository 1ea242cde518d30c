//! ServiceAccount admission through the in-process client: every namespace gets its `default`
//! account, a pod naming none runs as it, a pod whose account does not exist is refused at
//! creation (403 with Kubernetes' message), and the workload controllers that create such pods
//! record FailedCreate.

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{ListParams, PostParams};
use kube::Api;
use serde_json::json;
use tributary_e2e::controllers::{Controllers, ControllersConfig};

use crate::support::{api_error, failed_creates, server};

const NS: &str = "accounts";

fn pod(name: &str, account: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
    if let Some(sa) = account {
        spec["serviceAccountName"] = json!(sa);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("a pod")
}

#[tokio::test]
async fn a_pod_whose_service_account_is_missing_is_forbidden_and_one_naming_none_runs_as_default() {
    let (_server, client) = server(NS);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    accounts
        .get("default")
        .await
        .expect("the namespace's default account");

    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let refused = pods
        .create(&PostParams::default(), &pod("p", Some("sa")))
        .await;
    let e = api_error(refused);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        format!(
            r#"pods "p" is forbidden: error looking up service account {NS}/sa: serviceaccount "sa" not found"#
        )
    );
    assert!(pods.get_opt("p").await.expect("get").is_none());

    let plain = pods
        .create(&PostParams::default(), &pod("plain", None))
        .await
        .expect("a pod naming no account is admitted");
    let spec = plain.spec.expect("spec");
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));

    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "sa"}})).expect("sa");
    accounts
        .create(&PostParams::default(), &sa)
        .await
        .expect("create sa");
    pods.create(&PostParams::default(), &pod("p", Some("sa")))
        .await
        .expect("admitted once its account exists");
}

#[tokio::test]
async fn workload_controllers_record_failed_create_for_pods_whose_account_is_missing() {
    let (server, client) = server(NS);
    let volumes = tempfile::tempdir().expect("volumes dir");
    let _controllers = Controllers::start(
        &server,
        ControllersConfig {
            volumes_dir: volumes.path().to_owned(),
        },
    );
    let template = json!({"metadata": {"labels": {"app": "x"}},
        "spec": {"serviceAccountName": "ghost", "containers": [{"name": "c", "image": "i"}]}});
    let mut web_template = template.clone();
    web_template["metadata"]["labels"] = json!({"app": "web"});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": web_template}});
    let mut db_template = template;
    db_template["metadata"]["labels"] = json!({"app": "db"});
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": db_template}});
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), NS);
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), NS);
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment).expect("deployment"),
        )
        .await
        .expect("the Deployment is admitted");
    sets.create(
        &PostParams::default(),
        &serde_json::from_value(sts).expect("sts"),
    )
    .await
    .expect("the StatefulSet is admitted");

    let missing =
        format!(r#"error looking up service account {NS}/ghost: serviceaccount "ghost" not found"#);
    let failed = failed_creates(&client, NS, &["ReplicaSet", "StatefulSet"]).await;
    assert!(
        failed.iter().any(|(k, m)| k == "ReplicaSet"
            && m.starts_with(r#"Error creating: pods "web-"#)
            && m.ends_with(&format!("is forbidden: {missing}"))),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|(k, m)| k == "StatefulSet"
            && m == &format!(r#"create Pod db-0 in StatefulSet db failed error: pods "db-0" is forbidden: {missing}"#)),
        "{failed:?}"
    );
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let list = pods.list(&ListParams::default()).await.expect("pods");
    assert!(list.items.is_empty(), "no pod was stored");
}
