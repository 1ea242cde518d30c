//! Pod Security admission through the in-process client: namespace labels choose the levels;
//! `enforce` refuses pods created directly (403 with Kubernetes' message), `warn` answers with
//! `Warning` headers, workloads are admitted with a warning and their controllers record
//! FailedCreate, and labelling a namespace warns about its existing violating pods.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tributary_e2e::controllers::{Controllers, ControllersConfig};

use crate::support::{api_error, failed_creates, raw, server, wait_until};

const NS: &str = "podsecurity";

/// A pod `name` that satisfies `restricted`, or (`good` false) one that runs as it likes.
fn pod(name: &str, good: bool) -> Value {
    let container = if good {
        json!({"name": "c", "image": "i", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
    } else {
        json!({"name": "c", "image": "i"})
    };
    let mut spec = json!({"containers": [container]});
    if good {
        spec["securityContext"] =
            json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

/// What `restricted` says of the bad pod's container `c`.
const BAD_POD: &str = concat!(
    r#"allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), "#,
    r#"unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), "#,
    r#"runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), "#,
    r#"seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
);

/// Labels namespace `ns` with `labels` (a merge patch); the answer's warnings.
async fn label(client: &Client, ns: &str, labels: Value) -> Vec<String> {
    let r = raw(
        client,
        "PATCH",
        &format!("/api/v1/namespaces/{ns}"),
        &[("content-type", "application/merge-patch+json")],
        serde_json::to_vec(&json!({"metadata": {"labels": labels}})).unwrap_or_default(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    warnings(&r.headers)
}

/// The `Warning` headers' texts.
fn warnings(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("299 - "))
        .map(|v| serde_json::from_str::<String>(v).unwrap_or_else(|e| panic!("{v}: {e}")))
        .collect()
}

/// POSTs `body` to `path`: status, warnings and body.
async fn post(client: &Client, path: &str, body: &Value) -> (u16, Vec<String>, Value) {
    let r = raw(
        client,
        "POST",
        path,
        &[("content-type", "application/json")],
        serde_json::to_vec(body).unwrap_or_default(),
    )
    .await;
    (r.status, warnings(&r.headers), r.body)
}

#[tokio::test]
async fn enforce_refuses_violating_pods_and_admits_the_others() {
    let (_server, client) = server(NS);
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    // Unlabelled: privileged, no warning.
    let (code, warned, _) = post(&client, &pods, &pod("free", false)).await;
    assert_eq!((code, warned), (201, vec![]));
    label(
        &client,
        NS,
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let status = api_error(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(pod("bad", false)).unwrap_or_default(),
        )
        .await,
    );
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert_eq!(
        status.message,
        format!(r#"pods "bad" is forbidden: violates PodSecurity "restricted:latest": {BAD_POD}"#)
    );
    let (code, warned, _) = post(&client, &pods, &pod("good", true)).await;
    assert_eq!((code, warned), (201, vec![]));
    // Baseline at a specific version: the bad pod is baseline-clean.
    label(
        &client,
        NS,
        json!({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.30"}),
    )
    .await;
    let (code, _, _) = post(&client, &pods, &pod("plain", false)).await;
    assert_eq!(code, 201);
    let mut host = pod("host", true);
    host["spec"]["hostNetwork"] = json!(true);
    let (code, _, body) = post(&client, &pods, &host).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        r#"pods "host" is forbidden: violates PodSecurity "baseline:v1.30": host namespaces (hostNetwork=true)"#
    );
    // An invalid enforce level fails closed, as restricted.
    label(&client, NS, json!({"pod-security.kubernetes.io/enforce": "strict", "pod-security.kubernetes.io/enforce-version": null})).await;
    let (code, _, _) = post(&client, &pods, &pod("closed", false)).await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn warn_admits_with_warning_headers() {
    let (_server, client) = server(NS);
    label(
        &client,
        NS,
        json!({"pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}),
    )
    .await;
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    let (code, warned, _) = post(&client, &pods, &pod("bad", false)).await;
    assert_eq!(code, 201);
    assert_eq!(
        warned,
        vec![format!(
            r#"would violate PodSecurity "restricted:latest": {BAD_POD}"#
        )]
    );
    let (code, warned, _) = post(&client, &pods, &pod("good", true)).await;
    assert_eq!((code, warned), (201, vec![]));
}

#[tokio::test]
async fn labelling_a_namespace_with_enforce_warns_about_existing_pods() {
    let (_server, client) = server(NS);
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    post(&client, &pods, &pod("bad", false)).await;
    post(&client, &pods, &pod("good", true)).await;
    let warned = label(
        &client,
        NS,
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    assert_eq!(
        warned,
        vec![
            format!(r#"existing pods in namespace "{NS}" violate the new PodSecurity enforce level "restricted:latest""#),
            "bad: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile".to_owned(),
        ]
    );
    // The same level again: nothing new to say.
    let warned = label(
        &client,
        NS,
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    assert_eq!(warned, Vec::<String>::new());
}

#[tokio::test]
async fn workloads_are_admitted_with_warnings_and_their_controllers_record_failed_create() {
    let (server, client) = server(NS);
    label(
        &client,
        NS,
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let volumes = tempfile::tempdir().expect("volumes dir");
    let _controllers = Controllers::start(
        &server,
        ControllersConfig {
            volumes_dir: volumes.path().to_owned(),
        },
    );
    let template =
        json!({"metadata": {"labels": {"app": "web"}}, "spec": pod("x", false)["spec"].clone()});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}});
    let (code, warned, _) = post(
        &client,
        &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
        &deployment,
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        warned,
        vec![format!(
            r#"would violate PodSecurity "restricted:latest": {BAD_POD}"#
        )]
    );
    let mut sts_template = template.clone();
    sts_template["metadata"]["labels"] = json!({"app": "db"});
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": sts_template}});
    let (code, warned, _) = post(
        &client,
        &format!("/apis/apps/v1/namespaces/{NS}/statefulsets"),
        &sts,
    )
    .await;
    assert_eq!((code, warned.len()), (201, 1));

    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let condition = wait_until("the ReplicaSet's ReplicaFailure condition", || async {
        let list = replica_sets.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find_map(|rs| {
            rs.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))
        })
    })
    .await;
    assert_eq!(condition.status.as_deref(), Some("True"));
    assert_eq!(condition.reason.as_deref(), Some("FailedCreate"));
    let message = condition.message.unwrap_or_default();
    assert!(
        message.starts_with(r#"Error creating: pods "web-"#),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            r#"is forbidden: violates PodSecurity "restricted:latest": {BAD_POD}"#
        )),
        "{message}"
    );

    let failed = failed_creates(&client, NS, &["ReplicaSet", "StatefulSet"]).await;
    assert!(
        failed
            .iter()
            .any(|(k, m)| k == "ReplicaSet" && m.starts_with("Error creating: ")),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|(k, m)| k == "StatefulSet"
            && m == &format!(r#"create Pod db-0 in StatefulSet db failed error: pods "db-0" is forbidden: violates PodSecurity "restricted:latest": {BAD_POD}"#)),
        "{failed:?}"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    assert!(pods
        .list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .is_empty());
    let ns: Api<Namespace> = Api::all(client);
    assert!(ns.get(NS).await.is_ok());
}
