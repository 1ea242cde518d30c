//! An invalid Avro schema (issue 40: `array` used as a type name) is refused over HTTP as
//! Confluent refuses it, 422 with error code 42201, on register, lookup and compatibility
//! checks, and nothing is stored.

use crate::common;

use common::{request, Broker, Registry};
use serde_json::{json, Value};

/// A valid first version.
const V1: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"int"}]}"#;
/// `"type":"array"` with `items` beside it in a field; Avro wants
/// `"type":{"type":"array","items":"string"}`.
const ARRAY_AS_NAME: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"int"},{"name":"key","type":"array","items":"string"}]}"#;

async fn post(registry: &Registry, path: &str, schema: &str) -> common::Answer {
    let body = json!({ "schema": schema });
    request(&registry.addr, "POST", path, Some(&body))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", registry.proc.log()))
}

#[tokio::test]
async fn an_invalid_avro_schema_is_42201_on_register_lookup_and_compatibility() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let mut registry = Registry::start(&broker.addr, dir.path(), "registry", &[], &[]);
    registry.wait_ready().await;

    let first = post(&registry, "/subjects/users-value/versions", V1).await;
    assert_eq!(first.status, 200, "{}", first.text);

    for path in [
        "/subjects/users-value/versions",
        "/subjects/users-value",
        "/compatibility/subjects/users-value/versions/1",
        "/compatibility/subjects/users-value/versions/latest",
        "/compatibility/subjects/users-value/versions",
    ] {
        let answer = post(&registry, path, ARRAY_AS_NAME).await;
        assert_eq!(answer.status, 422, "POST {path}: {}", answer.text);
        assert_eq!(
            answer.json["error_code"],
            json!(42201),
            "POST {path}: {}",
            answer.text
        );
        let message = answer.json["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(
                "Invalid schema of type AVRO, details: \"array\" is not a defined name"
            ),
            "POST {path}: {}",
            answer.text
        );
    }

    let versions = request(
        &registry.addr,
        "GET",
        "/subjects/users-value/versions",
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("GET versions: {e}"));
    assert_eq!(versions.json, json!([1]), "{}", versions.text);
    let subjects = request(&registry.addr, "GET", "/subjects", None)
        .await
        .unwrap_or_else(|e| panic!("GET subjects: {e}"));
    assert_eq!(
        subjects.json,
        Value::from(vec!["users-value"]),
        "{}",
        subjects.text
    );
}
