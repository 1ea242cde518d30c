//! The KafkaSchema controller against the in-memory Kubernetes API, with the whole operator
//! running and a real `tributary-schema-registry` on a real standalone `tributary-broker`
//! (both from the target directory: build them with
//! `cargo build -p tributary-registry -p tributary-broker`; a missing binary fails the test):
//! a KafkaSchema becomes version 1 of its subject, an incompatible change is refused with the
//! registry's message and leaves the registry as it was, a compatible one becomes version 2,
//! and deleting the object with `deletionPolicy: Delete` soft-deletes the subject. The
//! cluster's `spec.schemaRegistry` is rendered as a Deployment and Service meanwhile, and
//! removing it removes them.

use crate::common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{create_cluster, merge_patch, metrics, obj, settings, setup, wait_until, NS};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tributary_crds::schema::{KafkaSchema, SCHEMA_INCOMPATIBLE, SCHEMA_READY};
use tributary_crds::KafkaCluster;
use tributary_operator::schema::client::{RegistryClient, SchemaBody};

/// How long the broker and the registry get to start.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A child process killed (and its scratch directory removed) when the test ends, however.
struct Process {
    name: &'static str,
    child: Child,
    dir: Option<PathBuf>,
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("could not kill {}: {e}", self.name);
        }
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn binary(name: &str) -> PathBuf {
    let path = tributary_e2e::tools::debug_binary(name);
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p tributary-registry -p tributary-broker`",
        path.display()
    );
    path
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    let listener =
        TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind a free port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"))
        .port()
}

fn spawn(name: &'static str, mut command: Command, dir: Option<PathBuf>) -> Process {
    // Warnings and errors only, so a failure's cause is not buried in start-up logs.
    let child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    Process { name, child, dir }
}

/// A standalone broker on `port` with a fresh data directory.
fn start_broker(port: u16) -> Process {
    let dir = std::env::temp_dir().join(format!(
        "tributary-kafka-schema-test-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let address = format!("127.0.0.1:{port}");
    let mut command = Command::new(binary("tributary-broker"));
    command
        .arg("--listener")
        .arg(&address)
        .arg("--advertised-listener")
        .arg(&address)
        .arg("--data-dir")
        .arg(&dir)
        .arg("--broker-id")
        .arg("0");
    spawn("tributary-broker", command, Some(dir))
}

/// The registry on `port`, storing in the broker on `broker_port`.
fn start_registry(port: u16, broker_port: u16) -> Process {
    let mut command = Command::new(binary("tributary-schema-registry"));
    command
        .arg("--bootstrap")
        .arg(format!("127.0.0.1:{broker_port}"))
        .arg("--listener")
        .arg(format!("127.0.0.1:{port}"));
    spawn("tributary-schema-registry", command, None)
}

fn avro(fields: serde_json::Value) -> String {
    json!({"type": "record", "name": "Order", "namespace": "shop", "fields": fields}).to_string()
}

fn body(schema: &str) -> SchemaBody {
    SchemaBody {
        schema: schema.to_owned(),
        schema_type: "AVRO".to_owned(),
        references: Vec::new(),
    }
}

/// Waits until KafkaSchema `name` satisfies `check`.
async fn schema_where(
    client: &Client,
    name: &str,
    what: &str,
    check: impl Fn(&KafkaSchema) -> bool,
) -> KafkaSchema {
    let api: Api<KafkaSchema> = Api::namespaced(client.clone(), NS);
    wait_until(what, || async {
        api.get_opt(name).await.ok().flatten().filter(|s| check(s))
    })
    .await
}

fn condition(s: &KafkaSchema, type_: &str) -> Option<(String, String, String)> {
    s.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_schemas_are_registered_refused_evolved_and_soft_deleted() {
    let (broker_port, registry_port) = (free_port(), free_port());
    let _broker = start_broker(broker_port);
    let _registry = start_registry(registry_port, broker_port);
    let url = format!("http://127.0.0.1:{registry_port}");
    let registry = RegistryClient::new(&url, None).unwrap_or_else(|e| panic!("{e}"));
    tributary_e2e::wait_until("the schema registry answering", START_DEADLINE, || async {
        registry
            .lookup("probe", &body("\"string\""), false)
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    let (_server, client) = setup().await;
    let mut operator_settings = settings("operator-0");
    operator_settings.schema_registry_url = Some(url.clone());
    let (stop, task) = common::start_operator_with(&client, metrics(), operator_settings);
    create_cluster(
        &client,
        json!({"brokers": 1, "schemaRegistry": {"replicas": 2}}),
    )
    .await;

    // The cluster's registry objects, and its URL in the status.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let deployment = wait_until("the registry Deployment", || async {
        deployments
            .get_opt("demo-schema-registry")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(deployment.spec.replicas, Some(2));
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    wait_until("the registry URL in the cluster status", || async {
        let c = clusters.get_opt("demo").await.ok().flatten()?;
        let url = c.status?.schema_registry?.url;
        (url == "http://demo-schema-registry.streaming.svc:8081").then_some(())
    })
    .await;

    // Version 1, served by the registry, under the BACKWARD level the spec asks for.
    let v1 = avro(json!([{"name": "id", "type": "string"}]));
    let schemas: Api<KafkaSchema> = Api::namespaced(client.clone(), NS);
    let schema: KafkaSchema = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaSchema",
        "metadata": {"name": "orders"},
        "spec": {"clusterRef": "demo", "subject": "orders-value", "schema": v1,
                 "compatibility": "BACKWARD"},
    }));
    if let Err(e) = schemas.create(&PostParams::default(), &schema).await {
        panic!("create KafkaSchema: {e}");
    }
    let registered = schema_where(&client, "orders", "orders registered as version 1", |s| {
        s.status.as_ref().is_some_and(|st| st.version == Some(1))
    })
    .await;
    let status = registered.status.clone().unwrap_or_default();
    assert_eq!(status.id, Some(1));
    assert_eq!(status.registry_url.as_deref(), Some(url.as_str()));
    assert_eq!(
        condition(&registered, SCHEMA_READY).map(|c| (c.0, c.1)),
        Some(("True".to_owned(), "Registered".to_owned()))
    );
    let found = registry
        .lookup("orders-value", &body(&v1), false)
        .await
        .unwrap_or_else(|e| panic!("lookup v1: {e}"));
    assert_eq!(found.map(|r| (r.id, r.version)), Some((1, 1)));
    let level = registry
        .subject_compatibility("orders-value")
        .await
        .unwrap_or_else(|e| panic!("read the subject level: {e}"));
    assert_eq!(level.as_deref(), Some("BACKWARD"));

    // A field without a default cannot read version 1's data: refused, registry unchanged.
    let breaking =
        avro(json!([{"name": "id", "type": "string"}, {"name": "amount", "type": "int"}]));
    merge_patch(
        &schemas,
        "orders",
        &json!({"spec": {"schema": breaking}}),
        "break it",
    )
    .await;
    let refused = schema_where(&client, "orders", "orders Incompatible", |s| {
        condition(s, SCHEMA_INCOMPATIBLE).is_some_and(|c| c.0 == "True")
    })
    .await;
    let (_, reason, message) =
        condition(&refused, SCHEMA_READY).unwrap_or_else(|| panic!("no Ready condition"));
    assert_eq!(reason, "Incompatible");
    assert!(
        message.contains("incompatible"),
        "registry message: {message}"
    );
    let status = refused.status.clone().unwrap_or_default();
    assert_eq!((status.id, status.version), (Some(1), Some(1)));
    let absent = registry
        .lookup("orders-value", &body(&breaking), false)
        .await
        .unwrap_or_else(|e| panic!("lookup the refused schema: {e}"));
    assert_eq!(absent, None, "the refused schema must not be registered");

    // A field with a default is a compatible change: version 2.
    let v2 = avro(json!([{"name": "id", "type": "string"},
                         {"name": "note", "type": "string", "default": ""}]));
    merge_patch(
        &schemas,
        "orders",
        &json!({"spec": {"schema": v2}}),
        "evolve it",
    )
    .await;
    let evolved = schema_where(&client, "orders", "orders registered as version 2", |s| {
        s.status.as_ref().is_some_and(|st| st.version == Some(2))
    })
    .await;
    assert_eq!(evolved.status.clone().unwrap_or_default().id, Some(2));
    assert_eq!(
        condition(&evolved, SCHEMA_INCOMPATIBLE).map(|c| c.0),
        Some("False".to_owned())
    );
    let found = registry
        .lookup("orders-value", &body(&v2), false)
        .await
        .unwrap_or_else(|e| panic!("lookup v2: {e}"));
    assert_eq!(found.map(|r| r.version), Some(2));

    // Deleting with deletionPolicy Delete soft-deletes the subject before the object goes.
    merge_patch(
        &schemas,
        "orders",
        &json!({"spec": {"deletionPolicy": "Delete"}}),
        "set deletionPolicy",
    )
    .await;
    if let Err(e) = schemas.delete("orders", &DeleteParams::default()).await {
        panic!("delete KafkaSchema: {e}");
    }
    wait_until("the KafkaSchema gone", || async {
        matches!(schemas.get_opt("orders").await, Ok(None)).then_some(())
    })
    .await;
    let gone = registry
        .lookup("orders-value", &body(&v2), false)
        .await
        .unwrap_or_else(|e| panic!("lookup after delete: {e}"));
    assert_eq!(gone, None, "the subject must be soft-deleted");

    // Removing spec.schemaRegistry removes the registry's objects.
    merge_patch(
        &clusters,
        "demo",
        &json!({"spec": {"schemaRegistry": null}}),
        "drop it",
    )
    .await;
    wait_until("the registry objects removed", || async {
        let name = "demo-schema-registry";
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
        let svc: Api<Service> = Api::namespaced(client.clone(), NS);
        let role: Api<Role> = Api::namespaced(client.clone(), NS);
        let binding: Api<RoleBinding> = Api::namespaced(client.clone(), NS);
        let none = matches!(deployments.get_opt(name).await, Ok(None))
            && matches!(svc.get_opt(name).await, Ok(None))
            && matches!(sa.get_opt(name).await, Ok(None))
            && matches!(role.get_opt(name).await, Ok(None))
            && matches!(binding.get_opt(name).await, Ok(None));
        none.then_some(())
    })
    .await;
    wait_until("the registry URL gone from the status", || async {
        let c = clusters.get_opt("demo").await.ok().flatten()?;
        c.status
            .is_some_and(|s| s.schema_registry.is_none())
            .then_some(())
    })
    .await;

    let _ = stop.send(true);
    match tokio::time::timeout(Duration::from_secs(20), task).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!("operator did not stop cleanly: {other:?}"),
    }
}

#[tokio::test]
async fn a_schema_of_a_cluster_without_a_registry_says_so() {
    let (_server, client) = setup().await;
    let (stop, task) = common::start_operator(&client, metrics());
    create_cluster(&client, json!({"brokers": 1})).await;
    let schemas: Api<KafkaSchema> = Api::namespaced(client.clone(), NS);
    let schema: KafkaSchema = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaSchema",
        "metadata": {"name": "orders"},
        "spec": {"clusterRef": "demo", "subject": "orders-value", "schema": "\"string\""},
    }));
    if let Err(e) = schemas.create(&PostParams::default(), &schema).await {
        panic!("create KafkaSchema: {e}");
    }
    let waiting = schema_where(&client, "orders", "orders RegistryNotEnabled", |s| {
        condition(s, SCHEMA_READY).is_some_and(|c| c.1 == "RegistryNotEnabled")
    })
    .await;
    let message = condition(&waiting, SCHEMA_READY)
        .map(|c| c.2)
        .unwrap_or_default();
    assert!(message.contains("spec.schemaRegistry"), "{message}");
    // Retained by default: deleting it does not need a registry.
    if let Err(e) = schemas.delete("orders", &DeleteParams::default()).await {
        panic!("delete KafkaSchema: {e}");
    }
    wait_until("the KafkaSchema gone", || async {
        matches!(schemas.get_opt("orders").await, Ok(None)).then_some(())
    })
    .await;
    let _ = stop.send(true);
    match tokio::time::timeout(Duration::from_secs(20), task).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!("operator did not stop cleanly: {other:?}"),
    }
}
