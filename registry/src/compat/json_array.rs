//! Arrays under Confluent's JSON Schema rules: the schema of all items (`items` as a schema:
//! adding one is SCHEMA_ADDED, removing it compatible), positional items (`items` as a tuple,
//! or draft 2020-12's `prefixItems`) added to or removed from the other side's content model,
//! and the content-model keywords (`additionalItems`, `items` after `prefixItems`,
//! `unevaluatedItems`). `contains` is not compared, as Confluent does not compare it
//! (`minContains`/`maxContains` are bounds).

use serde_json::Value;

use super::json::{is_open, Node, Walk};
use super::json_model::{check_removed, compare_rest, content_model, ContentModel, Rest};

/// An array schema as Confluent's schema model reads it.
struct ArrayShape<'a> {
    /// The schema every item must match (`items` as a schema, no tuple).
    all: Option<Node<'a>>,
    /// The positional schemas.
    tuple: Vec<Node<'a>>,
    /// What follows the tuple: `additionalItems`, or `items` after `prefixItems`. A boolean
    /// `items` without a tuple counts here too, as Confluent reads draft 2020-12.
    additional: Rest<'a>,
    /// Draft 2020-12's `unevaluatedItems`.
    unevaluated: Rest<'a>,
}

impl<'a> ArrayShape<'a> {
    fn of(node: &Node<'a>) -> Self {
        let unevaluated = Rest::of(node, "unevaluatedItems", true);
        let v = &*node.value;
        let (all, tuple, rest_keyword) = if v.get("prefixItems").is_some_and(Value::is_array) {
            (None, node.list("prefixItems"), "items")
        } else if v.get("items").is_some_and(Value::is_array) {
            (None, node.list("items"), "additionalItems")
        } else if v.get("items").is_some_and(Value::is_boolean) {
            (None, Vec::new(), "items")
        } else {
            (node.get("items"), Vec::new(), "additionalItems")
        };
        ArrayShape {
            all,
            tuple,
            additional: Rest::of(node, rest_keyword, false),
            unevaluated,
        }
    }

    /// The content model after the tuple.
    fn model(&self) -> ContentModel<'a> {
        content_model(self.additional.clone(), self.unevaluated.clone(), &[], None)
    }
}

/// Checks the items schema, the tuple and the content-model keywords.
pub(super) fn check_array<'a>(
    walk: &mut Walk<'a>,
    reader: &Node<'a>,
    writer: &Node<'a>,
    path: &str,
) {
    let (r, w) = (ArrayShape::of(reader), ArrayShape::of(writer));
    let items = format!("{path}/items");
    match (&r.all, &w.all) {
        (Some(ra), Some(wa)) => walk.accepts(ra.clone(), wa.clone(), items),
        (Some(_), None) => walk.report("SCHEMA_ADDED", &items, ""),
        (None, _) => {}
    }
    check_tuple(walk, &r, &w, path);
    compare_rest(
        walk,
        r.additional,
        w.additional,
        "ADDITIONAL_ITEMS",
        &format!("{path}/additionalItems"),
    );
    compare_rest(
        walk,
        r.unevaluated,
        w.unevaluated,
        "UNEVALUATED_ITEMS",
        &format!("{path}/unevaluatedItems"),
    );
}

/// Positional items: compared pairwise; one only the old schema has must fit the new
/// schema's content model, one only the new schema has must be allowed by the old one's.
fn check_tuple<'a>(walk: &mut Walk<'a>, r: &ArrayShape<'a>, w: &ArrayShape<'a>, path: &str) {
    for i in 0..r.tuple.len().max(w.tuple.len()) {
        let here = format!("{path}/items/{i}");
        match (r.tuple.get(i), w.tuple.get(i)) {
            (Some(ri), Some(wi)) => walk.accepts(ri.clone(), wi.clone(), here),
            (None, Some(wi)) => check_removed(walk, r.model(), wi.clone(), &here, "ITEM"),
            (Some(ri), None) => match w.model() {
                ContentModel::Open if is_open(Some(&ri.value)) => {}
                ContentModel::Open => walk.report("ITEM_ADDED_TO_OPEN_CONTENT_MODEL", &here, ""),
                ContentModel::Partial(rest) => walk.covered(
                    ri.clone(),
                    rest,
                    &here,
                    "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                ),
                ContentModel::Closed => {}
            },
            (None, None) => {}
        }
    }
}
