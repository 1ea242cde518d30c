//! JSON Schema compatibility as Confluent defines it: the new (reader) schema must accept every
//! document the old (writer) schema accepts. Each finding is named after Confluent's difference
//! types (`TYPE_NARROWED`, `MAX_LENGTH_ADDED`, `SUM_TYPE_NARROWED`, ...); the ones Confluent
//! counts as compatible (a bound relaxed, a sum type extended, a product type narrowed, an
//! optional property added to a closed model, ...) are not reported.
//!
//! The walk resolves `$ref` within the document (`#/definitions/...`, `#/$defs/...`, any JSON
//! pointer) and to the subjects the schema references (by the reference's name), follows
//! `allOf`/`anyOf`/`oneOf` by matching sub-schemas, `not` in the reverse direction, bounds
//! (`json_bounds`), and objects and arrays (`json_object`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::json_array::check_array;
use super::json_bounds::check_bounds;
use super::json_combined::check_combined;
use super::json_object::check_object;

/// A JSON Schema with the schemas its references name, so `$ref`s to them resolve.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchemaDoc {
    /// The schema document.
    pub root: Value,
    /// Referenced schemas by the name the reference gives (the `$ref` URL before any `#`).
    pub referenced: BTreeMap<String, Value>,
}

impl JsonSchemaDoc {
    /// The referenced document a `$ref` URL names: by the reference's name as given, else by
    /// its last path segment (a `$ref` resolved against an `$id` base is a full URL while the
    /// reference may name just the file, or the other way round).
    fn referenced_document(&self, url: &str, reference: &str) -> Option<&Value> {
        let file = |u: &str| u.rsplit('/').next().unwrap_or(u).to_string();
        self.referenced
            .get(url)
            .or_else(|| self.referenced.get(reference))
            .or_else(|| {
                self.referenced
                    .iter()
                    .find(|(name, _)| file(name) == file(url))
                    .map(|(_, d)| d)
            })
    }

    /// A document without references.
    pub fn standalone(root: Value) -> Self {
        JsonSchemaDoc {
            root,
            referenced: BTreeMap::new(),
        }
    }
}

/// The reasons documents valid under `writer` may be invalid under `reader`; empty if none.
pub fn can_read(writer: &JsonSchemaDoc, reader: &JsonSchemaDoc) -> Vec<String> {
    let mut walk = Walk {
        writer,
        reader,
        seen: HashSet::new(),
        depth: 0,
        steps: 0,
        too_complex: false,
        out: Vec::new(),
    };
    walk.accepts(
        Node::root(&reader.root),
        Node::root(&writer.root),
        "#".to_string(),
    );
    if walk.too_complex {
        walk.out.retain(|m| m != TOO_COMPLEX);
        walk.out.push(TOO_COMPLEX.to_string());
    }
    walk.out
}

/// A schema in the walk: its value (borrowed, or built when sub-schemas are merged) and the
/// document its `#` references resolve against.
#[derive(Debug, Clone)]
pub(super) struct Node<'a> {
    pub(super) value: Cow<'a, Value>,
    pub(super) doc: &'a Value,
}

impl<'a> Node<'a> {
    fn root(doc: &'a Value) -> Self {
        Node {
            value: Cow::Borrowed(doc),
            doc,
        }
    }

    /// A sub-schema in the same document: borrowed when this node is.
    fn sub(&self, pick: impl Fn(&Value) -> Option<&Value>) -> Option<Node<'a>> {
        let value = match &self.value {
            Cow::Borrowed(v) => Cow::Borrowed(pick(v)?),
            Cow::Owned(v) => Cow::Owned(pick(v)?.clone()),
        };
        Some(Node {
            value,
            doc: self.doc,
        })
    }

    /// The keyword's value as a sub-schema.
    pub(super) fn get(&self, keyword: &str) -> Option<Node<'a>> {
        self.sub(|v| v.get(keyword))
    }

    /// The sub-schemas of an array keyword (`allOf`, tuple `items`, ...); empty when absent.
    pub(super) fn list(&self, keyword: &str) -> Vec<Node<'a>> {
        let len = self
            .value
            .get(keyword)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        (0..len)
            .filter_map(|i| self.sub(|v| v.get(keyword)?.get(i)))
            .collect()
    }

    /// The named sub-schemas of an object keyword (`properties`, ...); empty when absent.
    pub(super) fn entries(&self, keyword: &str) -> Vec<(String, Node<'a>)> {
        let names: Vec<String> = self
            .value
            .get(keyword)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        names
            .into_iter()
            .filter_map(|n| {
                let node = self.sub(|v| v.get(keyword)?.get(&n))?;
                Some((n, node))
            })
            .collect()
    }

    /// The `true` schema, in this node's document.
    pub(super) fn anything(&self) -> Node<'a> {
        Node {
            value: Cow::Owned(Value::Bool(true)),
            doc: self.doc,
        }
    }

    /// This schema with `keyword` left out, for comparing what sits beside a combinator.
    pub(super) fn without(&self, keywords: &[&str]) -> Node<'a> {
        let value = match &*self.value {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| !keywords.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            other => other.clone(),
        };
        Node {
            value: Cow::Owned(value),
            doc: self.doc,
        }
    }

    /// This schema's keywords with `other`'s laid over them (an approximation of their
    /// intersection, used when one side is a combinator and the other is not).
    pub(super) fn merged(&self, other: &Node<'a>) -> Node<'a> {
        let mut value = self.value.clone().into_owned();
        if let (Value::Object(m), Value::Object(o)) = (&mut value, &*other.value) {
            for (k, v) in o {
                match (m.get_mut(k), v) {
                    (Some(Value::Object(mine)), Value::Object(theirs))
                        if MERGED_MAPS.contains(&k.as_str()) =>
                    {
                        for (name, schema) in theirs {
                            mine.insert(name.clone(), schema.clone());
                        }
                    }
                    (Some(Value::Array(mine)), Value::Array(theirs)) if k == "required" => {
                        for name in theirs {
                            if !mine.contains(name) {
                                mine.push(name.clone());
                            }
                        }
                    }
                    _ => {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
        } else {
            value = other.value.clone().into_owned();
        }
        Node {
            value: Cow::Owned(value),
            doc: self.doc,
        }
    }

    pub(super) fn object(&self) -> Option<&Map<String, Value>> {
        self.value.as_object()
    }
}

/// Keywords whose maps are united, not replaced, when schemas are merged.
const MERGED_MAPS: [&str; 4] = ["properties", "patternProperties", "definitions", "$defs"];

/// Whether a schema accepts everything: `true`, `{}`, or only annotations.
pub(super) fn is_open(schema: Option<&Value>) -> bool {
    const ANNOTATIONS: [&str; 8] = [
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "$id",
        "id",
        "$schema",
    ];
    match schema {
        None | Some(Value::Bool(true)) => true,
        Some(Value::Object(m)) => m.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        Some(_) => false,
    }
}

/// Whether a schema accepts nothing: `false`.
pub(super) fn is_closed(schema: Option<&Value>) -> bool {
    matches!(schema, Some(Value::Bool(false)))
}

/// The state of one comparison: both documents, the `$ref` pairs already being compared (so
/// recursive schemas end), and the findings.
pub(super) struct Walk<'a> {
    writer: &'a JsonSchemaDoc,
    reader: &'a JsonSchemaDoc,
    seen: HashSet<(usize, usize)>,
    depth: usize,
    steps: usize,
    too_complex: bool,
    pub(super) out: Vec<String>,
}

const MAX_DEPTH: usize = 128;
const MAX_REF_HOPS: usize = 32;
const TOO_COMPLEX: &str =
    "SCHEMA_TOO_COMPLEX: the schemas are too large or too deeply nested to compare";
/// Comparisons one check may make (and `MAX_DEPTH` how deeply they may nest) before it gives
/// up with SCHEMA_TOO_COMPLEX, which is incompatible: matching combinators compares
/// sub-schemas pairwise, so a crafted schema could otherwise take unbounded time or stack.
const MAX_STEPS: usize = 200_000;

impl<'a> Walk<'a> {
    /// Records a finding of Confluent difference type `kind` at `path`.
    pub(super) fn report(&mut self, kind: &str, path: &str, detail: &str) {
        if detail.is_empty() {
            self.out.push(format!("{kind} at path '{path}'"));
        } else {
            self.out.push(format!("{kind} at path '{path}': {detail}"));
        }
    }

    /// Whether `reader` accepts everything `writer` does, without recording anything.
    pub(super) fn quietly_accepts(&mut self, reader: Node<'a>, writer: Node<'a>) -> bool {
        let saved = std::mem::take(&mut self.out);
        let seen = self.seen.clone();
        self.accepts(reader, writer, String::new());
        let ok = self.out.is_empty();
        self.out = saved;
        self.seen = seen;
        ok
    }

    /// Compares a property or item that only one side lists with the schema the other side's
    /// partially open content model gives it: when `reader` does not accept all of `writer`,
    /// records the differences found and then `not_covered` (Confluent's
    /// `..._NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL`) at `path`.
    pub(super) fn covered(
        &mut self,
        reader: Node<'a>,
        writer: Node<'a>,
        path: &str,
        not_covered: &str,
    ) {
        let before = self.out.len();
        self.accepts(reader, writer, path.to_string());
        if self.out.len() > before {
            self.report(not_covered, path, "");
        }
    }

    /// `node` with its `$ref`s followed, or as it is when they do not resolve.
    pub(super) fn resolved(&self, node: Node<'a>, reader_side: bool) -> Node<'a> {
        self.resolve(node.clone(), reader_side).unwrap_or(node)
    }

    /// Follows `$ref`s from `node` to the schema they name; None when one does not resolve.
    fn resolve(&self, mut node: Node<'a>, reader_side: bool) -> Result<Node<'a>, String> {
        let doc = if reader_side {
            self.reader
        } else {
            self.writer
        };
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = node.value.get("$ref").and_then(Value::as_str) else {
                return Ok(node);
            };
            let (url, fragment) = reference.split_once('#').unwrap_or((reference, ""));
            let target_doc: &'a Value = if url.is_empty() {
                node.doc
            } else {
                match doc.referenced_document(url, reference) {
                    Some(d) => d,
                    None => return Err(reference.to_string()),
                }
            };
            let target = if fragment.is_empty() {
                Some(target_doc)
            } else if fragment.starts_with('/') {
                target_doc.pointer(fragment)
            } else {
                None
            };
            match target {
                Some(t) => {
                    node = Node {
                        value: Cow::Borrowed(t),
                        doc: target_doc,
                    }
                }
                None => return Err(reference.to_string()),
            }
        }
        Err("too many $ref hops".to_string())
    }

    /// Records why `reader` may reject documents `writer` accepts.
    pub(super) fn accepts(&mut self, reader: Node<'a>, writer: Node<'a>, path: String) {
        self.steps += 1;
        if self.depth > MAX_DEPTH || self.steps > MAX_STEPS {
            self.too_complex = true;
            self.out.push(TOO_COMPLEX.to_string());
            return;
        }
        let followed = reader.value.get("$ref").is_some() || writer.value.get("$ref").is_some();
        let (reader, writer) = match (
            self.resolve(reader.clone(), true),
            self.resolve(writer.clone(), false),
        ) {
            (Ok(r), Ok(w)) => (r, w),
            (r, w) => {
                let unresolved = [r.err(), w.err()].into_iter().flatten().collect::<Vec<_>>();
                if reader.value.get("$ref") != writer.value.get("$ref") {
                    self.report(
                        "REF_UNRESOLVED",
                        &path,
                        &format!("cannot resolve {}", unresolved.join(", ")),
                    );
                }
                return;
            }
        };
        if followed {
            let key = (
                &*reader.value as *const Value as usize,
                &*writer.value as *const Value as usize,
            );
            if !self.seen.insert(key) {
                return;
            }
        }
        self.depth += 1;
        self.compare(reader, writer, &path);
        self.depth -= 1;
    }

    fn compare(&mut self, reader: Node<'a>, writer: Node<'a>, path: &str) {
        if is_open(Some(&reader.value)) || is_closed(Some(&writer.value)) {
            return;
        }
        if is_closed(Some(&reader.value)) {
            self.report("TYPE_NARROWED", path, "the new schema accepts nothing");
            return;
        }
        if is_open(Some(&writer.value)) {
            self.report("TYPE_NARROWED", path, "the old schema accepted anything");
            return;
        }
        let (Some(_), Some(_)) = (reader.object(), writer.object()) else {
            self.report("TYPE_CHANGED", path, "not a schema");
            return;
        };
        if check_combined(self, &reader, &writer, path) {
            return;
        }
        self.check_not(&reader, &writer, path);
        self.check_conditionals(&reader, &writer, path);
        self.check_types(&reader, &writer, path);
        self.check_values(&reader, &writer, path);
        check_bounds(self, &reader, &writer, path);
        check_object(self, &reader, &writer, path);
        check_array(self, &reader, &writer, path);
    }

    /// `not`: the new `not R` accepts all of the old `not W` when R accepts no more than W,
    /// so the check runs the other way round (NOT_TYPE_NARROWED is compatible).
    fn check_not(&mut self, reader: &Node<'a>, writer: &Node<'a>, path: &str) {
        let Some(r) = reader.get("not") else {
            return;
        };
        match writer.get("not") {
            Some(w) => {
                if !self.quietly_accepts(w, r) {
                    self.report("NOT_TYPE_EXTENDED", &format!("{path}/not"), "");
                }
            }
            None => self.report("NOT_TYPE_EXTENDED", &format!("{path}/not"), "not added"),
        }
    }

    /// `if`/`then`/`else` are compared for equality: a change to them is reported.
    fn check_conditionals(&mut self, reader: &Node<'a>, writer: &Node<'a>, path: &str) {
        for keyword in ["if", "then", "else"] {
            if reader.value.get(keyword).is_some()
                && reader.value.get(keyword) != writer.value.get(keyword)
            {
                self.report(
                    "CONDITIONAL_CHANGED",
                    &format!("{path}/{keyword}"),
                    "conditional schemas must stay the same",
                );
            }
        }
    }

    fn check_types(&mut self, reader: &Node<'a>, writer: &Node<'a>, path: &str) {
        let Some(reader_types) = types(&reader.value) else {
            return;
        };
        let Some(writer_types) = types(&writer.value).or_else(|| value_types(&writer.value)) else {
            self.report("TYPE_NARROWED", path, "the old schema had no type");
            return;
        };
        for t in &writer_types {
            let covered = reader_types.contains(t)
                || (t == "integer" && reader_types.iter().any(|r| r == "number"));
            if !covered {
                let narrowed = reader_types.iter().any(|r| writer_types.contains(r))
                    || (t == "number" && reader_types.iter().any(|r| r == "integer"));
                let kind = if narrowed {
                    "TYPE_NARROWED"
                } else {
                    "TYPE_CHANGED"
                };
                self.report(kind, path, &format!("{t} is no longer accepted"));
            }
        }
    }

    /// `enum` and `const`: every value the old schema allows must stay allowed.
    fn check_values(&mut self, reader: &Node<'a>, writer: &Node<'a>, path: &str) {
        let reader_values = allowed_values(&reader.value);
        let Some(reader_values) = reader_values else {
            return;
        };
        let Some(writer_values) = allowed_values(&writer.value) else {
            self.report("ENUM_ARRAY_NARROWED", path, "enum or const added");
            return;
        };
        if writer_values.iter().all(|v| reader_values.contains(v)) {
            return;
        }
        let kind = if reader_values.iter().all(|v| writer_values.contains(v)) {
            "ENUM_ARRAY_NARROWED"
        } else {
            "ENUM_ARRAY_CHANGED"
        };
        self.report(kind, path, "");
    }
}

/// The `type` keyword as a list; None when absent.
fn types(schema: &Value) -> Option<Vec<String>> {
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

/// The types of an `enum`'s or `const`'s values, for a writer without `type`.
fn value_types(schema: &Value) -> Option<Vec<String>> {
    let values = allowed_values(schema)?;
    Some(
        values
            .iter()
            .map(|v| {
                match v {
                    Value::Null => "null",
                    Value::Bool(_) => "boolean",
                    Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                    Value::Number(_) => "number",
                    Value::String(_) => "string",
                    Value::Array(_) => "array",
                    Value::Object(_) => "object",
                }
                .to_string()
            })
            .collect(),
    )
}

/// The values `enum` and `const` allow (their intersection when both are present).
fn allowed_values(schema: &Value) -> Option<Vec<Value>> {
    let from_enum = schema.get("enum").and_then(Value::as_array).cloned();
    let from_const = schema.get("const").map(|c| vec![c.clone()]);
    match (from_enum, from_const) {
        (Some(e), Some(c)) => Some(c.into_iter().filter(|v| e.contains(v)).collect()),
        (e, c) => e.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::{no, Verdict, OK};
    use serde_json::json;

    fn doc(v: Value) -> JsonSchemaDoc {
        JsonSchemaDoc::standalone(v)
    }

    /// (rule, old schema, new schema, backward, forward): each direction compatible (`OK`) or
    /// refused with Confluent's difference type (`no(..)`).
    type Case = (&'static str, Value, Value, Verdict, Verdict);

    fn obj(props: Value) -> Value {
        json!({"type": "object", "properties": props})
    }

    /// An object with these properties under a closed content model.
    fn closed(props: Value) -> Value {
        json!({"type": "object", "properties": props, "additionalProperties": false})
    }

    #[rustfmt::skip]
    fn cases() -> Vec<Case> {
        vec![
            // Types and boolean schemas.
            ("TYPE_EXTENDED integer to number", json!({"type":"integer"}), json!({"type":"number"}), OK, no("TYPE_NARROWED")),
            ("TYPE_CHANGED string to integer", json!({"type":"string"}), json!({"type":"integer"}), no("TYPE_CHANGED"), no("TYPE_CHANGED")),
            ("TYPE_EXTENDED to a union with null", json!({"type":"string"}), json!({"type":["string","null"]}), OK, no("TYPE_NARROWED")),
            ("boolean schema true to false", json!(true), json!(false), no("TYPE_NARROWED"), OK),
            // Bounds, multipleOf, pattern, uniqueItems.
            ("MAX_LENGTH_ADDED", json!({"type":"string"}), json!({"type":"string","maxLength":5}), no("MAX_LENGTH_ADDED"), OK),
            ("MAX_LENGTH_INCREASED", json!({"type":"string","maxLength":5}), json!({"type":"string","maxLength":9}), OK, no("MAX_LENGTH_DECREASED")),
            ("MIN_LENGTH_INCREASED", json!({"type":"string","minLength":1}), json!({"type":"string","minLength":3}), no("MIN_LENGTH_INCREASED"), OK),
            ("MINIMUM_DECREASED", json!({"type":"number","minimum":3}), json!({"type":"number","minimum":1}), OK, no("MINIMUM_INCREASED")),
            ("MAXIMUM_REMOVED", json!({"type":"number","maximum":3}), json!({"type":"number"}), OK, no("MAXIMUM_ADDED")),
            ("EXCLUSIVE_MINIMUM_ADDED", json!({"type":"number"}), json!({"type":"number","exclusiveMinimum":0}), no("EXCLUSIVE_MINIMUM_ADDED"), OK),
            ("EXCLUSIVE_MAXIMUM_DECREASED", json!({"type":"number","exclusiveMaximum":9}), json!({"type":"number","exclusiveMaximum":5}), no("EXCLUSIVE_MAXIMUM_DECREASED"), OK),
            ("MULTIPLE_OF_REDUCED", json!({"type":"integer","multipleOf":4}), json!({"type":"integer","multipleOf":2}), OK, no("MULTIPLE_OF_EXPANDED")),
            ("MULTIPLE_OF_CHANGED", json!({"type":"integer","multipleOf":3}), json!({"type":"integer","multipleOf":2}), no("MULTIPLE_OF_CHANGED"), no("MULTIPLE_OF_CHANGED")),
            ("PATTERN_ADDED", json!({"type":"string"}), json!({"type":"string","pattern":"^a"}), no("PATTERN_ADDED"), OK),
            ("PATTERN_CHANGED", json!({"type":"string","pattern":"^a"}), json!({"type":"string","pattern":"^b"}), no("PATTERN_CHANGED"), no("PATTERN_CHANGED")),
            ("MIN_ITEMS_ADDED", json!({"type":"array"}), json!({"type":"array","minItems":1}), no("MIN_ITEMS_ADDED"), OK),
            ("MAX_ITEMS_INCREASED", json!({"type":"array","maxItems":1}), json!({"type":"array","maxItems":2}), OK, no("MAX_ITEMS_DECREASED")),
            ("MIN_CONTAINS_INCREASED", json!({"type":"array","contains":{"type":"number"},"minContains":1}), json!({"type":"array","contains":{"type":"number"},"minContains":2}), no("MIN_CONTAINS_INCREASED"), OK),
            ("UNIQUE_ITEMS_ADDED", json!({"type":"array"}), json!({"type":"array","uniqueItems":true}), no("UNIQUE_ITEMS_ADDED"), OK),
            ("MIN_PROPERTIES_ADDED", json!({"type":"object"}), json!({"type":"object","minProperties":1}), no("MIN_PROPERTIES_ADDED"), OK),
            ("MAX_PROPERTIES_DECREASED", json!({"type":"object","maxProperties":3}), json!({"type":"object","maxProperties":2}), no("MAX_PROPERTIES_DECREASED"), OK),
            // enum and const.
            ("ENUM_ARRAY_EXTENDED", json!({"enum":["a"]}), json!({"enum":["a","b"]}), OK, no("ENUM_ARRAY_NARROWED")),
            ("ENUM_ARRAY_CHANGED", json!({"enum":["a","b"]}), json!({"enum":["a","c"]}), no("ENUM_ARRAY_CHANGED"), no("ENUM_ARRAY_CHANGED")),
            ("const kept in an enum", json!({"const":"a"}), json!({"enum":["a","b"]}), OK, no("ENUM_ARRAY_NARROWED")),
            ("const changed", json!({"const":"a"}), json!({"const":"b"}), no("ENUM_ARRAY_CHANGED"), no("ENUM_ARRAY_CHANGED")),
            // Properties and open content models.
            ("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", obj(json!({"a":{"type":"string"}})), obj(json!({"a":{"type":"string"},"b":{"type":"integer"}})), no("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"), OK),
            ("REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", obj(json!({"a":{"type":"string"}})), json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"]}), no("REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"), OK),
            ("REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL", obj(json!({"a":{"type":"string"}})), json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer","default":0}},"required":["b"]}), no("REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"), OK),
            ("PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", obj(json!({"a":{"type":"string"}})), obj(json!({"a":{"type":"string"},"b":{}})), OK, OK),
            // Closed content models (additionalProperties or, in draft 2020-12, unevaluatedProperties).
            ("OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", closed(json!({"a":{"type":"string"}})), closed(json!({"a":{"type":"string"},"b":{"type":"integer"}})), OK, no("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")),
            ("OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL closed by unevaluatedProperties", json!({"properties":{"foo":{"type":"string"}},"unevaluatedProperties":false}), json!({"properties":{"foo":{"type":"string"},"bar":{"type":"integer"}},"unevaluatedProperties":false}), OK, no("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")),
            ("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", closed(json!({"a":{"type":"string"}})), json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"],"additionalProperties":false}), no("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"), no("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")),
            ("REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL", closed(json!({"a":{"type":"string"}})), json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer","default":0}},"required":["b"],"additionalProperties":false}), OK, no("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")),
            ("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", json!({"additionalProperties":false,"properties":{"foo":false}}), json!({"additionalProperties":false}), OK, OK),
            // Partially open content models.
            ("PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", json!({"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}), json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}},"additionalProperties":{"type":"integer"}}), OK, no("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL")),
            ("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", json!({"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}), json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"additionalProperties":{"type":"integer"}}), no("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"), no("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL")),
            ("PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL by a pattern", json!({"type":"object","patternProperties":{"^x_":{"type":"integer"}},"additionalProperties":false}), json!({"type":"object","properties":{"x_a":{"type":"number"}},"patternProperties":{"^x_":{"type":"integer"}},"additionalProperties":false}), OK, no("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL")),
            ("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL by unevaluatedProperties", json!({"properties":{"a":{}},"unevaluatedProperties":{"type":"integer"}}), json!({"properties":{"a":{},"b":{"type":"string"}},"unevaluatedProperties":{"type":"integer"}}), no("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"), no("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL")),
            // The content-model keywords themselves.
            ("ADDITIONAL_PROPERTIES_REMOVED", obj(json!({"a":{}})), closed(json!({"a":{}})), no("ADDITIONAL_PROPERTIES_REMOVED"), OK),
            ("ADDITIONAL_PROPERTIES_NARROWED", obj(json!({"a":{}})), json!({"type":"object","properties":{"a":{}},"additionalProperties":{"type":"string"}}), no("ADDITIONAL_PROPERTIES_NARROWED"), OK),
            ("ADDITIONAL_PROPERTIES_EXTENDED", json!({"type":"object","additionalProperties":{"type":"integer"}}), json!({"type":"object","additionalProperties":{"type":"number"}}), OK, no("TYPE_NARROWED")),
            ("UNEVALUATED_PROPERTIES_REMOVED", obj(json!({"a":{}})), json!({"type":"object","properties":{"a":{}},"unevaluatedProperties":false}), no("UNEVALUATED_PROPERTIES_REMOVED"), OK),
            ("UNEVALUATED_PROPERTIES_NARROWED", json!({"type":"object","unevaluatedProperties":true}), json!({"type":"object","unevaluatedProperties":{"type":"string"}}), no("UNEVALUATED_PROPERTIES_NARROWED"), OK),
            // required.
            ("REQUIRED_ATTRIBUTE_ADDED", obj(json!({"a":{"type":"string"}})), json!({"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}), no("REQUIRED_ATTRIBUTE_ADDED"), OK),
            ("REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED", obj(json!({"a":{"type":"string"}})), json!({"type":"object","properties":{"a":{"type":"string","default":"x"}},"required":["a"]}), OK, OK),
            ("required names no property defines are not compared", json!({"type":"object","required":["foo"]}), json!({"type":"object","required":["bar"]}), OK, OK),
            ("required compared only where both define the property", obj(json!({"a":{"type":"string"}})), json!({"type":"object","required":["a"]}), OK, no("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL")),
            // Dependencies.
            ("DEPENDENCY_ARRAY_ADDED", obj(json!({"a":{},"b":{}})), json!({"type":"object","properties":{"a":{},"b":{}},"dependencies":{"a":["b"]}}), no("DEPENDENCY_ARRAY_ADDED"), OK),
            ("DEPENDENCY_ARRAY_NARROWED", json!({"type":"object","properties":{"a":{},"b":{},"c":{}},"dependentRequired":{"a":["b","c"]}}), json!({"type":"object","properties":{"a":{},"b":{},"c":{}},"dependentRequired":{"a":["b"]}}), OK, no("DEPENDENCY_ARRAY_EXTENDED")),
            ("DEPENDENCY_ARRAY_CHANGED", json!({"type":"object","properties":{"a":{},"b":{},"c":{}},"dependentRequired":{"a":["b"]}}), json!({"type":"object","properties":{"a":{},"b":{},"c":{}},"dependentRequired":{"a":["c"]}}), no("DEPENDENCY_ARRAY_CHANGED"), no("DEPENDENCY_ARRAY_CHANGED")),
            ("DEPENDENCY_SCHEMA_ADDED", obj(json!({"a":{}})), json!({"type":"object","properties":{"a":{}},"dependentSchemas":{"a":{"required":["b"]}}}), no("DEPENDENCY_SCHEMA_ADDED"), OK),
            // Arrays.
            ("items narrowed", json!({"type":"array","items":{"type":"number"}}), json!({"type":"array","items":{"type":"integer"}}), no("TYPE_NARROWED"), OK),
            ("SCHEMA_ADDED for all items", json!({"type":"array"}), json!({"type":"array","items":{"type":"string"}}), no("SCHEMA_ADDED"), OK),
            ("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", json!({"type":"array","items":[{"type":"string"}],"additionalItems":false}), json!({"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}), OK, no("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL")),
            ("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL closed by unevaluatedItems", json!({"type":"array","prefixItems":[{"type":"string"}],"unevaluatedItems":false}), json!({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"unevaluatedItems":false}), OK, no("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL")),
            ("ITEM_ADDED_TO_OPEN_CONTENT_MODEL", json!({"type":"array","prefixItems":[{"type":"string"}]}), json!({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]}), no("ITEM_ADDED_TO_OPEN_CONTENT_MODEL"), OK),
            ("ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", json!({"type":"array","additionalItems":false,"items":[{"type":"number"},false]}), json!({"type":"array","additionalItems":false,"items":[{"type":"number"}]}), OK, OK),
            ("ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", json!({"type":"array","items":[{"type":"string"}],"additionalItems":{"type":"integer"}}), json!({"type":"array","items":[{"type":"string"},{"type":"string"}],"additionalItems":{"type":"integer"}}), no("ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"), no("ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL")),
            ("ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", json!({"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"}}), json!({"type":"array","prefixItems":[{"type":"string"},{"type":"number"}],"items":{"type":"integer"}}), OK, no("ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL")),
            ("ADDITIONAL_ITEMS_REMOVED without a tuple", json!({"type":"array","additionalItems":true}), json!({"type":"array","additionalItems":false}), no("ADDITIONAL_ITEMS_REMOVED"), OK),
            ("ADDITIONAL_ITEMS_REMOVED by a boolean items", json!({"items":true}), json!({"items":false}), no("ADDITIONAL_ITEMS_REMOVED"), OK),
            ("ADDITIONAL_ITEMS_NARROWED", json!({"type":"array","items":[{}]}), json!({"type":"array","items":[{}],"additionalItems":{"type":"string"}}), no("ADDITIONAL_ITEMS_NARROWED"), OK),
            ("additionalItems schemas compared without a tuple", json!({"additionalItems":{"type":"string"}}), json!({"additionalItems":{"type":"number"}}), no("TYPE_CHANGED"), no("TYPE_CHANGED")),
            ("UNEVALUATED_ITEMS_REMOVED", json!({"type":"array","prefixItems":[{}]}), json!({"type":"array","prefixItems":[{}],"unevaluatedItems":false}), no("UNEVALUATED_ITEMS_REMOVED"), OK),
            // Combined schemas.
            ("SUM_TYPE_EXTENDED", json!({"oneOf":[{"type":"string"}]}), json!({"oneOf":[{"type":"string"},{"type":"integer"}]}), OK, no("SUM_TYPE_NARROWED")),
            ("PRODUCT_TYPE_NARROWED", json!({"allOf":[{"type":"object"},{"required":["a"]}]}), json!({"allOf":[{"type":"object"}]}), OK, no("PRODUCT_TYPE_EXTENDED")),
            ("a repeated allOf option counts once", json!({"allOf":[{"type":"object"}]}), json!({"allOf":[{"type":"object"},{"type":"object"}]}), OK, OK),
            ("COMBINED_TYPE_SUBSCHEMAS_CHANGED", json!({"anyOf":[{"type":"string"},{"type":"integer"}]}), json!({"anyOf":[{"type":"string"},{"type":"boolean"}]}), no("COMBINED_TYPE_SUBSCHEMAS_CHANGED"), no("COMBINED_TYPE_SUBSCHEMAS_CHANGED")),
            ("COMBINED_TYPE_EXTENDED oneOf to anyOf", json!({"oneOf":[{"type":"string"},{"type":"integer"}]}), json!({"anyOf":[{"type":"string"},{"type":"integer"}]}), OK, no("COMBINED_TYPE_CHANGED")),
            ("COMBINED_TYPE_EXTENDED a single-option anyOf to a wider oneOf", json!({"anyOf":[{"type":"string"}]}), json!({"oneOf":[{"type":"number"},{"type":"string"}]}), OK, no("SUM_TYPE_NARROWED")),
            ("COMBINED_TYPE_EXTENDED allOf to a single-option oneOf", json!({"allOf":[{"type":"number"},{"type":"string"}]}), json!({"oneOf":[{"type":"string"}]}), OK, no("COMBINED_TYPE_CHANGED")),
            ("COMBINED_TYPE_EXTENDED allOf to a narrower anyOf", json!({"allOf":[{"type":"number"},{"type":"string"}]}), json!({"anyOf":[{"type":"string"}]}), OK, no("COMBINED_TYPE_CHANGED")),
            ("COMBINED_TYPE_CHANGED a two-option anyOf to oneOf", json!({"anyOf":[{"type":"string"},{"type":"integer"}]}), json!({"oneOf":[{"type":"string"},{"type":"integer"}]}), no("COMBINED_TYPE_CHANGED"), OK),
            ("COMBINED_TYPE_CHANGED anyOf to allOf", json!({"anyOf":[{"type":"string"},{"type":"integer"}]}), json!({"allOf":[{"type":"string"},{"type":"integer"}]}), no("COMBINED_TYPE_CHANGED"), OK),
            ("a type widened into a sum type", json!({"type":"string"}), json!({"anyOf":[{"type":"string"},{"type":"integer"}]}), OK, no("TYPE_CHANGED")),
            // not.
            ("NOT_TYPE_NARROWED", json!({"not":{"type":["string","integer"]}}), json!({"not":{"type":"string"}}), OK, no("NOT_TYPE_EXTENDED")),
            ("not added", json!({"type":"string"}), json!({"type":"string","not":{"const":"x"}}), no("NOT_TYPE_EXTENDED"), OK),
            // $ref.
            ("$ref to a changed definition", json!({"type":"object","properties":{"a":{"$ref":"#/definitions/A"}},"definitions":{"A":{"type":"integer"}}}), json!({"type":"object","properties":{"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"type":"number"}}}), OK, no("TYPE_NARROWED")),
            ("recursive $ref", json!({"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"},"v":{"type":"integer"}}}},"$ref":"#/$defs/N"}), json!({"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"},"v":{"type":"string"}}}},"$ref":"#/$defs/N"}), no("TYPE_CHANGED"), no("TYPE_CHANGED")),
        ]
    }

    #[test]
    fn each_confluent_rule_in_both_directions() {
        let table = cases()
            .into_iter()
            .map(|(rule, old, new, b, f)| (rule, doc(old), doc(new), b, f))
            .collect();
        crate::compat::assert_rule_table(table, can_read);
    }

    #[test]
    fn findings_carry_confluents_difference_names() {
        let found = can_read(
            &doc(json!({"type":"string"})),
            &doc(json!({"type":"string","maxLength":3})),
        );
        assert_eq!(found, vec!["MAX_LENGTH_ADDED at path '#'".to_string()]);
    }

    #[test]
    fn deeply_nested_schemas_are_compared_within_a_task_stack() {
        fn nested(depth: usize, leaf: &str) -> Value {
            (0..depth).fold(json!({"type": leaf}), |inner, _| {
                json!({"type": "object", "properties": {"a": {"anyOf": [inner, {"type": "null"}]}}})
            })
        }
        let checked = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let (old, new) = (doc(nested(60, "integer")), doc(nested(60, "number")));
                let (deep_old, deep_new) =
                    (doc(nested(127, "integer")), doc(nested(127, "number")));
                (
                    can_read(&old, &new).is_empty(),
                    can_read(&new, &old).is_empty(),
                    can_read(&deep_old, &deep_new),
                )
            });
        let (backward, forward, deep) = match checked.map(|handle| handle.join()) {
            Ok(Ok(outcome)) => outcome,
            other => panic!("the comparison did not finish: {other:?}"),
        };
        assert!(backward && !forward, "{backward} {forward}");
        assert_eq!(
            deep.last().map(String::as_str),
            Some(TOO_COMPLEX),
            "{deep:?}"
        );
    }

    #[test]
    fn a_schema_too_large_to_compare_is_reported_not_walked_forever() {
        // Every option distinct (repeated options count once, which would make it small).
        fn nested(depth: usize, width: usize, at: usize) -> Value {
            if depth == 0 {
                return json!({"type": "string", "title": at.to_string()});
            }
            let branches: Vec<Value> = (0..width)
                .map(|i| nested(depth - 1, width, at * width + i))
                .collect();
            json!({ "anyOf": branches })
        }
        let big = nested(3, 12, 0);
        let mut other = big.clone();
        other["anyOf"][0]["anyOf"][0]["anyOf"][0] = json!({"type": "integer"});
        let found = can_read(&doc(big), &doc(other));
        assert_eq!(found.last().map(String::as_str), Some(TOO_COMPLEX));
    }

    #[test]
    fn refs_to_referenced_subjects_resolve_by_the_reference_name() {
        let mut old = doc(json!({"type":"object","properties":{"a":{"$ref":"addr.json"}}}));
        old.referenced.insert(
            "addr.json".into(),
            json!({"type":"object","properties":{"zip":{"type":"integer"}}}),
        );
        let mut new = old.clone();
        new.referenced.insert(
            "addr.json".into(),
            json!({"type":"object","properties":{"zip":{"type":"string"}}}),
        );
        assert!(can_read(&old, &old).is_empty());
        let found = can_read(&old, &new);
        assert!(
            found
                .iter()
                .any(|m| m.starts_with("TYPE_CHANGED at path '#/properties/a/properties/zip'")),
            "{found:?}"
        );
        let by_url = doc(json!({"$id":"https://example.com/schemas/order.json",
            "type":"object","properties":{"a":{"$ref":"https://example.com/schemas/addr.json"}}}));
        let by_url = JsonSchemaDoc {
            referenced: old.referenced.clone(),
            ..by_url
        };
        assert!(
            can_read(&old, &by_url).is_empty(),
            "{:?}",
            can_read(&old, &by_url)
        );
        let unresolved = doc(json!({"type":"object","properties":{"a":{"$ref":"other.json"}}}));
        assert!(!can_read(&old, &unresolved).is_empty());
    }
}
