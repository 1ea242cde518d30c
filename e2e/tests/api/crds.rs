//! CustomResourceDefinitions: registration, structural schemas (pruning, defaults,
//! validation, CEL), field validation modes, printer columns, deletion.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::support::{api_error, dynamic, install_crds, raw, server, wait_until};

const NS: &str = "streaming";

fn topics(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("tributary.dev", "v1alpha1", "KafkaTopic");
    Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, "kafkatopics"),
    )
}

fn topic(name: &str, spec: Value) -> DynamicObject {
    dynamic(
        json!({"apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic", "metadata": {"name": name}, "spec": spec}),
    )
}

fn valid_spec() -> Value {
    json!({"clusterRef": "demo", "partitions": 3, "replicationFactor": 1})
}

#[tokio::test]
async fn custom_resources_are_served_only_once_their_crd_exists() {
    let (_server, client) = server(NS);
    let e = api_error(
        topics(&client)
            .create(&PostParams::default(), &topic("t", valid_spec()))
            .await,
    );
    assert_eq!(e.code, 404);
    install_crds(&client).await;
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get("kafkatopics.tributary.dev")
        .await
        .expect("crd");
    let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(conditions
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True"));
    topics(&client)
        .create(&PostParams::default(), &topic("t", valid_spec()))
        .await
        .expect("served now");
}

#[tokio::test]
async fn schema_defaults_are_filled_and_undeclared_fields_pruned_with_a_warning() {
    let (_server, client) = server(NS);
    install_crds(&client).await;
    let mut spec = valid_spec();
    spec["surprise"] = json!(true);
    let body = json!({"apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic", "metadata": {"name": "t"}, "spec": spec});
    let r = raw(
        &client,
        "POST",
        &format!("/apis/tributary.dev/v1alpha1/namespaces/{NS}/kafkatopics"),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let warning = r
        .headers
        .get("warning")
        .and_then(|w| w.to_str().ok())
        .unwrap_or_default();
    assert_eq!(warning, "299 - \"unknown field \\\"spec.surprise\\\"\"");
    assert!(r.body["spec"].get("surprise").is_none());
    assert_eq!(r.body["spec"]["deletionPolicy"], "Delete", "schema default");
}

#[tokio::test]
async fn strict_field_validation_refuses_undeclared_fields_and_ignore_drops_them_silently() {
    let (_server, client) = server(NS);
    install_crds(&client).await;
    let body = json!({"apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic", "metadata": {"name": "t"},
        "spec": {"clusterRef": "demo", "partitions": 3, "replicationFactor": 1, "surprise": 1}});
    let path = format!("/apis/tributary.dev/v1alpha1/namespaces/{NS}/kafkatopics");
    let strict = raw(
        &client,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    assert_eq!(strict.status, 400);
    assert_eq!(strict.body["message"], "KafkaTopic in version \"v1alpha1\" cannot be handled as a KafkaTopic: strict decoding error: unknown field \"spec.surprise\"");
    let ignore = raw(
        &client,
        "POST",
        &format!("{path}?fieldValidation=Ignore"),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    assert_eq!(ignore.status, 201);
    assert!(ignore.headers.get("warning").is_none());
    let bad = raw(
        &client,
        "POST",
        &format!("{path}?fieldValidation=Loud"),
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn invalid_custom_resources_are_refused_with_422_listing_every_cause() {
    let (_server, client) = server(NS);
    install_crds(&client).await;
    let spec = json!({"clusterRef": "demo", "partitions": 0, "replicationFactor": 1, "config": {"bogus.key": "1"}});
    let e = api_error(
        topics(&client)
            .create(&PostParams::default(), &topic("t", spec))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let causes = e.details.map(|d| d.causes).unwrap_or_default();
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, vec!["spec.partitions", "spec.config"], "{causes:?}");
    assert_eq!(
        causes[0].message,
        "Invalid value: 0: spec.partitions in body should be greater than or equal to 1"
    );
    assert!(
        causes[1]
            .message
            .starts_with("Invalid value: \"object\": unsupported topic config key"),
        "{}",
        causes[1].message
    );
    assert!(
        e.message
            .starts_with("KafkaTopic.tributary.dev \"t\" is invalid: [spec.partitions: "),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn transition_rules_refuse_shrinking_partitions_and_changing_immutable_fields() {
    let (_server, client) = server(NS);
    install_crds(&client).await;
    let api = topics(&client);
    api.create(&PostParams::default(), &topic("t", valid_spec()))
        .await
        .expect("create");
    let shrink = json!({"spec": {"partitions": 2}});
    let e = api_error(
        api.patch("t", &PatchParams::default(), &Patch::Merge(&shrink))
            .await,
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .ends_with("spec.partitions: Invalid value: \"integer\": partitions can only increase"),
        "{}",
        e.message
    );
    let move_it = json!({"spec": {"clusterRef": "other"}});
    let e = api_error(
        api.patch("t", &PatchParams::default(), &Patch::Merge(&move_it))
            .await,
    );
    assert!(
        e.message.contains("clusterRef is immutable"),
        "{}",
        e.message
    );
    let grow = json!({"spec": {"partitions": 4}});
    api.patch("t", &PatchParams::default(), &Patch::Merge(&grow))
        .await
        .expect("growing is fine");
}

#[tokio::test]
async fn printer_columns_fill_the_tables_kubectl_asks_for() {
    let (_server, client) = server(NS);
    install_crds(&client).await;
    topics(&client)
        .create(&PostParams::default(), &topic("t", valid_spec()))
        .await
        .expect("create");
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let r = raw(
        &client,
        "GET",
        &format!("/apis/tributary.dev/v1alpha1/namespaces/{NS}/kafkatopics"),
        &[("accept", accept)],
        Vec::new(),
    )
    .await;
    assert_eq!(r.body["kind"], "Table");
    let names: Vec<&str> = r.body["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        vec![
            "Name",
            "Cluster",
            "Partitions",
            "Replication Factor",
            "Leaderless",
            "Under Replicated",
            "Phase",
            "Placed",
            "Age"
        ]
    );
    let cells = &r.body["rows"][0]["cells"];
    assert_eq!(
        (&cells[0], &cells[1], &cells[2], &cells[3]),
        (&json!("t"), &json!("demo"), &json!(3), &json!(1))
    );
    assert!(cells[4].is_null(), "no phase yet");
    assert_eq!(r.body["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_custom_resources_then_stops_serving_them() {
    let (server, client) = server(NS);
    install_crds(&client).await;
    let api = topics(&client);
    api.create(&PostParams::default(), &topic("t", valid_spec()))
        .await
        .expect("create");
    Api::<CustomResourceDefinition>::all(client.clone())
        .delete("kafkatopics.tributary.dev", &DeleteParams::default())
        .await
        .expect("delete crd");
    wait_until("the CRD and its topics to go", || async {
        (server
            .get(
                "apiextensions.k8s.io/customresourcedefinitions",
                "",
                "kafkatopics.tributary.dev",
            )
            .is_none()
            && server.get("tributary.dev/kafkatopics", NS, "t").is_none())
        .then_some(())
    })
    .await;
    assert_eq!(api_error(api.get("t").await).code, 404);
}

#[tokio::test]
async fn an_invalid_crd_is_refused() {
    let (_server, client) = server(NS);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "gadgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object",
                    "x-kubernetes-validations": [{"rule": "self.size() >"}]}}}}}]},
    });
    let crd: CustomResourceDefinition = serde_json::from_value(crd).expect("crd");
    let e = api_error(
        Api::<CustomResourceDefinition>::all(client)
            .create(&PostParams::default(), &crd)
            .await,
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("metadata.name: Invalid value"),
        "{}",
        e.message
    );
    assert!(e.message.contains("compilation failed"), "{}", e.message);
}
