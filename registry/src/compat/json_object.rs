//! Objects under Confluent's JSON Schema rules: properties under open, closed and partially
//! open content models (`additionalProperties`, `patternProperties`), `required` (a new
//! required property is compatible only with a default), and dependencies (`dependencies`,
//! `dependentRequired`, `dependentSchemas`: may be relaxed or removed, not added or extended).

use serde_json::Value;

use super::json::{is_closed, is_open, Node, Walk};

/// The schema a content model gives a property name it does not list: the first matching
/// `patternProperties` entry, else `additionalProperties` (absent means anything).
fn cover<'a>(node: &Node<'a>, name: &str) -> Node<'a> {
    for (pattern, schema) in node.entries("patternProperties") {
        if regex::Regex::new(&pattern).is_ok_and(|re| re.is_match(name)) {
            return schema;
        }
    }
    additional(node).unwrap_or_else(|| node.anything())
}

/// The schema of properties the object does not name: `additionalProperties`, or draft
/// 2020-12's `unevaluatedProperties` in its place (the content model either way).
fn additional<'a>(node: &Node<'a>) -> Option<Node<'a>> {
    node.get("additionalProperties")
        .or_else(|| node.get("unevaluatedProperties"))
}

/// Checks properties, pattern and additional properties, `required` and dependencies.
pub(super) fn check_object<'a>(
    walk: &mut Walk<'a>,
    reader: &Node<'a>,
    writer: &Node<'a>,
    path: &str,
) {
    check_properties(walk, reader, writer, path);
    check_required(walk, reader, writer, path);
    check_dependencies(walk, reader, writer, path);
}

fn check_properties<'a>(walk: &mut Walk<'a>, reader: &Node<'a>, writer: &Node<'a>, path: &str) {
    let reader_props = reader.entries("properties");
    let writer_props = writer.entries("properties");
    for (name, w) in &writer_props {
        let here = format!("{path}/properties/{name}");
        if let Some((_, r)) = reader_props.iter().find(|(n, _)| n == name) {
            walk.accepts(r.clone(), w.clone(), here);
            continue;
        }
        if is_closed(Some(&w.value)) {
            // The old schema allowed no value for it: no data has it to lose.
            continue;
        }
        let r = cover(reader, name);
        if is_closed(Some(&r.value)) {
            walk.report("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", &here, "");
        } else if !walk.quietly_accepts(r, w.clone()) {
            walk.report(
                "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                &here,
                "",
            );
        }
    }
    for (name, r) in &reader_props {
        if writer_props.iter().any(|(n, _)| n == name) {
            continue;
        }
        let here = format!("{path}/properties/{name}");
        let w = cover(writer, name);
        if is_open(Some(&w.value)) {
            if !is_open(Some(&r.value)) {
                walk.report("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", &here, "");
            }
        } else if !is_closed(Some(&w.value)) && !walk.quietly_accepts(r.clone(), w) {
            walk.report(
                "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                &here,
                "",
            );
        }
    }
    let writer_patterns = writer.entries("patternProperties");
    for (pattern, r) in reader.entries("patternProperties") {
        let here = format!("{path}/patternProperties/{pattern}");
        match writer_patterns.iter().find(|(p, _)| *p == pattern) {
            Some((_, w)) => walk.accepts(r, w.clone(), here),
            None => {
                let w = additional(writer).unwrap_or_else(|| writer.anything());
                if !walk.quietly_accepts(r, w) {
                    walk.report("PATTERN_PROPERTY_ADDED", &here, "");
                }
            }
        }
    }
    let Some(r) = additional(reader) else {
        return;
    };
    let w = additional(writer).unwrap_or_else(|| writer.anything());
    if is_open(Some(&r.value)) || is_closed(Some(&w.value)) {
        return;
    }
    if is_closed(Some(&r.value)) {
        if writer.value.get("patternProperties").is_none() || is_open(Some(&w.value)) {
            walk.report("ADDITIONAL_PROPERTIES_REMOVED", path, "");
        }
    } else if !walk.quietly_accepts(r, w) {
        walk.report("ADDITIONAL_PROPERTIES_NARROWED", path, "");
    }
}

/// The strings of an array of names; empty for anything else.
fn strings(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn names(schema: &Value, keyword: &str) -> Vec<String> {
    strings(schema.get(keyword))
}

/// A property required by the new schema only is incompatible unless the new schema gives it
/// a default (Confluent's REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED). As Confluent compares
/// properties, a required name neither schema defines among its properties is not compared.
fn check_required<'a>(walk: &mut Walk<'a>, reader: &Node<'a>, writer: &Node<'a>, path: &str) {
    let writer_required = names(&writer.value, "required");
    let defined = |name: &str| {
        [&reader.value, &writer.value]
            .iter()
            .any(|schema| schema.get("properties").and_then(|p| p.get(name)).is_some())
    };
    for name in names(&reader.value, "required") {
        if !defined(&name) {
            continue;
        }
        let has_default = reader
            .value
            .get("properties")
            .and_then(|p| p.get(&name))
            .is_some_and(|p| p.get("default").is_some());
        if !writer_required.contains(&name) && !has_default {
            walk.report(
                "REQUIRED_ATTRIBUTE_ADDED",
                &format!("{path}/required/{name}"),
                "",
            );
        }
    }
}

/// A property's dependency in one schema: the names it requires or the schema it imposes.
enum Dependency<'a> {
    Names(Vec<String>),
    Schema(Node<'a>),
}

fn dependencies<'a>(node: &Node<'a>) -> Vec<(String, Dependency<'a>)> {
    let mut out = Vec::new();
    for keyword in ["dependencies", "dependentRequired", "dependentSchemas"] {
        for (name, dep) in node.entries(keyword) {
            let value = if dep.value.is_array() {
                Dependency::Names(strings(Some(&dep.value)))
            } else {
                Dependency::Schema(dep)
            };
            out.push((name, value));
        }
    }
    out
}

fn check_dependencies<'a>(walk: &mut Walk<'a>, reader: &Node<'a>, writer: &Node<'a>, path: &str) {
    let writer_deps = dependencies(writer);
    for (name, r) in dependencies(reader) {
        let here = format!("{path}/dependencies/{name}");
        let w = writer_deps.iter().find(|(n, _)| *n == name).map(|(_, d)| d);
        match (r, w) {
            (Dependency::Names(r), Some(Dependency::Names(w))) => {
                if r.iter().any(|n| !w.contains(n)) {
                    walk.report("DEPENDENCY_ARRAY_EXTENDED", &here, "");
                }
            }
            (Dependency::Names(_), _) => walk.report("DEPENDENCY_ARRAY_ADDED", &here, ""),
            (Dependency::Schema(r), Some(Dependency::Schema(w))) => {
                walk.accepts(r, w.clone(), here)
            }
            (Dependency::Schema(_), _) => walk.report("DEPENDENCY_SCHEMA_ADDED", &here, ""),
        }
    }
}
