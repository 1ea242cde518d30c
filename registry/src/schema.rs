//! Schema types, references, and parsing: what makes a schema text valid (42201 otherwise) and
//! when two texts are the same schema (so registering it again returns the existing id).

use serde::{Deserialize, Serialize};

use crate::avro_rules;
use crate::compat::json::JsonSchemaDoc;
use crate::compat::protobuf::ProtoFile;

/// The three schema languages the Confluent serializers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SchemaType {
    /// Apache Avro; the default when a request or record names no type.
    #[default]
    #[serde(rename = "AVRO")]
    Avro,
    /// JSON Schema.
    #[serde(rename = "JSON")]
    Json,
    /// Protocol Buffers, as .proto text or a base64 FileDescriptorProto.
    #[serde(rename = "PROTOBUF")]
    Protobuf,
}

impl SchemaType {
    /// Every type, in the order `GET /schemas/types` lists them.
    pub const ALL: [SchemaType; 3] = [SchemaType::Json, SchemaType::Protobuf, SchemaType::Avro];

    /// Parses a type as the REST API spells it.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Some(SchemaType::Avro),
            "JSON" => Some(SchemaType::Json),
            "PROTOBUF" => Some(SchemaType::Protobuf),
            _ => None,
        }
    }

    /// The name the REST API and the topic use.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// For serde's `skip_serializing_if`: Confluent leaves the type out for Avro.
    pub fn is_avro(&self) -> bool {
        *self == SchemaType::Avro
    }
}

/// A reference from one schema to a version of another subject that defines a type it uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referencing schema uses: an Avro full name, a .proto import path, a JSON
    /// Schema `$ref` URL.
    pub name: String,
    /// The subject holding the referenced schema.
    pub subject: String,
    /// The version of that subject.
    pub version: u32,
}

/// Why a schema text is not a valid schema of its type (error 42201), in the words of
/// Confluent's registry ("Invalid schema of type AVRO, details: ..."), which clients show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// Avro parsing failed.
    #[error("Invalid schema of type AVRO, details: {0}")]
    Avro(String),
    /// The JSON Schema is not JSON, or not a schema.
    #[error("Invalid schema of type JSON, details: {0}")]
    Json(String),
    /// The .proto text or descriptor could not be read.
    #[error("Invalid schema of type PROTOBUF, details: {0}")]
    Protobuf(String),
}

/// A schema a reference reaches, for parsing the schema that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referenced {
    /// The name the reference gives it (an Avro full name, an import path, a `$ref` URL).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// A schema parsed far enough to compare and to check compatibility.
#[derive(Debug, Clone)]
pub enum ParsedSchema {
    /// The Avro schema, with its references' named types resolved.
    Avro(Box<apache_avro::Schema>),
    /// The JSON Schema document, with the documents its references name.
    Json(JsonSchemaDoc),
    /// The messages, fields and enums of a .proto file.
    Protobuf(ProtoFile),
}

/// Parses `text` as a schema of `schema_type`; `referenced` holds the schemas its references
/// reach, dependencies first.
pub fn parse(
    schema_type: SchemaType,
    text: &str,
    referenced: &[Referenced],
) -> Result<ParsedSchema, SchemaError> {
    match schema_type {
        SchemaType::Avro => {
            let texts: Vec<String> = referenced.iter().map(|r| r.text.clone()).collect();
            parse_avro(text, &texts).map(|s| ParsedSchema::Avro(Box::new(s)))
        }
        SchemaType::Json => {
            let root = parse_json_schema(text)?;
            let mut doc = JsonSchemaDoc::standalone(root);
            for r in referenced {
                if let Ok(value) = parse_json_schema(&r.text) {
                    doc.referenced.insert(r.name.clone(), value);
                }
            }
            Ok(ParsedSchema::Json(doc))
        }
        SchemaType::Protobuf => {
            ProtoFile::parse(text).map(|f| ParsedSchema::Protobuf(f.with_imports(referenced)))
        }
    }
}

/// Parses a schema a client sends (to register, look up or check): an Avro schema is first
/// checked as strictly as Confluent checks it ([`avro_rules`]). Stored versions are parsed with
/// [`parse`] alone, so versions stored before these checks still load.
pub fn parse_new(
    schema_type: SchemaType,
    text: &str,
    referenced: &[Referenced],
) -> Result<ParsedSchema, SchemaError> {
    if schema_type == SchemaType::Avro {
        let texts: Vec<&str> = referenced.iter().map(|r| r.text.as_str()).collect();
        avro_rules::check(text, &texts).map_err(SchemaError::Avro)?;
    }
    parse(schema_type, text, referenced)
}

fn parse_avro(text: &str, referenced: &[String]) -> Result<apache_avro::Schema, SchemaError> {
    // The parser is third-party code fed with client input: a panic in it must become a 42201,
    // not a dead connection task.
    let owned = without_non_string_logical_types(text);
    let refs: Vec<String> = referenced
        .iter()
        .map(|r| without_non_string_logical_types(r))
        .collect();
    let result = std::panic::catch_unwind(move || {
        if refs.is_empty() {
            apache_avro::Schema::parse_str(&owned).map_err(|e| e.to_string())
        } else {
            apache_avro::Schema::parse_str_with_list(&owned, &refs)
                .map(|(schema, _)| schema)
                .map_err(|e| e.to_string())
        }
    });
    match result {
        Ok(Ok(schema)) => Ok(schema),
        Ok(Err(message)) => Err(SchemaError::Avro(message)),
        Err(_) => Err(SchemaError::Avro("the schema could not be parsed".into())),
    }
}

/// `text` without the `logicalType` keys whose value is not a string. Avro Java ignores such
/// a logical type, as any invalid one; apache-avro refuses the whole schema for it.
fn without_non_string_logical_types(text: &str) -> String {
    fn strip(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Object(m) => {
                let mut changed = m.get("logicalType").is_some_and(|t| !t.is_string());
                if changed {
                    m.remove("logicalType");
                }
                for v in m.values_mut() {
                    changed |= strip(v);
                }
                changed
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |c, v| strip(v) | c),
            _ => false,
        }
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_string();
    };
    if strip(&mut value) {
        value.to_string()
    } else {
        text.to_string()
    }
}

fn parse_json_schema(text: &str) -> Result<serde_json::Value, SchemaError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| SchemaError::Json(e.to_string()))?;
    match &value {
        serde_json::Value::Object(_) | serde_json::Value::Bool(_) => Ok(value),
        _ => Err(SchemaError::Json(
            "a schema must be an object or a boolean".into(),
        )),
    }
}

/// The form a schema is stored and compared in: compact JSON for Avro and JSON Schema (so
/// whitespace and key order do not make a new version), the trimmed text for Protobuf.
pub fn canonical_text(schema_type: SchemaType, text: &str) -> String {
    match schema_type {
        SchemaType::Avro | SchemaType::Json => {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) => value.to_string(),
                Err(_) => text.trim().to_string(),
            }
        }
        SchemaType::Protobuf => text.trim().to_string(),
    }
}

/// Whether two texts of one type are the same schema: equal JSON values for Avro and JSON
/// Schema (object key order does not matter), equal text up to whitespace for Protobuf.
pub fn same_schema(schema_type: SchemaType, a: &str, b: &str) -> bool {
    match schema_type {
        SchemaType::Avro | SchemaType::Json => {
            match (
                serde_json::from_str::<serde_json::Value>(a),
                serde_json::from_str::<serde_json::Value>(b),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => a.trim() == b.trim(),
            }
        }
        SchemaType::Protobuf => a.split_whitespace().eq(b.split_whitespace()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_avro_is_an_error() {
        assert!(parse(SchemaType::Avro, "{\"type\":\"record\"}", &[]).is_err());
        assert!(parse(SchemaType::Avro, "nope", &[]).is_err());
        assert!(parse(SchemaType::Avro, "\"string\"", &[]).is_ok());
    }

    #[test]
    fn a_new_avro_schema_is_checked_strictly_but_a_stored_one_still_loads() {
        // Issue 40: apache-avro reads the field object itself as the array type.
        let text = r#"{"type":"record","name":"U","fields":[{"name":"key","type":"array","items":"string"}]}"#;
        match parse_new(SchemaType::Avro, text, &[]) {
            Err(SchemaError::Avro(m)) => {
                assert!(m.contains("\"array\" is not a defined name"), "{m}")
            }
            other => panic!("parse_new: {other:?}"),
        }
        assert!(parse(SchemaType::Avro, text, &[]).is_ok());
        assert!(parse_new(SchemaType::Avro, "\"string\"", &[]).is_ok());
        assert!(parse_new(SchemaType::Json, "{}", &[]).is_ok());
    }

    #[test]
    fn a_logical_type_that_is_not_a_string_is_ignored_not_refused() {
        let text = r#"{"type":"record","name":"U","fields":[{"name":"d","type":{"type":"int","logicalType":5}}]}"#;
        assert!(parse_new(SchemaType::Avro, text, &[]).is_ok());
        assert!(parse(SchemaType::Avro, text, &[]).is_ok());
    }

    #[test]
    fn avro_references_resolve_named_types() {
        let inner = r#"{"type":"record","name":"Inner","namespace":"x","fields":[{"name":"a","type":"int"}]}"#;
        let outer = r#"{"type":"record","name":"Outer","namespace":"x","fields":[{"name":"i","type":"x.Inner"}]}"#;
        assert!(parse(SchemaType::Avro, outer, &[]).is_err());
        let inner = Referenced {
            name: "x.Inner".into(),
            text: inner.into(),
        };
        assert!(parse(SchemaType::Avro, outer, &[inner]).is_ok());
    }

    #[test]
    fn key_order_and_whitespace_do_not_make_a_new_schema() {
        assert!(same_schema(
            SchemaType::Avro,
            r#"{"type":"string"}"#,
            "{ \"type\" : \"string\" }"
        ));
        assert!(!same_schema(
            SchemaType::Avro,
            r#"{"type":"string"}"#,
            r#"{"type":"int"}"#
        ));
        assert!(same_schema(
            SchemaType::Protobuf,
            "message A {\n int32 a = 1; }",
            "message A { int32 a = 1; }"
        ));
    }

    #[test]
    fn json_schema_must_be_an_object_or_boolean() {
        assert!(parse(SchemaType::Json, "[1]", &[]).is_err());
        assert!(parse(SchemaType::Json, "{\"type\":\"object\"}", &[]).is_ok());
        assert!(parse(SchemaType::Json, "true", &[]).is_ok());
    }
}
