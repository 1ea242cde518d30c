//! Reads the parts of a serialized FileDescriptorProto that compatibility needs (package,
//! syntax, messages, fields, oneofs, map entries, enum names) with a small wire-format walker,
//! no generated code.

use std::collections::BTreeMap;

use super::protobuf::{last_segment, Label, ProtoField, ProtoFile, ProtoMessage};
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

/// A field as the descriptor gives it, before map entries and synthetic oneofs are settled.
struct RawField {
    number: i64,
    field: ProtoField,
    oneof_index: Option<u64>,
    proto3_optional: bool,
}

fn field(bytes: &[u8], proto3: bool) -> Result<RawField, SchemaError> {
    let (mut name, mut number, mut label, mut ty, mut type_name) =
        (String::new(), 0i64, 1u64, 0u64, String::new());
    let (mut oneof_index, mut proto3_optional) = (None, false);
    for (n, v) in fields(bytes)? {
        match (n, v) {
            (1, Wire::Bytes(b)) => name = string(b)?,
            (3, Wire::Varint(x)) => number = x as i32 as i64,
            (4, Wire::Varint(x)) => label = x,
            (5, Wire::Varint(x)) => ty = x,
            (6, Wire::Bytes(b)) => type_name = string(b)?,
            (9, Wire::Varint(x)) => oneof_index = Some(x),
            (17, Wire::Varint(x)) => proto3_optional = x != 0,
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
        type_name
    };
    let label = match label {
        2 => Some(Label::Required),
        3 => Some(Label::Repeated),
        _ if proto3 && !proto3_optional => None,
        _ => Some(Label::Optional),
    };
    Ok(RawField {
        number,
        field: ProtoField {
            name,
            kind,
            label,
            oneof: None,
        },
        oneof_index,
        proto3_optional,
    })
}

/// Whether a message's options (MessageOptions) set `map_entry`.
fn is_map_entry(options: &[u8]) -> Result<bool, SchemaError> {
    Ok(fields(options)?
        .into_iter()
        .any(|(n, v)| n == 7 && matches!(v, Wire::Varint(1))))
}

/// The parsing state of one file: its syntax and what has been read so far.
struct Reader {
    proto3: bool,
    file: ProtoFile,
}

impl Reader {
    /// Reads a DescriptorProto named under `prefix`; returns its map entry's `map<k,v>` kind
    /// when it is one (entries are not messages of their own in .proto text).
    fn message(
        &mut self,
        bytes: &[u8],
        prefix: &str,
        depth: usize,
    ) -> Result<Option<String>, SchemaError> {
        if depth > 64 {
            return Err(err("messages nested too deeply"));
        }
        let mut name = String::new();
        let mut raw = Vec::new();
        let mut nested = Vec::new();
        let mut oneof_names = Vec::new();
        let mut enums = Vec::new();
        let mut map_entry = false;
        for (n, v) in fields(bytes)? {
            match (n, v) {
                (1, Wire::Bytes(b)) => name = string(b)?,
                (2, Wire::Bytes(b)) => raw.push(field(b, self.proto3)?),
                (3, Wire::Bytes(b)) => nested.push(b),
                (4, Wire::Bytes(b)) => enums.push(b),
                (7, Wire::Bytes(b)) => map_entry = is_map_entry(b)?,
                (8, Wire::Bytes(b)) => oneof_names.push(nested_name(b)?),
                _ => {}
            }
        }
        if map_entry {
            let kind_of = |number| {
                raw.iter()
                    .find(|f| f.number == number)
                    .map_or("unknown", |f| f.field.kind.as_str())
            };
            return Ok(Some(format!("map<{},{}>", kind_of(1), kind_of(2))));
        }
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        for b in enums {
            self.enumeration(b, &full)?;
        }
        let mut entries = BTreeMap::new();
        for b in nested {
            if let Some(map) = self.message(b, &full, depth + 1)? {
                entries.insert(nested_name(b)?, map);
            }
        }
        let mut msg = ProtoMessage::default();
        for f in raw {
            let mut field = f.field;
            if let Some(map) = entries.get(last_segment(&field.kind)) {
                field.kind = map.clone();
                field.label = None;
            }
            if !f.proto3_optional {
                field.oneof = f
                    .oneof_index
                    .and_then(|i| oneof_names.get(usize::try_from(i).ok()?))
                    .cloned();
            }
            if let Some(o) = &field.oneof {
                msg.oneofs.insert(o.clone());
            }
            msg.fields.insert(f.number, field);
        }
        self.file.messages.insert(full, msg);
        Ok(None)
    }

    /// Records an EnumDescriptorProto's name within the package (inside message `prefix`).
    fn enumeration(&mut self, bytes: &[u8], prefix: &str) -> Result<(), SchemaError> {
        let name = nested_name(bytes)?;
        self.file.enums.insert(if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        });
        Ok(())
    }
}

/// The `name` (field 1) of a DescriptorProto, EnumDescriptorProto or OneofDescriptorProto.
fn nested_name(bytes: &[u8]) -> Result<String, SchemaError> {
    for (n, v) in fields(bytes)? {
        if let (1, Wire::Bytes(b)) = (n, v) {
            return string(b);
        }
    }
    Ok(String::new())
}

/// Parses a serialized FileDescriptorProto.
pub(super) fn parse_file(bytes: &[u8]) -> Result<ProtoFile, SchemaError> {
    let mut package = String::new();
    let mut messages = Vec::new();
    let mut enums = Vec::new();
    let mut syntax = String::new();
    let mut any = false;
    for (n, v) in fields(bytes)? {
        any = true;
        match (n, v) {
            (2, Wire::Bytes(b)) => package = string(b)?,
            (4, Wire::Bytes(b)) => messages.push(b),
            (5, Wire::Bytes(b)) => enums.push(b),
            (12, Wire::Bytes(b)) => syntax = string(b)?,
            _ => {}
        }
    }
    if !any {
        return Err(err("empty descriptor"));
    }
    let mut reader = Reader {
        proto3: syntax == "proto3",
        file: ProtoFile {
            package,
            ..ProtoFile::default()
        },
    };
    for b in enums {
        reader.enumeration(b, "")?;
    }
    for b in messages {
        reader.message(b, "", 0)?;
    }
    reader.file.resolve_types();
    Ok(reader.file)
}
