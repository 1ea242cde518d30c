//! The message a Protobuf payload was written with. Confluent's serializers put, after the
//! schema id, the path of indexes of that message in the schema's file (`[0]` the first
//! top-level message, `[1, 0]` the first message nested in the second), so one registered
//! file serves several record names (Confluent's `MessageIndexes`).

use base64::Engine;

/// The messages a `.proto` file declares, nested as declared, with its package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoMessages {
    package: Option<String>,
    messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    name: String,
    nested: Vec<Message>,
}

/// How many indexes a payload may claim: far beyond any real nesting, small enough that a
/// hostile count allocates nothing worth mentioning.
const MAX_DEPTH: usize = 64;

impl ProtoMessages {
    /// The messages of `schema`, `.proto` text or a base64 `FileDescriptorProto` (as some
    /// serializers register it); `None` when it declares none or cannot be read.
    pub fn parse(schema: &str) -> Option<ProtoMessages> {
        let trimmed = schema.trim();
        let parsed = if !trimmed.is_empty()
            && !trimmed.contains(char::is_whitespace)
            && !trimmed.contains('{')
        {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .ok()?;
            descriptor::file(&bytes)?
        } else {
            Self::parse_text(schema)
        };
        (!parsed.messages.is_empty()).then_some(parsed)
    }

    fn parse_text(schema: &str) -> ProtoMessages {
        let mut package = None;
        // The blocks open at each point: `Some(message)` for a message (or a proto2 group,
        // which is a nested message too), `None` for any other block.
        let mut open: Vec<Option<Message>> = Vec::new();
        let mut top = Vec::new();
        let tokens = tokens(schema);
        let mut i = 0;
        while let Some(token) = tokens.get(i) {
            match token.as_str() {
                "{" => {
                    let message = match tokens.get(i.wrapping_sub(2)).map(String::as_str) {
                        Some("message") => tokens.get(i - 1).cloned(),
                        _ => group_name(&tokens, i),
                    };
                    open.push(message.map(|name| Message {
                        name,
                        nested: Vec::new(),
                    }));
                }
                "}" => {
                    if let Some(Some(done)) = open.pop() {
                        // Inside a oneof or option block, the enclosing message holds it.
                        match open.iter_mut().rev().find_map(Option::as_mut) {
                            Some(parent) => parent.nested.push(done),
                            None => top.push(done),
                        }
                    }
                }
                "package" if open.is_empty() => package = tokens.get(i + 1).cloned(),
                _ => {}
            }
            i += 1;
        }
        ProtoMessages {
            package,
            messages: top,
        }
    }

    /// The fully qualified name of the message at `path`, if the file has one there.
    pub fn name_at(&self, path: &[i32]) -> Option<String> {
        let (first, rest) = path.split_first()?;
        let mut message = self.messages.get(usize::try_from(*first).ok()?)?;
        let mut name = match &self.package {
            Some(package) => format!("{package}.{}", message.name),
            None => message.name.clone(),
        };
        for index in rest {
            message = message.nested.get(usize::try_from(*index).ok()?)?;
            name.push('.');
            name.push_str(&message.name);
        }
        Some(name)
    }
}

/// The name of a proto2 group opened by the `{` at `brace` (`optional group Name = 1 {`).
fn group_name(tokens: &[String], brace: usize) -> Option<String> {
    let start = brace.checked_sub(4)?;
    match &tokens[start..brace] {
        [group, name, eq, _number] if group == "group" && eq == "=" => Some(name.clone()),
        _ => None,
    }
}

/// Identifiers, numbers and punctuation of `.proto` text, without comments and string
/// literals (which may hold braces).
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' | '\'' => {
                let mut escaped = false;
                for s in chars.by_ref() {
                    if s == c && !escaped {
                        break;
                    }
                    escaped = s == '\\' && !escaped;
                }
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '.' {
                        word.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(word);
            }
            c if c.is_whitespace() => {}
            c => out.push(c.to_string()),
        }
    }
    out
}

/// Message names from a serialized `FileDescriptorProto`: its `package` (field 2) and
/// `message_type`s (field 4), each `DescriptorProto` with its `name` (1) and `nested_type`s
/// (3); every other field is skipped by its wire type.
mod descriptor {
    use super::{Message, ProtoMessages};

    pub(super) fn file(bytes: &[u8]) -> Option<ProtoMessages> {
        let mut out = ProtoMessages::default();
        for (number, value) in fields(bytes)? {
            match (number, value) {
                (2, Some(b)) => out.package = Some(String::from_utf8(b.to_vec()).ok()?),
                (4, Some(b)) => out.messages.push(message(b, 0)?),
                _ => {}
            }
        }
        Some(out)
    }

    fn message(bytes: &[u8], depth: usize) -> Option<Message> {
        if depth > super::MAX_DEPTH {
            return None;
        }
        let mut out = Message {
            name: String::new(),
            nested: Vec::new(),
        };
        for (number, value) in fields(bytes)? {
            match (number, value) {
                (1, Some(b)) => out.name = String::from_utf8(b.to_vec()).ok()?,
                (3, Some(b)) => out.nested.push(message(b, depth + 1)?),
                _ => {}
            }
        }
        Some(out)
    }

    /// A field's number and, when length-delimited, its bytes.
    type Field<'a> = (u64, Option<&'a [u8]>);

    /// Each field of a message's bytes.
    fn fields(mut bytes: &[u8]) -> Option<Vec<Field<'_>>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let tag = varint(&mut bytes)?;
            let value = match tag & 7 {
                0 => varint(&mut bytes).map(|_| None)?,
                1 | 5 => {
                    let n = if tag & 7 == 1 { 8 } else { 4 };
                    bytes = bytes.get(n..)?;
                    None
                }
                2 => {
                    let len = usize::try_from(varint(&mut bytes)?).ok()?;
                    let (value, rest) = (bytes.get(..len)?, bytes.get(len..)?);
                    bytes = rest;
                    Some(value)
                }
                _ => return None,
            };
            out.push((tag >> 3, value));
        }
        Some(out)
    }

    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

/// The message indexes after a payload's magic byte and schema id, as Confluent writes them:
/// a zigzag varint count, then that many zigzag varint indexes; a count of 0 means `[0]`.
/// `None` when they are cut short, negative or claim more than [`MAX_DEPTH`].
pub fn message_indexes(payload: &[u8]) -> Option<Vec<i32>> {
    let mut rest = payload.get(5..)?;
    let count = zigzag_varint(&mut rest)?;
    if count == 0 {
        return Some(vec![0]);
    }
    let count = usize::try_from(count).ok().filter(|n| *n <= MAX_DEPTH)?;
    (0..count)
        .map(|_| zigzag_varint(&mut rest).filter(|i| *i >= 0))
        .collect()
}

/// A zigzag-encoded varint of at most 32 bits, advancing `bytes` past it.
fn zigzag_varint(bytes: &mut &[u8]) -> Option<i32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i32) ^ -((value & 1) as i32));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = r#"
        syntax = "proto3";
        package shop.v1;
        // message Commented { }
        import "google/protobuf/timestamp.proto";
        message Order {
            option (meta) = { doc: "a { brace in a string" };
            message Line { int32 n = 1; }
            enum Status { NEW = 0; }
            oneof pick { string a = 2; int32 b = 3; }
            message Note { message Deep {} }
        }
        enum Top { A = 0; }
        /* message Hidden {} */
        message Refund {}
        service Shop { rpc Buy (Order) returns (Refund) { option idempotency_level = IDEMPOTENT; } }
    "#;

    #[test]
    fn index_paths_name_messages_as_confluent_numbers_them() {
        let messages = ProtoMessages::parse(SHOP).expect("messages");
        for (path, name) in [
            (&[0][..], Some("shop.v1.Order")),
            (&[1], Some("shop.v1.Refund")),
            (&[0, 0], Some("shop.v1.Order.Line")),
            (&[0, 1], Some("shop.v1.Order.Note")),
            (&[0, 1, 0], Some("shop.v1.Order.Note.Deep")),
            (&[2], None),
            (&[0, 2], None),
            (&[-1], None),
            (&[], None),
        ] {
            assert_eq!(messages.name_at(path).as_deref(), name, "{path:?}");
        }
        assert_eq!(
            ProtoMessages::parse("syntax = \"proto3\"; enum E { A = 0; }"),
            None
        );
    }

    #[test]
    fn a_base64_file_descriptor_names_its_messages_too() {
        // package "p"; message A { message B {} } message C {}, as protoc serializes it.
        let b = [0x0a, 0x01, b'B'];
        let a = [&[0x0a, 0x01, b'A', 0x1a, b.len() as u8][..], &b].concat();
        let c = [0x0a, 0x01, b'C'];
        let file = [
            &[0x0a, 0x03][..],
            b"f.p",
            &[0x12, 0x01, b'p', 0x22, a.len() as u8],
            &a,
            &[0x22, c.len() as u8],
            &c,
            // syntax = "proto3" (field 12), skipped.
            &[0x62, 0x06],
            b"proto3",
        ]
        .concat();
        let text = base64::engine::general_purpose::STANDARD.encode(file);
        let messages = ProtoMessages::parse(&text).expect("messages");
        assert_eq!(messages.name_at(&[0, 0]).as_deref(), Some("p.A.B"));
        assert_eq!(messages.name_at(&[1]).as_deref(), Some("p.C"));
        assert_eq!(
            ProtoMessages::parse("bm90IGEgZGVzY3JpcHRvcg"),
            None,
            "not a descriptor"
        );
    }

    #[test]
    fn proto2_groups_are_nested_messages() {
        let text = "syntax = \"proto2\"; message M { optional group G = 1 { optional int32 a = 2; } message N {} }";
        let messages = ProtoMessages::parse(text).expect("messages");
        assert_eq!(messages.name_at(&[0, 0]).as_deref(), Some("M.G"));
        assert_eq!(messages.name_at(&[0, 1]).as_deref(), Some("M.N"));
    }

    #[test]
    fn message_indexes_are_read_as_confluent_writes_them() {
        let header = [0u8, 0, 0, 0, 7];
        let with = |tail: &[u8]| [&header[..], tail].concat();
        assert_eq!(
            message_indexes(&with(&[0, 0x0a])),
            Some(vec![0]),
            "count 0 is [0]"
        );
        // Count 2 (zigzag 4), then 1 (2) and 0 (0).
        assert_eq!(message_indexes(&with(&[4, 2, 0])), Some(vec![1, 0]));
        // Index 200: zigzag 400 = 0x90 0x03.
        assert_eq!(message_indexes(&with(&[2, 0x90, 0x03])), Some(vec![200]));
        for bad in [
            &[][..],
            &[4, 2],
            &[1],
            &[2, 1],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x82, 0x01],
        ] {
            assert_eq!(message_indexes(&with(bad)), None, "{bad:?}");
        }
        assert_eq!(message_indexes(&header[..4]), None);
    }
}
