//! Field defaults checked against their types as Avro Java 1.12 does (`Schema.isValidDefault`),
//! which Confluent applies to every new schema: strings for bytes, fixed and enums, integers in
//! range for int and long, any number for float and double, arrays and maps element by element,
//! records as objects whose every field has a valid value (given, or that field's own default),
//! and for a union a value valid for any of its branches (Avro 1.12; Avro 1.11 took only the
//! first branch).

use std::collections::HashMap;

use serde_json::Value;

/// A type as far as checking defaults and union branches needs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ty {
    /// One of the primitive types, by name.
    Primitive(&'static str),
    /// An array of the type.
    Array(Box<Ty>),
    /// A map to the type.
    Map(Box<Ty>),
    /// A union of the types.
    Union(Vec<Ty>),
    /// A named type defined before it was used, by full name.
    Named(String),
    /// A named type used before its definition ended (a record's own name inside its fields,
    /// or a later definition), by full name. Avro Java checks a default against it as against
    /// a record without fields: any object.
    Pending(String),
}

impl Ty {
    /// The name that tells union branches apart: the type's, "array", "map", a full name.
    pub(super) fn branch_name(&self) -> &str {
        match self {
            Ty::Primitive(p) => p,
            Ty::Array(_) => "array",
            Ty::Map(_) => "map",
            Ty::Union(_) => "union",
            Ty::Named(full) | Ty::Pending(full) => full,
        }
    }

    /// Whether a field of this type reads a string default as a number (float and double, as
    /// Avro Java does, so "NaN" and "Infinity" can be written).
    pub(super) fn is_floating(&self) -> bool {
        matches!(self, Ty::Primitive("float" | "double"))
    }
}

/// What defaults of a named type must be.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Shape {
    /// A record's fields.
    Record(Vec<FieldShape>),
    /// An enum or a fixed: a string.
    Text,
}

/// A record field as defaults of its record are checked.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldShape {
    /// The field's name.
    pub(super) name: String,
    /// The field's type.
    pub(super) ty: Ty,
    /// The field's default, the value a record default without this field takes.
    pub(super) default: Option<Value>,
}

/// Whether `value` is a valid default of `ty`; `named` holds the named types defined so far.
/// Recursion ends: a `Named` type only refers to types defined before it.
pub(super) fn is_valid(ty: &Ty, value: &Value, named: &HashMap<String, Shape>) -> bool {
    match ty {
        Ty::Primitive("null") => value.is_null(),
        Ty::Primitive("boolean") => value.is_boolean(),
        Ty::Primitive("int") => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        Ty::Primitive("long") => value.as_i64().is_some(),
        Ty::Primitive("float" | "double") => value.is_number(),
        Ty::Primitive("string" | "bytes") => value.is_string(),
        Ty::Primitive(_) => false,
        Ty::Array(items) => value
            .as_array()
            .is_some_and(|a| a.iter().all(|v| is_valid(items, v, named))),
        Ty::Map(values) => value
            .as_object()
            .is_some_and(|m| m.values().all(|v| is_valid(values, v, named))),
        Ty::Union(branches) => branches.iter().any(|b| is_valid(b, value, named)),
        Ty::Pending(_) => value.is_object(),
        Ty::Named(full) => match named.get(full) {
            Some(Shape::Text) => value.is_string(),
            Some(Shape::Record(fields)) => value.as_object().is_some_and(|given| {
                fields.iter().all(|f| {
                    given
                        .get(&f.name)
                        .or(f.default.as_ref())
                        .is_some_and(|v| is_valid(&f.ty, v, named))
                })
            }),
            None => false,
        },
    }
}

/// Whether Java's `Double.parseDouble` reads `text`: decimal or hexadecimal floating point
/// with an optional `f`/`d` suffix, `NaN` or `Infinity`, signed, surrounded by whitespace.
pub(super) fn is_java_double(text: &str) -> bool {
    let s = text.trim_matches(|c: char| c <= ' ');
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "NaN" || s == "Infinity" {
        return true;
    }
    let s = s.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(s);
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return match hex.split_once(['p', 'P']) {
            Some((mantissa, exponent)) => {
                digits_around_point(mantissa, |c| c.is_ascii_hexdigit())
                    && exponent_digits(exponent)
            }
            None => false,
        };
    }
    match s.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => {
            digits_around_point(mantissa, |c| c.is_ascii_digit()) && exponent_digits(exponent)
        }
        None => digits_around_point(s, |c| c.is_ascii_digit()),
    }
}

/// Digits with at most one point among them, and at least one digit.
fn digits_around_point(s: &str, digit: impl Fn(char) -> bool) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    !(whole.is_empty() && fraction.is_empty())
        && whole.chars().all(&digit)
        && fraction.chars().all(&digit)
}

/// A signed decimal exponent.
fn exponent_digits(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}
