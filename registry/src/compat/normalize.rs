//! `normalize=true`: the text a schema is registered and looked up as, so schemas that differ
//! only in form get one id. Avro follows Confluent's normalized form: full names instead of
//! `namespace`, a named type written out once and named afterwards, primitives without
//! properties as bare names, fixed key order (`name`, `type`, then the type's own keys, `doc`,
//! sorted `aliases`, `default`, then other properties sorted by key) and the default field order
//! left out. JSON Schema: compact with keys sorted. Protobuf .proto text: comments and layout
//! dropped and rewritten one statement a line; a base64 descriptor is kept as it is.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::proto_text;
use crate::schema::{canonical_text, Referenced, SchemaType};

/// The normalized text of `text`; the canonical text when it cannot be read (parsing reports
/// that separately).
pub fn normalized_text(schema_type: SchemaType, text: &str, referenced: &[Referenced]) -> String {
    match schema_type {
        SchemaType::Avro => {
            avro(text, referenced).unwrap_or_else(|| canonical_text(schema_type, text))
        }
        SchemaType::Json => canonical_text(schema_type, text),
        SchemaType::Protobuf => {
            proto_text::canonical(text).unwrap_or_else(|_| text.trim().to_string())
        }
    }
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn namespace_of(full: &str) -> &str {
    full.rsplit_once('.').map_or("", |(ns, _)| ns)
}

/// The Avro normalized form of `text`; None when it is not JSON.
fn avro(text: &str, referenced: &[Referenced]) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    let mut writer = AvroWriter::default();
    for r in referenced {
        if let Ok(v) = serde_json::from_str::<Value>(&r.text) {
            writer.write(&v, "", &mut String::new());
        }
    }
    let mut out = String::new();
    writer.write(&value, "", &mut out);
    Some(out)
}

/// Writes Avro schemas in normalized form, remembering the named types already written.
#[derive(Default)]
struct AvroWriter {
    defined: HashSet<String>,
}

impl AvroWriter {
    /// A type name as written, made full: qualified by the enclosing namespace unless it
    /// already has one or only the unqualified name is known.
    fn resolve(&self, name: &str, namespace: &str) -> String {
        if name.contains('.') || namespace.is_empty() {
            return name.to_string();
        }
        let qualified = format!("{namespace}.{name}");
        if self.defined.contains(name) && !self.defined.contains(&qualified) {
            name.to_string()
        } else {
            qualified
        }
    }

    fn write(&mut self, value: &Value, namespace: &str, o: &mut String) {
        match value {
            Value::String(s) if PRIMITIVES.contains(&s.as_str()) => o.push_str(&quote(s)),
            Value::String(s) => o.push_str(&quote(&self.resolve(s, namespace))),
            Value::Array(branches) => {
                o.push('[');
                for (i, b) in branches.iter().enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    self.write(b, namespace, o);
                }
                o.push(']');
            }
            Value::Object(m) => self.write_object(m, namespace, o),
            other => o.push_str(&other.to_string()),
        }
    }

    fn write_object(&mut self, m: &Map<String, Value>, namespace: &str, o: &mut String) {
        let ty = m.get("type");
        match ty.and_then(Value::as_str) {
            Some(kind @ ("record" | "error" | "enum" | "fixed")) => {
                self.write_named(kind, m, namespace, o)
            }
            Some(kind @ ("array" | "map")) => {
                let child = if kind == "array" { "items" } else { "values" };
                o.push_str(&format!("{{\"type\":\"{kind}\",\"{child}\":"));
                self.write(m.get(child).unwrap_or(&Value::Null), namespace, o);
                write_props(m, &["type", child], o);
                o.push('}');
            }
            Some(p) if PRIMITIVES.contains(&p) => {
                if m.len() == 1 {
                    o.push_str(&quote(p));
                    return;
                }
                o.push_str(&format!("{{\"type\":{}", quote(p)));
                let logical = write_logical(m, o);
                let mut skip = vec!["type"];
                skip.extend(logical);
                write_props(m, &skip, o);
                o.push('}');
            }
            Some(name) => o.push_str(&quote(&self.resolve(name, namespace))),
            None => match ty {
                Some(inner @ (Value::Object(_) | Value::Array(_))) => {
                    self.write(inner, namespace, o)
                }
                _ => o.push_str(&Value::Object(m.clone()).to_string()),
            },
        }
    }

    fn write_named(&mut self, kind: &str, m: &Map<String, Value>, namespace: &str, o: &mut String) {
        let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
        let full = match m.get("namespace").and_then(Value::as_str) {
            _ if name.contains('.') => name.to_string(),
            Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
            Some(_) => name.to_string(),
            None if namespace.is_empty() => name.to_string(),
            None => format!("{namespace}.{name}"),
        };
        if !self.defined.insert(full.clone()) {
            o.push_str(&quote(&full));
            return;
        }
        let inner = namespace_of(&full).to_string();
        o.push_str(&format!(
            "{{\"name\":{},\"type\":{}",
            quote(&full),
            quote(kind)
        ));
        let mut skip = vec!["name", "type", "namespace", "doc", "aliases"];
        match kind {
            "enum" => {
                o.push_str(",\"symbols\":");
                o.push_str(&m.get("symbols").cloned().unwrap_or(Value::Null).to_string());
                skip.extend(["symbols", "default"]);
            }
            "fixed" => {
                o.push_str(",\"size\":");
                o.push_str(&m.get("size").cloned().unwrap_or(Value::Null).to_string());
                skip.push("size");
                skip.extend(write_logical(m, o));
            }
            _ => {
                o.push_str(",\"fields\":[");
                let fields = m.get("fields").and_then(Value::as_array);
                for (i, f) in fields.into_iter().flatten().enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    self.write_field(f, &inner, o);
                }
                o.push(']');
                skip.push("fields");
            }
        }
        if let Some(doc) = m.get("doc").filter(|d| d.as_str() != Some("")) {
            o.push_str(&format!(",\"doc\":{doc}"));
        }
        if let Some(aliases) = m.get("aliases").and_then(Value::as_array) {
            let mut full_aliases: Vec<String> = aliases
                .iter()
                .filter_map(Value::as_str)
                .map(|a| {
                    if a.contains('.') || inner.is_empty() {
                        a.to_string()
                    } else {
                        format!("{inner}.{a}")
                    }
                })
                .collect();
            full_aliases.sort();
            o.push_str(&format!(",\"aliases\":{}", Value::from(full_aliases)));
        }
        if kind == "enum" {
            if let Some(default) = m.get("default") {
                o.push_str(&format!(",\"default\":{default}"));
            }
        }
        write_props(m, &skip, o);
        o.push('}');
    }

    fn write_field(&mut self, field: &Value, namespace: &str, o: &mut String) {
        let name = field
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        o.push_str(&format!("{{\"name\":{},\"type\":", quote(name)));
        self.write(field.get("type").unwrap_or(&Value::Null), namespace, o);
        if let Some(order) = field
            .get("order")
            .filter(|v| v.as_str() != Some("ascending"))
        {
            o.push_str(&format!(",\"order\":{order}"));
        }
        if let Some(doc) = field.get("doc") {
            o.push_str(&format!(",\"doc\":{doc}"));
        }
        if let Some(aliases) = field.get("aliases").and_then(Value::as_array) {
            let mut sorted: Vec<&str> = aliases.iter().filter_map(Value::as_str).collect();
            sorted.sort_unstable();
            o.push_str(&format!(",\"aliases\":{}", Value::from(sorted)));
        }
        if let Some(default) = field.get("default") {
            o.push_str(&format!(",\"default\":{default}"));
        }
        if let Some(m) = field.as_object() {
            write_props(
                m,
                &["name", "type", "order", "doc", "aliases", "default"],
                o,
            );
        }
        o.push('}');
    }
}

/// Writes `logicalType` (and a decimal's `precision` and non-zero `scale`); returns the keys
/// it wrote.
fn write_logical(m: &Map<String, Value>, o: &mut String) -> Vec<&'static str> {
    let Some(logical) = m.get("logicalType") else {
        return Vec::new();
    };
    o.push_str(&format!(",\"logicalType\":{logical}"));
    if logical.as_str() != Some("decimal") {
        return vec!["logicalType"];
    }
    if let Some(p) = m.get("precision") {
        o.push_str(&format!(",\"precision\":{p}"));
    }
    if let Some(s) = m.get("scale").filter(|s| s.as_i64() != Some(0)) {
        o.push_str(&format!(",\"scale\":{s}"));
    }
    vec!["logicalType", "precision", "scale"]
}

/// Writes every property not in `skip`, sorted by key.
fn write_props(m: &Map<String, Value>, skip: &[&str], o: &mut String) {
    let mut keys: Vec<&String> = m.keys().filter(|k| !skip.contains(&k.as_str())).collect();
    keys.sort();
    for k in keys {
        o.push_str(&format!(",{}:{}", quote(k), m[k]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro_normal(text: &str) -> String {
        normalized_text(SchemaType::Avro, text, &[])
    }

    #[test]
    fn avro_forms_of_one_schema_normalize_alike() {
        let a = r#"{"type":"record","name":"User","namespace":"t","doc":"",
            "fields":[{"name":"id","type":{"type":"int"},"order":"ascending"},
                      {"name":"next","type":["null","User"],"default":null},
                      {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},
                      {"name":"again","type":"Kind"}]}"#;
        let b = r#"{"fields":[{"type":"int","name":"id"},
                      {"default":null,"type":["null","t.User"],"name":"next"},
                      {"type":{"symbols":["A","B"],"type":"enum","name":"t.Kind"},"name":"kind"},
                      {"name":"again","type":"t.Kind"}],"name":"t.User","type":"record"}"#;
        let want = r#"{"name":"t.User","type":"record","fields":[{"name":"id","type":"int"},{"name":"next","type":["null","t.User"],"default":null},{"name":"kind","type":{"name":"t.Kind","type":"enum","symbols":["A","B"]}},{"name":"again","type":"t.Kind"}]}"#;
        assert_eq!(avro_normal(a), want);
        assert_eq!(avro_normal(b), want);
        assert!(crate::schema::parse(SchemaType::Avro, want, &[]).is_ok());
    }

    #[test]
    fn avro_normalization_keeps_what_changes_meaning() {
        let decimal = r#"{"type":"bytes","scale":0,"precision":4,"logicalType":"decimal","x":1}"#;
        assert_eq!(
            avro_normal(decimal),
            r#"{"type":"bytes","logicalType":"decimal","precision":4,"x":1}"#
        );
        let aliased =
            r#"{"type":"fixed","name":"F","namespace":"n","size":4,"aliases":["Z","A"],"doc":"d"}"#;
        assert_eq!(
            avro_normal(aliased),
            r#"{"name":"n.F","type":"fixed","size":4,"doc":"d","aliases":["n.A","n.Z"]}"#
        );
        assert_ne!(
            avro_normal(r#"{"type":"array","items":"int"}"#),
            avro_normal(r#"{"type":"array","items":"long"}"#)
        );
    }

    #[test]
    fn json_schema_keys_are_sorted() {
        assert_eq!(
            normalized_text(
                SchemaType::Json,
                "{ \"type\": \"object\", \"additionalProperties\": false }",
                &[]
            ),
            r#"{"additionalProperties":false,"type":"object"}"#
        );
    }

    #[test]
    fn proto_text_layout_and_comments_do_not_matter() {
        let a = "syntax = \"proto3\";\n// c\npackage t;\nmessage M {\n  int32 a = 1 [deprecated = true];\n  map<string, int64> m = 2;\n}\n";
        let b = "syntax=\"proto3\"; package t; /* x */ message M { int32 a=1[deprecated=true]; map<string,int64> m=2; }";
        let want = "syntax = \"proto3\";\npackage t;\nmessage M {\n  int32 a = 1 [deprecated = true];\n  map<string, int64> m = 2;\n}";
        assert_eq!(normalized_text(SchemaType::Protobuf, a, &[]), want);
        assert_eq!(normalized_text(SchemaType::Protobuf, b, &[]), want);
    }
}
