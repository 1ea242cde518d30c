//! Broker-side schema validation (Confluent Server's `confluent.key/value.schema.validation`):
//! every key or value of a validated topic must carry the registry wire format (magic byte 0,
//! a 4-byte big-endian schema id) with an id registered under the subject its strategy names.
//! The decision is pure ([`check_id`]); the lookups behind it are [`lookup`], cached by
//! [`cache`], over the registry client [`access`] makes.

pub mod access;
pub mod cache;
pub mod lookup;
pub mod protobuf;
pub mod request;

use std::borrow::Cow;
use std::collections::BTreeMap;

use self::protobuf::{message_indexes, ProtoMessages};

/// How a subject is named from a topic and a record (Confluent's `SubjectNameStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `<topic>-key` / `<topic>-value`.
    TopicName,
    /// The record's fully qualified name.
    RecordName,
    /// `<topic>-<record name>`.
    TopicRecordName,
}

impl Strategy {
    /// The strategy a config value names, by short name or by Confluent's class name.
    pub fn parse(value: &str) -> Option<Strategy> {
        let short = value
            .strip_prefix("io.confluent.kafka.serializers.subject.")
            .unwrap_or(value);
        match short {
            "TopicNameStrategy" => Some(Strategy::TopicName),
            "RecordNameStrategy" => Some(Strategy::RecordName),
            "TopicRecordNameStrategy" => Some(Strategy::TopicRecordName),
            _ => None,
        }
    }
}

/// Which half of a record is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The record key.
    Key,
    /// The record value.
    Value,
}

impl Side {
    /// `key` or `value`, as in subject names and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Key => "key",
            Side::Value => "value",
        }
    }
}

/// What a topic's configs ask to validate: a strategy per side, `None` when that side is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicRules {
    /// `confluent.key.schema.validation` and its strategy.
    pub key: Option<Strategy>,
    /// `confluent.value.schema.validation` and its strategy.
    pub value: Option<Strategy>,
}

impl TopicRules {
    /// The rules of a topic's config overrides (both sides are off by default, as in
    /// Confluent Server; a strategy that does not parse cannot be set, so it means the default).
    pub fn of(configs: &BTreeMap<String, String>) -> TopicRules {
        let side = |on: &str, strategy: &str| {
            (configs.get(on).map(String::as_str) == Some("true")).then(|| {
                configs
                    .get(strategy)
                    .and_then(|s| Strategy::parse(s))
                    .unwrap_or(Strategy::TopicName)
            })
        };
        TopicRules {
            key: side(
                "confluent.key.schema.validation",
                "confluent.key.subject.name.strategy",
            ),
            value: side(
                "confluent.value.schema.validation",
                "confluent.value.subject.name.strategy",
            ),
        }
    }

    /// Whether anything is validated.
    pub fn any(&self) -> bool {
        self.key.is_some() || self.value.is_some()
    }
}

/// What the registry says of a schema id: the subjects it is registered under, and how its
/// schema names the records written with it (for the record name strategies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaFacts {
    /// Subjects holding a version with this id.
    pub subjects: Vec<String>,
    /// The record names the schema declares.
    pub names: RecordNames,
}

/// How a registered schema names its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RecordNames {
    /// No name (an Avro primitive, a JSON Schema without a title).
    #[default]
    None,
    /// One name for every record: an Avro record's `namespace.name`, a JSON Schema's `title`.
    One(String),
    /// A Protobuf file: each payload names its message by the indexes after its schema id.
    Protobuf(ProtoMessages),
}

impl RecordNames {
    /// The record name of `payload` (in the wire format), `Ok(None)` when the schema declares
    /// none, an error when a Protobuf payload's indexes name no message of the file.
    fn of<'a>(&'a self, payload: &[u8]) -> Result<Option<Cow<'a, str>>, ()> {
        match self {
            RecordNames::None => Ok(None),
            RecordNames::One(name) => Ok(Some(Cow::Borrowed(name))),
            RecordNames::Protobuf(messages) => message_indexes(payload)
                .and_then(|path| messages.name_at(&path))
                .map(|name| Some(Cow::Owned(name)))
                .ok_or(()),
        }
    }
}

/// Why a key or value is refused; the label counts refusals in the metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not in the wire format: too short, or the first byte is not 0.
    #[error("the {side} is not in the schema registry wire format (magic byte 0 and a 4-byte schema id)")]
    NoWireFormat {
        /// Key or value.
        side: &'static str,
    },
    /// The id is not registered.
    #[error("the {side}'s schema id {id} is not registered in the schema registry")]
    UnknownId {
        /// Key or value.
        side: &'static str,
        /// The id.
        id: i32,
    },
    /// The id is registered, but not under the subject the strategy names.
    #[error("the {side}'s schema id {id} is not registered under subject {subject}")]
    WrongSubject {
        /// Key or value.
        side: &'static str,
        /// The id.
        id: i32,
        /// The subject the strategy names.
        subject: String,
    },
    /// A record name strategy, and the schema declares no record name.
    #[error("the {side}'s schema id {id} declares no record name, which the subject name strategy needs")]
    NoRecordName {
        /// Key or value.
        side: &'static str,
        /// The id.
        id: i32,
    },
    /// A Protobuf payload's message indexes are malformed or name no message of its schema.
    #[error("the {side}'s message indexes name no message of the Protobuf schema with id {id}")]
    UnknownMessage {
        /// Key or value.
        side: &'static str,
        /// The id.
        id: i32,
    },
}

impl Refusal {
    /// The metric label of the refusal.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Refusal::NoWireFormat { .. } => "no_wire_format",
            Refusal::UnknownId { .. } => "unknown_schema_id",
            Refusal::WrongSubject { .. } => "wrong_subject",
            Refusal::NoRecordName { .. } => "no_record_name",
            Refusal::UnknownMessage { .. } => "unknown_message",
        }
    }
}

/// The schema id of a payload in the wire format, or why it is not in it.
pub fn schema_id(payload: &[u8], side: Side) -> Result<i32, Refusal> {
    match payload {
        [0, a, b, c, d, ..] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(Refusal::NoWireFormat {
            side: side.as_str(),
        }),
    }
}

/// The subject `strategy` names for `topic`'s `side`, given the schema's record name.
pub fn subject(
    strategy: Strategy,
    topic: &str,
    side: Side,
    record_name: Option<&str>,
) -> Option<String> {
    match strategy {
        Strategy::TopicName => Some(format!("{topic}-{}", side.as_str())),
        Strategy::RecordName => record_name.map(str::to_owned),
        Strategy::TopicRecordName => record_name.map(|name| format!("{topic}-{name}")),
    }
}

/// Whether `payload`, in the wire format with schema `id` (with `facts`, `None` when the
/// registry does not know it), is registered under the subject `strategy` names for
/// `topic`'s `side`. Only the record name strategies read a Protobuf payload's indexes.
pub fn check_id(
    strategy: Strategy,
    topic: &str,
    side: Side,
    (id, payload): (i32, &[u8]),
    facts: Option<&SchemaFacts>,
) -> Result<(), Refusal> {
    let side_name = side.as_str();
    let facts = facts.ok_or(Refusal::UnknownId {
        side: side_name,
        id,
    })?;
    let record_name = match strategy {
        Strategy::TopicName => None,
        Strategy::RecordName | Strategy::TopicRecordName => {
            facts
                .names
                .of(payload)
                .map_err(|()| Refusal::UnknownMessage {
                    side: side_name,
                    id,
                })?
        }
    };
    let subject =
        subject(strategy, topic, side, record_name.as_deref()).ok_or(Refusal::NoRecordName {
            side: side_name,
            id,
        })?;
    if facts.subjects.contains(&subject) {
        Ok(())
    } else {
        Err(Refusal::WrongSubject {
            side: side_name,
            id,
            subject,
        })
    }
}

/// How a registered schema names its records: an Avro record's `namespace.name`, a JSON
/// Schema's `title`, a Protobuf file's messages.
pub fn record_names(schema_type: &str, schema: &str) -> RecordNames {
    let one = |name: Option<String>| name.map_or(RecordNames::None, RecordNames::One);
    match schema_type {
        "JSON" => one(serde_json::from_str::<serde_json::Value>(schema)
            .ok()
            .and_then(|v| v.get("title")?.as_str().map(str::to_owned))),
        "PROTOBUF" => ProtoMessages::parse(schema).map_or(RecordNames::None, RecordNames::Protobuf),
        _ => one(avro_record_name(schema)),
    }
}

/// An Avro schema's fully qualified record name.
fn avro_record_name(schema: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(schema).ok()?;
    let name = value.get("name")?.as_str()?;
    match value.get("namespace").and_then(|n| n.as_str()) {
        Some(ns) if !ns.is_empty() && !name.contains('.') => Some(format!("{ns}.{name}")),
        _ => Some(name.to_owned()),
    }
}

#[cfg(test)]
mod tests;
