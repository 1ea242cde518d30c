//! schemas: a KafkaCluster with `spec.schemaRegistry` runs two registry pods that elect one
//! writer with a Lease and forward writes to it. A KafkaSchema applied with kubectl is
//! registered and reported in its status, and both pods serve it; an incompatible change is
//! reported, not registered. The writer's process is killed while registrations go through
//! the other pod: the other takes over, and every acknowledged registration keeps its own id.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::env::wait;

use super::replicated::{three_brokers, Replicated};
use super::REACT;

const NS: &str = "schemas";
const CLUSTER: &str = "registered";
const SUBJECT: &str = "orders-value";
const PORT: u16 = 8081;
/// Label selector of the cluster's registry pods.
const PODS: &str =
    "app.kubernetes.io/instance=registered,app.kubernetes.io/component=schema-registry";
/// The registry's Lease names its writer (the writer's advertised URL).
const LEASE: &str = "registered-schema-registry";
/// How long one HTTP exchange with a registry pod may take.
const HTTP: Duration = Duration::from_secs(10);

/// An Avro record schema of `fields` (JSON field objects).
fn record(fields: &[Value]) -> String {
    json!({"type": "record", "name": "Order", "fields": fields}).to_string()
}

/// A KafkaSchema manifest registering `schema` under [`SUBJECT`].
fn kafka_schema(schema: &str) -> String {
    let spec = json!({
        "clusterRef": CLUSTER,
        "subject": SUBJECT,
        "schemaType": "AVRO",
        "schema": schema,
        "compatibility": "BACKWARD",
    });
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaSchema\nmetadata: {{name: orders, namespace: {NS}}}\nspec: {spec}\n"
    )
}

/// One HTTP/1.1 exchange with `addr` (`Connection: close`): the status and the JSON body
/// (`Null` when it is not JSON); `None` when the pod cannot be reached in time.
async fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(body.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw);
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let json = text
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        Some((status, json))
    };
    tokio::time::timeout(HTTP, exchange).await.ok().flatten()
}

/// The registry pods' (name, address) once `n` run with an IP and answer `GET /`; a
/// timeout shows the pods and their logs.
async fn registry_pods(cluster: &Replicated, n: usize) -> Vec<(String, String)> {
    let answering = async {
        loop {
            let mut out = Vec::new();
            for pod in cluster.env.pods(NS, PODS).await {
                let (Some(name), Some(ip)) = (
                    pod["metadata"]["name"].as_str(),
                    pod["status"]["podIP"].as_str(),
                ) else {
                    continue;
                };
                let addr = format!("{ip}:{PORT}");
                if http(&addr, "GET", "/", None)
                    .await
                    .is_some_and(|(s, _)| s == 200)
                {
                    out.push((name.to_owned(), addr));
                }
            }
            if out.len() == n {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    if let Ok(pods) = tokio::time::timeout(REACT, answering).await {
        return pods;
    }
    let mut seen = String::new();
    for pod in cluster.env.pods(NS, PODS).await {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let logs = cluster
            .env
            .kubectl(&["logs", "-n", NS, &name, "-c", "schema-registry"])
            .await;
        seen.push_str(&format!(
            "--- {name}: {} {}\n{}{}\n",
            pod["status"]["phase"], pod["status"]["podIP"], logs.stdout, logs.stderr
        ));
    }
    panic!("timed out after {REACT:?} waiting for {n} registry pods answering:\n{seen}");
}

/// The KafkaSchema's status once `ready` says it is done.
async fn schema_status(cluster: &Replicated, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait(what, REACT, || async {
        let s = cluster
            .env
            .get_json(&["kafkaschema", "orders", "-n", NS])
            .await;
        ready(&s["status"]).then(|| s["status"].clone())
    })
    .await
}

/// Whether condition `type_` of `status` is True.
fn is_true(status: &Value, type_: &str) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

pub(crate) async fn run(driver: crate::env::Driver) {
    let cluster = Replicated::cluster(
        driver,
        NS,
        CLUSTER,
        &three_brokers("", "schemaRegistry: {replicas: 2}"),
    )
    .await;
    let kc = cluster
        .env
        .get_json(&["kafkacluster", CLUSTER, "-n", NS])
        .await;
    assert_eq!(
        kc["status"]["schemaRegistry"]["url"],
        format!("http://{CLUSTER}-schema-registry.{NS}.svc:{PORT}"),
        "{kc}"
    );
    let pods = registry_pods(&cluster, 2).await;
    cluster.log("two registry pods answer");

    // Declared with kubectl: registered, reported, served by both pods.
    let v1 = record(&[json!({"name": "id", "type": "long"})]);
    cluster.env.apply(&kafka_schema(&v1)).await;
    let status = schema_status(&cluster, "the KafkaSchema registered", |s| {
        s["version"] == 1 && is_true(s, "Ready")
    })
    .await;
    let id = status["id"].as_i64().unwrap_or_else(|| panic!("{status}"));
    for (pod, addr) in &pods {
        let path = format!("/subjects/{SUBJECT}/versions/latest");
        let got = http(addr, "GET", &path, None).await;
        let Some((200, body)) = got else {
            panic!("{pod} does not serve {SUBJECT}: {got:?}")
        };
        assert_eq!(
            (body["id"].as_i64(), body["version"].as_i64()),
            (Some(id), Some(1))
        );
    }
    cluster.log("the KafkaSchema is registered and served by both pods");

    // A field without a default breaks BACKWARD: reported, not registered.
    let breaking = record(&[
        json!({"name": "id", "type": "long"}),
        json!({"name": "region", "type": "string"}),
    ]);
    cluster.env.apply(&kafka_schema(&breaking)).await;
    let status = schema_status(&cluster, "the incompatible change reported", |s| {
        is_true(s, "Incompatible")
    })
    .await;
    assert_eq!(status["version"], 1, "{status}");
    let (_, versions) = http(
        &pods[0].1,
        "GET",
        &format!("/subjects/{SUBJECT}/versions"),
        None,
    )
    .await
    .unwrap_or_else(|| panic!("{} answers", pods[0].0));
    assert_eq!(versions, json!([1]));

    // Kill the writer while registering through the other pod: it takes over, and no id is
    // lost or given twice.
    let holder = cluster.env.get_json(&["lease", LEASE, "-n", NS]).await["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (writer, survivor) = match pods.iter().position(|(_, a)| holder.contains(a.as_str())) {
        Some(0) => (&pods[0], &pods[1]),
        Some(_) => (&pods[1], &pods[0]),
        None => panic!("the Lease names no registry pod: {holder:?} ({pods:?})"),
    };
    cluster.env.kill(NS, &writer.0, "schema-registry").await;
    cluster.log(&format!("killed the writer {}", writer.0));
    let mut ids = BTreeSet::from([id]);
    for n in 0..5 {
        let subject = format!("after-kill-{n}");
        let schema = json!({"schema": json!({"type": "enum", "name": "E", "symbols": [format!("S{n}")]}).to_string()});
        let path = format!("/subjects/{subject}/versions");
        let got = wait(
            &format!("registering {subject} through {}", survivor.0),
            REACT,
            || async {
                match http(&survivor.1, "POST", &path, Some(&schema)).await {
                    Some((200, body)) => body["id"].as_i64(),
                    _ => None,
                }
            },
        )
        .await;
        assert!(ids.insert(got), "id {got} given twice ({ids:?})");
    }
    cluster.log("the other pod took over: five more registrations, each its own id");
    let (_, body) = http(&survivor.1, "GET", &format!("/schemas/ids/{id}"), None)
        .await
        .unwrap_or_else(|| panic!("{} answers", survivor.0));
    assert_eq!(
        body["schema"].as_str().map(str::len),
        Some(v1.len()),
        "{body}"
    );
}
