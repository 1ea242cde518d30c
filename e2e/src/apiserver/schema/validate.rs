//! OpenAPI v3 value validation of structural schemas, with kube-openapi's messages (`in body
//! should be greater than or equal to`, `must be of type`, `Unsupported value`).

use serde_json::Value;

use super::{render_path, Located, PathSeg};
use crate::apiserver::error::{go_value, FieldError, FieldErrorKind};

/// Validates a custom resource against its root schema; `metadata` is ObjectMeta, checked
/// elsewhere, and `apiVersion`/`kind` are the server's.
pub(super) fn root(schema: &Value, obj: &Value, out: &mut Vec<Located>) {
    let Some(map) = obj.as_object() else {
        return;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    for r in required(schema) {
        if !map.contains_key(r) {
            push(
                out,
                &[PathSeg::Prop(r.to_owned())],
                FieldError::required(r, ""),
            );
        }
    }
    for (k, v) in map {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(s) = props.and_then(|p| p.get(k)) {
            node(s, v, &mut vec![PathSeg::Prop(k.clone())], out);
        }
    }
}

fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn push(out: &mut Vec<Located>, path: &[PathSeg], error: FieldError) {
    out.push(Located {
        path: path.to_vec(),
        error,
    });
}

/// JSON type name as kube-openapi reports it.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(out: &mut Vec<Located>, path: &[PathSeg], want: &str, v: &Value) {
    let p = render_path(path);
    let actual = type_name(v);
    out.push(Located {
        path: path.to_vec(),
        error: FieldError::new(
            FieldErrorKind::TypeInvalid,
            p.clone(),
            Some(format!("{actual:?}")),
            format!("{p} in body must be of type {want}: {actual:?}"),
        ),
    });
}

fn invalid(out: &mut Vec<Located>, path: &[PathSeg], v: &Value, detail: String) {
    push(out, path, FieldError::invalid(render_path(path), v, detail));
}

fn node(s: &Value, v: &Value, path: &mut Vec<PathSeg>, out: &mut Vec<Located>) {
    if v.is_null() {
        if s["nullable"] != true && s.get("type").is_some() {
            let want = s["type"].as_str().unwrap_or("object");
            type_error(out, path, want, v);
        }
        return;
    }
    if s["x-kubernetes-int-or-string"] == true {
        if !(v.is_i64() || v.is_u64() || v.is_string()) {
            type_error(out, path, "integer,string", v);
            return;
        }
    } else {
        let ok = match s["type"].as_str() {
            Some("object") => v.is_object(),
            Some("array") => v.is_array(),
            Some("string") => v.is_string(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            Some("boolean") => v.is_boolean(),
            _ => true,
        };
        if !ok {
            type_error(out, path, s["type"].as_str().unwrap_or_default(), v);
            return;
        }
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        if !values.contains(v) {
            let supported = values.iter().map(go_value).collect::<Vec<_>>().join(", ");
            push(
                out,
                path,
                FieldError::new(
                    FieldErrorKind::NotSupported,
                    render_path(path),
                    Some(go_value(v)),
                    format!("supported values: {supported}"),
                ),
            );
        }
    }
    match v {
        Value::Object(map) => object(s, map, path, out),
        Value::Array(items) => array(s, items, path, out),
        Value::String(text) => string(s, v, text, path, out),
        Value::Number(n) => number(s, v, n.as_f64().unwrap_or_default(), path, out),
        _ => {}
    }
    junctors(s, v, path, out);
}

/// `Too many: <n>: must have at most <max> items` (maxItems and maxProperties alike).
fn too_many(out: &mut Vec<Located>, path: &[PathSeg], n: u64, max: Option<u64>) {
    if let Some(max) = max.filter(|m| n > *m) {
        let e = FieldError::new(
            FieldErrorKind::TooMany,
            render_path(path),
            Some(n.to_string()),
            format!("must have at most {max} items"),
        );
        push(out, path, e);
    }
}

fn object(
    s: &Value,
    map: &serde_json::Map<String, Value>,
    path: &mut Vec<PathSeg>,
    out: &mut Vec<Located>,
) {
    let p = render_path(path);
    for r in required(s) {
        if !map.contains_key(r) {
            path.push(PathSeg::Prop(r.to_owned()));
            push(out, path, FieldError::required(render_path(path), ""));
            path.pop();
        }
    }
    let n = map.len() as u64;
    too_many(out, path, n, s["maxProperties"].as_u64());
    if let Some(min) = s["minProperties"].as_u64().filter(|m| n < *m) {
        invalid(
            out,
            path,
            &Value::from(n),
            format!("{p} in body should have at least {min} properties"),
        );
    }
    let props = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in map {
        if let Some(child) = props.and_then(|p| p.get(k)) {
            path.push(PathSeg::Prop(k.clone()));
            node(child, v, path, out);
            path.pop();
        } else if let Some(child) = additional {
            path.push(PathSeg::Key(k.clone()));
            node(child, v, path, out);
            path.pop();
        }
    }
}

fn array(s: &Value, items: &[Value], path: &mut Vec<PathSeg>, out: &mut Vec<Located>) {
    let p = render_path(path);
    let n = items.len() as u64;
    too_many(out, path, n, s["maxItems"].as_u64());
    if let Some(min) = s["minItems"].as_u64().filter(|m| n < *m) {
        let v = Value::Array(items.to_vec());
        invalid(
            out,
            path,
            &v,
            format!("{p} in body should have at least {min} items"),
        );
    }
    let unique = s["uniqueItems"] == true || s["x-kubernetes-list-type"] == "set";
    let map_keys: Vec<&str> = if s["x-kubernetes-list-type"] == "map" {
        s["x-kubernetes-list-map-keys"]
            .as_array()
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    for (i, item) in items.iter().enumerate() {
        let earlier = &items[..i];
        let duplicate = if unique {
            earlier.contains(item).then(|| go_value(item))
        } else if !map_keys.is_empty() {
            let key = |v: &Value| {
                map_keys
                    .iter()
                    .map(|k| v.get(*k).cloned())
                    .collect::<Vec<_>>()
            };
            let k = key(item);
            earlier.iter().any(|e| key(e) == k).then(|| {
                let shown: serde_json::Map<String, Value> = map_keys
                    .iter()
                    .filter_map(|mk| item.get(*mk).map(|v| ((*mk).to_owned(), v.clone())))
                    .collect();
                Value::Object(shown).to_string()
            })
        } else {
            None
        };
        path.push(PathSeg::Index(i));
        if let Some(shown) = duplicate {
            push(
                out,
                path,
                FieldError::new(
                    FieldErrorKind::Duplicate,
                    render_path(path),
                    Some(shown),
                    "",
                ),
            );
        }
        if let Some(child) = s.get("items") {
            node(child, item, path, out);
        }
        path.pop();
    }
}

fn string(s: &Value, v: &Value, text: &str, path: &[PathSeg], out: &mut Vec<Located>) {
    let p = render_path(path);
    let len = text.chars().count() as u64;
    if let Some(max) = s["maxLength"].as_u64().filter(|m| len > *m) {
        push(
            out,
            path,
            FieldError::new(
                FieldErrorKind::TooLong,
                p.clone(),
                None,
                format!("may not be more than {max} bytes"),
            ),
        );
    }
    if let Some(min) = s["minLength"].as_u64().filter(|m| len < *m) {
        invalid(
            out,
            path,
            v,
            format!("{p} in body should be at least {min} chars long"),
        );
    }
    if let Some(pattern) = s["pattern"].as_str() {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(text) => {}
            Ok(_) => invalid(
                out,
                path,
                v,
                format!("{p} in body should match '{pattern}'"),
            ),
            Err(e) => invalid(out, path, v, format!("schema pattern {pattern:?}: {e}")),
        }
    }
    if let Some(format) = s["format"].as_str() {
        if !format_ok(format, text) {
            invalid(
                out,
                path,
                v,
                format!("{p} in body must be of type {format}: {text:?}"),
            );
        }
    }
}

/// The string formats the API server checks (others are accepted as they are).
fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "date-time" => text.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "date" => text.parse::<k8s_openapi::jiff::civil::Date>().is_ok(),
        "byte" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_ok()
        }
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "uuid" => {
            text.len() == 36
                && text.chars().enumerate().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => c == '-',
                    _ => c.is_ascii_hexdigit(),
                })
        }
        _ => true,
    }
}

fn number(s: &Value, v: &Value, n: f64, path: &[PathSeg], out: &mut Vec<Located>) {
    let p = render_path(path);
    if let Some(min) = s["minimum"].as_f64() {
        let exclusive = s["exclusiveMinimum"] == true;
        if n < min || (exclusive && n == min) {
            let rel = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            invalid(out, path, v, format!("{p} in body should be {rel} {min}"));
        }
    }
    if let Some(max) = s["maximum"].as_f64() {
        let exclusive = s["exclusiveMaximum"] == true;
        if n > max || (exclusive && n == max) {
            let rel = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            invalid(out, path, v, format!("{p} in body should be {rel} {max}"));
        }
    }
    if let Some(m) = s["multipleOf"].as_f64().filter(|m| *m > 0.0) {
        if (n / m).fract() != 0.0 {
            invalid(
                out,
                path,
                v,
                format!("{p} in body should be a multiple of {m}"),
            );
        }
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not`: value validations only (structural schemas allow
/// nothing else in them).
fn junctors(s: &Value, v: &Value, path: &mut Vec<PathSeg>, out: &mut Vec<Located>) {
    let passes = |sub: &Value, path: &mut Vec<PathSeg>| {
        let mut errs = Vec::new();
        node(sub, v, path, &mut errs);
        errs.is_empty()
    };
    if let Some(all) = s["allOf"].as_array() {
        for sub in all {
            node(sub, v, path, out);
        }
    }
    let p = render_path(path);
    if let Some(any) = s["anyOf"].as_array() {
        if !any.iter().any(|sub| passes(sub, path)) {
            invalid(
                out,
                path,
                v,
                format!("{p} in body must validate at least one schema (anyOf)"),
            );
        }
    }
    if let Some(one) = s["oneOf"].as_array() {
        if one.iter().filter(|sub| passes(sub, path)).count() != 1 {
            invalid(
                out,
                path,
                v,
                format!("{p} in body must validate one and only one schema (oneOf)"),
            );
        }
    }
    if let Some(not) = s.get("not") {
        if passes(not, path) {
            invalid(
                out,
                path,
                v,
                format!("{p} in body must not validate the schema (not)"),
            );
        }
    }
}
