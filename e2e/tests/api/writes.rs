//! Writes: preconditions, generation, the patch kinds, server-side apply and field ownership,
//! subresources, dry runs, generated names, namespace admission.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

use crate::support::{api_error, raw, server};

const NS: &str = "streaming";

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

fn deployment(containers: Value) -> Deployment {
    typed(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}},
    }))
}

fn manager(obj: &Value, name: &str) -> Option<Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == name)
        .cloned()
}

#[tokio::test]
async fn stale_writes_conflict_whether_updates_patches_or_deletes() {
    let (_server, client) = server(NS);
    let api: Api<ConfigMap> = Api::namespaced(client, NS);
    let cm: ConfigMap = typed(json!({"metadata": {"name": "c"}, "data": {"k": "1"}}));
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let stale_rv = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .expect("patch");
    let e = api_error(api.replace("c", &PostParams::default(), &created).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(e.message, "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again");
    let rv_patch = json!({"metadata": {"resourceVersion": stale_rv}, "data": {"k": "3"}});
    assert_eq!(
        api_error(
            api.patch("c", &PatchParams::default(), &Patch::Merge(&rv_patch))
                .await
        )
        .code,
        409
    );
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: Some(stale_rv),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(api_error(api.delete("c", &dp).await).code, 409);
    assert_eq!(
        api.get("c")
            .await
            .expect("still there")
            .data
            .and_then(|d| d.get("k").cloned()),
        Some("2".into())
    );
}

#[tokio::test]
async fn generation_moves_with_the_spec_only() {
    let (_server, client) = server(NS);
    let api: Api<Deployment> = Api::namespaced(client, NS);
    let d = api
        .create(
            &PostParams::default(),
            &deployment(json!([{"name": "a", "image": "a:1"}])),
        )
        .await
        .expect("create");
    assert_eq!(d.metadata.generation, Some(1));
    let label = json!({"metadata": {"labels": {"x": "y"}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("label");
    assert_eq!(d.metadata.generation, Some(1), "metadata is not spec");
    let status = json!({"status": {"observedGeneration": 1, "replicas": 1}});
    let d = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status");
    assert_eq!(d.metadata.generation, Some(1), "status is not spec");
    assert_eq!(
        d.status.and_then(|s| s.observed_generation),
        Some(1),
        "observedGeneration is the writer's"
    );
    let scale = json!({"spec": {"replicas": 3}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scale");
    assert_eq!(d.metadata.generation, Some(2));
    // Status written through the main resource is ignored.
    let sneaky = json!({"status": {"replicas": 9}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&sneaky))
        .await
        .expect("sneaky");
    assert_eq!(d.status.and_then(|s| s.replicas), Some(1));
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_and_env_by_name() {
    let (_server, client) = server(NS);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(
        &PostParams::default(),
        &deployment(json!([
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "side:1"},
        ])),
    )
    .await
    .expect("create");
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]}]}}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .expect("patch");
    let cs = d
        .spec
        .template
        .spec
        .map(|s| s.containers)
        .unwrap_or_default();
    assert_eq!(
        cs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        vec!["app", "sidecar"]
    );
    assert_eq!(cs[0].image.as_deref(), Some("app:2"));
    let env: Vec<String> = cs[0].env.iter().flatten().map(|e| e.name.clone()).collect();
    assert_eq!(env, vec!["A", "B"]);
    // A merge patch replaces the list instead.
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("merge");
    assert_eq!(d.spec.template.spec.map(|s| s.containers.len()), Some(1));
}

#[tokio::test]
async fn strategic_merge_patch_is_unsupported_for_custom_resources() {
    let (_server, client) = server(NS);
    crate::support::install_crds(&client).await;
    let r = raw(
        &client,
        "PATCH",
        &format!("/apis/tributary.dev/v1alpha1/namespaces/{NS}/kafkatopics/t"),
        &[("content-type", "application/strategic-merge-patch+json")],
        "{}",
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.text);
}

#[tokio::test]
async fn server_side_apply_tracks_owners_and_conflicts_unless_forced() {
    let (_server, client) = server(NS);
    let api: Api<StatefulSet> = Api::namespaced(client, NS);
    let sts = |replicas: i32, image: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": replicas, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": image}]}}},
        })
    };
    let applied = api
        .patch(
            "db",
            &PatchParams::apply("operator"),
            &Patch::Apply(sts(1, "db:1")),
        )
        .await
        .expect("apply creates");
    let v = serde_json::to_value(&applied).expect("json");
    let entry = manager(&v, "operator").expect("operator owns fields");
    assert_eq!(entry["operation"], "Apply");
    assert!(
        entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"db\"}"]
            ["f:image"]
            .is_object(),
        "{entry}"
    );
    // Someone scales it: they own replicas now.
    let hpa = PatchParams {
        field_manager: Some("hpa".into()),
        ..PatchParams::default()
    };
    api.patch("db", &hpa, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .expect("scale");
    let e = api_error(
        api.patch(
            "db",
            &PatchParams::apply("operator"),
            &Patch::Apply(sts(1, "db:2")),
        )
        .await,
    );
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .starts_with("Apply failed with 1 conflict: conflict with \"hpa\" using apps/v1"),
        "{}",
        e.message
    );
    assert_eq!(
        e.details.map(|d| d.causes[0].field.clone()),
        Some(".spec.replicas".into())
    );
    // Applying the live value shares ownership; forcing takes it.
    api.patch(
        "db",
        &PatchParams::apply("operator"),
        &Patch::Apply(sts(3, "db:2")),
    )
    .await
    .expect("shared value");
    let forced = api
        .patch(
            "db",
            &PatchParams::apply("operator").force(),
            &Patch::Apply(sts(1, "db:2")),
        )
        .await
        .expect("forced");
    assert_eq!(forced.spec.replicas, Some(1));
    assert!(
        manager(&serde_json::to_value(&forced).expect("json"), "hpa").is_none(),
        "hpa lost its only field"
    );
}

#[tokio::test]
async fn applying_without_a_field_removes_it_unless_another_manager_owns_it() {
    let (_server, client) = server(NS);
    let api: Api<ConfigMap> = Api::namespaced(client, NS);
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    api.patch(
        "c",
        &PatchParams::apply("a"),
        &Patch::Apply(cm(json!({"x": "1", "y": "1", "z": "1"}))),
    )
    .await
    .expect("a");
    api.patch(
        "c",
        &PatchParams::apply("b"),
        &Patch::Apply(cm(json!({"z": "1"}))),
    )
    .await
    .expect("b co-owns z");
    let after = api
        .patch(
            "c",
            &PatchParams::apply("a"),
            &Patch::Apply(cm(json!({"x": "1"}))),
        )
        .await
        .expect("a again");
    let keys: Vec<String> = after.data.unwrap_or_default().into_keys().collect();
    assert_eq!(keys, vec!["x", "z"]);
}

#[tokio::test]
async fn apply_needs_a_field_manager_and_other_patches_no_force() {
    let (_server, client) = server(NS);
    let path = format!("/api/v1/namespaces/{NS}/configmaps/c");
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}).to_string();
    let r = raw(
        &client,
        "PATCH",
        &path,
        &[("content-type", "application/apply-patch+yaml")],
        body,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = raw(
        &client,
        "PATCH",
        &format!("{path}?force=true"),
        &[("content-type", "application/merge-patch+json")],
        "{}",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn the_scale_subresource_reads_and_writes_replicas() {
    let (_server, client) = server(NS);
    let api: Api<Deployment> = Api::namespaced(client, NS);
    api.create(
        &PostParams::default(),
        &deployment(json!([{"name": "a", "image": "a"}])),
    )
    .await
    .expect("create");
    let scale = api.get_scale("web").await.expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    assert_eq!(
        scale.status.and_then(|s| s.selector),
        Some("app=web".into())
    );
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .expect("scale up");
    let d = api.get("web").await.expect("get");
    assert_eq!(d.spec.replicas, Some(4));
    assert_eq!(d.metadata.generation, Some(2));
}

#[tokio::test]
async fn dry_runs_write_nothing_and_generate_name_makes_unique_names() {
    let (server, client) = server(NS);
    let api: Api<ConfigMap> = Api::namespaced(client, NS);
    let cm: ConfigMap = typed(json!({"metadata": {"name": "dry"}}));
    api.create(
        &PostParams {
            dry_run: true,
            ..PostParams::default()
        },
        &cm,
    )
    .await
    .expect("dry run");
    assert!(server.get("/configmaps", NS, "dry").is_none());
    let generated: ConfigMap = typed(json!({"metadata": {"generateName": "job-"}}));
    let a = api
        .create(&PostParams::default(), &generated)
        .await
        .expect("a");
    let b = api
        .create(&PostParams::default(), &generated)
        .await
        .expect("b");
    let (a, b) = (
        a.metadata.name.unwrap_or_default(),
        b.metadata.name.unwrap_or_default(),
    );
    assert!(a.starts_with("job-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn objects_are_created_only_in_existing_active_namespaces() {
    let (_server, client) = server(NS);
    let cm: ConfigMap = typed(json!({"metadata": {"name": "c"}}));
    let e = api_error(
        Api::<ConfigMap>::namespaced(client.clone(), "missing")
            .create(&PostParams::default(), &cm)
            .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"missing\" not found")
    );
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    api.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": "held", "finalizers": ["test/hold"]}})),
    )
    .await
    .expect("held");
    Api::<Namespace>::all(client.clone())
        .delete(NS, &DeleteParams::default())
        .await
        .expect("delete ns");
    let e = api_error(api.create(&PostParams::default(), &cm).await);
    assert_eq!(e.code, 403);
    assert!(
        e.message.contains("because it is being terminated"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn services_get_a_cluster_ip_that_updates_keep() {
    let (_server, client) = server(NS);
    let api: Api<Service> = Api::namespaced(client, NS);
    let svc: Service = typed(
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}),
    );
    let created = api
        .create(&PostParams::default(), &svc)
        .await
        .expect("create");
    let ip = created
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .unwrap_or_default();
    assert!(ip.starts_with("10.96."), "{ip}");
    let mut replaced = svc.clone();
    replaced.metadata.resource_version = created.metadata.resource_version.clone();
    let after = api
        .replace("s", &PostParams::default(), &replaced)
        .await
        .expect("replace");
    assert_eq!(after.spec.and_then(|s| s.cluster_ip), Some(ip));
    let headless: Service = typed(
        json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
    );
    let h = api
        .create(&PostParams::default(), &headless)
        .await
        .expect("headless");
    assert_eq!(h.spec.and_then(|s| s.cluster_ip), Some("None".into()));
}

#[tokio::test]
async fn built_in_kinds_refuse_unknown_fields_under_strict_validation_and_type_errors_always() {
    let (_server, client) = server(NS);
    let path = format!("/api/v1/namespaces/{NS}/configmaps");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}, "extra": 1}).to_string();
    let r = raw(
        &client,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &[("content-type", "application/json")],
        body,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["message"], "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"extra\"");
    let wrong = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": 5}}).to_string();
    let r = raw(
        &client,
        "POST",
        &path,
        &[("content-type", "application/json")],
        wrong,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let bad_name =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
            .to_string();
    let r = raw(
        &client,
        "POST",
        &path,
        &[("content-type", "application/json")],
        bad_name,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
}
