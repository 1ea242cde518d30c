//! `KafkaSchema`: a schema declared as a Kubernetes object, so GitOps users review schema
//! changes as pull requests. The operator registers it under `spec.subject` in the schema
//! registry of the KafkaCluster `spec.clusterRef` (same namespace, as a KafkaTopic names its
//! cluster) and reports the registry's answer in the status: the schema id and version, or
//! why the registry refused it (`Incompatible`, with the registry's message, when the change
//! breaks the subject's compatibility level; `InvalidSchema` when it does not parse).
//!
//! # One object, one subject
//!
//! A KafkaSchema owns its subject: each accepted change of `spec` becomes the subject's next
//! version, and a refused change leaves the registry as it was (the last accepted version
//! keeps serving). Two KafkaSchemas naming the same subject of one cluster would fight over
//! it; the operator reports the younger one as `SubjectTaken` and leaves it alone.
//!
//! # Deletion
//!
//! Schemas are referenced by data that outlives them (every record carries its schema id), so
//! deleting the object keeps the subject by default (`deletionPolicy: Retain`), as deleting
//! a Deployment keeps the images it ran. With `deletionPolicy: Delete` the operator
//! soft-deletes the subject (Confluent's `DELETE /subjects/{subject}`: its versions leave the
//! listings and lookups, the ids still resolve for consumers) before letting the object go.
//! A hard delete is never done by the operator: it is an explicit decision for a human.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]
// Several `printcolumn(...)` entries repeat `type_ = ...`, which clippy mistakes for duplicated
// attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Finalizer the operator keeps on a KafkaSchema until its subject is soft-deleted
/// (`deletionPolicy: Delete`) or left alone (`Retain`).
pub const SCHEMA_FINALIZER: &str = "tributary.dev/schema-subject";

/// Condition type: true while the registry holds the subject's schema as the spec says it.
pub const SCHEMA_READY: &str = "Ready";
/// Condition type: true while the registry refuses the spec's schema as incompatible with the
/// subject's earlier versions.
pub const SCHEMA_INCOMPATIBLE: &str = "Incompatible";

/// Desired state of a schema.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "KafkaSchema",
    namespaced,
    status = "KafkaSchemaStatus",
    derive = "PartialEq",
    shortname = "ksc",
    category = "tributary",
    doc = "A schema registered under a subject in the schema registry of a KafkaCluster in the same namespace.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef"),
    printcolumn(name = "Subject", type_ = "string", json_path = ".spec.subject"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.schemaType"),
    printcolumn(name = "Version", type_ = "integer", json_path = ".status.version"),
    printcolumn(name = "Id", type_ = "integer", json_path = ".status.id"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.schema) != has(self.schemaFrom)").message("set exactly one of schema (the text) and schemaFrom (a ConfigMap key holding it)"))]
pub struct KafkaSchemaSpec {
    /// Name of the KafkaCluster (same namespace) whose schema registry holds the schema.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: String,

    /// The subject, e.g. `orders-value` (TopicNameStrategy). Immutable: a KafkaSchema owns
    /// one subject's history.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("subject is immutable; create another KafkaSchema for another subject"))]
    pub subject: String,

    /// `AVRO` (the default), `JSON` (JSON Schema) or `PROTOBUF`.
    #[serde(default)]
    pub schema_type: SchemaType,

    /// The schema text (an Avro schema's JSON, a JSON Schema, a `.proto` file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1_000_000))]
    pub schema: Option<String>,

    /// The ConfigMap key holding the schema text, for schemas kept as files (a kustomize
    /// `configMapGenerator`); a change of the key is registered as a new version within a
    /// minute (the operator re-reads it periodically rather than watching every ConfigMap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_from: Option<SchemaSource>,

    /// Schemas this one imports (Avro named types, JSON `$ref`, Protobuf `import`), each a
    /// version of another subject, as Confluent's references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub references: Vec<SchemaReference>,

    /// The subject's compatibility level, set before registering; the registry's global
    /// level applies when unset (a level set by other means is then left alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<CompatibilityLevel>,

    /// Register the normalized form (Confluent's `normalize=true`), so schemas that differ
    /// only in layout are one version.
    #[serde(default)]
    pub normalize: bool,

    /// What deleting the KafkaSchema does to the subject: `Retain` (the default) keeps it,
    /// `Delete` soft-deletes it.
    #[serde(default)]
    pub deletion_policy: SchemaDeletionPolicy,
}

/// The schema language.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum SchemaType {
    /// Apache Avro.
    #[default]
    #[serde(rename = "AVRO")]
    Avro,
    /// JSON Schema.
    #[serde(rename = "JSON")]
    Json,
    /// Protocol Buffers.
    #[serde(rename = "PROTOBUF")]
    Protobuf,
}

impl SchemaType {
    /// The `schemaType` the registry's REST API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

/// Where the schema text is kept when it is not inline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaSource {
    /// A key of a ConfigMap in the KafkaSchema's namespace.
    pub config_map_key_ref: ConfigMapKey,
}

/// A key of a ConfigMap in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKey {
    /// The ConfigMap.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding the schema text.
    #[schemars(regex(pattern = r"^[-._a-zA-Z0-9]{1,253}$"))]
    pub key: String,
}

/// A reference to a version of another subject.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaReference {
    /// The name the schema uses for it (an Avro full name, a `$ref` URL, an import path).
    #[schemars(length(min = 1, max = 1024))]
    pub name: String,
    /// The referenced subject.
    #[schemars(length(min = 1, max = 255))]
    pub subject: String,
    /// The referenced version of that subject.
    #[schemars(range(min = 1))]
    pub version: i32,
}

/// A subject's compatibility level, as Confluent defines them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// New schemas read data written with the latest one.
    Backward,
    /// New schemas read data written with every earlier one.
    BackwardTransitive,
    /// The latest schema reads data written with new ones.
    Forward,
    /// Every earlier schema reads data written with new ones.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against every earlier one.
    FullTransitive,
    /// No check.
    None,
}

impl CompatibilityLevel {
    /// The level as the registry's `/config` API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
            CompatibilityLevel::None => "NONE",
        }
    }
}

/// Fate of the subject when its KafkaSchema is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum SchemaDeletionPolicy {
    /// The subject and its versions stay in the registry.
    #[default]
    Retain,
    /// The subject is soft-deleted (its ids still resolve for consumers).
    Delete,
}

/// Observed state of a schema, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSchemaStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (with reason `Registered`, or why not) and `Incompatible` (with the
    /// registry's message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The registry's global id of the schema last accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The subject's version holding the schema last accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// The registry the schema was registered in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_avro_retained_and_not_normalized() {
        let spec: KafkaSchemaSpec = serde_json::from_value(serde_json::json!({
            "clusterRef": "demo", "subject": "orders-value", "schema": "\"string\""
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.schema_type, SchemaType::Avro);
        assert_eq!(spec.deletion_policy, SchemaDeletionPolicy::Retain);
        assert!(!spec.normalize);
    }

    #[test]
    fn levels_are_spelled_as_the_registry_spells_them() {
        let level: CompatibilityLevel =
            serde_json::from_str("\"BACKWARD_TRANSITIVE\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(level.as_str(), "BACKWARD_TRANSITIVE");
        assert_eq!(CompatibilityLevel::None.as_str(), "NONE");
    }
}
