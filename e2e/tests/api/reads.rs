//! Reads: label and field selectors, pagination, resourceVersion semantics.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, PostParams, VersionMatch};
use kube::Api;
use serde_json::json;

use crate::support::{api_error, raw, server};

const NS: &str = "streaming";

async fn configmaps(api: &Api<ConfigMap>, labelled: &[(&str, serde_json::Value)]) {
    for (name, labels) in labelled {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                .expect("cm");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
}

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

#[tokio::test]
async fn label_selectors_support_equality_sets_and_existence() {
    let (_server, client) = server(NS);
    let api: Api<ConfigMap> = Api::namespaced(client, NS);
    configmaps(
        &api,
        &[
            ("a", json!({"env": "prod", "tier": "db"})),
            ("b", json!({"env": "staging"})),
            ("c", json!({"env": "dev", "tier": "web"})),
            ("d", json!({})),
        ],
    )
    .await;
    let cases = [
        ("env=prod", vec!["a"]),
        ("env!=prod", vec!["b", "c", "d"]),
        ("env in (prod, staging)", vec!["a", "b"]),
        ("env notin (prod,staging)", vec!["c", "d"]),
        ("tier", vec!["a", "c"]),
        ("!tier", vec!["b", "d"]),
        ("env,tier notin (web)", vec!["a", "b"]),
    ];
    for (selector, want) in cases {
        let got = api
            .list(&ListParams::default().labels(selector))
            .await
            .expect(selector);
        assert_eq!(names(&got), want, "{selector}");
    }
    let e = api_error(
        api.list(&ListParams::default().labels("env in (prod"))
            .await,
    );
    assert_eq!(e.code, 400);
}

#[tokio::test]
async fn field_selectors_select_by_name_namespace_and_kind_fields() {
    let (server, client) = server(NS);
    server.create_namespace("other");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    configmaps(&api, &[("a", json!({})), ("b", json!({}))]).await;
    let all: Api<ConfigMap> = Api::all(client.clone());
    let got = all
        .list(&ListParams::default().fields(&format!("metadata.name=a,metadata.namespace={NS}")))
        .await
        .expect("list");
    assert_eq!(names(&got), vec!["a"]);
    let e = api_error(
        api.list(&ListParams::default().fields("spec.nodeName=x"))
            .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: spec.nodeName")
    );
    let pods: Api<Pod> = Api::namespaced(client, NS);
    for (name, node) in [("p1", "n1"), ("p2", "n2")] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}))
        .expect("pod");
        pods.create(&PostParams::default(), &p).await.expect("pod");
    }
    let on_n2 = pods
        .list(&ListParams::default().fields("spec.nodeName=n2"))
        .await
        .expect("pods");
    assert_eq!(on_n2.items.len(), 1);
    let pending = pods
        .list(&ListParams::default().fields("status.phase=Pending"))
        .await
        .expect("phase");
    assert_eq!(pending.items.len(), 2, "new pods are Pending");
}

#[tokio::test]
async fn pages_stay_consistent_with_the_first_page_and_expire_after_compaction() {
    let (server, client) = server(NS);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    configmaps(
        &api,
        &[("a", json!({})), ("b", json!({})), ("c", json!({}))],
    )
    .await;
    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(names(&first), vec!["a", "b"]);
    assert_eq!(first.metadata.remaining_item_count, Some(1));
    let token = first.metadata.continue_.clone().expect("continue token");
    // A later change does not show up in the rest of this list.
    configmaps(&api, &[("d", json!({}))]).await;
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(names(&second), vec!["c"]);
    assert!(second.metadata.continue_.is_none());
    // An exact read at the first page's version sees the same three.
    let rv = first.metadata.resource_version.clone().unwrap_or_default();
    let exact = api
        .list(&ListParams::default().at(&rv).matching(VersionMatch::Exact))
        .await
        .expect("exact");
    assert_eq!(names(&exact), vec!["a", "b", "c"]);
    server.compact_history();
    let e = api_error(
        api.list(&ListParams::default().limit(2).continue_token(&token))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
    let e = api_error(
        api.list(&ListParams::default().at(&rv).matching(VersionMatch::Exact))
            .await,
    );
    assert_eq!(e.code, 410);
    assert_eq!(
        names(&api.list(&ListParams::default()).await.expect("fresh list")),
        vec!["a", "b", "c", "d"]
    );
}

#[tokio::test]
async fn partial_object_metadata_lists_carry_only_metadata() {
    let (_server, client) = server(NS);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    configmaps(&api, &[("a", json!({"k": "v"}))]).await;
    let accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let r = raw(
        &client,
        "GET",
        &format!("/api/v1/namespaces/{NS}/configmaps"),
        &[("accept", accept)],
        Vec::new(),
    )
    .await;
    assert_eq!(r.body["kind"], "PartialObjectMetadataList");
    assert_eq!(r.body["items"][0]["metadata"]["labels"]["k"], "v");
    assert!(r.body["items"][0].get("data").is_none());
}
