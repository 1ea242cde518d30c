//! Avro names: what a name may be, how a name and a namespace make a full name, and which
//! names are the primitive types' (never a named type's).

use serde_json::{Map, Value};

/// The primitive types, which a named type may not be called and a reference names as is.
pub(super) const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// A name part as Confluent validates new schemas (Avro Java's strict validator): an ASCII
/// letter or `_`, then ASCII letters, digits and `_`.
pub(super) fn validate(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("Empty name".to_owned());
    };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(format!("Illegal initial character: {name}"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("Illegal character in: {name}"));
    }
    Ok(())
}

/// Every part of a full name: the namespace's parts, then the name.
pub(super) fn validate_full(full: &str) -> Result<(), String> {
    let (space, name) = split(full);
    for part in space.into_iter().flat_map(|s| s.split('.')) {
        validate(part).map_err(|e| format!("Namespace part \"{part}\" is invalid: {e}"))?;
    }
    validate(name).map_err(|e| format!("Name \"{name}\" is invalid: {e}"))
}

/// (namespace, name) of a full name; the namespace is None when there is none.
fn split(full: &str) -> (Option<&str>, &str) {
    match full.rsplit_once('.') {
        Some(("", name)) => (None, name),
        Some((space, name)) => (Some(space), name),
        None => (None, full),
    }
}

/// The full name `name` means inside `space`: a dotted name carries its own namespace, an
/// empty namespace is none. The name part is validated, as Avro Java's `Name` does.
pub(super) fn full_name(name: &str, space: Option<&str>) -> Result<String, String> {
    let (own, short) = match name.rsplit_once('.') {
        Some((own, short)) => (Some(own), short),
        None => (space, name),
    };
    validate(short)?;
    Ok(match own.filter(|s| !s.is_empty()) {
        Some(space) => format!("{space}.{short}"),
        None => short.to_owned(),
    })
}

/// The namespace of a full name, which the definitions inside a named type inherit.
pub(super) fn namespace_of(full: &str) -> Option<&str> {
    split(full).0
}

/// A named type's full name from its `name` and `namespace` keys, inside `space`.
pub(super) fn defined_name(
    m: &Map<String, Value>,
    space: Option<&str>,
    node: &Value,
) -> Result<String, String> {
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("No name in schema: {node}"))?;
    // A `namespace` that is not a string is no namespace, as in Avro Java.
    let space = m.get("namespace").and_then(Value::as_str).or(space);
    let full = full_name(name, space)?;
    if PRIMITIVES.contains(&full.as_str()) {
        return Err(format!("Schemas may not be named after primitives: {full}"));
    }
    Ok(full)
}

/// The `aliases` of a named type or field: an array of strings. A named type's aliases are
/// names (validated in the type's namespace); a field's are any strings.
pub(super) fn aliases(
    m: &Map<String, Value>,
    node: &Value,
    of_type: Option<&str>,
) -> Result<(), String> {
    let Some(aliases) = m.get("aliases") else {
        return Ok(());
    };
    let aliases = aliases
        .as_array()
        .ok_or_else(|| format!("aliases not an array: {node}"))?;
    for alias in aliases {
        let alias = alias
            .as_str()
            .ok_or_else(|| format!("alias not a string: {alias}"))?;
        if let Some(full) = of_type {
            full_name(alias, namespace_of(full))?;
        }
    }
    Ok(())
}
