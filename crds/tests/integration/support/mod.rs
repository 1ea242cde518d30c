//! Client-side stand-in for the apiserver's CRD validation: the OpenAPI structural checks
//! (types, ranges, patterns, enums, sizes, unknown fields as `kubectl --validate=strict` does)
//! plus the CEL `x-kubernetes-validations` rules, evaluated with kube-cel from crates.io.

use std::path::Path;

use serde_json::Value;

/// Loads the `openAPIV3Schema` of a checked-in CRD file.
pub(crate) fn schema_of(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let crd: Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Parses a YAML document into JSON.
pub(crate) fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("bad test YAML: {e}\n{text}"))
}

/// Every error the apiserver would report for `object` (and `old` on update).
pub(crate) fn errors(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    structural(schema, object, "", &mut out);
    if let Err(errs) = kube_cel::Validator::new().validate(schema, object, old) {
        out.extend(errs.iter().map(|e| e.to_string()));
    }
    out
}

fn structural(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            out.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        if !(value.is_i64() || value.is_string()) {
            out.push(format!("{path}: must be an integer or a string"));
        }
        return;
    }
    match schema["type"].as_str() {
        Some("object") => object(schema, value, path, out),
        Some("array") => {
            let Some(items) = value.as_array() else {
                return out.push(format!("{path}: must be an array"));
            };
            if let Some(max) = schema["maxItems"].as_u64() {
                if items.len() as u64 > max {
                    out.push(format!("{path}: must have at most {max} items"));
                }
            }
            if let Some(min) = schema["minItems"].as_u64() {
                if (items.len() as u64) < min {
                    out.push(format!("{path}: must have at least {min} items"));
                }
            }
            for (i, item) in items.iter().enumerate() {
                structural(&schema["items"], item, &format!("{path}[{i}]"), out);
            }
        }
        Some("string") => string(schema, value, path, out),
        Some("integer") | Some("number") => {
            let Some(n) = value.as_f64() else {
                return out.push(format!("{path}: must be a number"));
            };
            if schema["type"] == "integer" && !(value.is_i64() || value.is_u64()) {
                out.push(format!("{path}: must be an integer"));
            }
            if let Some(min) = schema["minimum"].as_f64() {
                if n < min {
                    out.push(format!("{path}: must be >= {min}"));
                }
            }
            if let Some(max) = schema["maximum"].as_f64() {
                if n > max {
                    out.push(format!("{path}: must be <= {max}"));
                }
            }
        }
        Some("boolean") if !value.is_boolean() => out.push(format!("{path}: must be a boolean")),
        _ => {}
    }
}

fn object(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        return out.push(format!("{path}: must be an object"));
    };
    if let Some(req) = schema["required"].as_array() {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                out.push(format!("{path}.{r}: required"));
            }
        }
    }
    if let Some(max) = schema["maxProperties"].as_u64() {
        if map.len() as u64 > max {
            out.push(format!("{path}: must have at most {max} properties"));
        }
    }
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
    let props = schema["properties"].as_object();
    for (k, v) in map {
        let child = format!("{path}.{k}");
        if let Some(s) = props.and_then(|p| p.get(k)) {
            structural(s, v, &child, out);
        } else if schema["additionalProperties"].is_object() {
            structural(&schema["additionalProperties"], v, &child, out);
        } else if !preserve
            && props.is_some()
            && !(path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
        {
            out.push(format!("{child}: unknown field"));
        }
    }
}

fn string(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let Some(s) = value.as_str() else {
        return out.push(format!("{path}: must be a string"));
    };
    if let Some(values) = schema["enum"].as_array() {
        if !values.iter().any(|v| v == value) {
            out.push(format!("{path}: {s:?} is not one of {values:?}"));
        }
    }
    let len = s.chars().count() as u64;
    if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
        out.push(format!("{path}: too long"));
    }
    if schema["minLength"].as_u64().is_some_and(|m| len < m) {
        out.push(format!("{path}: too short"));
    }
    if let Some(p) = schema["pattern"].as_str() {
        match regex::Regex::new(p) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => out.push(format!("{path}: {s:?} does not match {p}")),
            Err(e) => out.push(format!("{path}: schema pattern {p} does not compile: {e}")),
        }
    }
}
