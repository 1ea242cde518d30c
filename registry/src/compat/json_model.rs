//! Content models under Confluent's JSON Schema rules: what an object says of the properties it
//! does not list (`patternProperties`, `additionalProperties`, draft 2020-12's
//! `unevaluatedProperties`), and what an array says of the items after its tuple
//! (`additionalItems`, `items` after `prefixItems`, `unevaluatedItems`).
//!
//! A model is open (anything goes), partially open (a schema applies) or closed (nothing
//! may appear); Confluent decides whether a property or item may be added or removed from the
//! model of the other side, and compares the keywords themselves with [`compare_rest`].

use serde_json::Value;

use super::json::{is_closed, is_open, Node, Walk};

/// One content-model keyword as Confluent's schema model reads it.
#[derive(Debug, Clone)]
pub(super) enum Rest<'a> {
    /// The keyword is absent (for `additionalProperties` / `additionalItems`, also `true`).
    Absent,
    /// `true` or `{}` (only for the `unevaluated...` keywords, where it differs from absent).
    Anything,
    /// `false`.
    Nothing,
    /// A schema that restricts.
    Schema(Node<'a>),
}

impl<'a> Rest<'a> {
    /// Reads `keyword` of `node`. `empty_is_anything` separates `true`/`{}` from absence, as
    /// Confluent does for `unevaluatedProperties` and `unevaluatedItems` only.
    pub(super) fn of(node: &Node<'a>, keyword: &str, empty_is_anything: bool) -> Rest<'a> {
        match node.get(keyword) {
            None => Rest::Absent,
            Some(n) if is_closed(Some(&n.value)) => Rest::Nothing,
            Some(n) if matches!(*n.value, Value::Bool(true)) && !empty_is_anything => Rest::Absent,
            Some(n) if empty_is_anything && is_open(Some(&n.value)) => Rest::Anything,
            Some(n) => Rest::Schema(n),
        }
    }

    fn schema(&self) -> Option<&Node<'a>> {
        match self {
            Rest::Schema(n) => Some(n),
            _ => None,
        }
    }
}

/// Compares one content-model keyword of the old (`writer`) and new (`reader`) schema, named
/// `prefix` (`ADDITIONAL_PROPERTIES`, `UNEVALUATED_ITEMS`, ...): closing it is `_REMOVED`,
/// restricting it `_NARROWED` (both incompatible); opening or widening it is compatible; two
/// schemas are compared.
pub(super) fn compare_rest<'a>(
    walk: &mut Walk<'a>,
    reader: Rest<'a>,
    writer: Rest<'a>,
    prefix: &str,
    path: &str,
) {
    match (reader, writer) {
        (_, Rest::Nothing) | (Rest::Absent, _) => {}
        (Rest::Nothing, _) => walk.report(&format!("{prefix}_REMOVED"), path, ""),
        (_, Rest::Absent) => walk.report(&format!("{prefix}_NARROWED"), path, ""),
        (Rest::Anything, _) => {}
        (Rest::Schema(_), Rest::Anything) => walk.report(&format!("{prefix}_NARROWED"), path, ""),
        (Rest::Schema(r), Rest::Schema(w)) => walk.accepts(r, w, path.to_string()),
    }
}

/// What a schema's content model gives a property or item it does not list.
#[derive(Debug, Clone)]
pub(super) enum ContentModel<'a> {
    /// Anything may appear.
    Open,
    /// What appears must match this schema.
    Partial(Node<'a>),
    /// Nothing may appear.
    Closed,
}

/// The content model of a schema with these keywords, for a property `name` (None for an
/// item). As Confluent reads it, a model is open only when `additional...` is absent or true,
/// there are no pattern properties, and `unevaluated...` is absent or true; a name no pattern
/// matches, with no schema for the rest, falls in a closed model.
pub(super) fn content_model<'a>(
    additional: Rest<'a>,
    unevaluated: Rest<'a>,
    patterns: &[(String, Node<'a>)],
    name: Option<&str>,
) -> ContentModel<'a> {
    let open_rest = matches!(unevaluated, Rest::Absent | Rest::Anything);
    if patterns.is_empty() && matches!(additional, Rest::Absent) && open_rest {
        return ContentModel::Open;
    }
    if let Some(name) = name {
        let matching = patterns
            .iter()
            .find(|(p, _)| regex::Regex::new(p).is_ok_and(|re| re.is_match(name)));
        if let Some((_, schema)) = matching {
            return ContentModel::Partial(schema.clone());
        }
    }
    match (&additional, unevaluated.schema()) {
        (Rest::Schema(s), _) => ContentModel::Partial(s.clone()),
        (Rest::Absent, Some(s)) => ContentModel::Partial(s.clone()),
        _ => ContentModel::Closed,
    }
}

/// A property or item (`what`: `PROPERTY` or `ITEM`) that the old schema lists as `writer`
/// and the new one does not, judged by the new schema's content model: an open model takes
/// it, a partially open one must accept its schema, a closed one refuses it unless its schema
/// was `false` (no data held it).
pub(super) fn check_removed<'a>(
    walk: &mut Walk<'a>,
    reader: ContentModel<'a>,
    writer: Node<'a>,
    path: &str,
    what: &str,
) {
    match reader {
        ContentModel::Open => {}
        ContentModel::Partial(rest) => walk.covered(
            rest,
            writer,
            path,
            &format!("{what}_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"),
        ),
        ContentModel::Closed if is_closed(Some(&writer.value)) => {}
        ContentModel::Closed => walk.report(
            &format!("{what}_REMOVED_FROM_CLOSED_CONTENT_MODEL"),
            path,
            "",
        ),
    }
}
