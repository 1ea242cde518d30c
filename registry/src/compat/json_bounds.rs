//! Bounds and arrays under Confluent's JSON Schema rules. A lower bound (`minimum`,
//! `minLength`, `minItems`, ...) may be lowered or removed but not added or raised; an upper
//! bound may be raised or removed but not added or lowered; `multipleOf` may only shrink to a
//! divisor; `pattern`, `uniqueItems` and `propertyNames` may be dropped but not added or
//! changed. `format` is an annotation (not asserted by default), so it is not compared.
//! Arrays: `items` (a schema or a tuple), `prefixItems`, `additionalItems` and `contains`.

use serde_json::Value;

use super::json::{is_closed, is_open, Node, Walk};

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

/// An array schema as a tuple of positional schemas and the schema of the items after them
/// (draft 2020-12's `unevaluatedItems` where nothing else says).
fn array_shape<'a>(node: &Node<'a>) -> (Vec<Node<'a>>, Node<'a>) {
    let v = &*node.value;
    let rest = |keyword: &str| {
        node.get(keyword)
            .or_else(|| node.get("unevaluatedItems"))
            .unwrap_or_else(|| node.anything())
    };
    if v.get("prefixItems").is_some_and(Value::is_array) {
        return (node.list("prefixItems"), rest("items"));
    }
    if v.get("items").is_some_and(Value::is_array) {
        return (node.list("items"), rest("additionalItems"));
    }
    (Vec::new(), rest("items"))
}

/// Checks `items`, tuples and `contains`.
pub(super) fn check_array<'a>(
    walk: &mut Walk<'a>,
    reader: &Node<'a>,
    writer: &Node<'a>,
    path: &str,
) {
    let r = &*reader.value;
    if [
        "items",
        "prefixItems",
        "additionalItems",
        "unevaluatedItems",
    ]
    .iter()
    .any(|k| r.get(*k).is_some())
    {
        let (r_tuple, r_rest) = array_shape(reader);
        let (w_tuple, w_rest) = array_shape(writer);
        // Confluent's schema model keeps whether additional items are permitted whatever
        // `items` is, so `additionalItems: false` counts even without a tuple.
        let forbids = |node: &Node<'a>| is_closed(node.value.get("additionalItems"));
        if r_tuple.is_empty() && w_tuple.is_empty() && forbids(reader) && !forbids(writer) {
            walk.report("ADDITIONAL_ITEMS_REMOVED", path, "");
        }
        for i in 0..r_tuple.len().max(w_tuple.len()) {
            let here = format!("{path}/items/{i}");
            match (r_tuple.get(i), w_tuple.get(i)) {
                (Some(ri), None) if is_open(Some(&w_rest.value)) => {
                    if !is_open(Some(&ri.value)) {
                        walk.report("ITEM_ADDED_TO_OPEN_CONTENT_MODEL", &here, "");
                    }
                }
                (Some(_), None) if is_closed(Some(&w_rest.value)) => {}
                (Some(ri), None) => walk.accepts(ri.clone(), w_rest.clone(), here),
                (None, Some(_)) if is_closed(Some(&r_rest.value)) => {
                    walk.report("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", &here, "");
                }
                (None, Some(wi)) => walk.accepts(r_rest.clone(), wi.clone(), here),
                (Some(ri), Some(wi)) => walk.accepts(ri.clone(), wi.clone(), here),
                (None, None) => {}
            }
        }
        if !is_closed(Some(&w_rest.value)) {
            if is_closed(Some(&r_rest.value)) && !r_tuple.is_empty() {
                walk.report("ADDITIONAL_ITEMS_REMOVED", path, "");
            } else {
                walk.accepts(r_rest, w_rest, format!("{path}/items"));
            }
        }
    }
    if let Some(rc) = reader.get("contains") {
        match writer.get("contains") {
            Some(wc) => walk.accepts(rc, wc, format!("{path}/contains")),
            None => walk.report("CONTAINS_ADDED", path, ""),
        }
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
