//! Protobuf schemas: reading the messages and fields of a .proto file, given as text or as the
//! base64 FileDescriptorProto the Confluent serializers register, and checking compatibility by
//! field number as the wire format does. Checked: a message removed, a field number whose type
//! changes outside the wire-compatible groups (int32/uint32/int64/uint64/bool, sint32/sint64,
//! fixed32/sfixed32, fixed64/sfixed64, string/bytes), repeated made singular or the reverse,
//! and proto2 required fields added or removed. Removing an optional field (its number read
//! as unknown) is compatible, as it is on the wire.

use std::collections::BTreeMap;

use base64::Engine;

use crate::schema::SchemaError;

/// The messages of one .proto file, by full name (`package.Outer.Inner`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoFile {
    /// Every message, nested ones included.
    pub messages: BTreeMap<String, ProtoMessage>,
}

/// The fields of a message, by number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoMessage {
    /// Field number to field.
    pub fields: BTreeMap<i64, ProtoField>,
}

/// What matters about a field for compatibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoField {
    /// Its name, for messages.
    pub name: String,
    /// A scalar type name, or a message or enum type's last name segment, or `map<k,v>`.
    pub kind: String,
    /// `repeated` (maps count as repeated).
    pub repeated: bool,
    /// proto2 `required`.
    pub required: bool,
}

impl ProtoFile {
    /// Reads a .proto text or a base64 FileDescriptorProto.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let trimmed = text.trim();
        if !trimmed.is_empty() && !trimmed.contains(char::is_whitespace) && !trimmed.contains('{') {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .map_err(|e| SchemaError::Protobuf(format!("not .proto text nor base64: {e}")))?;
            return descriptor::parse_file(&bytes);
        }
        text::parse_file(text)
    }
}

fn scalar_group(kind: &str) -> Option<u8> {
    Some(match kind {
        "int32" | "uint32" | "int64" | "uint64" | "bool" => 1,
        "sint32" | "sint64" => 2,
        "fixed32" | "sfixed32" => 3,
        "fixed64" | "sfixed64" => 4,
        "string" | "bytes" => 5,
        "double" => 6,
        "float" => 7,
        _ => return None,
    })
}

fn kinds_compatible(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (scalar_group(a), scalar_group(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The reasons data written with `writer` cannot be read with `reader`; empty when it can.
pub fn can_read(writer: &ProtoFile, reader: &ProtoFile) -> Vec<String> {
    let mut out = Vec::new();
    for (name, w) in &writer.messages {
        let Some(r) = reader.messages.get(name) else {
            out.push(format!("MESSAGE_REMOVED: message '{name}'"));
            continue;
        };
        for (number, wf) in &w.fields {
            match r.fields.get(number) {
                None if wf.required => out.push(format!(
                    "REQUIRED_FIELD_REMOVED: '{name}.{}' ({number})",
                    wf.name
                )),
                None => {}
                Some(rf) => {
                    if !kinds_compatible(&wf.kind, &rf.kind) {
                        out.push(format!(
                            "FIELD_TYPE_CHANGED: field {number} of '{name}' was {} and is {}",
                            wf.kind, rf.kind
                        ));
                    }
                    if wf.repeated != rf.repeated {
                        out.push(format!(
                            "FIELD_KIND_CHANGED: field {number} of '{name}' changed cardinality"
                        ));
                    }
                }
            }
        }
        for (number, rf) in &r.fields {
            if rf.required && !w.fields.get(number).is_some_and(|f| f.required) {
                out.push(format!(
                    "REQUIRED_FIELD_ADDED: '{name}.{}' ({number})",
                    rf.name
                ));
            }
        }
    }
    out
}

/// Reads the parts of a serialized FileDescriptorProto that compatibility needs, with a small
/// wire-format walker (no generated code).
mod descriptor {
    use super::{ProtoField, ProtoFile, ProtoMessage};
    use crate::schema::SchemaError;

    enum Wire<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Fixed,
    }

    fn err(what: &str) -> SchemaError {
        SchemaError::Protobuf(format!("malformed FileDescriptorProto: {what}"))
    }

    fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, SchemaError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *buf.get(*pos).ok_or_else(|| err("truncated varint"))?;
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(err("varint too long"))
    }

    fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, SchemaError> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < buf.len() {
            let tag = varint(buf, &mut pos)?;
            let value = match tag & 7 {
                0 => Wire::Varint(varint(buf, &mut pos)?),
                1 | 5 => {
                    let n = if tag & 7 == 1 { 8 } else { 4 };
                    pos = pos
                        .checked_add(n)
                        .filter(|p| *p <= buf.len())
                        .ok_or_else(|| err("truncated fixed"))?;
                    Wire::Fixed
                }
                2 => {
                    let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| err("length"))?;
                    let end = pos
                        .checked_add(len)
                        .filter(|e| *e <= buf.len())
                        .ok_or_else(|| err("truncated bytes"))?;
                    let bytes = &buf[pos..end];
                    pos = end;
                    Wire::Bytes(bytes)
                }
                _ => return Err(err("unsupported wire type")),
            };
            out.push((tag >> 3, value));
        }
        Ok(out)
    }

    fn string(bytes: &[u8]) -> Result<String, SchemaError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| err("invalid UTF-8"))
    }

    const SCALARS: [&str; 19] = [
        "", "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string",
        "group", "message", "bytes", "uint32", "enum", "sfixed32", "sfixed64", "sint32", "sint64",
    ];

    fn field(bytes: &[u8]) -> Result<(i64, ProtoField), SchemaError> {
        let (mut name, mut number, mut label, mut ty, mut type_name) =
            (String::new(), 0i64, 1u64, 0u64, String::new());
        for (n, v) in fields(bytes)? {
            match (n, v) {
                (1, Wire::Bytes(b)) => name = string(b)?,
                (3, Wire::Varint(x)) => number = x as i32 as i64,
                (4, Wire::Varint(x)) => label = x,
                (5, Wire::Varint(x)) => ty = x,
                (6, Wire::Bytes(b)) => type_name = string(b)?,
                _ => {}
            }
        }
        let kind = if type_name.is_empty() {
            SCALARS
                .get(ty as usize)
                .copied()
                .unwrap_or("unknown")
                .to_string()
        } else {
            type_name.rsplit('.').next().unwrap_or_default().to_string()
        };
        Ok((
            number,
            ProtoField {
                name,
                kind,
                repeated: label == 3,
                required: label == 2,
            },
        ))
    }

    fn message(
        bytes: &[u8],
        prefix: &str,
        file: &mut ProtoFile,
        depth: usize,
    ) -> Result<(), SchemaError> {
        if depth > 64 {
            return Err(err("messages nested too deeply"));
        }
        let mut name = String::new();
        let mut msg = ProtoMessage::default();
        let mut nested = Vec::new();
        for (n, v) in fields(bytes)? {
            match (n, v) {
                (1, Wire::Bytes(b)) => name = string(b)?,
                (2, Wire::Bytes(b)) => {
                    let (number, f) = field(b)?;
                    msg.fields.insert(number, f);
                }
                (3, Wire::Bytes(b)) => nested.push(b),
                _ => {}
            }
        }
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        for b in nested {
            message(b, &full, file, depth + 1)?;
        }
        file.messages.insert(full, msg);
        Ok(())
    }

    /// Parses a serialized FileDescriptorProto.
    pub(super) fn parse_file(bytes: &[u8]) -> Result<ProtoFile, SchemaError> {
        let mut package = String::new();
        let mut messages = Vec::new();
        let mut any = false;
        for (n, v) in fields(bytes)? {
            any = true;
            match (n, v) {
                (2, Wire::Bytes(b)) => package = string(b)?,
                (4, Wire::Bytes(b)) => messages.push(b),
                _ => {}
            }
        }
        if !any {
            return Err(err("empty descriptor"));
        }
        let mut file = ProtoFile::default();
        for b in messages {
            message(b, &package, &mut file, 0)?;
        }
        Ok(file)
    }
}

/// Reads messages and fields from .proto text with a small tokenizer; options, services,
/// enums' bodies and extensions are skipped.
mod text {
    use super::{ProtoField, ProtoFile, ProtoMessage};
    use crate::schema::SchemaError;

    fn err(what: impl std::fmt::Display) -> SchemaError {
        SchemaError::Protobuf(what.to_string())
    }

    fn tokenize(src: &str) -> Result<Vec<String>, SchemaError> {
        let chars: Vec<char> = src.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
            } else if c == '/' && chars.get(i + 1) == Some(&'/') {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c == '/' && chars.get(i + 1) == Some(&'*') {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(err("unterminated comment"));
                }
                i += 2;
            } else if c == '"' || c == '\'' {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(err("unterminated string"));
                }
                i += 1;
                out.push(chars[start..i].iter().collect());
            } else if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '+' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_.-+".contains(chars[i])) {
                    i += 1;
                }
                out.push(chars[start..i].iter().collect());
            } else if "{}[]()<>;=,:".contains(c) {
                out.push(c.to_string());
                i += 1;
            } else {
                return Err(err(format!("unexpected character '{c}'")));
            }
        }
        Ok(out)
    }

    struct Parser {
        tokens: Vec<String>,
        pos: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<&str> {
            self.tokens.get(self.pos).map(String::as_str)
        }

        fn next(&mut self) -> Result<String, SchemaError> {
            let t = self
                .tokens
                .get(self.pos)
                .cloned()
                .ok_or_else(|| err("unexpected end of file"))?;
            self.pos += 1;
            Ok(t)
        }

        fn expect(&mut self, want: &str) -> Result<(), SchemaError> {
            let t = self.next()?;
            if t == want {
                Ok(())
            } else {
                Err(err(format!("expected '{want}', found '{t}'")))
            }
        }

        /// Skips a statement up to its `;`, or a block up to its matching `}`.
        fn skip_statement(&mut self) -> Result<(), SchemaError> {
            let mut depth = 0usize;
            loop {
                let t = self.next()?;
                match t.as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth = depth.checked_sub(1).ok_or_else(|| err("unbalanced '}'"))?;
                        if depth == 0 {
                            return Ok(());
                        }
                    }
                    ";" if depth == 0 => return Ok(()),
                    _ => {}
                }
            }
        }

        fn field(
            &mut self,
            first: String,
            msg: &mut ProtoMessage,
            in_oneof: bool,
        ) -> Result<(), SchemaError> {
            let (mut repeated, mut required, mut kind) = (false, false, first);
            match kind.as_str() {
                "repeated" => repeated = true,
                "required" => required = true,
                "optional" => {}
                _ => {}
            }
            if matches!(kind.as_str(), "repeated" | "required" | "optional") {
                kind = self.next()?;
            }
            if kind == "map" {
                self.expect("<")?;
                let k = self.next()?;
                self.expect(",")?;
                let v = self.next()?;
                self.expect(">")?;
                kind = format!("map<{k},{}>", v.rsplit('.').next().unwrap_or_default());
                repeated = true;
            } else if kind == "group" {
                return Err(err("proto2 groups are not supported"));
            }
            let name = self.next()?;
            self.expect("=")?;
            let number: i64 = self
                .next()?
                .parse()
                .map_err(|_| err(format!("field '{name}' has no valid number")))?;
            if self.peek() == Some("[") {
                while self.next()? != "]" {}
            }
            self.expect(";")?;
            let _ = in_oneof;
            let kind = kind.rsplit('.').next().unwrap_or_default().to_string();
            msg.fields.insert(
                number,
                ProtoField {
                    name,
                    kind,
                    repeated,
                    required,
                },
            );
            Ok(())
        }

        fn message(
            &mut self,
            prefix: &str,
            file: &mut ProtoFile,
            depth: usize,
        ) -> Result<(), SchemaError> {
            if depth > 64 {
                return Err(err("messages nested too deeply"));
            }
            let name = self.next()?;
            let full = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            self.expect("{")?;
            let mut msg = ProtoMessage::default();
            loop {
                let t = self.next()?;
                match t.as_str() {
                    "}" => break,
                    ";" => {}
                    "message" => self.message(&full, file, depth + 1)?,
                    "enum" | "extend" | "option" | "reserved" | "extensions" => {
                        self.skip_statement()?
                    }
                    "oneof" => {
                        self.next()?;
                        self.expect("{")?;
                        loop {
                            let t = self.next()?;
                            match t.as_str() {
                                "}" => break,
                                "option" => self.skip_statement()?,
                                _ => self.field(t, &mut msg, true)?,
                            }
                        }
                    }
                    _ => self.field(t, &mut msg, false)?,
                }
            }
            file.messages.insert(full, msg);
            Ok(())
        }
    }

    /// Parses .proto text.
    pub(super) fn parse_file(src: &str) -> Result<ProtoFile, SchemaError> {
        let mut p = Parser {
            tokens: tokenize(src)?,
            pos: 0,
        };
        let mut file = ProtoFile::default();
        let mut package = String::new();
        let mut statements = 0;
        while let Some(t) = p.peek() {
            let t = t.to_string();
            p.pos += 1;
            statements += 1;
            match t.as_str() {
                "syntax" | "edition" | "import" | "option" => p.skip_statement()?,
                "package" => {
                    package = p.next()?;
                    p.expect(";")?;
                }
                "message" => p.message(&package.clone(), &mut file, 0)?,
                "enum" | "service" | "extend" => p.skip_statement()?,
                ";" => {}
                other => return Err(err(format!("unexpected '{other}' at top level"))),
            }
        }
        if statements == 0 {
            return Err(err("empty schema"));
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(text: &str) -> ProtoFile {
        match ProtoFile::parse(text) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    const V1: &str = r#"syntax = "proto3"; package t;
        // a comment
        message User { int32 id = 1; string name = 2; repeated string tags = 3;
          message Inner { bytes b = 1; } map<string, int64> m = 4; oneof o { string x = 5; } }"#;

    #[test]
    fn text_is_read_into_messages_and_fields() {
        let f = proto(V1);
        let user = &f.messages["t.User"];
        assert_eq!(user.fields.len(), 5);
        assert!(user.fields[&3].repeated);
        assert_eq!(user.fields[&4].kind, "map<string,int64>");
        assert!(f.messages.contains_key("t.User.Inner"));
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(ProtoFile::parse("message {").is_err());
        assert!(ProtoFile::parse("").is_err());
        assert!(ProtoFile::parse("!!!!").is_err());
        assert!(ProtoFile::parse("bm90IGEgZGVzY3JpcHRvcg==").is_err());
    }

    #[test]
    fn compatibility_by_field_number() {
        let v1 = proto(V1);
        let removed = proto(
            r#"package t; message User { int32 id = 1; repeated string tags = 3; map<string,int64> m = 4; string x = 5; message Inner { bytes b = 1; } }"#,
        );
        assert!(
            can_read(&v1, &removed).is_empty(),
            "{:?}",
            can_read(&v1, &removed)
        );
        let retyped =
            proto(r#"package t; message User { int32 id = 1; double name = 2; } message Inner {}"#);
        assert!(!can_read(&v1, &retyped).is_empty());
        let widened = proto(
            r#"package t; message User { int64 id = 1; bytes name = 2; repeated string tags = 3; map<string,int64> m = 4; string x = 5; message Inner { bytes b = 1; } }"#,
        );
        assert!(
            can_read(&v1, &widened).is_empty(),
            "{:?}",
            can_read(&v1, &widened)
        );
        let singular =
            proto(r#"package t; message User { string tags = 3; message Inner { bytes b = 1; } }"#);
        assert!(!can_read(&v1, &singular).is_empty());
    }

    #[test]
    fn a_serialized_descriptor_is_read() {
        // FileDescriptorProto { name: "a.proto", package: "p", message_type: [{ name: "M",
        // field: [{ name: "x", number: 1, label: OPTIONAL, type: INT32 }] }] }
        let field = [&[0x0a, 1, b'x', 0x18, 1, 0x20, 1, 0x28, 5][..]].concat();
        let msg = [&[0x0a, 1, b'M', 0x12, field.len() as u8][..], &field].concat();
        let file = [
            &[0x0a, 7][..],
            b"a.proto",
            &[0x12, 1, b'p', 0x22, msg.len() as u8],
            &msg,
        ]
        .concat();
        let b64 = base64::engine::general_purpose::STANDARD.encode(file);
        let f = proto(&b64);
        assert_eq!(f.messages["p.M"].fields[&1].kind, "int32");
    }
}
