//! Bounds and arrays under Confluent's JSON Schema rules. A lower bound (`minimum`,
//! `minLength`, `minItems`, ...) may be lowered or removed but not added or raised; an upper
//! bound may be raised or removed but not added or lowered; `multipleOf` may only shrink to a
//! divisor; `pattern`, `uniqueItems` and `propertyNames` may be dropped but not added or
//! changed. `format` is an annotation (not asserted by default), so it is not compared.

use serde_json::Value;

use super::json::{Node, Walk};

/// Lower bounds: the keyword and the Confluent name of its differences.
const LOWER: [(&str, &str); 6] = [
    ("minimum", "MINIMUM"),
    ("exclusiveMinimum", "EXCLUSIVE_MINIMUM"),
    ("minLength", "MIN_LENGTH"),
    ("minItems", "MIN_ITEMS"),
    ("minProperties", "MIN_PROPERTIES"),
    ("minContains", "MIN_CONTAINS"),
];

/// Upper bounds, likewise.
const UPPER: [(&str, &str); 6] = [
    ("maximum", "MAXIMUM"),
    ("exclusiveMaximum", "EXCLUSIVE_MAXIMUM"),
    ("maxLength", "MAX_LENGTH"),
    ("maxItems", "MAX_ITEMS"),
    ("maxProperties", "MAX_PROPERTIES"),
    ("maxContains", "MAX_CONTAINS"),
];

/// How a bound moved from the old schema to the new one, when that narrows what is accepted.
/// `lower` says which way narrows. Draft 4's boolean `exclusiveMinimum`/`exclusiveMaximum`
/// narrow when they become true.
pub(super) fn bound_narrowed(
    reader: Option<&Value>,
    writer: Option<&Value>,
    lower: bool,
) -> Option<&'static str> {
    let reader = reader?;
    if let Value::Bool(r) = reader {
        let w = writer.and_then(Value::as_bool).unwrap_or(false);
        return (*r && !w).then_some("ADDED");
    }
    let r = reader.as_f64()?;
    let Some(w) = writer.and_then(Value::as_f64) else {
        return Some("ADDED");
    };
    match (lower, r.partial_cmp(&w)) {
        (true, Some(std::cmp::Ordering::Greater)) => Some("INCREASED"),
        (false, Some(std::cmp::Ordering::Less)) => Some("DECREASED"),
        _ => None,
    }
}

/// Whether every multiple of `writer` is a multiple of `reader`.
fn divides(reader: f64, writer: f64) -> bool {
    if reader <= 0.0 {
        return false;
    }
    let ratio = writer / reader;
    (ratio - ratio.round()).abs() < 1e-9 && ratio.round() >= 1.0
}

/// Checks the bounds, `multipleOf`, `pattern`, `uniqueItems` and `propertyNames`.
pub(super) fn check_bounds<'a>(
    walk: &mut Walk<'a>,
    reader: &Node<'a>,
    writer: &Node<'a>,
    path: &str,
) {
    let (r, w) = (&*reader.value, &*writer.value);
    for (table, lower) in [(LOWER, true), (UPPER, false)] {
        for (keyword, name) in table {
            if let Some(how) = bound_narrowed(r.get(keyword), w.get(keyword), lower) {
                walk.report(&format!("{name}_{how}"), path, "");
            }
        }
    }
    if let Some(rm) = r.get("multipleOf").and_then(Value::as_f64) {
        match w.get("multipleOf").and_then(Value::as_f64) {
            None => walk.report("MULTIPLE_OF_ADDED", path, ""),
            Some(wm) if divides(rm, wm) => {}
            Some(wm) if rm > wm && divides(wm, rm) => walk.report("MULTIPLE_OF_EXPANDED", path, ""),
            Some(_) => walk.report("MULTIPLE_OF_CHANGED", path, ""),
        }
    }
    if let Some(rp) = r.get("pattern") {
        match w.get("pattern") {
            None => walk.report("PATTERN_ADDED", path, ""),
            Some(wp) if wp != rp => walk.report("PATTERN_CHANGED", path, ""),
            Some(_) => {}
        }
    }
    if r.get("uniqueItems") == Some(&Value::Bool(true))
        && w.get("uniqueItems") != Some(&Value::Bool(true))
    {
        walk.report("UNIQUE_ITEMS_ADDED", path, "");
    }
    if let Some(rn) = reader.get("propertyNames") {
        let wn = writer
            .get("propertyNames")
            .unwrap_or_else(|| writer.anything());
        walk.accepts(rn, wn, format!("{path}/propertyNames"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bounds_narrow_only_in_their_direction() {
        let cases = [
            (Some(json!(5)), None, true, Some("ADDED")),
            (Some(json!(5)), Some(json!(3)), true, Some("INCREASED")),
            (Some(json!(2)), Some(json!(3)), true, None),
            (None, Some(json!(3)), true, None),
            (Some(json!(5)), Some(json!(3)), false, None),
            (Some(json!(2)), Some(json!(3)), false, Some("DECREASED")),
            (Some(json!(true)), Some(json!(false)), true, Some("ADDED")),
            (Some(json!(false)), Some(json!(true)), true, None),
        ];
        for (reader, writer, lower, want) in cases {
            assert_eq!(
                bound_narrowed(reader.as_ref(), writer.as_ref(), lower),
                want,
                "{reader:?} {writer:?} {lower}"
            );
        }
    }

    #[test]
    fn a_multiple_of_may_shrink_to_a_divisor() {
        assert!(divides(2.0, 4.0));
        assert!(divides(0.5, 1.5));
        assert!(!divides(4.0, 2.0));
        assert!(!divides(3.0, 4.0));
        assert!(!divides(0.0, 4.0));
    }
}
