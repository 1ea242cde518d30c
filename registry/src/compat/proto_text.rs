//! Reads messages, fields, oneofs and enum names from .proto text with a small tokenizer;
//! options, services, extensions and enum bodies are skipped.

use super::protobuf::{Label, ProtoField, ProtoFile, ProtoMessage};
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

    /// Skips a statement up to its `;`, or a block up to its matching `}` (and the `;` an
    /// aggregate option value may end with). Braces inside `[...]` or `(...)` (an option's
    /// aggregate value, as in `extensions 1000 to max [declaration = {...}];`) end nothing.
    fn skip_statement(&mut self) -> Result<(), SchemaError> {
        let (mut braces, mut brackets) = (0usize, 0usize);
        loop {
            let t = self.next()?;
            match t.as_str() {
                "[" | "(" => brackets += 1,
                "]" | ")" => {
                    brackets = brackets
                        .checked_sub(1)
                        .ok_or_else(|| err(format!("unbalanced '{t}'")))?;
                }
                "{" => braces += 1,
                "}" => {
                    braces = braces.checked_sub(1).ok_or_else(|| err("unbalanced '}'"))?;
                    if braces == 0 && brackets == 0 {
                        if self.peek() == Some(";") {
                            self.pos += 1;
                        }
                        return Ok(());
                    }
                }
                ";" if braces == 0 && brackets == 0 => return Ok(()),
                _ => {}
            }
        }
    }

    /// Skips a field's `[...]` options, lists inside aggregate values included.
    fn skip_options(&mut self) -> Result<(), SchemaError> {
        let mut depth = 0usize;
        loop {
            match self.next()?.as_str() {
                "[" => depth += 1,
                "]" => {
                    depth = depth.checked_sub(1).ok_or_else(|| err("unbalanced ']'"))?;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    }

    fn field(
        &mut self,
        first: String,
        msg: &mut ProtoMessage,
        oneof: Option<&str>,
    ) -> Result<(), SchemaError> {
        let label = match first.as_str() {
            "repeated" => Some(Label::Repeated),
            "required" => Some(Label::Required),
            "optional" => Some(Label::Optional),
            _ => None,
        };
        let mut kind = if label.is_some() { self.next()? } else { first };
        let mut label = label;
        if kind == "map" {
            self.expect("<")?;
            let k = self.next()?;
            self.expect(",")?;
            let v = self.next()?;
            self.expect(">")?;
            kind = format!("map<{k},{v}>");
            label = None;
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
            self.skip_options()?;
        }
        self.expect(";")?;
        msg.fields.insert(
            number,
            ProtoField {
                name,
                kind,
                label,
                oneof: oneof.map(str::to_string),
            },
        );
        Ok(())
    }

    /// Records an enum's name within the package (inside message `prefix`) and skips its
    /// body.
    fn enumeration(&mut self, prefix: &str, file: &mut ProtoFile) -> Result<(), SchemaError> {
        let name = self.next()?;
        file.enums.insert(if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        });
        self.skip_statement()
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
                "enum" => self.enumeration(&full, file)?,
                "extend" | "option" | "reserved" | "extensions" => self.skip_statement()?,
                "oneof" => {
                    let oneof = self.next()?;
                    self.expect("{")?;
                    loop {
                        let t = self.next()?;
                        match t.as_str() {
                            "}" => break,
                            "option" => self.skip_statement()?,
                            _ => self.field(t, &mut msg, Some(&oneof))?,
                        }
                    }
                    msg.oneofs.insert(oneof);
                }
                _ => self.field(t, &mut msg, None)?,
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
    let mut statements = 0;
    while let Some(t) = p.peek() {
        let t = t.to_string();
        p.pos += 1;
        statements += 1;
        match t.as_str() {
            "syntax" | "edition" | "import" | "option" => p.skip_statement()?,
            "package" => {
                file.package = p.next()?;
                p.expect(";")?;
            }
            "message" => p.message("", &mut file, 0)?,
            "enum" => p.enumeration("", &mut file)?,
            "service" | "extend" => p.skip_statement()?,
            ";" => {}
            other => return Err(err(format!("unexpected '{other}' at top level"))),
        }
    }
    if statements == 0 {
        return Err(err("empty schema"));
    }
    file.resolve_types();
    Ok(file)
}

/// .proto text rewritten from its tokens: comments and layout dropped, one statement a line,
/// blocks indented by two spaces, single spaces between tokens except around `<`, `>`, `(`,
/// `)`, `[`, `]`, `,` and `;` where the usual style has none.
pub(super) fn canonical(src: &str) -> Result<String, SchemaError> {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut line_start = true;
    let mut prev = String::new();
    for t in tokenize(src)? {
        match t.as_str() {
            "}" => {
                depth = depth.saturating_sub(1);
                if !line_start {
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(depth));
                out.push_str("}\n");
                line_start = true;
            }
            "{" => {
                out.push_str(if line_start { "{\n" } else { " {\n" });
                depth += 1;
                line_start = true;
            }
            ";" => {
                out.push_str(";\n");
                line_start = true;
            }
            _ => {
                if line_start {
                    out.push_str(&"  ".repeat(depth));
                } else if !matches!(t.as_str(), "," | ")" | "]" | ">" | "<")
                    && !matches!(prev.as_str(), "(" | "<" | "[")
                {
                    out.push(' ');
                }
                out.push_str(&t);
                line_start = false;
            }
        }
        prev = t;
    }
    Ok(out.trim_end().to_string())
}
