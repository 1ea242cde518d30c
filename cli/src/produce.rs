//! `trib produce TOPIC`: one record per line of stdin.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};
use serde_json::json;

use crate::client::{self, check_partitions, find_topic, Settings, TribContext};
use crate::error::{Error, Result};
use crate::output::Output;
use crate::parse::parse_header;

/// Flags of `trib produce`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    echo hello | trib produce greetings\n  \
    printf 'k1:v1\\nk2:v2\\n' | trib produce orders -k :\n  \
    trib produce orders -H source=cli --acks 1 -z zstd < records.txt")]
pub struct ProduceArgs {
    /// Topic to produce to
    pub topic: String,
    /// Split each line at the first SEP into key and value (e.g. -k : or -k '\t'); lines
    /// without SEP fail
    #[arg(short, long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header for every record, key=value (repeatable)
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, Option<String>)>,
    /// Partition to write to [default: by key hash; records without a key are spread]
    #[arg(short, long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Acknowledgements to wait for
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    /// Compression codec [default: none, or what -X compression.codec sets]
    #[arg(short = 'z', long, value_enum)]
    pub compression: Option<Compression>,
}

/// How many acknowledgements a produce request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Acks {
    /// Every in-sync replica has the record.
    #[value(alias = "-1")]
    All,
    /// The leader has written the record.
    #[value(name = "1")]
    One,
    /// Fire and forget.
    #[value(name = "0")]
    Zero,
}

impl Acks {
    /// The librdkafka `acks` value.
    pub fn as_config(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::One => "1",
            Acks::Zero => "0",
        }
    }
}

/// Record batch compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.codec` value.
    pub fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// librdkafka's codec setting and its alias.
const CODEC_KEYS: [&str; 2] = ["compression.codec", "compression.type"];

/// Where a producer's codec goes in [`Settings::config_with`]: without `-z` it is a default
/// that `-X compression.codec` may override; with `-z` an explicit flag, and an `-X` codec
/// naming another one is refused instead of being silently overridden.
pub fn codec_setting(
    flag: Option<Compression>,
    settings: &Settings,
) -> Result<((&'static str, String), bool)> {
    let Some(codec) = flag else {
        return Ok((
            (CODEC_KEYS[0], Compression::None.as_config().to_string()),
            false,
        ));
    };
    let conflicting = settings
        .overrides
        .iter()
        .find(|(k, v)| CODEC_KEYS.contains(&k.as_str()) && v != codec.as_config());
    if let Some((key, value)) = conflicting {
        return Err(Error::Usage(format!(
            "-z {} and -X {key}={value} name different codecs; give one of them",
            codec.as_config()
        )));
    }
    Ok(((CODEC_KEYS[0], codec.as_config().to_string()), true))
}

/// A duration as a librdkafka millisecond setting (at most `i32::MAX`).
pub fn millis(d: Duration) -> String {
    d.as_millis().clamp(1, i32::MAX as u128).to_string()
}

/// Splits a line into key and value at the first `sep`; `None` if `sep` does not occur.
pub fn split_key<'a>(line: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    if sep.is_empty() {
        return None;
    }
    let at = line.windows(sep.len()).position(|w| w == sep)?;
    Some((&line[..at], &line[at + sep.len()..]))
}

/// Interprets `\t`, `\n` and `\\` in a separator given on the command line.
pub fn unescape(s: &str) -> String {
    s.replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\\\", "\\")
}

/// Strips the line ending (`\n` or `\r\n`).
pub fn trim_line_end(mut line: &[u8]) -> &[u8] {
    if let Some(l) = line.strip_suffix(b"\n") {
        line = l;
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
    }
    line
}

/// Delivery bookkeeping shared by the reader thread and librdkafka's delivery callbacks.
#[derive(Debug, Default)]
struct Tally {
    attempted: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, line: u64, reason: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        eprintln!("error: the record from line {line} was not produced: {reason}");
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(reason);
    }
}

/// Producer context: counts deliveries and reports failures with their line numbers.
struct ProduceContext {
    tracker: TribContext,
    tally: Arc<Tally>,
}

impl ClientContext for ProduceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.tracker.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.tracker.error(error, reason);
    }
}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, line: Box<u64>) {
        match result {
            Ok(_) => {
                self.tally.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.tally.fail(*line, describe_delivery_error(e)),
        }
    }
}

fn describe_delivery_error(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(code) => Error::code("produce", code)
            .to_string()
            .trim_start_matches("could not produce: ")
            .replace('\n', "; "),
        None => e.to_string(),
    }
}

type Prod = ThreadedProducer<ProduceContext>;

/// Runs `trib produce`.
pub async fn run(a: ProduceArgs, settings: &Settings, out: &Output) -> Result<()> {
    let message_timeout = settings.timeout.max(Duration::from_secs(1));
    let (codec, explicit) = codec_setting(a.compression, settings)?;
    let mut defaults = vec![
        ("message.timeout.ms", millis(message_timeout)),
        ("linger.ms", "5".to_string()),
    ];
    let mut flags = vec![("acks", a.acks.as_config().to_string())];
    if explicit { &mut flags } else { &mut defaults }.push(codec);
    let cfg = settings.config_with(&defaults, &flags);
    let tally = Arc::new(Tally::default());
    let context = ProduceContext {
        tracker: TribContext::new(settings.verbose),
        tally: tally.clone(),
    };
    let producer: Arc<Prod> = Arc::new(settings.create_with(&cfg, context)?);
    check_topic(&producer, settings, &a)?;

    let topic = a.topic.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let (producer, tally, stop) = (producer.clone(), tally.clone(), stop.clone());
        // A plain thread: a blocked stdin read must not keep the process alive after Ctrl-C.
        std::thread::spawn(move || {
            let r = read_and_send(&a, &producer, &tally, &stop);
            let _ = tx.send(r);
        });
    }
    let interrupted = tokio::select! {
        r = rx => {
            match r {
                Ok(r) => r?,
                Err(_) => return Err(Error::io("read stdin", std::io::Error::other("reader stopped"))),
            }
            false
        }
        _ = tokio::signal::ctrl_c() => {
            stop.store(true, Ordering::Relaxed);
            true
        }
    };
    if producer.flush(message_timeout).is_err() {
        // Whatever is still queued will not make it: fail those records explicitly.
        producer.purge(PurgeConfig::default().queue().inflight());
        let _ = producer.flush(Duration::from_secs(1));
    }
    let attempted = tally.attempted.load(Ordering::Relaxed);
    let delivered = tally.delivered.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    if out.json {
        out.print_json(&json!({
            "topic": topic,
            "records": attempted,
            "produced": delivered,
            "failed": failed,
            "interrupted": interrupted,
        }))?;
    } else if out.stderr_tty || interrupted {
        out.note(&format!("produced {delivered} of {attempted} record(s)"));
    }
    if failed > 0 {
        let first = tally
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(Error::ProduceFailed {
            failed,
            total: attempted,
            first,
        });
    }
    Ok(())
}

/// Makes sure the topic (and partition) exist before reading stdin. A missing topic is
/// requested once through the producer, which lets brokers that auto-create topics do so.
fn check_topic(producer: &Prod, settings: &Settings, a: &ProduceArgs) -> Result<()> {
    let (_, md) = client::connect(settings)?;
    let md = match find_topic(&md, &a.topic) {
        Ok(_) => md,
        Err(Error::UnknownTopic { .. }) => producer
            .client()
            .fetch_metadata(Some(&a.topic), settings.timeout)
            .map_err(|e| Error::kafka(format!("look up topic '{}'", a.topic), e))?,
        Err(e) => return Err(e),
    };
    let t = find_topic(&md, &a.topic)?;
    if let Some(p) = a.partition {
        check_partitions(t, &[p])?;
    }
    Ok(())
}

/// Reads stdin and enqueues one record per line until stdin ends or `stop` is set.
fn read_and_send(a: &ProduceArgs, producer: &Prod, tally: &Tally, stop: &AtomicBool) -> Result<()> {
    let headers = a.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: v.as_ref(),
        })
    });
    let sep = a.key_separator.as_deref().map(unescape);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    while !stop.load(Ordering::Relaxed) {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io("read stdin", e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        tally.attempted.fetch_add(1, Ordering::Relaxed);
        let line = trim_line_end(&buf);
        let (key, value) = match &sep {
            None => (None, line),
            Some(sep) => match split_key(line, sep.as_bytes()) {
                Some((k, v)) => (Some(k), v),
                None => {
                    tally.fail(line_no, format!("no key separator {sep:?} on this line"));
                    continue;
                }
            },
        };
        let mut record = BaseRecord::with_opaque_to(&a.topic, Box::new(line_no))
            .payload(value)
            .headers(headers.clone());
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = a.partition {
            record = record.partition(p);
        }
        send(producer, record, tally, stop);
    }
    Ok(())
}

/// Enqueues one record, waiting while librdkafka's queue is full.
fn send(
    producer: &Prod,
    mut record: BaseRecord<'_, [u8], [u8], Box<u64>>,
    tally: &Tally,
    stop: &AtomicBool,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                if !stop.load(Ordering::Relaxed) =>
            {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, r)) => {
                tally.fail(*r.delivery_opaque, describe_delivery_error(&e));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_the_first_separator() {
        assert_eq!(split_key(b"k:v:w", b":"), Some((&b"k"[..], &b"v:w"[..])));
        assert_eq!(split_key(b":v", b":"), Some((&b""[..], &b"v"[..])));
        assert_eq!(split_key(b"k::v", b"::"), Some((&b"k"[..], &b"v"[..])));
        assert_eq!(split_key(b"novalue", b":"), None);
        assert_eq!(split_key(b"x", b""), None);
    }

    #[test]
    fn separators_understand_escapes() {
        assert_eq!(unescape("\\t"), "\t");
        assert_eq!(unescape(":"), ":");
    }

    #[test]
    fn line_endings_are_stripped() {
        assert_eq!(trim_line_end(b"a\r\n"), b"a");
        assert_eq!(trim_line_end(b"a\n"), b"a");
        assert_eq!(trim_line_end(b"a"), b"a");
        assert_eq!(trim_line_end(b"a\r"), b"a\r");
    }
}
