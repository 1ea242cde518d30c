//! schemas: a KafkaCluster with `spec.schemaRegistry` runs two registry pods that elect one
//! writer with a Lease and forward writes to it, over HTTPS with a certificate the operator
//! issues and HTTP basic authentication against the KafkaUsers' SCRAM credentials. A client
//! without credentials or with a wrong password is refused with 401; a KafkaUser's password is
//! accepted. A KafkaSchema applied with kubectl is registered (the operator calls the HTTPS
//! registry with its client certificate) and reported in its status, and both pods serve it;
//! an incompatible change is reported, not registered. The brokers are given the registry for
//! schema validation (its HTTPS URL, the cluster CA, their own certificate), and a KafkaTopic
//! with validation on, applied with kubectl, refuses a record without a schema id. The writer's
//! process is killed while registrations go through the other pod: the other takes over, and
//! every acknowledged registration keeps its own id.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tributary_e2e::clients::java;
use tributary_registry_client::{RegistryHttp, TlsSettings};

use crate::env::{wait, Env};

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
/// The name the registry's certificate carries (the pods are called by IP).
const SERVICE_NAME: &str = "registered-schema-registry.schemas.svc";
/// The KafkaUser whose SCRAM password the scenario's client authenticates with.
const USER: &str = "schema-client";
/// The topic whose values the brokers validate.
const VALIDATED: &str = "validated";

/// How the scenario's client reaches the registry: trusting the cluster CA, as `user`.
struct Access {
    tls: TlsSettings,
    user: String,
    password: String,
}

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

/// One HTTPS exchange with the registry pod at `addr`, as `access` says (no credentials when
/// `access.user` is empty): the status and the JSON body; `None` when the pod cannot be
/// reached in time.
async fn http(
    access: &Access,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let client = RegistryHttp::new(&format!("https://{addr}"), Some(access.tls.clone()), HTTP)
        .unwrap_or_else(|e| panic!("a client of {addr}: {e}"));
    let client = if access.user.is_empty() {
        client
    } else {
        client
            .with_basic_auth(&access.user, &access.password)
            .unwrap_or_else(|e| panic!("credentials of {}: {e}", access.user))
    };
    let method = method.parse().unwrap_or_else(|e| panic!("{method}: {e}"));
    let answer = client.call(method, path, body).await.ok()?;
    Some((answer.status, answer.body))
}

/// The decoded value of `key` in Secret `name`.
async fn secret(env: &Env, name: &str, key: &str) -> String {
    use base64::Engine;
    let obj = wait(&format!("Secret {name}"), REACT, || async {
        let obj = env.get_json(&["secret", name, "-n", NS]).await;
        obj["data"][key].is_string().then_some(obj)
    })
    .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(obj["data"][key].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("Secret {name} key {key} is not base64: {e}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("Secret {name} key {key}: {e}"))
}

/// The registry pods' (name, address) once `n` run with an IP and answer `GET /`; a
/// timeout shows the pods and their logs.
async fn registry_pods(cluster: &Replicated, access: &Access, n: usize) -> Vec<(String, String)> {
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
                if http(access, &addr, "GET", "/", None)
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

/// The KafkaSchema's status once `ready` says it is done; a timeout shows the last one.
async fn schema_status(cluster: &Replicated, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let found = tokio::time::timeout(REACT, async {
        loop {
            let s = cluster
                .env
                .get_json(&["kafkaschema", "orders", "-n", NS])
                .await;
            if ready(&s["status"]) {
                return s["status"].clone();
            }
            *last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = s["status"].clone();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        let last = last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        panic!("timed out after {REACT:?} waiting for {what}; last status: {last}")
    })
}

/// Whether condition `type_` of `status` is True.
fn is_true(status: &Value, type_: &str) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

pub(crate) async fn run(driver: crate::env::Driver) {
    let mut cluster = Replicated::cluster(
        driver,
        NS,
        CLUSTER,
        &three_brokers(
            "",
            "schemaRegistry: {replicas: 2, tls: {}, authentication: {type: basic}}",
        ),
    )
    .await;
    cluster
        .env
        .apply(&format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: KafkaUser\n\
             metadata: {{name: {USER}, namespace: {NS}, labels: {{tributary.dev/cluster: {CLUSTER}}}}}\n\
             spec: {{authentication: {{type: scram-sha-512}}}}\n"
        ))
        .await;
    let ca = secret(&cluster.env, &format!("{CLUSTER}-cluster-ca"), "ca.crt").await;
    let tls = TlsSettings::new(ca.as_bytes(), None, Some(SERVICE_NAME))
        .unwrap_or_else(|e| panic!("the cluster CA: {e}"));
    let access = Access {
        tls: tls.clone(),
        user: USER.to_owned(),
        password: secret(&cluster.env, USER, "password").await,
    };
    let kc = cluster
        .env
        .get_json(&["kafkacluster", CLUSTER, "-n", NS])
        .await;
    assert_eq!(
        kc["status"]["schemaRegistry"]["url"],
        format!("https://{SERVICE_NAME}:{PORT}"),
        "{kc}"
    );
    let pods = registry_pods(&cluster, &access, 2).await;
    cluster.log("two registry pods answer over HTTPS");

    // Basic authentication against the KafkaUsers' SCRAM credentials: the user's password is
    // accepted (once the registry has read the credential the operator wrote), none or a wrong
    // one is refused.
    let subjects = wait("the KafkaUser's password accepted", REACT, || async {
        http(&access, &pods[0].1, "GET", "/subjects", None)
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    assert_eq!(subjects.1, json!([]));
    let anonymous = Access {
        tls: tls.clone(),
        user: String::new(),
        password: String::new(),
    };
    let wrong = Access {
        tls,
        user: USER.to_owned(),
        password: "wrong".to_owned(),
    };
    for (who, access) in [("no credentials", &anonymous), ("a wrong password", &wrong)] {
        let got = http(access, &pods[0].1, "GET", "/subjects", None).await;
        let Some((401, body)) = got else {
            panic!("{who}: {got:?}")
        };
        assert_eq!(body["error_code"], 40101, "{who}: {body}");
    }
    cluster.log("basic authentication admits the KafkaUser and refuses others with 401");

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
        let got = http(&access, addr, "GET", &path, None).await;
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
        &access,
        &pods[0].1,
        "GET",
        &format!("/subjects/{SUBJECT}/versions"),
        None,
    )
    .await
    .unwrap_or_else(|| panic!("{} answers", pods[0].0));
    assert_eq!(versions, json!([1]));

    validated_topic(&mut cluster).await;

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
                match http(&access, &survivor.1, "POST", &path, Some(&schema)).await {
                    Some((200, body)) => body["id"].as_i64(),
                    _ => None,
                }
            },
        )
        .await;
        assert!(ids.insert(got), "id {got} given twice ({ids:?})");
    }
    cluster.log("the other pod took over: five more registrations, each its own id");
    let (_, body) = http(
        &access,
        &survivor.1,
        "GET",
        &format!("/schemas/ids/{id}"),
        None,
    )
    .await
    .unwrap_or_else(|| panic!("{} answers", survivor.0));
    assert_eq!(
        body["schema"].as_str().map(str::len),
        Some(v1.len()),
        "{body}"
    );
}

/// The brokers are given this registry for schema validation: their rendered config names its
/// HTTPS URL, the cluster CA and their own certificate as their identity (files they read at
/// start-up, or they would not run); a KafkaTopic with validation on, applied with kubectl,
/// reaches them and a record without a schema id is refused with INVALID_RECORD. (Records with
/// an id need the brokers to resolve the registry's Service, which the local control plane
/// cannot: the client suite's cluster pass covers them with a registry named in spec.config.)
async fn validated_topic(cluster: &mut Replicated) {
    let config = cluster
        .env
        .get_json(&["configmap", &format!("{CLUSTER}-config"), "-n", NS])
        .await;
    let props = config["data"]["server.properties"]
        .as_str()
        .unwrap_or_default();
    for line in [
        format!("confluent.schema.registry.url=https://{SERVICE_NAME}:{PORT}"),
        "confluent.ssl.truststore.location=/etc/tributary-tls/broker/ca.crt".to_owned(),
        "confluent.ssl.keystore.location=/etc/tributary-tls/broker/tls.crt".to_owned(),
        "confluent.ssl.keystore.key.location=/etc/tributary-tls/broker/tls.key".to_owned(),
    ] {
        assert!(props.lines().any(|l| l == line), "{line} not in\n{props}");
    }
    cluster
        .topic(VALIDATED, 1, "confluent.value.schema.validation: \"true\"")
        .await;
    let bootstrap = cluster.bootstrap.clone();
    let described = java(
        &[
            "admin",
            "--bootstrap",
            &bootstrap,
            "describe-configs",
            "--topic",
            VALIDATED,
        ],
        None,
    )
    .await;
    assert!(
        described.iter().any(|l| l["event"] == "configs"
            && l["configs"]["confluent.value.schema.validation"] == "true"),
        "{described:?}"
    );
    let produced = java(
        &[
            "produce",
            "--bootstrap",
            &bootstrap,
            "--topic",
            VALIDATED,
            "--count",
            "1",
            "--prop",
            "retries=0",
        ],
        None,
    )
    .await;
    assert!(
        produced
            .iter()
            .any(|l| l["event"] == "error" && l["error"] == "InvalidRecordException"),
        "{produced:?}"
    );
    cluster.log("the brokers validate: a KafkaTopic with validation on refuses a raw record");
}
