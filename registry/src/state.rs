//! The registry's state as a pure replay of the `_schemas` topic: `apply` folds one record in,
//! and every instance that reads the same topic holds the same state. Nothing here does I/O,
//! so the whole state machine is tested without Kafka.

use std::collections::BTreeMap;

use crate::compat::CompatibilityLevel;
use crate::mode::Mode;
use crate::records::{Record, RecordError, RecordKey, RecordValue, SchemaValue};
use crate::schema::{same_schema, SchemaReference, SchemaType};

/// Everything the registry knows, rebuilt from the topic.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Subject to version to the version's record (soft-deleted ones included).
    subjects: BTreeMap<String, BTreeMap<u32, SchemaValue>>,
    /// The highest id ever seen, hard-deleted or not: new ids start above it, so none is
    /// reused.
    max_id: u32,
    /// The global compatibility level, when set.
    global_level: Option<CompatibilityLevel>,
    /// Per-subject compatibility levels.
    subject_levels: BTreeMap<String, CompatibilityLevel>,
    /// The global mode, when set.
    global_mode: Option<Mode>,
    /// Per-subject modes.
    subject_modes: BTreeMap<String, Mode>,
    /// Records that could not be decoded and were skipped.
    skipped: u64,
}

impl Registry {
    /// Folds one record of the topic into the state.
    pub fn apply(&mut self, record: Record) {
        match (record.key, record.value) {
            (
                RecordKey::Schema {
                    subject, version, ..
                },
                Some(RecordValue::Schema(mut value)),
            ) => {
                self.max_id = self.max_id.max(value.id);
                value.subject = subject.clone();
                value.version = version;
                self.subjects
                    .entry(subject)
                    .or_default()
                    .insert(version, value);
            }
            (
                RecordKey::Schema {
                    subject, version, ..
                },
                None,
            ) => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    versions.remove(&version);
                    if versions.is_empty() {
                        self.subjects.remove(&subject);
                    }
                }
            }
            (RecordKey::Config { subject, .. }, value) => {
                let level = match value {
                    Some(RecordValue::Config(c)) => c.compatibility_level,
                    _ => None,
                };
                match (subject, level) {
                    (None, level) => self.global_level = level,
                    (Some(s), Some(level)) => {
                        self.subject_levels.insert(s, level);
                    }
                    (Some(s), None) => {
                        self.subject_levels.remove(&s);
                    }
                }
            }
            (RecordKey::Mode { subject, .. }, value) => {
                let mode = match value {
                    Some(RecordValue::Mode(m)) => Some(m.mode),
                    _ => None,
                };
                match (subject, mode) {
                    (None, mode) => self.global_mode = mode,
                    (Some(s), Some(mode)) => {
                        self.subject_modes.insert(s, mode);
                    }
                    (Some(s), None) => {
                        self.subject_modes.remove(&s);
                    }
                }
            }
            (RecordKey::DeleteSubject { subject, .. }, Some(RecordValue::DeleteSubject(v))) => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    for (_, value) in versions.range_mut(..=v.version) {
                        value.deleted = true;
                    }
                }
            }
            (RecordKey::ClearSubject { subject, .. }, Some(RecordValue::ClearSubject(_))) => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    versions.retain(|_, v| !v.deleted);
                    if versions.is_empty() {
                        self.subjects.remove(&subject);
                    }
                }
            }
            (RecordKey::IdWatermark { .. }, Some(RecordValue::IdWatermark(v))) => {
                self.max_id = self.max_id.max(v.max_id);
            }
            // NOOP markers, and tombstones of keys that only mark events.
            _ => {}
        }
    }

    /// Decodes and applies a record's bytes; an undecodable record is skipped and counted,
    /// since one bad record must not stop every instance from starting.
    pub fn apply_bytes(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RecordError> {
        match Record::decode(key, value) {
            Ok(record) => {
                self.apply(record);
                Ok(())
            }
            Err(e) => {
                self.skipped += 1;
                Err(e)
            }
        }
    }

    /// How many records were skipped as undecodable.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The id a new schema gets.
    pub fn next_id(&self) -> u32 {
        self.max_id.saturating_add(1)
    }

    /// The highest id handed out.
    pub fn max_id(&self) -> u32 {
        self.max_id
    }

    /// The versions of a subject, oldest first; soft-deleted ones only when asked.
    pub fn versions(&self, subject: &str, include_deleted: bool) -> Vec<&SchemaValue> {
        self.subjects
            .get(subject)
            .map(|vs| {
                vs.values()
                    .filter(|v| include_deleted || !v.deleted)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One version of a subject, soft-deleted or not.
    pub fn version(&self, subject: &str, version: u32) -> Option<&SchemaValue> {
        self.subjects.get(subject)?.get(&version)
    }

    /// Whether the subject has any version record, soft-deleted or not.
    pub fn has_subject(&self, subject: &str) -> bool {
        self.subjects.contains_key(subject)
    }

    /// The number the next version of a subject gets: one above every version it has.
    pub fn next_version(&self, subject: &str) -> u32 {
        self.subjects
            .get(subject)
            .and_then(|vs| vs.keys().next_back())
            .map_or(1, |v| v.saturating_add(1))
    }

    /// Subjects with at least one version (soft-deleted ones only when asked), sorted.
    pub fn subjects(&self, include_deleted: bool) -> Vec<&str> {
        self.subjects
            .iter()
            .filter(|(_, vs)| include_deleted || vs.values().any(|v| !v.deleted))
            .map(|(s, _)| s.as_str())
            .collect()
    }

    /// Every subject-version holding schema `id`, soft-deleted ones included.
    pub fn holders(&self, id: u32) -> Vec<&SchemaValue> {
        self.subjects
            .values()
            .flat_map(|vs| vs.values())
            .filter(|v| v.id == id)
            .collect()
    }

    /// The schema with `id`, preferring a live holder; None once every holder is hard-deleted.
    pub fn schema(&self, id: u32) -> Option<&SchemaValue> {
        let holders = self.holders(id);
        holders
            .iter()
            .find(|v| !v.deleted)
            .or(holders.first())
            .copied()
    }

    /// The id already given to this schema (same type, text and references) in any subject.
    pub fn find_id(
        &self,
        schema_type: SchemaType,
        text: &str,
        references: &[SchemaReference],
    ) -> Option<u32> {
        self.subjects
            .values()
            .flat_map(|vs| vs.values())
            .find(|v| {
                v.schema_type == schema_type
                    && v.references == references
                    && same_schema(schema_type, &v.schema, text)
            })
            .map(|v| v.id)
    }

    /// The ids of the schemas that reference a subject-version.
    pub fn referenced_by(&self, subject: &str, version: u32) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .subjects
            .values()
            .flat_map(|vs| vs.values())
            .filter(|v| {
                !v.deleted
                    && v.references
                        .iter()
                        .any(|r| r.subject == subject && r.version == version)
            })
            .map(|v| v.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The global level as set, or None for the default.
    pub fn global_level(&self) -> Option<CompatibilityLevel> {
        self.global_level
    }

    /// A subject's own level, if set.
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subject_levels.get(subject).copied()
    }

    /// The level that applies to a subject: its own, else the global one, else BACKWARD.
    pub fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.subject_level(subject)
            .or(self.global_level)
            .unwrap_or_default()
    }

    /// The global mode as set, or None for the default.
    pub fn global_mode(&self) -> Option<Mode> {
        self.global_mode
    }

    /// A subject's own mode, if set.
    pub fn subject_mode(&self, subject: &str) -> Option<Mode> {
        self.subject_modes.get(subject).copied()
    }

    /// The mode that applies to a subject: its own, else the global one, else READWRITE.
    pub fn effective_mode(&self, subject: &str) -> Mode {
        self.subject_mode(subject)
            .or(self.global_mode)
            .unwrap_or_default()
    }

    /// How many distinct live schemas (ids) there are.
    pub fn schema_count(&self) -> usize {
        let mut ids: Vec<u32> = self
            .subjects
            .values()
            .flat_map(|vs| vs.values())
            .filter(|v| !v.deleted)
            .map(|v| v.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ConfigValue, DeleteSubjectValue, IdWatermarkValue, ModeValue};

    fn schema(subject: &str, version: u32, id: u32, text: &str) -> Record {
        Record {
            key: RecordKey::schema(subject, version),
            value: Some(RecordValue::Schema(SchemaValue {
                subject: subject.into(),
                version,
                id,
                schema_type: SchemaType::Avro,
                schema: text.into(),
                references: vec![],
                deleted: false,
            })),
        }
    }

    fn replay(records: &[Record]) -> Registry {
        let mut r = Registry::default();
        for record in records {
            let (k, v) = record.encode().unwrap_or_default();
            assert!(r.apply_bytes(&k, v.as_deref()).is_ok());
        }
        r
    }

    #[test]
    fn registering_adds_versions_and_ids() {
        let r = replay(&[
            schema("a", 1, 1, "\"string\""),
            schema("a", 2, 2, "\"int\""),
            schema("b", 1, 1, "\"string\""),
        ]);
        assert_eq!(r.subjects(false), vec!["a", "b"]);
        assert_eq!(r.versions("a", false).len(), 2);
        assert_eq!(r.next_id(), 3);
        assert_eq!(r.next_version("a"), 3);
        assert_eq!(r.find_id(SchemaType::Avro, "\"int\"", &[]), Some(2));
        assert_eq!(r.holders(1).len(), 2);
        assert_eq!(r.schema_count(), 2);
    }

    #[test]
    fn re_applying_a_record_is_idempotent() {
        let one = schema("a", 1, 1, "\"string\"");
        let r = replay(&[one.clone(), one.clone(), one]);
        assert_eq!(r.versions("a", true).len(), 1);
        assert_eq!(r.next_id(), 2);
    }

    #[test]
    fn soft_delete_hides_and_hard_delete_removes_but_ids_stay_burnt() {
        let mut records = vec![
            schema("a", 1, 1, "\"string\""),
            schema("a", 2, 2, "\"int\""),
        ];
        records.push(Record {
            key: RecordKey::DeleteSubject {
                subject: "a".into(),
                magic: 0,
            },
            value: Some(RecordValue::DeleteSubject(DeleteSubjectValue {
                subject: "a".into(),
                version: 2,
            })),
        });
        let r = replay(&records);
        assert!(r.subjects(false).is_empty());
        assert_eq!(r.subjects(true), vec!["a"]);
        assert!(r.versions("a", true).iter().all(|v| v.deleted));
        assert!(
            r.schema(2).is_some(),
            "a soft-deleted schema is still found by id"
        );

        records.push(Record {
            key: RecordKey::IdWatermark { magic: 0 },
            value: Some(RecordValue::IdWatermark(IdWatermarkValue { max_id: 2 })),
        });
        records.push(Record {
            key: RecordKey::schema("a", 1),
            value: None,
        });
        records.push(Record {
            key: RecordKey::schema("a", 2),
            value: None,
        });
        let r = replay(&records);
        assert!(!r.has_subject("a"));
        assert!(r.schema(2).is_none());
        assert_eq!(
            r.next_id(),
            3,
            "a hard-deleted id is never handed out again"
        );
        assert_eq!(r.next_version("a"), 1);

        // After compaction only the watermark and the tombstones remain.
        let compacted = replay(&records[records.len() - 3..]);
        assert_eq!(compacted.next_id(), 3);
    }

    #[test]
    fn a_schema_record_with_deleted_set_is_a_soft_delete() {
        let mut deleted = schema("a", 1, 1, "\"string\"");
        if let Some(RecordValue::Schema(v)) = &mut deleted.value {
            v.deleted = true;
        }
        let r = replay(&[schema("a", 1, 1, "\"string\""), deleted]);
        assert!(r.versions("a", false).is_empty());
        assert_eq!(r.versions("a", true).len(), 1);
    }

    #[test]
    fn config_and_mode_records_set_and_tombstones_clear() {
        let cfg = |subject: Option<&str>, level: Option<CompatibilityLevel>| Record {
            key: RecordKey::config(subject),
            value: level.map(|l| {
                RecordValue::Config(ConfigValue {
                    compatibility_level: Some(l),
                })
            }),
        };
        let r = replay(&[
            cfg(None, Some(CompatibilityLevel::Full)),
            cfg(Some("a"), Some(CompatibilityLevel::None)),
        ]);
        assert_eq!(r.effective_level("a"), CompatibilityLevel::None);
        assert_eq!(r.effective_level("b"), CompatibilityLevel::Full);
        let r = replay(&[
            cfg(None, Some(CompatibilityLevel::Full)),
            cfg(Some("a"), Some(CompatibilityLevel::None)),
            cfg(Some("a"), None),
            cfg(None, None),
        ]);
        assert_eq!(r.effective_level("a"), CompatibilityLevel::Backward);

        let mode = Record {
            key: RecordKey::mode(None),
            value: Some(RecordValue::Mode(ModeValue {
                mode: Mode::ReadOnly,
            })),
        };
        let r = replay(&[mode]);
        assert_eq!(r.effective_mode("x"), Mode::ReadOnly);
    }

    #[test]
    fn undecodable_records_are_skipped_and_counted() {
        let mut r = Registry::default();
        assert!(r.apply_bytes(b"{", Some(b"x")).is_err());
        assert_eq!(r.skipped(), 1);
    }
}
