//! Pure parsers for command-line values: `key=value` pairs, headers, offset specs, durations
//! and partition lists. Each returns a message suitable for clap's "invalid value" error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where to start reading (or, for `group reset-offsets`, where to move a group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The oldest retained record (`oldest`, `earliest`, `beginning`).
    Oldest,
    /// The end of the log: only records produced from now on (`newest`, `latest`, `end`).
    Newest,
    /// An absolute offset (`N`).
    Absolute(i64),
    /// `N` records before the end of each partition (`-N`).
    FromEnd(i64),
    /// The first record whose timestamp is at or after this time, in ms since the epoch
    /// (`@1700000000000`, `@2024-01-02T03:04:05Z`, `@-15m` for "15 minutes ago").
    Timestamp(i64),
}

/// Parses an offset spec: `oldest|earliest|beginning`, `newest|latest|end`, `N`, `-N`,
/// `@MILLIS`, `@RFC3339` or `@-DURATION` (relative to now).
pub fn parse_offset(s: &str) -> Result<OffsetSpec, String> {
    parse_offset_at(s, now_ms())
}

/// [`parse_offset`] with an explicit "now", so relative timestamps are testable.
pub fn parse_offset_at(s: &str, now_ms: i64) -> Result<OffsetSpec, String> {
    let s = s.trim();
    match s.to_ascii_lowercase().as_str() {
        "oldest" | "earliest" | "beginning" | "start" => return Ok(OffsetSpec::Oldest),
        "newest" | "latest" | "end" => return Ok(OffsetSpec::Newest),
        _ => {}
    }
    if let Some(ts) = s.strip_prefix('@') {
        return parse_timestamp_at(ts, now_ms).map(OffsetSpec::Timestamp);
    }
    if let Some(n) = s.strip_prefix('-') {
        return match n.parse::<i64>() {
            Ok(n) if n > 0 => Ok(OffsetSpec::FromEnd(n)),
            _ => Err(offset_help(s)),
        };
    }
    match s.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(OffsetSpec::Absolute(n)),
        _ => Err(offset_help(s)),
    }
}

fn offset_help(s: &str) -> String {
    format!(
        "'{s}' is not an offset: use oldest, newest, an offset N, -N (N records before the end), \
         or @TIME (@MILLIS, @2024-01-02T03:04:05Z, or @-15m for 15 minutes ago)"
    )
}

/// Parses a point in time: milliseconds since the epoch, an RFC 3339 date-time, or `-DURATION`
/// meaning that long before `now_ms`. Returns milliseconds since the epoch.
pub fn parse_timestamp_at(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Some(ago) = s.strip_prefix('-') {
        let d = humantime::parse_duration(ago)
            .map_err(|e| format!("'-{ago}' is not a duration ({e}); try -15m, -2h or -1day"))?;
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms.saturating_sub(ms).max(0));
    }
    if let Ok(ms) = s.parse::<i64>() {
        return if ms >= 0 {
            Ok(ms)
        } else {
            Err(format!("timestamp {ms} is negative"))
        };
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|_| {
        format!(
            "'{s}' is not a timestamp: use milliseconds since the epoch, an RFC 3339 time such \
             as 2024-01-02T03:04:05Z, or -DURATION such as -15m"
        )
    })?;
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("'{s}' is before 1970"))?
        .as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The current time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses `key=value` (used by `-X` and `--config`). The key must be non-empty; the value may
/// be empty and may itself contain `=`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not key=value")),
    }
}

/// Parses a record header `key=value`; a bare `key` is a header with no value.
pub fn parse_header(s: &str) -> Result<(String, Option<String>), String> {
    match s.split_once('=') {
        Some(("", _)) => Err(format!("header '{s}' has an empty key")),
        Some((k, v)) => Ok((k.to_string(), Some(v.to_string()))),
        None if s.is_empty() => Err("a header needs a key: use key=value".to_string()),
        None => Ok((s.to_string(), None)),
    }
}

/// Parses a human duration such as `500ms`, `10s`, `2m` or `1h30m`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration ({e}); try 500ms, 10s, 2m or 1h"))
}

/// A list of partition numbers given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionList(pub Vec<i32>);

/// [`parse_partitions`] for clap.
pub fn parse_partition_list(s: &str) -> Result<PartitionList, String> {
    parse_partitions(s).map(PartitionList)
}

/// Parses a list of partitions: `0`, `0,2,5` or a range `0-3`, combined freely.
pub fn parse_partitions(s: &str) -> Result<Vec<i32>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("'{part}' is not a partition number or range such as 0-3");
        if let Some((a, b)) = part.split_once('-') {
            let a: i32 = a.trim().parse().map_err(|_| bad())?;
            let b: i32 = b.trim().parse().map_err(|_| bad())?;
            if a < 0 || b < a || b - a > 100_000 {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            let p: i32 = part.parse().map_err(|_| bad())?;
            if p < 0 {
                return Err(bad());
            }
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err("no partitions given".to_string());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A topic, optionally restricted to some partitions: `orders` or `orders:0,2` or `orders:0-3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partitions; `None` means all of them.
    pub partitions: Option<Vec<i32>>,
}

/// Parses `TOPIC` or `TOPIC:PARTITIONS` (see [`parse_partitions`]).
pub fn parse_topic_partitions(s: &str) -> Result<TopicPartitions, String> {
    let (topic, parts) = match s.rsplit_once(':') {
        Some((t, p)) => (t, Some(parse_partitions(p)?)),
        None => (s, None),
    };
    if topic.is_empty() {
        return Err(format!("'{s}' names no topic; use TOPIC or TOPIC:0,1"));
    }
    Ok(TopicPartitions {
        topic: topic.to_string(),
        partitions: parts,
    })
}

/// Parses a byte size such as `100`, `1KiB`, `4k`, `1MB` or `1m` (all multiples are 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size; try 100, 1KiB or 1MiB"))?;
    let mult = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("'{s}' has an unknown unit; use B, KiB or MiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn offset_words_are_case_insensitive() {
        for w in ["oldest", "EARLIEST", "beginning"] {
            assert_eq!(parse_offset_at(w, NOW), Ok(OffsetSpec::Oldest));
        }
        for w in ["newest", "Latest", "end"] {
            assert_eq!(parse_offset_at(w, NOW), Ok(OffsetSpec::Newest));
        }
    }

    #[test]
    fn offset_numbers_are_absolute_or_from_end() {
        assert_eq!(parse_offset_at("42", NOW), Ok(OffsetSpec::Absolute(42)));
        assert_eq!(parse_offset_at("0", NOW), Ok(OffsetSpec::Absolute(0)));
        assert_eq!(parse_offset_at("-10", NOW), Ok(OffsetSpec::FromEnd(10)));
        assert!(parse_offset_at("-0", NOW).is_err());
        assert!(parse_offset_at("--3", NOW).is_err());
        assert!(parse_offset_at("12x", NOW).is_err());
        assert!(parse_offset_at("", NOW).is_err());
        assert!(parse_offset_at("99999999999999999999", NOW).is_err());
    }

    #[test]
    fn offset_timestamps_accept_millis_rfc3339_and_relative() {
        assert_eq!(
            parse_offset_at("@1600000000000", NOW),
            Ok(OffsetSpec::Timestamp(1_600_000_000_000))
        );
        assert_eq!(
            parse_offset_at("@2023-11-14T22:13:20Z", NOW),
            Ok(OffsetSpec::Timestamp(NOW))
        );
        assert_eq!(
            parse_offset_at("@-15m", NOW),
            Ok(OffsetSpec::Timestamp(NOW - 15 * 60 * 1000))
        );
        assert!(parse_offset_at("@yesterday", NOW).is_err());
        assert!(parse_offset_at("@", NOW).is_err());
        assert!(parse_offset_at("@-", NOW).is_err());
    }

    #[test]
    fn relative_timestamps_never_go_below_zero() {
        assert_eq!(parse_timestamp_at("-100years", 1000), Ok(0));
    }

    #[test]
    fn offset_errors_explain_the_accepted_forms() {
        let e = parse_offset_at("soon", NOW).unwrap_err();
        assert!(e.contains("oldest") && e.contains("@TIME"), "{e}");
    }

    #[test]
    fn key_value_splits_on_the_first_equals() {
        assert_eq!(
            parse_key_value("sasl.password=a=b"),
            Ok(("sasl.password".into(), "a=b".into()))
        );
        assert_eq!(parse_key_value("k="), Ok(("k".into(), String::new())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }

    #[test]
    fn headers_may_omit_the_value() {
        assert_eq!(
            parse_header("trace=abc"),
            Ok(("trace".into(), Some("abc".into())))
        );
        assert_eq!(parse_header("flag"), Ok(("flag".into(), None)));
        assert_eq!(parse_header("k="), Ok(("k".into(), Some(String::new()))));
        assert!(parse_header("=v").is_err());
        assert!(parse_header("").is_err());
    }

    #[test]
    fn durations_default_to_seconds() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn partitions_accept_lists_and_ranges() {
        assert_eq!(parse_partitions("3"), Ok(vec![3]));
        assert_eq!(parse_partitions("2,0,2"), Ok(vec![0, 2]));
        assert_eq!(parse_partitions("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert!(parse_partitions("3-1").is_err());
        assert!(parse_partitions("-1").is_err());
        assert!(parse_partitions("a").is_err());
        assert!(parse_partitions(",").is_err());
        assert!(parse_partitions("0-2147483647").is_err());
    }

    #[test]
    fn topics_may_name_partitions() {
        assert_eq!(
            parse_topic_partitions("orders"),
            Ok(TopicPartitions {
                topic: "orders".into(),
                partitions: None
            })
        );
        assert_eq!(
            parse_topic_partitions("orders:0-1,3"),
            Ok(TopicPartitions {
                topic: "orders".into(),
                partitions: Some(vec![0, 1, 3])
            })
        );
        assert!(parse_topic_partitions(":1").is_err());
        assert!(parse_topic_partitions("orders:x").is_err());
    }

    #[test]
    fn sizes_use_binary_multiples() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert!(parse_size("1GB").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999999999999m").is_err());
    }
}
