//! Output formats for consumed records: value only, JSON lines, or a `%`-template.

use serde_json::{json, Value};

/// One consumed record, borrowed from the client's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Record timestamp in ms since the epoch, when the record has one.
    pub timestamp: Option<i64>,
    /// Key bytes; `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value bytes; `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers in record order; duplicates are kept.
    pub headers: &'a [(String, Option<Vec<u8>>)],
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    TimestampMs,
    TimestampRfc3339,
    Headers,
}

/// How `trib consume` prints each record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// One JSON object per line with every field.
    Json,
    /// A template; `value` is the template `%v`.
    Template(Vec<Piece>),
}

/// The escapes accepted in `--format` templates, for help texts and errors.
pub const TEMPLATE_HELP: &str = "%t topic, %p partition, %o offset, %k key, %v value, \
     %T timestamp (ms), %d timestamp (RFC 3339), %h headers (k=v,...), %% a percent sign; \
     \\n and \\t are a newline and a tab";

impl Format {
    /// Parses `--format`: `value`, `json`, or a template (see [`TEMPLATE_HELP`]).
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "json" => Ok(Format::json()),
            "value" => Ok(Format(Kind::Template(vec![Piece::Value]))),
            _ => parse_template(s).map(|t| Format(Kind::Template(t))),
        }
    }

    /// One JSON object per record.
    pub fn json() -> Format {
        Format(Kind::Json)
    }

    /// Renders one record, followed by a newline.
    pub fn render(&self, r: &Record<'_>) -> Vec<u8> {
        let mut out = match &self.0 {
            Kind::Json => serde_json::to_vec(&record_json(r)).unwrap_or_default(),
            Kind::Template(pieces) => render_template(pieces, r),
        };
        out.push(b'\n');
        out
    }
}

fn parse_template(s: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let piece = match chars.next() {
                    Some('%') => {
                        text.push('%');
                        continue;
                    }
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('k') => Piece::Key,
                    Some('v') | Some('s') => Piece::Value,
                    Some('T') => Piece::TimestampMs,
                    Some('d') => Piece::TimestampRfc3339,
                    Some('h') => Piece::Headers,
                    Some(other) => {
                        return Err(format!(
                            "unknown escape %{other} in format; known: {TEMPLATE_HELP}"
                        ))
                    }
                    None => {
                        return Err(format!(
                        "format ends with a lone %; write %% for a percent sign ({TEMPLATE_HELP})"
                    ))
                    }
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
            }
            '\\' => match chars.next() {
                Some('n') => text.push('\n'),
                Some('t') => text.push('\t'),
                Some('r') => text.push('\r'),
                Some('\\') => text.push('\\'),
                Some(other) => {
                    text.push('\\');
                    text.push(other);
                }
                None => text.push('\\'),
            },
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn render_template(pieces: &[Piece], r: &Record<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
            Piece::Topic => out.extend_from_slice(r.topic.as_bytes()),
            Piece::Partition => out.extend_from_slice(r.partition.to_string().as_bytes()),
            Piece::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
            Piece::Key => out.extend_from_slice(r.key.unwrap_or_default()),
            Piece::Value => out.extend_from_slice(r.value.unwrap_or_default()),
            Piece::TimestampMs => {
                if let Some(ts) = r.timestamp {
                    out.extend_from_slice(ts.to_string().as_bytes());
                }
            }
            Piece::TimestampRfc3339 => {
                if let Some(ts) = r.timestamp {
                    out.extend_from_slice(rfc3339_ms(ts).as_bytes());
                }
            }
            Piece::Headers => {
                for (i, (k, v)) in r.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(k.as_bytes());
                    if let Some(v) = v {
                        out.push(b'=');
                        out.extend_from_slice(v);
                    }
                }
            }
        }
    }
    out
}

/// The JSON object for one record; bytes that are not UTF-8 are replaced with U+FFFD.
pub fn record_json(r: &Record<'_>) -> Value {
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": text(v.as_deref()) }))
        .collect();
    json!({
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": text(r.key),
        "value": text(r.value),
        "headers": headers,
    })
}

/// Formats ms since the epoch as RFC 3339 with milliseconds (UTC); negative values as numbers.
pub fn rfc3339_ms(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) => humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(headers: &'a [(String, Option<Vec<u8>>)]) -> Record<'a> {
        Record {
            topic: "orders",
            partition: 2,
            offset: 41,
            timestamp: Some(1_700_000_000_123),
            key: Some(b"k1"),
            value: Some(b"hello"),
            headers,
        }
    }

    fn render(fmt: &str, r: &Record<'_>) -> String {
        let f = Format::parse(fmt).expect("format parses");
        String::from_utf8(f.render(r)).expect("utf-8")
    }

    #[test]
    fn value_format_prints_only_the_value() {
        assert_eq!(render("value", &record(&[])), "hello\n");
    }

    #[test]
    fn templates_substitute_every_field() {
        let h = vec![
            ("a".to_string(), Some(b"1".to_vec())),
            ("b".to_string(), None),
        ];
        let r = record(&h);
        assert_eq!(
            render("%t/%p@%o %k=%v [%h] %T %d 100%%", &r),
            "orders/2@41 k1=hello [a=1,b] 1700000000123 2023-11-14T22:13:20.123Z 100%\n"
        );
    }

    #[test]
    fn templates_understand_backslash_escapes() {
        assert_eq!(render("%k\\t%v\\n--", &record(&[])), "k1\thello\n--\n");
        assert_eq!(render("a\\qb\\", &record(&[])), "a\\qb\\\n");
    }

    #[test]
    fn null_key_and_missing_timestamp_render_empty() {
        let mut r = record(&[]);
        r.key = None;
        r.timestamp = None;
        assert_eq!(render("[%k][%T][%d]", &r), "[][][]\n");
    }

    #[test]
    fn bad_escapes_are_rejected_with_the_list_of_escapes() {
        let e = Format::parse("%q").unwrap_err();
        assert!(e.contains("%q") && e.contains("%v value"), "{e}");
        assert!(Format::parse("50%").is_err());
    }

    #[test]
    fn json_format_carries_every_field() {
        let h = vec![("trace".to_string(), Some(b"x".to_vec()))];
        let out = render("json", &record(&h));
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["topic"], "orders");
        assert_eq!(v["partition"], 2);
        assert_eq!(v["offset"], 41);
        assert_eq!(v["key"], "k1");
        assert_eq!(v["value"], "hello");
        assert_eq!(v["timestamp"], 1_700_000_000_123_i64);
        assert_eq!(v["headers"][0]["key"], "trace");
        assert_eq!(v["headers"][0]["value"], "x");
    }

    #[test]
    fn json_replaces_invalid_utf8_and_keeps_nulls() {
        let mut r = record(&[]);
        r.value = Some(&[0xff, b'a']);
        r.key = None;
        let v = record_json(&r);
        assert_eq!(v["value"], "\u{fffd}a");
        assert!(v["key"].is_null());
    }
}
