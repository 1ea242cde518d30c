//! Discovery, OpenAPI and routing.

use kube::discovery::{Discovery, Scope};

use crate::support::{install_crds, raw, server};

const AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

#[tokio::test]
async fn discovery_serves_built_ins_and_a_crds_group_once_it_is_created() {
    let (_server, client) = server("ns");
    let before = Discovery::new(client.clone())
        .run()
        .await
        .expect("legacy discovery");
    assert!(before.has_group("apps"));
    assert!(!before.has_group("tributary.dev"));
    install_crds(&client).await;
    for aggregated in [false, true] {
        let d = Discovery::new(client.clone());
        let d = if aggregated {
            d.run_aggregated().await
        } else {
            d.run().await
        }
        .expect("discovery");
        let group = d.get("tributary.dev").expect("tributary.dev served");
        let (topics, caps) = group
            .recommended_resources()
            .into_iter()
            .find(|(r, _)| r.plural == "kafkatopics")
            .expect("kafkatopics");
        assert_eq!(topics.kind, "KafkaTopic");
        assert_eq!(caps.scope, Scope::Namespaced, "aggregated: {aggregated}");
        assert!(
            caps.subresources
                .iter()
                .any(|(s, _)| s.plural == "kafkatopics/status" || s.plural == "status"),
            "status subresource listed (aggregated: {aggregated}): {:?}",
            caps.subresources
        );
    }
}

#[tokio::test]
async fn aggregated_discovery_answers_in_its_own_media_type() {
    let (_server, client) = server("ns");
    let r = raw(
        &client,
        "GET",
        "/apis",
        &[("accept", AGGREGATED)],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(
        ct,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(r.body["kind"], "APIGroupDiscoveryList");
    let legacy = raw(
        &client,
        "GET",
        "/apis",
        &[("accept", "application/json")],
        Vec::new(),
    )
    .await;
    assert_eq!(legacy.body["kind"], "APIGroupList");
}

#[tokio::test]
async fn openapi_v3_tells_clients_to_leave_field_validation_to_the_server() {
    let (_server, client) = server("ns");
    install_crds(&client).await;
    let root = raw(&client, "GET", "/openapi/v3", &[], Vec::new()).await;
    let url = root.body["paths"]["apis/tributary.dev/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .expect("tributary.dev in the OpenAPI index")
        .to_owned();
    let doc = raw(&client, "GET", &url, &[], Vec::new()).await;
    let patch = &doc.body["paths"]
        ["/apis/tributary.dev/v1alpha1/namespaces/{namespace}/kafkatopics/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "KafkaTopic"
    );
    let params = patch["parameters"].as_array().cloned().unwrap_or_default();
    assert!(params
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    // Custom resources take no strategic merge patch.
    assert!(patch["requestBody"]["content"]
        .get("application/strategic-merge-patch+json")
        .is_none());
    let schema = &doc.body["components"]["schemas"]["dev.tributary.v1alpha1.KafkaTopic"];
    assert_eq!(
        schema["x-kubernetes-group-version-kind"][0]["kind"],
        "KafkaTopic"
    );
}

#[tokio::test]
async fn unknown_routes_and_resources_answer_404_with_a_status() {
    let (_server, client) = server("ns");
    for path in [
        "/nope",
        "/apis/nope.example.com/v1/things",
        "/api/v1/namespaces/ns/widgets",
        "/api/v2",
    ] {
        let r = raw(&client, "GET", path, &[], Vec::new()).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body["kind"], "Status", "{path}: {}", r.text);
        assert_eq!(r.body["reason"], "NotFound", "{path}");
    }
    let v = raw(&client, "GET", "/version", &[], Vec::new()).await;
    assert_eq!(v.body["major"], "1");
}
