//! OpenAPI v2 at `/openapi/v2`, as kubectl's client-side validation reads it. kubectl asks the
//! server to validate fields (`fieldValidation`, from the v3 document) for every kind except
//! `v1/List`, whose items it validates itself against the v2 document, in protobuf
//! ([`PROTOBUF_ACCEPTED`]) only; without it a
//! `kubectl apply -f` of a List fails. Like kube-apiserver's, the document holds each custom
//! resource's schema converted to v2 (what v2 cannot say becomes an untyped value, so kubectl
//! does not refuse what the server accepts) beside `ObjectMeta`; built-in kinds have no
//! definition here, so kubectl skips them and the server's field validation judges them.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::openapi::{component_name, object_meta_schema, OBJECT_META, VERSION_TITLE};
use super::resources::ResourceType;

/// What clients ask for: kubectl the older spelling with `@`, which is not a valid media type
/// and so is never answered with.
pub(crate) const PROTOBUF_ACCEPTED: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    PROTOBUF,
];

/// The media type of the protobuf answer, as kube-apiserver labels it.
pub(crate) const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A v3 structural schema as kube-apiserver publishes it in v2: `nullable`, embedded and
/// unknown-preserving values lose their type, items and properties, int-or-string values
/// their type; `allOf`, `anyOf`, `oneOf` and `not` go.
fn to_v2(s: &Value) -> Value {
    let Some(m) = s.as_object() else {
        return json!({});
    };
    let flag = |k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
    let untyped = flag("nullable")
        || flag("x-kubernetes-preserve-unknown-fields")
        || flag("x-kubernetes-embedded-resource");
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "description" | "format" | "required" => {
                out.insert(k.clone(), v.clone());
            }
            "type" if !untyped && !flag("x-kubernetes-int-or-string") => {
                out.insert(k.clone(), v.clone());
            }
            "items" if !untyped => {
                out.insert(k.clone(), to_v2(v));
            }
            "properties" if !untyped => {
                let props = v.as_object().into_iter().flatten();
                let props: Map<String, Value> =
                    props.map(|(name, p)| (name.clone(), to_v2(p))).collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "additionalProperties" => {
                let a = if v.is_object() { to_v2(v) } else { v.clone() };
                out.insert(k.clone(), a);
            }
            "x-kubernetes-preserve-unknown-fields"
            | "x-kubernetes-embedded-resource"
            | "x-kubernetes-int-or-string"
            | "x-kubernetes-validations" => {}
            x if x.starts_with("x-kubernetes-") => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// The definition of one served custom resource version: its schema in v2, with the
/// `apiVersion`, `kind` and `metadata` every object has, and the kind it is for.
fn definition(t: &ResourceType, version: &str, schema: &Value) -> Value {
    let mut d = to_v2(schema);
    if let Some(props) = d
        .as_object_mut()
        .map(|m| m.entry("properties").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        props.insert("apiVersion".into(), json!({"type": "string"}));
        props.insert("kind".into(), json!({"type": "string"}));
        props.insert(
            "metadata".into(),
            json!({"$ref": format!("#/definitions/{OBJECT_META}")}),
        );
    }
    d["x-kubernetes-group-version-kind"] =
        json!([{"group": t.group, "version": version, "kind": t.kind}]);
    d
}

/// The v2 document (as JSON) of the served types.
pub(crate) fn document(types: &[Arc<ResourceType>]) -> Value {
    let mut defs = Map::new();
    defs.insert(OBJECT_META.to_owned(), object_meta_schema());
    for t in types {
        for v in &t.versions {
            if let Some(schema) = &v.schema {
                defs.insert(
                    component_name(t, &v.name),
                    definition(t, &v.name, &schema.raw),
                );
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": VERSION_TITLE},
        "paths": {},
        "definitions": defs,
    })
}

/// Protocol buffers' wire format, as far as gnostic's `openapi.v2` messages need it.
mod wire {
    pub(super) fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A length-delimited field (strings and messages).
    pub(super) fn bytes(num: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    pub(super) fn boolean(num: u64, v: bool, out: &mut Vec<u8>) {
        varint(num << 3, out);
        out.push(u8::from(v));
    }
}

/// `NamedX { name = 1; value = 2 }`.
fn named(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::bytes(1, name.as_bytes(), &mut out);
    wire::bytes(2, value, &mut out);
    out
}

/// A gnostic `openapi.v2.Schema` of a v2 JSON schema; vendor extensions carry their value as
/// YAML (JSON is YAML), which is how clients read them.
fn encode_schema(s: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(m) = s.as_object() else {
        return out;
    };
    let text = |k: &str| m.get(k).and_then(Value::as_str);
    for (num, key) in [(1, "$ref"), (2, "format"), (4, "description")] {
        if let Some(v) = text(key) {
            wire::bytes(num, v.as_bytes(), &mut out);
        }
    }
    for r in m
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = r.as_str() {
            wire::bytes(19, r.as_bytes(), &mut out);
        }
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Vec::new();
            wire::boolean(2, *b, &mut item);
            wire::bytes(21, &item, &mut out);
        }
        Some(a @ Value::Object(_)) => {
            let mut item = Vec::new();
            wire::bytes(1, &encode_schema(a), &mut item);
            wire::bytes(21, &item, &mut out);
        }
        _ => {}
    }
    if let Some(t) = text("type") {
        let mut item = Vec::new();
        wire::bytes(1, t.as_bytes(), &mut item);
        wire::bytes(22, &item, &mut out);
    }
    if let Some(items) = m.get("items") {
        let mut item = Vec::new();
        wire::bytes(1, &encode_schema(items), &mut item);
        wire::bytes(23, &item, &mut out);
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        let mut item = Vec::new();
        for (name, p) in props {
            wire::bytes(1, &named(name, &encode_schema(p)), &mut item);
        }
        wire::bytes(25, &item, &mut out);
    }
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut any = Vec::new();
        wire::bytes(2, v.to_string().as_bytes(), &mut any);
        wire::bytes(31, &named(k, &any), &mut out);
    }
    out
}

/// A gnostic `openapi.v2.Document` of [`document`]'s JSON: swagger, info and definitions.
pub(crate) fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let text = |v: &Value| v.as_str().unwrap_or_default().as_bytes().to_vec();
    wire::bytes(1, &text(&doc["swagger"]), &mut out);
    let mut info = Vec::new();
    wire::bytes(1, &text(&doc["info"]["title"]), &mut info);
    wire::bytes(2, &text(&doc["info"]["version"]), &mut info);
    wire::bytes(2, &info, &mut out);
    let mut defs = Vec::new();
    for (name, s) in doc["definitions"].as_object().into_iter().flatten() {
        wire::bytes(1, &named(name, &encode_schema(s)), &mut defs);
    }
    wire::bytes(9, &defs, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::crd::resource_type;
    use crate::apiserver::resources::Registry;

    #[test]
    fn what_v2_cannot_say_becomes_untyped_as_kube_apiserver_publishes_it() {
        let v3 = json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
                    "maybe": {"type": "array", "nullable": true, "items": {"type": "string"}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}},
                    "list": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string", "enum": ["a"]}},
                }},
            },
        });
        let v2 = to_v2(&v3);
        let spec = &v2["properties"]["spec"]["properties"];
        assert_eq!(spec["size"], json!({}));
        assert_eq!(spec["extra"], json!({}));
        assert_eq!(spec["maybe"], json!({}));
        assert_eq!(
            spec["labels"],
            json!({"type": "object", "additionalProperties": {"type": "string"}})
        );
        assert_eq!(
            spec["list"],
            json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}})
        );
        assert_eq!(v2["required"], json!(["spec"]));
    }

    #[test]
    fn each_custom_resource_is_defined_with_its_kind_and_object_metadata() {
        let path = crate::tools::repo_root().join("crds/kafkatopics.tributary.dev.yaml");
        let text = std::fs::read_to_string(path).expect("the KafkaTopic CRD");
        let crd: Value = serde_yaml::from_str(&text).expect("CRD YAML");
        let topic = Arc::new(resource_type(&crd).expect("a served CRD"));
        let mut types = Registry::default().all().to_vec();
        types.push(topic);
        let doc = document(&types);
        let defs = doc["definitions"].as_object().expect("definitions");
        // Built-in kinds have no schema here: kubectl leaves them to the server.
        assert_eq!(defs.len(), 2, "{:?}", defs.keys());
        assert!(defs.contains_key(OBJECT_META));
        let t = &defs["dev.tributary.v1alpha1.KafkaTopic"];
        assert_eq!(
            t["x-kubernetes-group-version-kind"],
            json!([{"group": "tributary.dev", "version": "v1alpha1", "kind": "KafkaTopic"}])
        );
        let props = &t["properties"];
        assert_eq!(props["kind"]["type"], "string");
        assert_eq!(props["apiVersion"]["type"], "string");
        assert_eq!(
            props["metadata"]["$ref"],
            format!("#/definitions/{OBJECT_META}")
        );
        assert_eq!(props["spec"]["properties"]["partitions"]["type"], "integer");
    }

    #[test]
    fn schemas_encode_as_gnostic_messages() {
        let s = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "x-k": [1],
        });
        let got = encode_schema(&s);
        let string_type = [0xb2, 0x01, 8, 0x0a, 6, b's', b't', b'r', b'i', b'n', b'g'];
        let mut want = vec![0xb2, 0x01, 8, 0x0a, 6, b'o', b'b', b'j', b'e', b'c', b't'];
        // properties (25) { NamedSchema (1) { name "a", value { type "string" } } }
        want.extend([0xca, 0x01, 18, 0x0a, 16, 0x0a, 1, b'a', 0x12, 11]);
        want.extend(string_type);
        // vendor_extension (31) { name "x-k", value (Any) { yaml (2) "[1]" } }
        want.extend([0xfa, 0x01, 12, 0x0a, 3, b'x', b'-', b'k', 0x12, 5, 0x12, 3]);
        want.extend(b"[1]");
        assert_eq!(got, want);
    }
}
