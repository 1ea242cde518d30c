//! What each REST operation decides, as pure functions of the state: the reply, and for writes
//! the records to append. The service appends them and answers once they are applied.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::compat::normalize::normalized_text;
use crate::compat::{self, CompatibilityLevel, PreviousVersion};
use crate::error::ApiError;
use crate::mode::Mode;
use crate::records::{
    ConfigValue, DeleteSubjectValue, IdWatermarkValue, ModeValue, Record, RecordKey, RecordValue,
    SchemaValue,
};
use crate::schema::{
    canonical_text, parse, parse_new, same_schema, ParsedSchema, Referenced, SchemaReference,
    SchemaType,
};
use crate::state::Registry;

/// A write's outcome: the records to append, then the reply.
#[derive(Debug)]
pub struct Outcome<T> {
    /// Appended in order before answering; empty when nothing changes.
    pub records: Vec<Record>,
    /// What the client is answered.
    pub reply: T,
}

impl<T> Outcome<T> {
    fn unchanged(reply: T) -> Self {
        Outcome {
            records: Vec::new(),
            reply,
        }
    }
}

/// A reference as clients send it.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceRequest {
    /// The name the schema uses for it.
    pub name: String,
    /// The subject.
    pub subject: String,
    /// The version; -1 for the latest.
    pub version: i64,
}

/// The body of a register, lookup or compatibility request. Fields clients send that this
/// registry does not act on (`metadata`, `ruleSet`) are accepted and ignored when null.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaRequest {
    /// The schema text.
    pub schema: String,
    /// AVRO when absent.
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
    /// References to other subjects' versions.
    #[serde(default)]
    pub references: Option<Vec<ReferenceRequest>>,
    /// An explicit id, only in IMPORT mode.
    #[serde(default)]
    pub id: Option<i64>,
    /// An explicit version, only in IMPORT mode.
    #[serde(default)]
    pub version: Option<i64>,
}

/// A version as paths give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// `latest` or `-1`.
    Latest,
    /// A number from 1.
    Number(u32),
}

impl VersionSpec {
    /// Parses a path's version; 42202 for anything but `latest`, -1 or 1..=2^31-1.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<i64>() {
            Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(VersionSpec::Number(n as u32)),
            _ => Err(ApiError::invalid_version(s)),
        }
    }
}

fn schema_type(req: &SchemaRequest) -> Result<SchemaType, ApiError> {
    match &req.schema_type {
        None => Ok(SchemaType::Avro),
        Some(t) => SchemaType::parse(t)
            .ok_or_else(|| ApiError::invalid_schema(format!("Invalid schema type {t}"))),
    }
}

/// Resolves a request's references to stored versions (`-1` to the latest live one).
fn resolve_references(
    reg: &Registry,
    req: &SchemaRequest,
) -> Result<Vec<SchemaReference>, ApiError> {
    let mut out = Vec::new();
    for r in req.references.iter().flatten() {
        let found = if r.version == -1 {
            reg.versions(&r.subject, false).last().copied()
        } else {
            u32::try_from(r.version)
                .ok()
                .and_then(|v| reg.version(&r.subject, v))
                .filter(|v| !v.deleted)
        };
        let Some(found) = found else {
            return Err(ApiError::invalid_schema(format!(
                "Invalid schema: reference '{}' to subject '{}' version {} not found",
                r.name, r.subject, r.version
            )));
        };
        out.push(SchemaReference {
            name: r.name.clone(),
            subject: r.subject.clone(),
            version: found.version,
        });
    }
    Ok(out)
}

/// Every schema `references` reach, with the names the references give them, dependencies
/// first.
fn referenced_texts(reg: &Registry, references: &[SchemaReference]) -> Vec<Referenced> {
    fn visit(
        reg: &Registry,
        refs: &[SchemaReference],
        out: &mut Vec<Referenced>,
        seen: &mut Vec<(String, u32)>,
    ) {
        for r in refs {
            if seen.contains(&(r.subject.clone(), r.version)) || seen.len() > 1000 {
                continue;
            }
            seen.push((r.subject.clone(), r.version));
            if let Some(v) = reg.version(&r.subject, r.version) {
                visit(reg, &v.references, out, seen);
                out.push(Referenced {
                    name: r.name.clone(),
                    text: v.schema.clone(),
                });
            }
        }
    }
    let mut out = Vec::new();
    visit(reg, references, &mut out, &mut Vec::new());
    out
}

fn parse_stored(reg: &Registry, value: &SchemaValue) -> Result<ParsedSchema, ApiError> {
    parse(
        value.schema_type,
        &value.schema,
        &referenced_texts(reg, &value.references),
    )
    .map_err(|e| ApiError::store(format!("stored schema {} does not parse: {e}", value.id)))
}

/// A request parsed and checked: type, references, canonical text.
struct Candidate {
    schema_type: SchemaType,
    references: Vec<SchemaReference>,
    text: String,
    parsed: ParsedSchema,
    normalize: bool,
}

fn candidate(reg: &Registry, req: &SchemaRequest, normalize: bool) -> Result<Candidate, ApiError> {
    let schema_type = schema_type(req)?;
    let mut references = resolve_references(reg, req)?;
    let referenced = referenced_texts(reg, &references);
    let parsed =
        parse_new(schema_type, &req.schema, &referenced).map_err(ApiError::invalid_schema)?;
    let text = if normalize {
        references = normalized_references(references);
        normalized_text(schema_type, &req.schema, &referenced)
    } else if schema_type != SchemaType::Protobuf {
        canonical_text(schema_type, &req.schema)
    } else {
        req.schema.clone()
    };
    Ok(Candidate {
        schema_type,
        references,
        text,
        parsed,
        normalize,
    })
}

/// References as `normalize` registers them: sorted (by name, subject, version), once each.
fn normalized_references(mut references: Vec<SchemaReference>) -> Vec<SchemaReference> {
    references
        .sort_by(|a, b| (&a.name, &a.subject, a.version).cmp(&(&b.name, &b.subject, b.version)));
    references.dedup();
    references
}

/// Whether a stored version is the candidate's schema. With `normalize` the stored text is
/// normalized too, so a version registered without it is still found.
fn matches(reg: &Registry, value: &SchemaValue, c: &Candidate) -> bool {
    if value.schema_type != c.schema_type {
        return false;
    }
    if value.references == c.references && same_schema(c.schema_type, &value.schema, &c.text) {
        return true;
    }
    if !c.normalize {
        return false;
    }
    let references = normalized_references(value.references.clone());
    let stored = normalized_text(
        value.schema_type,
        &value.schema,
        &referenced_texts(reg, &value.references),
    );
    references == c.references && same_schema(c.schema_type, &stored, &c.text)
}

/// A version as `GET /subjects/{s}/versions/{v}` and lookups answer it.
pub fn version_json(v: &SchemaValue) -> Value {
    let mut out =
        json!({"subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema});
    if v.schema_type != SchemaType::Avro {
        out["schemaType"] = json!(v.schema_type.as_str());
    }
    if !v.references.is_empty() {
        out["references"] = json!(v.references);
    }
    out
}

/// The incompatibilities of `new` with a subject's live versions at `level`.
fn incompatibilities(
    reg: &Registry,
    subject: &str,
    level: CompatibilityLevel,
    new: &ParsedSchema,
) -> Result<Vec<String>, ApiError> {
    if level == CompatibilityLevel::None {
        return Ok(Vec::new());
    }
    let live = reg.versions(subject, false);
    let parsed: Vec<ParsedSchema> = live
        .iter()
        .map(|v| parse_stored(reg, v))
        .collect::<Result<_, _>>()?;
    let previous: Vec<PreviousVersion<'_>> = live
        .iter()
        .zip(&parsed)
        .map(|(v, p)| PreviousVersion {
            version: v.version,
            text: &v.schema,
            schema: p,
        })
        .collect();
    Ok(compat::check(level, new, &previous))
}

/// `POST /subjects/{s}/versions`: the id of the schema, registering it as a new version when
/// the subject does not have it yet.
pub fn register(
    reg: &Registry,
    subject: &str,
    req: &SchemaRequest,
    normalize: bool,
) -> Result<Outcome<u32>, ApiError> {
    let mode = reg.effective_mode(subject);
    if mode == Mode::ReadOnly {
        return Err(ApiError::not_permitted(format!(
            "Subject {subject} is in read-only mode"
        )));
    }
    let c = candidate(reg, req, normalize)?;
    let live = reg.versions(subject, false);
    if let Some(existing) = live.iter().rev().find(|v| matches(reg, v, &c)) {
        if req.id.is_none_or(|id| id == i64::from(existing.id)) {
            return Ok(Outcome::unchanged(existing.id));
        }
    }
    let (id, version) = if mode == Mode::Import {
        import_slot(reg, subject, req, &c)?
    } else {
        if req.id.is_some_and(|id| id >= 0) || req.version.is_some_and(|v| v > 0) {
            return Err(ApiError::not_permitted(format!(
                "Subject {subject} is not in import mode: an explicit id or version is not permitted"
            )));
        }
        let messages = incompatibilities(reg, subject, reg.effective_level(subject), &c.parsed)?;
        if !messages.is_empty() {
            return Err(ApiError::incompatible(subject, &messages));
        }
        let id = reg
            .find_id(c.schema_type, &c.text, &c.references)
            .unwrap_or_else(|| reg.next_id());
        (id, reg.next_version(subject))
    };
    let value = SchemaValue {
        subject: subject.to_string(),
        version,
        id,
        schema_type: c.schema_type,
        schema: c.text,
        references: c.references,
        deleted: false,
    };
    Ok(Outcome {
        records: vec![Record {
            key: RecordKey::schema(subject, version),
            value: Some(RecordValue::Schema(value)),
        }],
        reply: id,
    })
}

/// IMPORT mode: the caller's id and version, refused when they are taken by another schema.
fn import_slot(
    reg: &Registry,
    subject: &str,
    req: &SchemaRequest,
    c: &Candidate,
) -> Result<(u32, u32), ApiError> {
    let id = match req.id {
        Some(id) if id >= 1 && id <= i64::from(i32::MAX) => id as u32,
        Some(id) => return Err(ApiError::invalid_schema(format!("Invalid schema id {id}"))),
        None => reg
            .find_id(c.schema_type, &c.text, &c.references)
            .unwrap_or_else(|| reg.next_id()),
    };
    if let Some(holder) = reg.holders(id).first() {
        if !(holder.schema_type == c.schema_type
            && same_schema(c.schema_type, &holder.schema, &c.text))
        {
            return Err(ApiError::not_permitted(format!(
                "Overwrite new schema with id {id} is not permitted."
            )));
        }
    }
    let version = match req.version {
        Some(v) if v >= 1 && v <= i64::from(i32::MAX) => v as u32,
        Some(v) => return Err(ApiError::invalid_version(&v.to_string())),
        None => reg.next_version(subject),
    };
    if let Some(existing) = reg.version(subject, version) {
        if existing.id != id {
            return Err(ApiError::not_permitted(format!(
                "Overwrite new schema with id {id} in subject {subject} version {version} is not permitted."
            )));
        }
    }
    Ok((id, version))
}

/// `POST /subjects/{s}`: the version of the subject holding this schema.
pub fn lookup(
    reg: &Registry,
    subject: &str,
    req: &SchemaRequest,
    normalize: bool,
    deleted: bool,
) -> Result<Value, ApiError> {
    // An invalid schema is 42201 whether or not the subject exists, as in Confluent.
    let c = candidate(reg, req, normalize)?;
    let versions = reg.versions(subject, deleted);
    if versions.is_empty() {
        return Err(ApiError::subject_not_found(subject));
    }
    versions
        .iter()
        .rev()
        .find(|v| matches(reg, v, &c))
        .map(|v| version_json(v))
        .ok_or_else(ApiError::schema_not_found)
}

/// Finds a version for a GET: soft-deleted ones only with `deleted=true`.
pub fn get_version<'a>(
    reg: &'a Registry,
    subject: &str,
    spec: VersionSpec,
    deleted: bool,
) -> Result<&'a SchemaValue, ApiError> {
    if reg.versions(subject, deleted).is_empty() {
        return Err(ApiError::subject_not_found(subject));
    }
    let found = match spec {
        VersionSpec::Latest => reg.versions(subject, deleted).last().copied(),
        VersionSpec::Number(n) => reg.version(subject, n).filter(|v| deleted || !v.deleted),
    };
    found.ok_or_else(|| match spec {
        VersionSpec::Latest => ApiError::version_not_found("latest"),
        VersionSpec::Number(n) => ApiError::version_not_found(n),
    })
}

fn watermark(reg: &Registry) -> Record {
    Record {
        key: RecordKey::IdWatermark { magic: 0 },
        value: Some(RecordValue::IdWatermark(IdWatermarkValue {
            max_id: reg.max_id(),
        })),
    }
}

fn refuse_if_read_only(reg: &Registry, subject: &str) -> Result<(), ApiError> {
    if reg.effective_mode(subject) == Mode::ReadOnly {
        return Err(ApiError::not_permitted(format!(
            "Subject {subject} is in read-only mode"
        )));
    }
    Ok(())
}

fn refuse_if_referenced(reg: &Registry, subject: &str, version: u32) -> Result<(), ApiError> {
    let ids = reg.referenced_by(subject, version);
    if ids.is_empty() {
        Ok(())
    } else {
        Err(ApiError::reference_exists(format!(
            "One or more references exist to the schema {{subject={subject},version={version}}}: ids {ids:?}"
        )))
    }
}

/// `DELETE /subjects/{s}/versions/{v}`: soft-deletes, or with `permanent` hard-deletes a
/// version already soft-deleted.
pub fn delete_version(
    reg: &Registry,
    subject: &str,
    spec: VersionSpec,
    permanent: bool,
) -> Result<Outcome<u32>, ApiError> {
    refuse_if_read_only(reg, subject)?;
    if !reg.has_subject(subject) {
        return Err(ApiError::subject_not_found(subject));
    }
    let value = match spec {
        VersionSpec::Latest => reg.versions(subject, permanent).last().copied(),
        VersionSpec::Number(n) => reg.version(subject, n),
    };
    let Some(value) = value else {
        return Err(match spec {
            VersionSpec::Latest => ApiError::subject_not_found(subject),
            VersionSpec::Number(n) => ApiError::version_not_found(n),
        });
    };
    let version = value.version;
    if !permanent && value.deleted {
        return Err(ApiError::version_soft_deleted(subject, version));
    }
    if permanent && !value.deleted {
        return Err(ApiError::version_not_soft_deleted(subject, version));
    }
    refuse_if_referenced(reg, subject, version)?;
    let records = if permanent {
        vec![
            watermark(reg),
            Record {
                key: RecordKey::schema(subject, version),
                value: None,
            },
        ]
    } else {
        let mut soft = value.clone();
        soft.deleted = true;
        vec![Record {
            key: RecordKey::schema(subject, version),
            value: Some(RecordValue::Schema(soft)),
        }]
    };
    Ok(Outcome {
        records,
        reply: version,
    })
}

/// `DELETE /subjects/{s}`: soft-deletes every version, or with `permanent` hard-deletes a
/// subject already soft-deleted; answers the versions deleted.
pub fn delete_subject(
    reg: &Registry,
    subject: &str,
    permanent: bool,
) -> Result<Outcome<Vec<u32>>, ApiError> {
    refuse_if_read_only(reg, subject)?;
    let all = reg.versions(subject, true);
    if all.is_empty() {
        return Err(ApiError::subject_not_found(subject));
    }
    let live: Vec<&SchemaValue> = all.iter().copied().filter(|v| !v.deleted).collect();
    if !permanent && live.is_empty() {
        return Err(ApiError::subject_soft_deleted(subject));
    }
    if permanent && !live.is_empty() {
        return Err(ApiError::subject_not_soft_deleted(subject));
    }
    for v in &all {
        refuse_if_referenced(reg, subject, v.version)?;
    }
    if permanent {
        let mut records = vec![watermark(reg)];
        records.extend(all.iter().map(|v| Record {
            key: RecordKey::schema(subject, v.version),
            value: None,
        }));
        return Ok(Outcome {
            records,
            reply: all.iter().map(|v| v.version).collect(),
        });
    }
    let mut records: Vec<Record> = live
        .iter()
        .map(|v| {
            let mut soft = (*v).clone();
            soft.deleted = true;
            Record {
                key: RecordKey::schema(subject, v.version),
                value: Some(RecordValue::Schema(soft)),
            }
        })
        .collect();
    let latest = live.iter().map(|v| v.version).max().unwrap_or_default();
    records.push(Record {
        key: RecordKey::DeleteSubject {
            subject: subject.to_string(),
            magic: 0,
        },
        value: Some(RecordValue::DeleteSubject(DeleteSubjectValue {
            subject: subject.to_string(),
            version: latest,
        })),
    });
    Ok(Outcome {
        records,
        reply: live.iter().map(|v| v.version).collect(),
    })
}

/// `POST /compatibility/subjects/{s}/versions[/{v}]`: the incompatibilities of a schema with
/// one version (`Some`) or with the versions the subject's level checks (`None`, `latest`).
pub fn check_compatibility(
    reg: &Registry,
    subject: &str,
    spec: Option<VersionSpec>,
    req: &SchemaRequest,
    normalize: bool,
) -> Result<Vec<String>, ApiError> {
    // A missing version is reported before an invalid schema, as in Confluent.
    let old = match spec {
        Some(VersionSpec::Number(n)) => {
            Some(get_version(reg, subject, VersionSpec::Number(n), false)?)
        }
        None | Some(VersionSpec::Latest) => None,
    };
    let c = candidate(reg, req, normalize)?;
    let level = reg.effective_level(subject);
    match old {
        None => {
            let level = if spec.is_some() {
                non_transitive(level)
            } else {
                level
            };
            incompatibilities(reg, subject, level, &c.parsed)
        }
        Some(old) => {
            let parsed = parse_stored(reg, old)?;
            let previous = [PreviousVersion {
                version: old.version,
                text: &old.schema,
                schema: &parsed,
            }];
            Ok(compat::check(non_transitive(level), &c.parsed, &previous))
        }
    }
}

fn non_transitive(level: CompatibilityLevel) -> CompatibilityLevel {
    match level {
        CompatibilityLevel::BackwardTransitive => CompatibilityLevel::Backward,
        CompatibilityLevel::ForwardTransitive => CompatibilityLevel::Forward,
        CompatibilityLevel::FullTransitive => CompatibilityLevel::Full,
        other => other,
    }
}

/// `PUT /config[/{s}]`.
pub fn set_config(
    subject: Option<&str>,
    level: &str,
) -> Result<Outcome<CompatibilityLevel>, ApiError> {
    let level =
        CompatibilityLevel::parse(level).ok_or_else(ApiError::invalid_compatibility_level)?;
    Ok(Outcome {
        records: vec![Record {
            key: RecordKey::config(subject),
            value: Some(RecordValue::Config(ConfigValue {
                compatibility_level: Some(level),
            })),
        }],
        reply: level,
    })
}

/// `DELETE /config[/{s}]`: answers the level that was set.
pub fn delete_config(
    reg: &Registry,
    subject: Option<&str>,
) -> Result<Outcome<CompatibilityLevel>, ApiError> {
    let previous = match subject {
        Some(s) => reg
            .subject_level(s)
            .ok_or_else(|| ApiError::subject_level_compatibility_not_configured(s))?,
        None => reg.global_level().unwrap_or_default(),
    };
    Ok(Outcome {
        records: vec![Record {
            key: RecordKey::config(subject),
            value: None,
        }],
        reply: previous,
    })
}

/// `PUT /mode[/{s}]`: IMPORT needs an empty registry (or subject) unless forced.
pub fn set_mode(
    reg: &Registry,
    subject: Option<&str>,
    mode: &str,
    force: bool,
) -> Result<Outcome<Mode>, ApiError> {
    let mode = Mode::parse(mode).ok_or_else(ApiError::invalid_mode)?;
    if mode == Mode::Import && !force {
        let has_schemas = match subject {
            Some(s) => !reg.versions(s, false).is_empty(),
            None => !reg.subjects(false).is_empty(),
        };
        if has_schemas {
            return Err(ApiError::not_permitted(
                "Cannot import since found existing subjects",
            ));
        }
    }
    Ok(Outcome {
        records: vec![Record {
            key: RecordKey::mode(subject),
            value: Some(RecordValue::Mode(ModeValue { mode })),
        }],
        reply: mode,
    })
}

/// `DELETE /mode[/{s}]`: answers the mode that was set.
pub fn delete_mode(reg: &Registry, subject: Option<&str>) -> Result<Outcome<Mode>, ApiError> {
    let previous = match subject {
        Some(s) => reg
            .subject_mode(s)
            .ok_or_else(|| ApiError::subject_level_mode_not_configured(s))?,
        None => reg.global_mode().unwrap_or_default(),
    };
    Ok(Outcome {
        records: vec![Record {
            key: RecordKey::mode(subject),
            value: None,
        }],
        reply: previous,
    })
}
