//! The named types (records and their fields, enums, fixed) and their definition: a full name
//! defined once, or again only identically.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::defaults::{self, FieldShape, Shape, Ty};
use super::{names, Walker};

/// The largest fixed size Avro Java can hold (its array limit).
const MAX_FIXED_SIZE: i64 = i32::MAX as i64 - 8;

impl Walker {
    /// A named type (record, error, enum, fixed) of `kind`, defined in `space` or its own.
    pub(super) fn named(
        &mut self,
        kind: &str,
        m: &Map<String, Value>,
        node: &Value,
        space: Option<&str>,
    ) -> Result<Ty, String> {
        let full = names::defined_name(m, space, node)?;
        let shape = match kind {
            "enum" => enumeration(m, node)?,
            "fixed" => fixed(m, node)?,
            _ => self.record(m, node, &full)?,
        };
        names::aliases(m, node, Some(&full))?;
        self.define(full, node, shape)
    }

    /// A record's (or error's) fields, in the record's namespace, with unique names.
    fn record(
        &mut self,
        m: &Map<String, Value>,
        node: &Value,
        full: &str,
    ) -> Result<Shape, String> {
        let fields = array(m, "fields", "Record has no fields", node)?;
        let mut seen = HashSet::new();
        let mut shapes = Vec::with_capacity(fields.len());
        for f in fields {
            let shape = self.field(f, names::namespace_of(full))?;
            if !seen.insert(shape.name.clone()) {
                return Err(format!("Duplicate field {} in record {full}", shape.name));
            }
            shapes.push(shape);
        }
        Ok(Shape::Record(shapes))
    }

    /// A record field: a valid name, a type, a valid order, a default valid for the type.
    fn field(&mut self, f: &Value, space: Option<&str>) -> Result<FieldShape, String> {
        let Some((m, name)) = f
            .as_object()
            .and_then(|m| Some((m, m.get("name")?.as_str()?)))
        else {
            return Err(format!("No field name: {f}"));
        };
        let type_node = m.get("type").ok_or_else(|| format!("No field type: {f}"))?;
        let ty = match type_node {
            Value::String(written) => self.find(written, space, Some(name)),
            other => self.parse(other, space)?,
        };
        if let Some(order) = m.get("order") {
            let known = order.as_str().is_some_and(|o| {
                ["ascending", "descending", "ignore"].contains(&o.to_ascii_lowercase().as_str())
            });
            if !known {
                return Err(format!(
                    "Invalid order {order} of field {name}: ascending, descending or ignore"
                ));
            }
        }
        let mut default = m.get("default").cloned();
        if let (true, Some(Value::String(text))) = (ty.is_floating(), &default) {
            // Avro Java reads a float or double field's string default as a number ("NaN",
            // "Infinity"); from then on only its being a number matters.
            if !defaults::is_java_double(text) {
                return Err(format!(
                    "Invalid default for field {name}: \"{text}\" is not a number"
                ));
            }
            default = Some(Value::from(0));
        }
        names::validate(name)?;
        if let Some(value) = &default {
            if !defaults::is_valid(&ty, value, &self.shapes) {
                return Err(format!(
                    "Invalid default for field {name}: {value} not a {type_node}"
                ));
            }
        }
        names::aliases(m, f, None)?;
        Ok(FieldShape {
            name: name.to_owned(),
            ty,
            default,
        })
    }

    /// Defines `full` as `node`: its namespace and name valid, not defined before unless
    /// identically (Avro Java 1.12 compares the parsed types; the same JSON is the common case
    /// of that, a schema repeating a referenced type).
    fn define(&mut self, full: String, node: &Value, shape: Shape) -> Result<Ty, String> {
        names::validate_full(&full)?;
        match self.definitions.get(&full) {
            Some(earlier) if earlier != node => Err(format!("Can't redefine: {full}")),
            Some(_) => Ok(Ty::Named(full)),
            None => {
                self.definitions.insert(full.clone(), node.clone());
                self.shapes.insert(full.clone(), shape);
                Ok(Ty::Named(full))
            }
        }
    }
}

/// The array under `key`; `missing` with the node when there is none.
fn array<'v>(
    m: &'v Map<String, Value>,
    key: &str,
    missing: &str,
    node: &Value,
) -> Result<&'v Vec<Value>, String> {
    m.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{missing}: {node}"))
}

/// An enum: valid, unique symbols; a default (when a string) among them.
fn enumeration(m: &Map<String, Value>, node: &Value) -> Result<Shape, String> {
    let symbols = array(m, "symbols", "Enum has no symbols", node)?;
    let mut seen = HashSet::new();
    for symbol in symbols {
        let symbol = symbol
            .as_str()
            .ok_or_else(|| format!("Enum symbol {symbol} is not a string"))?;
        names::validate(symbol)?;
        if !seen.insert(symbol) {
            return Err(format!("Duplicate enum symbol: {symbol}"));
        }
    }
    if let Some(default) = m.get("default").and_then(Value::as_str) {
        if !seen.contains(default) {
            let all: Vec<&str> = symbols.iter().filter_map(Value::as_str).collect();
            return Err(format!(
                "The Enum Default: {default} is not in the enum symbol set: [{}]",
                all.join(", ")
            ));
        }
    }
    Ok(Shape::Text)
}

/// A fixed: an int size, from 0 to what Avro Java can hold.
fn fixed(m: &Map<String, Value>, node: &Value) -> Result<Shape, String> {
    let size = m
        .get("size")
        .and_then(Value::as_i64)
        .filter(|s| i32::try_from(*s).is_ok())
        .ok_or_else(|| format!("Invalid or no size: {node}"))?;
    if size < 0 {
        return Err(format!("Malformed data. Length is negative: {size}"));
    }
    if size > MAX_FIXED_SIZE {
        return Err(format!(
            "Cannot read arrays longer than {MAX_FIXED_SIZE} bytes in Java library"
        ));
    }
    Ok(Shape::Text)
}
