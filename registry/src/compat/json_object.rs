//! Objects under Confluent's JSON Schema rules: properties added to or removed from open,
//! partially open and closed content models (`json_model`), `required` (compared for the
//! properties both schemas define; a new required property is compatible only with a
//! default), the content-model keywords themselves, and dependencies (`dependencies`,
//! `dependentRequired`, `dependentSchemas`: may be narrowed or removed, not added, extended
//! or changed).

use serde_json::Value;

use super::json::{is_open, Node, Walk};
use super::json_model::{check_removed, compare_rest, content_model, ContentModel, Rest};

/// The content model of an object for a property `name` it does not list.
fn model<'a>(node: &Node<'a>, name: &str) -> ContentModel<'a> {
    content_model(
        Rest::of(node, "additionalProperties", false),
        Rest::of(node, "unevaluatedProperties", true),
        &node.entries("patternProperties"),
        Some(name),
    )
}

/// Checks properties, `required`, dependencies and the content-model keywords.
pub(super) fn check_object<'a>(
    walk: &mut Walk<'a>,
    reader: &Node<'a>,
    writer: &Node<'a>,
    path: &str,
) {
    check_required(walk, reader, writer, path);
    check_properties(walk, reader, writer, path);
    check_dependencies(walk, reader, writer, path);
    for (keyword, prefix, empty_is_anything) in [
        ("additionalProperties", "ADDITIONAL_PROPERTIES", false),
        ("unevaluatedProperties", "UNEVALUATED_PROPERTIES", true),
    ] {
        compare_rest(
            walk,
            Rest::of(reader, keyword, empty_is_anything),
            Rest::of(writer, keyword, empty_is_anything),
            prefix,
            &format!("{path}/{keyword}"),
        );
    }
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
        check_removed(walk, model(reader, name), w.clone(), &here, "PROPERTY");
    }
    let required = names(&reader.value, "required");
    for (name, r) in &reader_props {
        if writer_props.iter().any(|(n, _)| n == name) {
            continue;
        }
        let here = format!("{path}/properties/{name}");
        let with_default = r.value.get("default").is_some();
        let required = required.contains(name);
        match model(writer, name) {
            ContentModel::Open if is_open(Some(&r.value)) => {}
            ContentModel::Open => {
                let kind = match (required, with_default) {
                    (false, _) => "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                    (true, true) => "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL",
                    (true, false) => "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                };
                walk.report(kind, &here, "");
            }
            unopen => {
                if let ContentModel::Partial(w) = unopen {
                    walk.covered(
                        r.clone(),
                        w,
                        &here,
                        "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                    );
                }
                if required && !with_default {
                    walk.report("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", &here, "");
                }
            }
        }
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

/// `required`, compared for the properties both schemas define (as Confluent compares it):
/// a property required by the new schema only is REQUIRED_ATTRIBUTE_ADDED, compatible when
/// the new schema gives it a default (REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED). A property only
/// one side defines is judged with the content model (`check_properties`).
fn check_required<'a>(walk: &mut Walk<'a>, reader: &Node<'a>, writer: &Node<'a>, path: &str) {
    let writer_required = names(&writer.value, "required");
    fn property<'v>(schema: &'v Value, name: &str) -> Option<&'v Value> {
        schema.get("properties")?.get(name)
    }
    for name in names(&reader.value, "required") {
        let (Some(r), Some(_)) = (
            property(&reader.value, &name),
            property(&writer.value, &name),
        ) else {
            continue;
        };
        if !writer_required.contains(&name) && r.get("default").is_none() {
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
                    let kind = if w.iter().all(|n| r.contains(n)) {
                        "DEPENDENCY_ARRAY_EXTENDED"
                    } else {
                        "DEPENDENCY_ARRAY_CHANGED"
                    };
                    walk.report(kind, &here, "");
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
