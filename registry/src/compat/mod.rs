//! Compatibility checking as pure functions: given a level, a new schema and the subject's
//! previous versions, the reasons the new one may not be registered (empty when it may).
//!
//! Confluent's meaning: BACKWARD = consumers on the new schema read data written with the
//! latest previous one (all previous ones for _TRANSITIVE); FORWARD = consumers on previous
//! schemas read data written with the new one; FULL = both.

pub mod avro;
pub mod json;
mod json_array;
mod json_bounds;
mod json_combined;
mod json_model;
mod json_object;
pub mod normalize;
mod proto_descriptor;
mod proto_text;
pub mod protobuf;

use serde::{Deserialize, Serialize};

use crate::schema::ParsedSchema;

/// A subject's (or the registry's) compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// New reads the latest previous.
    #[default]
    Backward,
    /// New reads every previous.
    BackwardTransitive,
    /// The latest previous reads new.
    Forward,
    /// Every previous reads new.
    ForwardTransitive,
    /// Backward and forward against the latest previous.
    Full,
    /// Backward and forward against every previous.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Parses a level as the REST API spells it; None for anything else (error 42203).
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).ok()
    }

    /// The name the REST API and the topic use.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }
}

/// A previous version to check against.
#[derive(Debug, Clone)]
pub struct PreviousVersion<'a> {
    /// Its version number, for the messages.
    pub version: u32,
    /// Its text, for the messages.
    pub text: &'a str,
    /// The parsed schema.
    pub schema: &'a ParsedSchema,
}

/// Checks `new` against `previous` (oldest first, soft-deleted versions left out) at `level`;
/// returns the reasons it is incompatible, empty when compatible. Non-transitive levels only
/// look at the last of `previous`.
pub fn check(
    level: CompatibilityLevel,
    new: &ParsedSchema,
    previous: &[PreviousVersion<'_>],
) -> Vec<String> {
    if level == CompatibilityLevel::None {
        return Vec::new();
    }
    let against: &[PreviousVersion<'_>] = if level.transitive() {
        previous
    } else {
        match previous.split_last() {
            Some((last, _)) => std::slice::from_ref(last),
            None => &[],
        }
    };
    let mut messages = Vec::new();
    for old in against.iter().rev() {
        let mut found = Vec::new();
        if level.backward() {
            found.extend(check_pair(new, old.schema));
        }
        if level.forward() {
            found.extend(check_pair(old.schema, new));
        }
        if !found.is_empty() {
            messages.extend(found);
            messages.push(format!("{{oldSchemaVersion: {}}}", old.version));
            messages.push(format!("{{oldSchema: '{}'}}", old.text));
            messages.push(format!("{{compatibility: '{}'}}", level.as_str()));
        }
    }
    messages
}

/// The reasons `reader` cannot read data written with `writer`.
fn check_pair(reader: &ParsedSchema, writer: &ParsedSchema) -> Vec<String> {
    match (reader, writer) {
        (ParsedSchema::Avro(r), ParsedSchema::Avro(w)) => avro::can_read(w, r),
        (ParsedSchema::Json(r), ParsedSchema::Json(w)) => json::can_read(w, r),
        (ParsedSchema::Protobuf(r), ParsedSchema::Protobuf(w)) => protobuf::can_read(w, r),
        _ => vec!["Incompatible because of different schema type".to_string()],
    }
}

/// What a rule-table case expects in one direction.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No finding: the change is compatible.
    Compatible,
    /// Incompatible, with a finding of this Confluent difference type among the findings.
    Refused(&'static str),
}

/// A compatible change, for rule tables.
#[cfg(test)]
pub(crate) const OK: Verdict = Verdict::Compatible;

/// An incompatible change reported as Confluent's difference type `name`, for rule tables.
#[cfg(test)]
pub(crate) const fn no(name: &'static str) -> Verdict {
    Verdict::Refused(name)
}

/// Runs a table of (rule, old, new, backward, forward) cases through a
/// `can_read(writer, reader)` check, and fails listing every case that disagrees: a compatible
/// case must have no finding, an incompatible one a finding that begins with the difference
/// type's name (as the `verbose` messages do).
#[cfg(test)]
pub(crate) fn assert_rule_table<S>(
    cases: Vec<(&str, S, S, Verdict, Verdict)>,
    can_read: impl Fn(&S, &S) -> Vec<String>,
) {
    let mut failures = Vec::new();
    for (rule, old, new, backward, forward) in cases {
        for (direction, writer, reader, want) in [
            ("backward", &old, &new, backward),
            ("forward", &new, &old, forward),
        ] {
            let found = can_read(writer, reader);
            let agrees = match want {
                Verdict::Compatible => found.is_empty(),
                Verdict::Refused(name) => found.iter().any(|m| {
                    m.strip_prefix(name)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':']))
                }),
            };
            if !agrees {
                failures.push(format!(
                    "{rule}: {direction} expected {want:?}, got {found:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_case_insensitively_and_reject_others() {
        assert_eq!(
            CompatibilityLevel::parse("full_transitive"),
            Some(CompatibilityLevel::FullTransitive)
        );
        assert_eq!(
            CompatibilityLevel::parse("NONE"),
            Some(CompatibilityLevel::None)
        );
        assert_eq!(CompatibilityLevel::parse("SIDEWAYS"), None);
        for level in [
            CompatibilityLevel::None,
            CompatibilityLevel::Backward,
            CompatibilityLevel::BackwardTransitive,
            CompatibilityLevel::Forward,
            CompatibilityLevel::ForwardTransitive,
            CompatibilityLevel::Full,
            CompatibilityLevel::FullTransitive,
        ] {
            assert_eq!(CompatibilityLevel::parse(level.as_str()), Some(level));
        }
    }
}
