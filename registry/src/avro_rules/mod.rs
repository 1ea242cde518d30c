//! Avro schemas checked as strictly as Confluent's registry checks a schema a client sends:
//! Avro Java 1.12's `Schema.Parser` with the strict name validator and default validation on
//! (Confluent 8.0.3 and later; earlier releases ran Avro 1.11, which differs in union defaults,
//! see `defaults`). The apache-avro crate, which the compatibility checks run on, accepts
//! schemas that parser refuses (it reads a field object itself as a type, so
//! `{"name":"key","type":"array","items":"string"}` passes there), so a client's schema passes
//! here first and is refused with 42201 when Avro Java would refuse it.
//!
//! The rules, with Avro Java's messages: a type is a primitive or defined name, an object with
//! a string `type`, or a union (an array); names are `[A-Za-z_][A-Za-z0-9_]*`, namespaces dotted
//! names, and a named type is not named after a primitive nor redefined differently; a name used
//! is defined by the end of the schema (or by a referenced schema); records have an array of
//! fields with valid, unique names, each with a `type` and a valid `order`; enums have valid,
//! unique symbols and a default among them; a fixed has an int size from 0; unions hold no union
//! directly and no two branches of one name; aliases are arrays of strings; defaults are valid
//! for their types (`defaults`). Logical types are never an error: Avro Java ignores an
//! invalid one (a decimal's precision or scale, a logical type on the wrong type).

mod defaults;
mod named;
mod names;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use defaults::{Shape, Ty};

/// Checks the Avro schema `text`, with the schemas its references reach (`referenced`,
/// dependencies first, checked by the same rules and defining the names it may use); the
/// reason it is invalid otherwise, in Avro Java's words.
pub fn check(text: &str, referenced: &[&str]) -> Result<(), String> {
    let mut walker = Walker::default();
    for r in referenced {
        walker.schema(r)?;
    }
    walker.schema(text)
}

/// The named types defined so far, across a schema and the schemas it references.
#[derive(Default)]
struct Walker {
    /// Each named type's definition, to tell a repeated definition from a different one.
    definitions: HashMap<String, Value>,
    /// What each named type's defaults must be.
    shapes: HashMap<String, Shape>,
    /// Names used before a definition: (full name, the message when it never comes).
    pending: Vec<(String, String)>,
}

impl Walker {
    /// Parses one schema text; every name it uses must be defined by its end.
    fn schema(&mut self, text: &str) -> Result<(), String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("the schema is not JSON: {e}"))?;
        self.parse(&value, None)?;
        for (full, message) in std::mem::take(&mut self.pending) {
            if !self.shapes.contains_key(&full) {
                return Err(message);
            }
        }
        Ok(())
    }

    /// The type `node` describes inside the namespace `space`.
    fn parse(&mut self, node: &Value, space: Option<&str>) -> Result<Ty, String> {
        match node {
            Value::String(name) => Ok(self.find(name, space, None)),
            Value::Object(m) => {
                let kind = m
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("No type: {node}"))?;
                match kind {
                    "record" | "error" | "enum" | "fixed" => self.named(kind, m, node, space),
                    "array" | "map" => {
                        let (key, what) = match kind {
                            "array" => ("items", "Array has no items type"),
                            _ => ("values", "Map has no values type"),
                        };
                        let inner = m.get(key).ok_or_else(|| format!("{what}: {node}"))?;
                        let inner = Box::new(self.parse(inner, space)?);
                        Ok(if kind == "array" {
                            Ty::Array(inner)
                        } else {
                            Ty::Map(inner)
                        })
                    }
                    other => Ok(self.find(other, space, None)),
                }
            }
            Value::Array(branches) => self.union(branches, node, space),
            _ => Err(format!("Schema not yet supported: {node}")),
        }
    }

    /// The type a name means inside `space`: a primitive, a named type defined so far (in
    /// `space`, else as written), or one still to be defined. `field` is the field whose
    /// `type` the name is, for the message when it is never defined.
    fn find(&mut self, name: &str, space: Option<&str>, field: Option<&str>) -> Ty {
        if let Some(primitive) = names::PRIMITIVES.iter().find(|p| **p == name) {
            return Ty::Primitive(primitive);
        }
        let full = match space {
            Some(space) if !name.contains('.') => format!("{space}.{name}"),
            _ => name.to_owned(),
        };
        if self.shapes.contains_key(&full) {
            return Ty::Named(full);
        }
        if self.shapes.contains_key(name) {
            return Ty::Named(name.to_owned());
        }
        let message = match field {
            Some(field) => format!(
                "\"{name}\" is not a defined name. The type of the \"{field}\" field must be a \
                 defined name or a {{\"type\": ...}} expression."
            ),
            None => format!("Undefined schema: {full}"),
        };
        self.pending.push((full.clone(), message));
        Ty::Pending(full)
    }

    /// A union: no union directly inside, no two branches of one name.
    fn union(
        &mut self,
        branches: &[Value],
        node: &Value,
        space: Option<&str>,
    ) -> Result<Ty, String> {
        let mut seen = HashSet::new();
        let mut types = Vec::with_capacity(branches.len());
        for branch in branches {
            let ty = self.parse(branch, space)?;
            if matches!(ty, Ty::Union(_)) {
                return Err(format!("Nested union: {node}"));
            }
            if !seen.insert(ty.branch_name().to_owned()) {
                return Err(format!("Duplicate in union:{}", ty.branch_name()));
            }
            types.push(ty);
        }
        Ok(Ty::Union(types))
    }
}
