//! Helpers shared by the e2e test binaries: polling with a deadline, the repository's CRDs,
//! and raw requests (for headers and media types the typed clients hide).

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

pub mod kubelet;
pub mod tools;

use bytes::Bytes;
use http_body_util::BodyExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client};
use serde_json::Value;
use tributary_e2e::FakeApiServer;

/// How long any condition may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `f` until it yields `Some`, failing the test with `what` after [`DEADLINE`].
pub async fn wait_until<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tributary_e2e::wait_until(what, DEADLINE, f).await
}

/// A server with namespace `ns`, and a client defaulting to it.
pub fn server(ns: &str) -> (FakeApiServer, Client) {
    let server = FakeApiServer::new();
    server.create_namespace(ns);
    let client = server.client(ns);
    (server, client)
}

/// A file of the repository, parsed from YAML.
pub fn repo_yaml(path: &str) -> Value {
    let p = tributary_e2e::tools::repo_root().join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", p.display()))
}

/// Creates the KafkaCluster and KafkaTopic CRDs from `crds/`.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in [
        "crds/kafkaclusters.tributary.dev.yaml",
        "crds/kafkatopics.tributary.dev.yaml",
    ] {
        let crd: CustomResourceDefinition =
            serde_json::from_value(repo_yaml(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        api.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|e| panic!("create {file}: {e}"));
    }
}

/// A JSON value as a DynamicObject.
pub fn dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

/// A raw answer: status, headers and parsed JSON body (Null when not JSON).
pub struct Raw {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Sends one raw request through `client`.
pub async fn raw(
    client: &Client,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Raw {
    let mut req = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(kube::client::Body::from(body.into()))
        .unwrap_or_else(|e| panic!("build request: {e}"));
    let resp = client
        .send(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("read {uri}: {e}"))
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Raw {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    }
}

/// The Status of a failed API call, or a panic naming what happened instead.
pub fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Publishes an Event about `reference` the way the operator's recorder does
/// (`events.k8s.io/v1`).
pub async fn publish_event(
    client: &Client,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: kube::runtime::events::EventType,
    reason: &str,
    note: &str,
) {
    use kube::runtime::events::{Event, Recorder, Reporter};
    let reporter = Reporter {
        controller: "tributary-test".into(),
        instance: Some("test-0".into()),
    };
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.into()),
        action: "Test".into(),
        secondary: None,
    };
    Recorder::new(client.clone(), reporter)
        .publish(&event, reference)
        .await
        .unwrap_or_else(|e| panic!("publish event {reason}: {e}"));
}

/// The next line a child process prints, failing the test after [`DEADLINE`].
pub async fn next_line<R>(lines: &mut tokio::io::Lines<R>) -> String
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    match tokio::time::timeout(DEADLINE, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        other => panic!("no line in time: {other:?}"),
    }
}

/// The `FailedCreate` Warning Events of namespace `ns` as (involved kind, message), once one
/// about each of `kinds` is there (the workload controllers record them for refused pods).
pub async fn failed_creates(client: &Client, ns: &str, kinds: &[&str]) -> Vec<(String, String)> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    wait_until(&format!("FailedCreate events of {kinds:?}"), || async {
        let list = events.list(&Default::default()).await.ok()?;
        let failed: Vec<(String, String)> = list
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("FailedCreate") && e.type_.as_deref() == Some("Warning")
            })
            .map(|e| {
                let kind = e.involved_object.kind.unwrap_or_default();
                (kind, e.message.unwrap_or_default())
            })
            .collect();
        kinds
            .iter()
            .all(|k| failed.iter().any(|(kind, _)| kind == k))
            .then_some(failed)
    })
    .await
}
