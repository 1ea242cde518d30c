//! The `_schemas` topic's record layout, as Confluent's registry writes it, so that a topic
//! written by either registry reads the same: JSON keys tagged by `keytype`, JSON values, and a
//! null value as a tombstone (a hard delete that compaction eventually removes).

use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;
use crate::mode::Mode;
use crate::schema::{SchemaReference, SchemaType};

/// A record key. The `magic` numbers are Confluent's (1 for schemas, 0 for the rest); they are
/// written back as read so a key keeps its identity under compaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype")]
pub enum RecordKey {
    /// One version of one subject.
    #[serde(rename = "SCHEMA")]
    Schema {
        /// The subject the version belongs to.
        subject: String,
        /// The version number, from 1.
        version: u32,
        /// Confluent's key format number.
        #[serde(default = "magic_one")]
        magic: u32,
    },
    /// The compatibility level of one subject, or the global one when `subject` is null.
    #[serde(rename = "CONFIG")]
    Config {
        /// The subject, or None for the global level.
        subject: Option<String>,
        /// Confluent's key format number.
        #[serde(default)]
        magic: u32,
    },
    /// The mode of one subject, or the global one when `subject` is null.
    #[serde(rename = "MODE")]
    Mode {
        /// The subject, or None for the global mode.
        subject: Option<String>,
        /// Confluent's key format number.
        #[serde(default)]
        magic: u32,
    },
    /// A soft delete of every version of a subject up to a version.
    #[serde(rename = "DELETE_SUBJECT")]
    DeleteSubject {
        /// The subject soft-deleted.
        subject: String,
        /// Confluent's key format number.
        #[serde(default)]
        magic: u32,
    },
    /// Removes the soft-deleted versions of a subject from memory.
    #[serde(rename = "CLEAR_SUBJECT")]
    ClearSubject {
        /// The subject cleared.
        subject: String,
        /// Confluent's key format number.
        #[serde(default)]
        magic: u32,
    },
    /// A marker with no state, written to learn the end of the log.
    #[serde(rename = "NOOP")]
    Noop {
        /// Confluent's key format number.
        #[serde(default)]
        magic: u32,
    },
    /// Tributary's own record: the highest schema id ever handed out, written before a hard
    /// delete so that compaction removing the deleted version cannot let its id be reused.
    #[serde(rename = "ID_WATERMARK")]
    IdWatermark {
        /// Key format number.
        #[serde(default)]
        magic: u32,
    },
}

fn magic_one() -> u32 {
    1
}

impl RecordKey {
    /// The key of a subject's version, as Confluent writes it.
    pub fn schema(subject: &str, version: u32) -> Self {
        RecordKey::Schema {
            subject: subject.to_string(),
            version,
            magic: 1,
        }
    }

    /// The key of a compatibility level (None: global).
    pub fn config(subject: Option<&str>) -> Self {
        RecordKey::Config {
            subject: subject.map(str::to_string),
            magic: 0,
        }
    }

    /// The key of a mode (None: global).
    pub fn mode(subject: Option<&str>) -> Self {
        RecordKey::Mode {
            subject: subject.map(str::to_string),
            magic: 0,
        }
    }
}

/// The value of a SCHEMA record: everything a version holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    /// The subject, repeated from the key.
    pub subject: String,
    /// The version, repeated from the key.
    pub version: u32,
    /// The schema id, shared by every subject-version holding the same schema.
    pub id: u32,
    /// AVRO when absent, as Confluent omits it for Avro.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "SchemaType::is_avro"
    )]
    pub schema_type: SchemaType,
    /// The schema text as registered (normalized when asked).
    pub schema: String,
    /// The other subject-versions this schema's named types come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
    /// Soft-deleted: hidden unless asked for with `deleted=true`.
    #[serde(default)]
    pub deleted: bool,
}

/// The value of a CONFIG record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigValue {
    /// The level; absent in some Confluent records that only carry other settings.
    #[serde(
        rename = "compatibilityLevel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub compatibility_level: Option<CompatibilityLevel>,
}

/// The value of a MODE record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    /// The mode.
    pub mode: Mode,
}

/// The value of a DELETE_SUBJECT record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    /// The subject soft-deleted.
    pub subject: String,
    /// Every version up to this one is soft-deleted.
    pub version: u32,
}

/// The value of a CLEAR_SUBJECT record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearSubjectValue {
    /// The subject cleared.
    pub subject: String,
}

/// The value of an ID_WATERMARK record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdWatermarkValue {
    /// The highest id handed out so far.
    #[serde(rename = "maxId")]
    pub max_id: u32,
}

/// A decoded value; which variant is determined by the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// For SCHEMA keys.
    Schema(SchemaValue),
    /// For CONFIG keys.
    Config(ConfigValue),
    /// For MODE keys.
    Mode(ModeValue),
    /// For DELETE_SUBJECT keys.
    DeleteSubject(DeleteSubjectValue),
    /// For CLEAR_SUBJECT keys.
    ClearSubject(ClearSubjectValue),
    /// For ID_WATERMARK keys.
    IdWatermark(IdWatermarkValue),
    /// For NOOP keys, whose value carries nothing.
    Noop,
}

/// One record of the topic: a key and a value, None being a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key.
    pub key: RecordKey,
    /// The value, or None for a tombstone.
    pub value: Option<RecordValue>,
}

/// Why a record of the topic could not be decoded; the reader skips it and counts it.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The key is not one of the JSON layouts above.
    #[error("cannot decode a _schemas key: {0}")]
    Key(#[source] serde_json::Error),
    /// The value does not match its key's layout.
    #[error("cannot decode a _schemas value: {0}")]
    Value(#[source] serde_json::Error),
    /// Encoding a record failed (cannot happen for these plain types, but is not assumed).
    #[error("cannot encode a _schemas record: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Record {
    /// Decodes a record from the topic's bytes.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, RecordError> {
        let key: RecordKey = serde_json::from_slice(key).map_err(RecordError::Key)?;
        let value = match value {
            None => None,
            Some(bytes) => Some(decode_value(&key, bytes)?),
        };
        Ok(Record { key, value })
    }

    /// Encodes the record into the topic's key and value bytes.
    pub fn encode(&self) -> Result<(Vec<u8>, Option<Vec<u8>>), RecordError> {
        let key = serde_json::to_vec(&self.key).map_err(RecordError::Encode)?;
        let value = match &self.value {
            None => None,
            Some(value) => Some(encode_value(value)?),
        };
        Ok((key, value))
    }
}

fn decode_value(key: &RecordKey, bytes: &[u8]) -> Result<RecordValue, RecordError> {
    let v = |e| RecordError::Value(e);
    Ok(match key {
        RecordKey::Schema { .. } => RecordValue::Schema(serde_json::from_slice(bytes).map_err(v)?),
        RecordKey::Config { .. } => RecordValue::Config(serde_json::from_slice(bytes).map_err(v)?),
        RecordKey::Mode { .. } => RecordValue::Mode(serde_json::from_slice(bytes).map_err(v)?),
        RecordKey::DeleteSubject { .. } => {
            RecordValue::DeleteSubject(serde_json::from_slice(bytes).map_err(v)?)
        }
        RecordKey::ClearSubject { .. } => {
            RecordValue::ClearSubject(serde_json::from_slice(bytes).map_err(v)?)
        }
        RecordKey::IdWatermark { .. } => {
            RecordValue::IdWatermark(serde_json::from_slice(bytes).map_err(v)?)
        }
        RecordKey::Noop { .. } => RecordValue::Noop,
    })
}

fn encode_value(value: &RecordValue) -> Result<Vec<u8>, RecordError> {
    let e = RecordError::Encode;
    match value {
        RecordValue::Schema(v) => serde_json::to_vec(v).map_err(e),
        RecordValue::Config(v) => serde_json::to_vec(v).map_err(e),
        RecordValue::Mode(v) => serde_json::to_vec(v).map_err(e),
        RecordValue::DeleteSubject(v) => serde_json::to_vec(v).map_err(e),
        RecordValue::ClearSubject(v) => serde_json::to_vec(v).map_err(e),
        RecordValue::IdWatermark(v) => serde_json::to_vec(v).map_err(e),
        RecordValue::Noop => Ok(b"{}".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_key_matches_confluents_layout() {
        let key = RecordKey::schema("orders-value", 3);
        let json = serde_json::to_string(&key).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"keytype":"SCHEMA","subject":"orders-value","version":3,"magic":1}"#
        );
        let back: RecordKey = serde_json::from_str(&json).unwrap_or(RecordKey::Noop { magic: 9 });
        assert_eq!(back, key);
    }

    #[test]
    fn global_config_key_has_a_null_subject() {
        let json = serde_json::to_string(&RecordKey::config(None)).unwrap_or_default();
        assert_eq!(json, r#"{"keytype":"CONFIG","subject":null,"magic":0}"#);
    }

    #[test]
    fn confluent_written_records_decode() {
        let r = Record::decode(
            br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
            Some(br#"{"subject":"s","version":1,"id":7,"schema":"\"string\"","deleted":false}"#),
        );
        let Ok(Record {
            value: Some(RecordValue::Schema(v)),
            ..
        }) = r
        else {
            panic!("schema record did not decode: {r:?}");
        };
        assert_eq!(
            (v.id, v.schema_type, v.references.len()),
            (7, SchemaType::Avro, 0)
        );

        let r = Record::decode(
            br#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
            Some(br#"{"compatibilityLevel":"FULL_TRANSITIVE"}"#),
        );
        assert!(matches!(
            r,
            Ok(Record {
                value: Some(RecordValue::Config(ConfigValue {
                    compatibility_level: Some(CompatibilityLevel::FullTransitive)
                })),
                ..
            })
        ));
        let r = Record::decode(br#"{"keytype":"NOOP","magic":0}"#, None);
        assert!(matches!(
            r,
            Ok(Record {
                key: RecordKey::Noop { .. },
                value: None
            })
        ));
    }

    #[test]
    fn every_record_round_trips() {
        let records = vec![
            Record {
                key: RecordKey::schema("s", 2),
                value: Some(RecordValue::Schema(SchemaValue {
                    subject: "s".into(),
                    version: 2,
                    id: 5,
                    schema_type: SchemaType::Json,
                    schema: "{}".into(),
                    references: vec![SchemaReference {
                        name: "other.json".into(),
                        subject: "other".into(),
                        version: 1,
                    }],
                    deleted: true,
                })),
            },
            Record {
                key: RecordKey::schema("s", 1),
                value: None,
            },
            Record {
                key: RecordKey::mode(Some("s")),
                value: Some(RecordValue::Mode(ModeValue { mode: Mode::Import })),
            },
            Record {
                key: RecordKey::DeleteSubject {
                    subject: "s".into(),
                    magic: 0,
                },
                value: Some(RecordValue::DeleteSubject(DeleteSubjectValue {
                    subject: "s".into(),
                    version: 2,
                })),
            },
            Record {
                key: RecordKey::ClearSubject {
                    subject: "s".into(),
                    magic: 0,
                },
                value: Some(RecordValue::ClearSubject(ClearSubjectValue {
                    subject: "s".into(),
                })),
            },
            Record {
                key: RecordKey::IdWatermark { magic: 0 },
                value: Some(RecordValue::IdWatermark(IdWatermarkValue { max_id: 9 })),
            },
        ];
        for record in records {
            let (k, v) = record.encode().unwrap_or_default();
            let back = Record::decode(&k, v.as_deref());
            assert_eq!(back.ok(), Some(record.clone()));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Record::decode(b"not json", None).is_err());
        assert!(Record::decode(
            br#"{"keytype":"SCHEMA","subject":"s","version":1}"#,
            Some(b"[")
        )
        .is_err());
        assert!(Record::decode(br#"{"keytype":"WHAT"}"#, None).is_err());
    }
}
