//! Protobuf schemas: reading the messages, fields and enums of a .proto file, given as text or
//! as the base64 FileDescriptorProto the Confluent serializers register, and checking
//! compatibility as Confluent's Protobuf diff does: messages by name within the package,
//! fields by number. Incompatible: MESSAGE_REMOVED, FIELD_KIND_CHANGED (scalar, message and
//! map), FIELD_SCALAR_KIND_CHANGED (outside the wire-compatible groups int32/uint32/int64/
//! uint64/bool/enum, sint32/sint64, fixed32/sfixed32, fixed64/sfixed64, string/bytes, float,
//! double), FIELD_NAMED_TYPE_CHANGED, FIELD_NUMERIC_LABEL_CHANGED, REQUIRED_FIELD_ADDED and
//! _REMOVED, ONEOF_FIELD_REMOVED, MULTIPLE_FIELDS_MOVED_TO_ONEOF,
//! FIELD_MOVED_TO_EXISTING_ONEOF and PACKAGE_CHANGED. Compatible (not reported): messages and
//! enums added, enum values added or removed, fields added or removed (reserved or not), a
//! string or bytes field made repeated or singular, a field moved out of a oneof, a whole
//! oneof removed. Types from referenced (imported) files are known: their enums count as enums,
//! and a field of an imported message type is compared with what that type became.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;

use super::{proto_descriptor, proto_text};
use crate::schema::{Referenced, SchemaError};

/// The package, messages and enums of one .proto file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoFile {
    /// The `package`, empty when none.
    pub package: String,
    /// Every message, nested ones included, by name within the package (`Outer.Inner`).
    pub messages: BTreeMap<String, ProtoMessage>,
    /// Every enum this file defines by name within the package (`Outer.Kind`), and the last
    /// name segment of those its imports define, so a field of an enum type is told from one
    /// of a message type.
    pub enums: BTreeSet<String>,
    /// The messages of the referenced (imported) files by their last name segment, so a field
    /// of an imported type is compared with what that type became.
    pub imported: BTreeMap<String, ProtoMessage>,
}

/// The fields and oneofs of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoMessage {
    /// Field number to field, oneof members included.
    pub fields: BTreeMap<i64, ProtoField>,
    /// The names of its (non-synthetic) oneofs.
    pub oneofs: BTreeSet<String>,
}

/// A field's label as written; proto3 fields without one have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// `optional`.
    Optional,
    /// proto2 `required`.
    Required,
    /// `repeated`.
    Repeated,
}

/// What matters about a field for compatibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoField {
    /// Its name, for messages.
    pub name: String,
    /// A scalar type name, `map<k,v>`, a message or enum type of this file by its name within
    /// the package (resolved as protoc resolves names), or an imported type's last segment.
    pub kind: String,
    /// Its label; None for proto3 singular fields and maps.
    pub label: Option<Label>,
    /// The oneof holding it, if any.
    pub oneof: Option<String>,
}

impl ProtoField {
    fn required(&self) -> bool {
        self.label == Some(Label::Required)
    }
}

impl ProtoFile {
    /// Reads a .proto text or a base64 FileDescriptorProto.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let trimmed = text.trim();
        if !trimmed.is_empty() && !trimmed.contains(char::is_whitespace) && !trimmed.contains('{') {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .map_err(|e| SchemaError::Protobuf(format!("not .proto text nor base64: {e}")))?;
            return proto_descriptor::parse_file(&bytes);
        }
        proto_text::parse_file(text)
    }

    /// Adds the enums and messages the referenced (imported) files define, so fields of those
    /// types are compared by what they are; a referenced file that does not parse adds nothing.
    pub fn with_imports(mut self, referenced: &[Referenced]) -> Self {
        for r in referenced {
            if let Ok(imported) = ProtoFile::parse(&r.text) {
                self.enums
                    .extend(imported.enums.iter().map(|e| last_segment(e).to_string()));
                for (name, message) in imported.messages {
                    self.imported
                        .entry(last_segment(&name).to_string())
                        .or_insert(message);
                }
            }
        }
        self
    }

    /// The imported message a field type names, unless this file defines a message so named.
    fn imported_message(&self, type_name: &str) -> Option<&ProtoMessage> {
        if self.messages.keys().any(|k| last_segment(k) == type_name) {
            return None;
        }
        self.imported.get(type_name)
    }
}

/// The last segment of a dotted type name (`a.b.C` is `C`).
pub(super) fn last_segment(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or_default()
}

impl ProtoFile {
    /// Resolves every field's type as written (by either parser) to what it names: this file's
    /// message or enum by its name within the package, else (an imported type) its last
    /// segment. Run once the whole file is read.
    pub(super) fn resolve_types(&mut self) {
        let known: BTreeSet<String> = self
            .messages
            .keys()
            .cloned()
            .chain(self.enums.iter().cloned())
            .collect();
        let package = self.package.clone();
        for (scope, message) in self.messages.iter_mut() {
            for field in message.fields.values_mut() {
                field.kind = resolve_kind(&field.kind, scope, &package, &known);
            }
        }
    }
}

/// A field type as written inside message `scope`, resolved as protoc resolves names: a
/// leading dot is fully qualified; otherwise the innermost enclosing scope defining the name
/// wins (the message's own nested types first, then its parents', then the package's levels).
fn resolve_kind(raw: &str, scope: &str, package: &str, known: &BTreeSet<String>) -> String {
    if let Some((k, v)) = raw
        .strip_prefix("map<")
        .and_then(|rest| rest.strip_suffix('>'))
        .and_then(|kv| kv.split_once(','))
    {
        let key = resolve_kind(k.trim(), scope, package, known);
        let value = resolve_kind(v.trim(), scope, package, known);
        return format!("map<{key},{value}>");
    }
    if scalar_group(raw).is_some() {
        return raw.to_string();
    }
    let within_package = |absolute: &str| -> Option<String> {
        let name = match package {
            "" => absolute,
            p => absolute.strip_prefix(p)?.strip_prefix('.')?,
        };
        known.contains(name).then(|| name.to_string())
    };
    if let Some(absolute) = raw.strip_prefix('.') {
        return within_package(absolute).unwrap_or_else(|| last_segment(raw).to_string());
    }
    let mut scopes: Vec<&str> = Vec::new();
    let mut s = scope;
    loop {
        scopes.push(s);
        match s.rsplit_once('.') {
            Some((parent, _)) => s = parent,
            None => break,
        }
    }
    for s in scopes {
        let candidate = format!("{s}.{raw}");
        if known.contains(&candidate) {
            return candidate;
        }
    }
    let levels: Vec<&str> = package.split('.').filter(|l| !l.is_empty()).collect();
    for i in (0..=levels.len()).rev() {
        let level = levels[..i].join(".");
        let absolute = if level.is_empty() {
            raw.to_string()
        } else {
            format!("{level}.{raw}")
        };
        if let Some(found) = within_package(&absolute) {
            return found;
        }
    }
    last_segment(raw).to_string()
}

/// How a field's type is read from the wire.
#[derive(Debug, PartialEq, Eq)]
enum Kind<'a> {
    /// A scalar or enum, by wire-compatible group.
    Scalar(u8),
    /// A message, by name.
    Message(&'a str),
    /// A map, by key and value type.
    Map(&'a str, &'a str),
}

const GENERAL_NUMBER: u8 = 1;
const STRING_OR_BYTES: u8 = 5;

fn scalar_group(kind: &str) -> Option<u8> {
    Some(match kind {
        "int32" | "uint32" | "int64" | "uint64" | "bool" => GENERAL_NUMBER,
        "sint32" | "sint64" => 2,
        "fixed32" | "sfixed32" => 3,
        "fixed64" | "sfixed64" => 4,
        "string" | "bytes" => STRING_OR_BYTES,
        "double" => 6,
        "float" => 7,
        _ => return None,
    })
}

fn kind<'a>(type_name: &'a str, file: &ProtoFile) -> Kind<'a> {
    if let Some(group) = scalar_group(type_name) {
        return Kind::Scalar(group);
    }
    if let Some((k, v)) = type_name
        .strip_prefix("map<")
        .and_then(|rest| rest.strip_suffix('>'))
        .and_then(|kv| kv.split_once(','))
    {
        return Kind::Map(k, v);
    }
    if file.enums.contains(type_name) {
        Kind::Scalar(GENERAL_NUMBER)
    } else {
        Kind::Message(type_name)
    }
}

/// The difference between a field's type and label in the writer and in the reader, if it is
/// one Confluent counts as incompatible.
fn field_change(
    (w, w_label): (&str, Option<Label>),
    (r, r_label): (&str, Option<Label>),
    writer: &ProtoFile,
    reader: &ProtoFile,
) -> Option<&'static str> {
    match (kind(w, writer), kind(r, reader)) {
        (Kind::Scalar(a), Kind::Scalar(b)) if a != b => Some("FIELD_SCALAR_KIND_CHANGED"),
        (Kind::Scalar(group), Kind::Scalar(_)) => {
            let relabelled = w_label.is_some() && r_label.is_some() && w_label != r_label;
            (relabelled && group != STRING_OR_BYTES).then_some("FIELD_NUMERIC_LABEL_CHANGED")
        }
        (Kind::Message(a), Kind::Message(b)) => (a != b).then_some("FIELD_NAMED_TYPE_CHANGED"),
        (Kind::Map(wk, wv), Kind::Map(rk, rv)) => {
            field_change((wk, None), (rk, None), writer, reader)
                .or_else(|| field_change((wv, None), (rv, None), writer, reader))
        }
        _ => Some("FIELD_KIND_CHANGED"),
    }
}

/// The reasons data written with `writer` cannot be read with `reader`; empty when it can.
pub fn can_read(writer: &ProtoFile, reader: &ProtoFile) -> Vec<String> {
    let mut pair = Pair {
        writer,
        reader,
        imports_seen: BTreeSet::new(),
        out: Vec::new(),
    };
    if writer.package != reader.package {
        // Fully qualified type names change with it: Confluent refuses it.
        pair.out.push(format!(
            "PACKAGE_CHANGED: package '{}' became '{}'",
            writer.package, reader.package
        ));
    }
    for (name, w) in &writer.messages {
        match reader.messages.get(name) {
            None => pair.out.push(format!("MESSAGE_REMOVED: message '{name}'")),
            Some(r) => pair.compare_message(name, w, r),
        }
    }
    pair.out
}

/// One comparison: both files, the imported types already compared (a type may be used by
/// many fields, or refer to itself), and the findings.
struct Pair<'a> {
    writer: &'a ProtoFile,
    reader: &'a ProtoFile,
    imports_seen: BTreeSet<String>,
    out: Vec<String>,
}

impl Pair<'_> {
    /// A field of an imported message type named alike on both sides: the type as each side
    /// imports it must be compatible (FIELD_NAMED_TYPE_CHANGED otherwise, after its findings).
    fn compare_imported(&mut self, type_name: &str, field: &str) {
        let (Some(w), Some(r)) = (
            self.writer.imported_message(type_name),
            self.reader.imported_message(type_name),
        ) else {
            return;
        };
        if w == r || !self.imports_seen.insert(type_name.to_string()) {
            return;
        }
        let before = self.out.len();
        self.compare_message(type_name, w, r);
        if self.out.len() > before {
            self.out.push(format!(
                "FIELD_NAMED_TYPE_CHANGED: {field} has the imported type '{type_name}', which changed incompatibly"
            ));
        }
    }

    fn compare_message(&mut self, name: &str, w: &ProtoMessage, r: &ProtoMessage) {
        let (writer, reader) = (self.writer, self.reader);
        let deleted_oneofs: BTreeSet<&String> = w
            .oneofs
            .iter()
            .filter(|o| !r.oneofs.contains(*o))
            .filter(|o| {
                !w.fields
                    .iter()
                    .any(|(n, f)| f.oneof.as_ref() == Some(*o) && r.fields.contains_key(n))
            })
            .collect();
        for oneof in &r.oneofs {
            let mut origins = BTreeSet::new();
            let mut moved_in = 0;
            for (number, _) in r
                .fields
                .iter()
                .filter(|(_, f)| f.oneof.as_ref() == Some(oneof))
            {
                let Some(wf) = w.fields.get(number) else {
                    continue;
                };
                match &wf.oneof {
                    Some(o) => {
                        origins.insert(format!("oneof:{o}"));
                    }
                    None => {
                        origins.insert(format!("field:{number}"));
                        moved_in += 1;
                    }
                }
            }
            if origins.len() > 1 {
                let kind = if moved_in > 1 {
                    "MULTIPLE_FIELDS_MOVED_TO_ONEOF"
                } else {
                    "FIELD_MOVED_TO_EXISTING_ONEOF"
                };
                self.out.push(format!("{kind}: oneof '{name}.{oneof}'"));
            }
        }
        let numbers: BTreeSet<&i64> = w.fields.keys().chain(r.fields.keys()).collect();
        for number in numbers {
            match (w.fields.get(number), r.fields.get(number)) {
                (Some(wf), None) => match &wf.oneof {
                    Some(o) if !deleted_oneofs.contains(o) => self.out.push(format!(
                        "ONEOF_FIELD_REMOVED: '{name}.{}' ({number}) of oneof '{o}'",
                        wf.name
                    )),
                    Some(_) => {}
                    None if wf.required() => self.out.push(format!(
                        "REQUIRED_FIELD_REMOVED: '{name}.{}' ({number})",
                        wf.name
                    )),
                    None => {}
                },
                (None, Some(rf)) if rf.oneof.is_none() && rf.required() => self.out.push(format!(
                    "REQUIRED_FIELD_ADDED: '{name}.{}' ({number})",
                    rf.name
                )),
                (Some(wf), Some(rf)) => {
                    match field_change((&wf.kind, wf.label), (&rf.kind, rf.label), writer, reader) {
                        Some(kind) => self.out.push(format!(
                            "{kind}: field {number} of '{name}' was {} and is {}",
                            describe(wf),
                            describe(rf)
                        )),
                        None if wf.kind == rf.kind => {
                            self.compare_imported(&wf.kind, &format!("field {number} of '{name}'"))
                        }
                        None => {}
                    }
                }
                _ => {}
            }
        }
    }
}

fn describe(field: &ProtoField) -> String {
    match field.label {
        Some(Label::Optional) => format!("optional {}", field.kind),
        Some(Label::Required) => format!("required {}", field.kind),
        Some(Label::Repeated) => format!("repeated {}", field.kind),
        None => field.kind.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::{no, Verdict, OK};

    fn proto(text: &str) -> ProtoFile {
        match ProtoFile::parse(text) {
            Ok(f) => f,
            Err(e) => panic!("{e}: {text}"),
        }
    }

    /// `message M { <body> }` in package `t`, with an enum `E` and a message `N` beside it.
    fn m(body: &str) -> String {
        format!(
            "syntax = \"proto3\"; package t; enum E {{ A = 0; }} message N {{ int32 n = 1; }} message M {{ {body} }}"
        )
    }

    /// (rule, old, new, backward, forward): each direction compatible (`OK`) or refused with
    /// Confluent's difference type (`no(..)`).
    #[rustfmt::skip]
    fn cases() -> Vec<(&'static str, String, String, Verdict, Verdict)> {
        vec![
            ("FIELD_ADDED and FIELD_REMOVED", m("int32 a = 1;"), m("int32 a = 1; string b = 2;"), OK, OK),
            ("field removed and its number reserved", m("int32 a = 1; string b = 2;"), m("int32 a = 1; reserved 2; reserved \"b\";"), OK, OK),
            ("FIELD_NAME_CHANGED", m("int32 a = 1;"), m("int32 renamed = 1;"), OK, OK),
            ("wire-compatible scalars int32 to int64", m("int32 a = 1;"), m("int64 a = 1;"), OK, OK),
            ("uint64 to bool", m("uint64 a = 1;"), m("bool a = 1;"), OK, OK),
            ("sint32 to sint64", m("sint32 a = 1;"), m("sint64 a = 1;"), OK, OK),
            ("fixed32 to sfixed32", m("fixed32 a = 1;"), m("sfixed32 a = 1;"), OK, OK),
            ("fixed64 to sfixed64", m("fixed64 a = 1;"), m("sfixed64 a = 1;"), OK, OK),
            ("string to bytes", m("string a = 1;"), m("bytes a = 1;"), OK, OK),
            ("enum to int32", m("E a = 1;"), m("int32 a = 1;"), OK, OK),
            ("FIELD_SCALAR_KIND_CHANGED int32 to sint32", m("int32 a = 1;"), m("sint32 a = 1;"), no("FIELD_SCALAR_KIND_CHANGED"), no("FIELD_SCALAR_KIND_CHANGED")),
            ("FIELD_SCALAR_KIND_CHANGED fixed32 to fixed64", m("fixed32 a = 1;"), m("fixed64 a = 1;"), no("FIELD_SCALAR_KIND_CHANGED"), no("FIELD_SCALAR_KIND_CHANGED")),
            ("FIELD_SCALAR_KIND_CHANGED string to int32", m("string a = 1;"), m("int32 a = 1;"), no("FIELD_SCALAR_KIND_CHANGED"), no("FIELD_SCALAR_KIND_CHANGED")),
            ("FIELD_KIND_CHANGED scalar to message", m("int32 a = 1;"), m("N a = 1;"), no("FIELD_KIND_CHANGED"), no("FIELD_KIND_CHANGED")),
            ("FIELD_KIND_CHANGED map to scalar", m("map<string, int32> a = 1;"), m("string a = 1;"), no("FIELD_KIND_CHANGED"), no("FIELD_KIND_CHANGED")),
            ("map value widened in its group", m("map<string, int32> a = 1;"), m("map<string, int64> a = 1;"), OK, OK),
            ("map value kind changed", m("map<string, int32> a = 1;"), m("map<string, double> a = 1;"), no("FIELD_SCALAR_KIND_CHANGED"), no("FIELD_SCALAR_KIND_CHANGED")),
            ("FIELD_NAMED_TYPE_CHANGED", m("N a = 1;"), m("M a = 1;"), no("FIELD_NAMED_TYPE_CHANGED"), no("FIELD_NAMED_TYPE_CHANGED")),
            ("FIELD_NUMERIC_LABEL_CHANGED", m("optional int32 a = 1;"), m("repeated int32 a = 1;"), no("FIELD_NUMERIC_LABEL_CHANGED"), no("FIELD_NUMERIC_LABEL_CHANGED")),
            ("FIELD_STRING_OR_BYTES_LABEL_CHANGED", m("optional string a = 1;"), m("repeated string a = 1;"), OK, OK),
            ("a message field made repeated", m("optional N a = 1;"), m("repeated N a = 1;"), OK, OK),
            ("MESSAGE_REMOVED", m("int32 a = 1; message Inner { int32 x = 1; }"), m("int32 a = 1;"), no("MESSAGE_REMOVED"), OK),
            ("nested message field changed", m("message Inner { int32 x = 1; }"), m("message Inner { string x = 1; }"), no("FIELD_SCALAR_KIND_CHANGED"), no("FIELD_SCALAR_KIND_CHANGED")),
            ("ENUM_CONST_ADDED and _REMOVED", "package t; enum E { A = 0; } message M { E e = 1; }".into(), "package t; enum E { A = 0; B = 1; } message M { E e = 1; }".into(), OK, OK),
            ("FIELD_KIND_CHANGED a top-level enum to a nested message of the same name", "enum Status { A = 0; } message TestMessage { message Status { int32 x = 1; } .Status s = 1; }".into(), "enum Status { A = 0; } message TestMessage { message Status { int32 x = 1; } .TestMessage.Status s = 1; }".into(), no("FIELD_KIND_CHANGED"), no("FIELD_KIND_CHANGED")),
            ("a relative name resolves to the innermost scope", "package t; enum Status { A = 0; } message TestMessage { message Status { int32 x = 1; } Status s = 1; }".into(), "package t; enum Status { A = 0; } message TestMessage { message Status { int32 x = 1; } .t.TestMessage.Status s = 1; }".into(), OK, OK),
            ("PACKAGE_CHANGED", "package a; message M { int32 x = 1; }".into(), "package b; message M { int32 x = 1; }".into(), no("PACKAGE_CHANGED"), no("PACKAGE_CHANGED")),
            ("REQUIRED_FIELD_ADDED", "syntax = \"proto2\"; message M { optional int32 a = 1; }".into(), "syntax = \"proto2\"; message M { optional int32 a = 1; required int32 b = 2; }" .into(), no("REQUIRED_FIELD_ADDED"), no("REQUIRED_FIELD_REMOVED")),
            ("ONEOF_FIELD_ADDED", m("oneof o { int32 a = 1; }"), m("oneof o { int32 a = 1; string b = 2; }"), OK, no("ONEOF_FIELD_REMOVED")),
            ("ONEOF_REMOVED with all its fields", m("int32 x = 9; oneof o { int32 a = 1; string b = 2; }"), m("int32 x = 9;"), OK, OK),
            ("a field moved into a new oneof", m("int32 a = 1;"), m("oneof o { int32 a = 1; }"), OK, OK),
            ("MULTIPLE_FIELDS_MOVED_TO_ONEOF", m("int32 a = 1; int32 b = 2;"), m("oneof o { int32 a = 1; int32 b = 2; }"), no("MULTIPLE_FIELDS_MOVED_TO_ONEOF"), OK),
            ("FIELD_MOVED_TO_EXISTING_ONEOF", m("int32 a = 1; oneof o { int32 b = 2; }"), m("oneof o { int32 a = 1; int32 b = 2; }"), no("FIELD_MOVED_TO_EXISTING_ONEOF"), OK),
            ("ONEOF_FIELD_MOVED_TO_TOP_LEVEL", m("oneof o { int32 a = 1; int32 b = 2; }"), m("int32 a = 1; oneof o { int32 b = 2; }"), OK, no("FIELD_MOVED_TO_EXISTING_ONEOF")),
            ("MESSAGE_MOVED: messages reordered", "package t; message A { int32 a = 1; } message B { int32 b = 1; }".into(), "package t; message B { int32 b = 1; } message A { int32 a = 1; }".into(), OK, OK),
            ("ENUM_ADDED and ENUM_REMOVED", m("int32 a = 1;"), m("int32 a = 1; enum F { X = 0; }"), OK, OK),
            ("options on an extension range parse", "syntax = \"proto2\"; package t; message M { optional int32 a = 1; extensions 1000 to max [declaration = { number: 1000, full_name: \".t.ext\", type: \"int32\" }]; }".into(), "syntax = \"proto2\"; package t; message M { optional int32 a = 1; optional string b = 2; extensions 1000 to max [declaration = { number: 1000, full_name: \".t.ext\", type: \"int32\" }]; }".into(), OK, OK),
            ("a list inside an aggregate option parses", m("int32 a = 1;"), m("int32 a = 1 [(confluent.field_meta) = { params: [ {key: \"precision\", value: \"8\"} ] }];"), OK, OK),
            ("a list inside an aggregate option parses, the field changed", m("int32 a = 1;"), m("string a = 1 [(confluent.field_meta) = { params: [ {key: \"precision\", value: \"8\"} ] }];"), no("FIELD_SCALAR_KIND_CHANGED"), no("FIELD_SCALAR_KIND_CHANGED")),
        ]
    }

    #[test]
    fn each_confluent_rule_in_both_directions() {
        let table = cases()
            .into_iter()
            .map(|(rule, old, new, b, f)| (rule, proto(&old), proto(&new), b, f))
            .collect();
        crate::compat::assert_rule_table(table, can_read);
    }

    #[test]
    fn text_is_read_into_messages_fields_oneofs_and_enums() {
        let f = proto(
            r#"syntax = "proto3"; package t;
            // a comment
            message User { int32 id = 1; string name = 2; repeated string tags = 3;
              message Inner { bytes b = 1; } enum Kind { K = 0; }
              map<string, int64> m = 4; oneof o { string x = 5; } optional Kind k = 6; }"#,
        );
        assert_eq!(f.package, "t");
        let user = &f.messages["User"];
        assert_eq!(user.fields.len(), 6);
        assert_eq!(user.fields[&3].label, Some(Label::Repeated));
        assert_eq!(user.fields[&1].label, None);
        assert_eq!(user.fields[&4].kind, "map<string,int64>");
        assert_eq!(user.fields[&5].oneof.as_deref(), Some("o"));
        assert!(user.oneofs.contains("o"));
        assert!(f.messages.contains_key("User.Inner"));
        assert!(f.enums.contains("User.Kind"));
        assert_eq!(
            user.fields[&6].kind, "User.Kind",
            "resolved from inside User"
        );
    }

    #[test]
    fn extension_range_options_and_lists_in_aggregate_options_parse() {
        let f = proto(
            r#"syntax = "proto2"; package t;
            message Ext {
              optional string price = 1 [(confluent.field_meta) = { params: [ {key: "precision", value: "8"}, {key: "scale", value: "2"} ] }];
              extensions 1000 to max [declaration = { number: 1000, full_name: ".t.x", type: ".t.X" }];
              option (my.opt) = { list: [1, 2] };
              optional int32 after = 2;
            }"#,
        );
        let ext = &f.messages["Ext"];
        assert_eq!(ext.fields.len(), 2, "{:?}", ext.fields);
        assert_eq!(ext.fields[&2].name, "after");
    }

    #[test]
    fn type_names_resolve_as_protoc_resolves_them() {
        let known: BTreeSet<String> = ["A", "A.B", "E", "A.E"].map(String::from).into();
        let cases = [
            ("B", "A", "A.B"),
            ("E", "A", "A.E"),
            ("E", "A.B", "A.E"),
            ("E", "C", "E"),
            (".p.q.A.B", "C", "A.B"),
            (".p.q.E", "A", "E"),
            ("q.A", "A", "A"),
            ("p.q.A.B", "A", "A.B"),
            ("map<string, B>", "A", "map<string,A.B>"),
            ("other.Imported", "A", "Imported"),
            ("int32", "A", "int32"),
        ];
        for (raw, scope, want) in cases {
            assert_eq!(
                resolve_kind(raw, scope, "p.q", &known),
                want,
                "{raw} in {scope}"
            );
        }
    }

    #[test]
    fn enums_from_referenced_files_are_known() {
        let file = proto("syntax = \"proto3\"; import \"e.proto\"; message M { other.E e = 1; }");
        let as_int = proto("syntax = \"proto3\"; message M { int32 e = 1; }");
        assert!(!can_read(&file, &as_int).is_empty());
        let imported = file.with_imports(&[Referenced {
            name: "e.proto".into(),
            text: "syntax = \"proto3\"; package other; enum E { A = 0; }".into(),
        }]);
        assert!(can_read(&imported, &as_int).is_empty());
    }

    #[test]
    fn imported_message_types_are_compared_through_references() {
        let text =
            "syntax = \"proto3\"; import \"a.proto\"; message M { common.Address home = 1; }";
        let with = |address: &str| {
            proto(text).with_imports(&[Referenced {
                name: "a.proto".into(),
                text: format!(
                    "syntax = \"proto3\"; package common; message Address {{ {address} }}"
                ),
            }])
        };
        let v1 = with("string street = 1;");
        let widened = with("bytes street = 1; int32 number = 2;");
        let retyped = with("double street = 1;");
        assert!(
            can_read(&v1, &widened).is_empty(),
            "{:?}",
            can_read(&v1, &widened)
        );
        let found = can_read(&v1, &retyped);
        assert!(
            found
                .iter()
                .any(|m| m.starts_with("FIELD_SCALAR_KIND_CHANGED: field 1 of 'Address'")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|m| m.starts_with("FIELD_NAMED_TYPE_CHANGED: field 1 of 'M'")),
            "{found:?}"
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(ProtoFile::parse("message {").is_err());
        assert!(ProtoFile::parse("").is_err());
        assert!(ProtoFile::parse("!!!!").is_err());
        assert!(ProtoFile::parse("bm90IGEgZGVzY3JpcHRvcg==").is_err());
    }

    /// Length-delimited field `n` of a hand-built descriptor.
    fn ld(n: u8, bytes: &[u8]) -> Vec<u8> {
        [&[(n << 3) | 2, bytes.len() as u8][..], bytes].concat()
    }

    /// Varint field `n`.
    fn vi(n: u8, v: u8) -> Vec<u8> {
        vec![n << 3, v]
    }

    #[test]
    fn a_serialized_descriptor_is_read_with_oneofs_maps_and_enums() {
        // proto3 file "a.proto", package p: enum E; message M { int32 x = 1; oneof o { string
        // s = 2; } map<string, int64> m = 3; optional int32 y = 4; } with the map entry MEntry.
        let x = [ld(1, b"x"), vi(3, 1), vi(4, 1), vi(5, 5)].concat();
        let s = [ld(1, b"s"), vi(3, 2), vi(4, 1), vi(5, 9), vi(9, 0)].concat();
        let m = [
            ld(1, b"m"),
            vi(3, 3),
            vi(4, 3),
            vi(5, 11),
            ld(6, b".p.M.MEntry"),
        ]
        .concat();
        let y = [
            ld(1, b"y"),
            vi(3, 4),
            vi(4, 1),
            vi(5, 5),
            vi(9, 1),
            [0x88, 0x01, 1].to_vec(),
        ]
        .concat();
        let key = [ld(1, b"key"), vi(3, 1), vi(4, 1), vi(5, 9)].concat();
        let value = [ld(1, b"value"), vi(3, 2), vi(4, 1), vi(5, 3)].concat();
        let entry = [
            ld(1, b"MEntry"),
            ld(2, &key),
            ld(2, &value),
            ld(7, &vi(7, 1)),
        ]
        .concat();
        let msg = [
            ld(1, b"M"),
            ld(2, &x),
            ld(2, &s),
            ld(2, &m),
            ld(2, &y),
            ld(3, &entry),
            ld(8, &ld(1, b"o")),
            ld(8, &ld(1, b"_y")),
        ]
        .concat();
        let file = [
            ld(1, b"a.proto"),
            ld(2, b"p"),
            ld(4, &msg),
            ld(5, &ld(1, b"E")),
            ld(12, b"proto3"),
        ]
        .concat();
        let b64 = base64::engine::general_purpose::STANDARD.encode(file);
        let f = proto(&b64);
        assert_eq!(f.package, "p");
        assert!(f.enums.contains("E"));
        assert_eq!(f.messages.keys().collect::<Vec<_>>(), vec!["M"]);
        let fields = &f.messages["M"].fields;
        assert_eq!(fields[&1].kind, "int32");
        assert_eq!(fields[&1].label, None);
        assert_eq!(fields[&2].oneof.as_deref(), Some("o"));
        assert_eq!(fields[&3].kind, "map<string,int64>");
        assert_eq!(fields[&4].label, Some(Label::Optional));
        assert_eq!(fields[&4].oneof, None);
        let text = proto(
            "syntax = \"proto3\"; package p; enum E { A = 0; } message M { int32 x = 1; oneof o { string s = 2; } map<string, int64> m = 3; optional int32 y = 4; }",
        );
        assert_eq!(f, text);
    }
}
