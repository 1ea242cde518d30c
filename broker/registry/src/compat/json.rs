//! JSON Schema compatibility for the common rules: a reader schema must accept every document
//! the writer schema accepts. Checked: `type` (integer within number), `properties` under open
//! and closed content models (`additionalProperties`), `required`, `items`, `enum`, and boolean
//! schemas. Combinators (`allOf`, `anyOf`, `oneOf`, `not`, `$ref`) and numeric or string bounds
//! are compared for equality only: a change to them is reported as incompatible.

use serde_json::{Map, Value};

/// The reasons documents valid under `writer` may be invalid under `reader`; empty if none.
pub fn can_read(writer: &Value, reader: &Value) -> Vec<String> {
    let mut messages = Vec::new();
    accepts(reader, writer, "#", &mut messages);
    messages
}

const COMPARED_FOR_EQUALITY: [&str; 14] = [
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "$ref",
    "if",
    "then",
    "else",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "const",
];

fn accepts(reader: &Value, writer: &Value, path: &str, out: &mut Vec<String>) {
    let (reader, writer) = match (reader, writer) {
        (Value::Bool(true), _) => return,
        (_, Value::Bool(false)) => return,
        (Value::Bool(false), _) => {
            out.push(format!(
                "TYPE_NARROWED at path '{path}': the new schema accepts nothing"
            ));
            return;
        }
        (Value::Object(r), Value::Object(w)) => (r, w),
        (Value::Object(r), Value::Bool(true)) => {
            if !r.is_empty() {
                out.push(format!(
                    "TYPE_NARROWED at path '{path}': the old schema accepted anything"
                ));
            }
            return;
        }
        _ => {
            out.push(format!("TYPE_CHANGED at path '{path}'"));
            return;
        }
    };
    for keyword in COMPARED_FOR_EQUALITY {
        if reader.get(keyword) != writer.get(keyword) {
            out.push(format!(
                "{}_CHANGED at path '{path}'",
                keyword.trim_start_matches('$').to_uppercase()
            ));
        }
    }
    check_types(reader, writer, path, out);
    check_enum(reader, writer, path, out);
    check_properties(reader, writer, path, out);
    check_required(reader, writer, path, out);
    if let (Some(r), Some(w)) = (reader.get("items"), writer.get("items")) {
        accepts(r, w, &format!("{path}/items"), out);
    } else if reader.contains_key("items") && !is_open(reader.get("items")) {
        out.push(format!("ITEMS_ADDED at path '{path}'"));
    }
}

fn types(schema: &Map<String, Value>) -> Option<Vec<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.clone()]),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

fn check_types(
    reader: &Map<String, Value>,
    writer: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let Some(reader_types) = types(reader) else {
        return;
    };
    let Some(writer_types) = types(writer) else {
        out.push(format!(
            "TYPE_NARROWED at path '{path}': the old schema had no type"
        ));
        return;
    };
    for t in &writer_types {
        let covered = reader_types.contains(t)
            || (t == "integer" && reader_types.iter().any(|r| r == "number"));
        if !covered {
            out.push(format!(
                "TYPE_CHANGED at path '{path}': {t} is no longer accepted"
            ));
        }
    }
}

fn check_enum(
    reader: &Map<String, Value>,
    writer: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let Some(Value::Array(reader_enum)) = reader.get("enum") else {
        return;
    };
    match writer.get("enum") {
        Some(Value::Array(writer_enum)) => {
            if writer_enum.iter().any(|v| !reader_enum.contains(v)) {
                out.push(format!("ENUM_ARRAY_NARROWED at path '{path}'"));
            }
        }
        _ => out.push(format!("ENUM_ARRAY_NARROWED at path '{path}': enum added")),
    }
}

/// An absent `additionalProperties` (or `true`, or `{}`) leaves the content model open.
fn is_open(additional: Option<&Value>) -> bool {
    match additional {
        None | Some(Value::Bool(true)) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    }
}

fn is_closed(additional: Option<&Value>) -> bool {
    matches!(additional, Some(Value::Bool(false)))
}

fn check_properties(
    reader: &Map<String, Value>,
    writer: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let empty = Map::new();
    let reader_props = reader
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let writer_props = writer
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let reader_additional = reader.get("additionalProperties");
    let writer_additional = writer.get("additionalProperties");
    for (name, w) in writer_props {
        let here = format!("{path}/properties/{name}");
        match reader_props.get(name) {
            Some(r) => accepts(r, w, &here, out),
            None if is_closed(reader_additional) => out.push(format!(
                "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at path '{here}'"
            )),
            None => {
                if let Some(r) = reader_additional.filter(|a| !is_open(Some(a))) {
                    accepts(r, w, &here, out);
                }
            }
        }
    }
    for (name, r) in reader_props {
        if writer_props.contains_key(name) {
            continue;
        }
        let here = format!("{path}/properties/{name}");
        if is_open(writer_additional) {
            if !is_open(Some(r)) {
                out.push(format!(
                    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL at path '{here}'"
                ));
            }
        } else if let Some(w) = writer_additional.filter(|a| !is_closed(Some(a))) {
            accepts(r, w, &here, out);
        }
    }
    if !is_open(reader_additional) && is_open(writer_additional) {
        out.push(format!("ADDITIONAL_PROPERTIES_NARROWED at path '{path}'"));
    } else if let (Some(r @ Value::Object(_)), Some(w @ Value::Object(_))) =
        (reader_additional, writer_additional)
    {
        accepts(r, w, &format!("{path}/additionalProperties"), out);
    }
}

fn check_required(
    reader: &Map<String, Value>,
    writer: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let names = |m: &Map<String, Value>| -> Vec<String> {
        m.get("required")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let writer_required = names(writer);
    for name in names(reader) {
        if !writer_required.contains(&name) {
            out.push(format!(
                "REQUIRED_ATTRIBUTE_ADDED at path '{path}/required/{name}'"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(writer: Value, reader: Value) -> bool {
        can_read(&writer, &reader).is_empty()
    }

    #[test]
    fn adding_a_property_to_an_open_model_is_incompatible_but_to_a_closed_one_is_not() {
        let open_old = json!({"type":"object","properties":{"a":{"type":"string"}}});
        let open_new =
            json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}});
        assert!(!ok(open_old.clone(), open_new.clone()));
        let closed_old = json!({"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false});
        let closed_new = json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false});
        assert!(ok(closed_old, closed_new));
    }

    #[test]
    fn removing_a_property_from_a_closed_model_is_incompatible_but_from_an_open_one_is_not() {
        let old =
            json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}}});
        let new = json!({"type":"object","properties":{"a":{"type":"string"}}});
        assert!(ok(old.clone(), new));
        let new_closed = json!({"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false});
        assert!(!ok(old, new_closed));
    }

    #[test]
    fn type_changes_and_widening() {
        assert!(!ok(json!({"type":"string"}), json!({"type":"integer"})));
        assert!(ok(json!({"type":"integer"}), json!({"type":"number"})));
        assert!(!ok(json!({"type":"number"}), json!({"type":"integer"})));
        assert!(ok(
            json!({"type":"string"}),
            json!({"type":["string","null"]})
        ));
    }

    #[test]
    fn a_new_required_property_is_incompatible() {
        let old = json!({"type":"object","properties":{"a":{"type":"string"}}});
        let new = json!({"type":"object","properties":{"a":{"type":"string"}},"required":["a"]});
        assert!(!ok(old.clone(), new.clone()));
        assert!(ok(new, old));
    }

    #[test]
    fn enums_may_grow_but_not_shrink() {
        assert!(ok(json!({"enum":["a"]}), json!({"enum":["a","b"]})));
        assert!(!ok(json!({"enum":["a","b"]}), json!({"enum":["a"]})));
    }
}
