//! `trib bench produce|consume`: throughput and latency, like Kafka's producer-perf-test and
//! consumer-perf-test, with a live progress line and a summary (or `--json`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::client::{self, find_topic, partition_ids, Settings, TribContext};
use crate::error::{Error, Result};
use crate::output::Output;
use crate::parse::{now_ms, parse_duration, parse_size};
use crate::produce::{Acks, Compression};

/// `trib bench` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Produce records as fast as allowed and report throughput and delivery latency
    Produce(ProduceArgs),
    /// Consume records as fast as possible and report throughput
    Consume(ConsumeArgs),
}

/// Flags of `trib bench produce`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("amount").args(["num_records", "duration"])))]
pub struct ProduceArgs {
    /// Topic to write (created with --partitions if it does not exist)
    pub topic: String,
    /// Value size of each record (e.g. 100, 1KiB)
    #[arg(short = 's', long, default_value = "100", value_parser = parse_size)]
    pub record_size: usize,
    /// Records to send [default: 100000 unless --duration is given]
    #[arg(short, long)]
    pub num_records: Option<u64>,
    /// Send for this long instead of a fixed count (e.g. 30s)
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Cap the send rate in records per second [default: unlimited]
    #[arg(short, long, value_name = "RECORDS_PER_SEC")]
    pub rate: Option<u64>,
    /// Acknowledgements to wait for
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    /// Compression codec [default: none, or what -X compression.codec sets]
    #[arg(short = 'z', long, value_enum)]
    pub compression: Option<Compression>,
    /// Partitions of the topic when trib creates it
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
}

/// Flags of `trib bench consume`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("amount").args(["num_records", "duration"])))]
pub struct ConsumeArgs {
    /// Topic to read
    pub topic: String,
    /// Records to read [default: everything up to the end offsets at start]
    #[arg(short, long)]
    pub num_records: Option<u64>,
    /// Read for this long instead of a fixed count (e.g. 30s)
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Consume as a member of this group (from its committed offsets, or the oldest)
    #[arg(short, long)]
    pub group: Option<String>,
}

/// Runs a `trib bench` subcommand.
pub async fn run(cmd: BenchCommand, settings: &Settings, out: &Output) -> Result<()> {
    if let BenchCommand::Produce(a) = &cmd {
        ensure_topic(settings, out, &a.topic, a.partitions).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let settings2 = settings.clone();
    let out2 = *out;
    let stop2 = stop.clone();
    let mut task = tokio::task::spawn_blocking(move || match cmd {
        BenchCommand::Produce(a) => bench_produce(a, &settings2, &out2, &stop2),
        BenchCommand::Consume(a) => bench_consume(a, &settings2, &out2, &stop2),
    });
    let joined = tokio::select! {
        r = &mut task => r,
        _ = tokio::signal::ctrl_c() => {
            stop.store(true, Ordering::Relaxed);
            task.await
        }
    };
    let summary =
        joined.map_err(|e| Error::io("run the benchmark", std::io::Error::other(e)))??;
    summary.print(out)?;
    match summary.incomplete {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A latency histogram in microseconds with log-linear buckets (128 per power of two, so
/// every percentile is within 1% of the recorded value).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
const MAX_VALUE: u64 = (1 << 40) - 1;

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; bucket(MAX_VALUE) + 1],
            total: 0,
            sum: 0,
            max: 0,
        }
    }

    /// Records one value (clamped to about 12 days).
    pub fn record(&mut self, v: u64) {
        let v = v.min(MAX_VALUE);
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The mean, or 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the upper end of the bucket holding it, capped at
    /// the maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_top(i).min(self.max);
            }
        }
        self.max
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let mantissa = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as usize) * SUB as usize + mantissa as usize
}

fn bucket_top(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = i / SUB + u64::from(SUB_BITS) - 1;
    let mantissa = i % SUB;
    let shift = exp - u64::from(SUB_BITS);
    ((SUB + mantissa + 1) << shift) - 1
}

/// The result of a run.
#[derive(Debug)]
struct Summary {
    kind: &'static str,
    topic: String,
    records: u64,
    bytes: u64,
    failed: u64,
    elapsed: Duration,
    latency: Histogram,
    latency_label: &'static str,
    incomplete: Option<Error>,
}

fn ms(us: f64) -> f64 {
    (us / 10.0).round() / 100.0
}

impl Summary {
    fn rates(&self) -> (f64, f64) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        (
            self.records as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0),
        )
    }

    fn print(&self, out: &Output) -> Result<()> {
        let (rps, mbps) = self.rates();
        let h = &self.latency;
        let q = |x: f64| ms(h.quantile(x) as f64);
        if out.json {
            return out.print_json(&json!({
                "benchmark": self.kind,
                "topic": self.topic,
                "records": self.records,
                "bytes": self.bytes,
                "failed": self.failed,
                "seconds": (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
                "records_per_sec": rps.round(),
                "mib_per_sec": (mbps * 100.0).round() / 100.0,
                "latency_ms": {
                    "measures": self.latency_label,
                    "count": h.count(),
                    "avg": ms(h.mean()),
                    "p50": q(0.5),
                    "p95": q(0.95),
                    "p99": q(0.99),
                    "p999": q(0.999),
                    "max": ms(h.max() as f64),
                },
                "complete": self.incomplete.is_none(),
            }));
        }
        let mut fields = vec![
            (
                "records",
                format!("{} ({} failed)", self.records, self.failed),
            ),
            ("elapsed", format!("{:.2} s", self.elapsed.as_secs_f64())),
            (
                "throughput",
                out.bold(&format!("{rps:.0} records/s, {mbps:.2} MiB/s")),
            ),
        ];
        if h.count() > 0 {
            fields.push((
                "latency",
                format!(
                    "avg {:.2} ms, p50 {:.2}, p95 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2} ms ({})",
                    ms(h.mean()),
                    q(0.5),
                    q(0.95),
                    q(0.99),
                    q(0.999),
                    ms(h.max() as f64),
                    self.latency_label
                ),
            ));
        }
        out.print_fields(&fields)
    }
}

/// Prints a progress line on stderr: redrawn each second on a terminal, a new line every
/// five seconds otherwise.
struct Progress {
    tty: bool,
    started: Instant,
    last: Instant,
    last_count: u64,
    last_bytes: u64,
}

impl Progress {
    fn new(out: &Output) -> Progress {
        let now = Instant::now();
        Progress {
            tty: out.stderr_tty,
            started: now,
            last: now,
            last_count: 0,
            last_bytes: 0,
        }
    }

    fn tick(&mut self, verb: &str, count: u64, bytes: u64) {
        let every = if self.tty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        let since = self.last.elapsed();
        if since < every {
            return;
        }
        let secs = since.as_secs_f64();
        let rps = (count - self.last_count) as f64 / secs;
        let mbps = (bytes - self.last_bytes) as f64 / secs / (1024.0 * 1024.0);
        let line = format!(
            "{:>6.0}s  {count} records {verb}, {rps:.0} records/s ({mbps:.2} MiB/s)",
            self.started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.last = Instant::now();
        self.last_count = count;
        self.last_bytes = bytes;
    }

    fn done(&self) {
        if self.tty && self.last != self.started {
            eprintln!();
        }
    }
}

/// Shared state between the send loop and librdkafka's delivery callbacks.
#[derive(Debug, Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    latency: Mutex<Histogram>,
    first_error: Mutex<Option<String>>,
}

struct BenchContext {
    tracker: TribContext,
    started: Instant,
    deliveries: Arc<Deliveries>,
}

impl ClientContext for BenchContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.tracker.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.tracker.error(error, reason);
    }
}

impl ProducerContext for BenchContext {
    /// Send time in microseconds since the start of the run.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(_) => {
                let now = self.started.elapsed().as_micros() as u64;
                let lat = now.saturating_sub(sent_us as u64);
                self.deliveries
                    .latency
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(lat);
                self.deliveries.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.deliveries.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .deliveries
                    .first_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// A payload of `size` pseudo-random letters, so compression has realistic work to do.
pub fn payload(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

/// Creates the topic when it does not exist.
async fn ensure_topic(
    settings: &Settings,
    out: &Output,
    topic: &str,
    partitions: i32,
) -> Result<()> {
    let (_, md) = client::connect(settings)?;
    match find_topic(&md, topic) {
        Ok(_) => return Ok(()),
        Err(Error::UnknownTopic { .. }) => {}
        Err(e) => return Err(e),
    }
    let admin = settings.admin()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let results = admin
        .create_topics([&new], &settings.admin_options())
        .await
        .map_err(|e| Error::kafka(format!("create topic '{topic}'"), e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(Error::code(format!("create topic '{topic}'"), code)),
        }
    }
    out.note(&format!(
        "created topic {topic} with {partitions} partition(s)"
    ));
    Ok(())
}

fn bench_produce(
    a: ProduceArgs,
    settings: &Settings,
    out: &Output,
    stop: &AtomicBool,
) -> Result<Summary> {
    let deliveries = Arc::new(Deliveries::default());
    let started = Instant::now();
    let producer = bench_producer(&a, settings, started, deliveries.clone())?;
    let limit = record_limit(a.num_records, a.duration);
    let value = payload(a.record_size);
    let mut progress = Progress::new(out);
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if limit.is_some_and(|n| sent >= n) || a.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if let Some(wait) = rate_wait(a.rate, sent, started.elapsed()) {
            std::thread::sleep(wait);
            continue;
        }
        send_record(&producer, &a.topic, &value, started, stop)?;
        sent += 1;
        progress.tick("sent", sent, sent * a.record_size as u64);
    }
    let _ = producer.flush(settings.timeout.max(Duration::from_secs(30)));
    progress.done();
    Ok(produce_summary(a, &deliveries, sent, started.elapsed()))
}

/// A producer that batches for throughput, with the run's acks and compression, reporting
/// deliveries to `deliveries`.
fn bench_producer(
    a: &ProduceArgs,
    settings: &Settings,
    started: Instant,
    deliveries: Arc<Deliveries>,
) -> Result<ThreadedProducer<BenchContext>> {
    let context = BenchContext {
        tracker: TribContext::new(settings.verbose),
        started,
        deliveries,
    };
    let (codec, explicit) = crate::produce::codec_setting(a.compression, settings)?;
    let mut defaults = vec![
        ("linger.ms", "5".to_string()),
        ("queue.buffering.max.messages", "1000000".to_string()),
        (
            "message.timeout.ms",
            crate::produce::millis(settings.timeout.max(Duration::from_secs(30))),
        ),
    ];
    let mut flags = vec![("acks", a.acks.as_config().to_string())];
    if explicit { &mut flags } else { &mut defaults }.push(codec);
    let cfg = settings.config_with(&defaults, &flags);
    settings.create_with(&cfg, context)
}

/// Records to send: the count asked for, none with only a duration, else 100,000.
fn record_limit(num_records: Option<u64>, duration: Option<Duration>) -> Option<u64> {
    match (num_records, duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(100_000),
    }
}

/// How long to pause before the next send to keep to `rate` records per second (in slices of
/// at most 50 ms, so a stop is noticed); `None` to send now.
fn rate_wait(rate: Option<u64>, sent: u64, elapsed: Duration) -> Option<Duration> {
    let rate = rate.filter(|r| *r > 0)?;
    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
    (due > elapsed).then(|| (due - elapsed).min(Duration::from_millis(50)))
}

/// Sends one record stamped with its send time, waiting while the local queue is full (given
/// up, unsent, when the run is stopped meanwhile).
fn send_record(
    producer: &ThreadedProducer<BenchContext>,
    topic: &str,
    value: &[u8],
    started: Instant,
    stop: &AtomicBool,
) -> Result<()> {
    let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(
        topic,
        started.elapsed().as_micros() as usize,
    )
    .payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
            Err((e, _)) => return Err(Error::kafka(format!("produce to '{topic}'"), e)),
        }
    }
}

/// The produce run's result from its delivery reports; failed deliveries make it incomplete.
fn produce_summary(
    a: ProduceArgs,
    deliveries: &Deliveries,
    sent: u64,
    elapsed: Duration,
) -> Summary {
    let delivered = deliveries.delivered.load(Ordering::Relaxed);
    let failed = deliveries.failed.load(Ordering::Relaxed);
    let latency = deliveries
        .latency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let incomplete = (failed > 0).then(|| Error::ProduceFailed {
        failed,
        total: sent,
        first: deliveries
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default(),
    });
    Summary {
        kind: "produce",
        topic: a.topic,
        records: delivered,
        bytes: delivered * a.record_size as u64,
        failed,
        elapsed,
        latency,
        latency_label: "send to acknowledgement",
        incomplete,
    }
}

fn bench_consume(
    a: ConsumeArgs,
    settings: &Settings,
    out: &Output,
    stop: &AtomicBool,
) -> Result<Summary> {
    let (lookup, md) = client::connect(settings)?;
    let t = find_topic(&md, &a.topic)?;
    let partitions = partition_ids(t);
    let target = consume_target(&a, &lookup, settings, &partitions)?;
    if let Some(g) = &a.group {
        client::check_group_support(&lookup, settings, g)?;
    }
    let consumer = bench_consumer(&a, settings, &partitions)?;
    let mut tally = Tally::new();
    let mut progress = Progress::new(out);
    let mut incomplete = None;
    loop {
        if stop.load(Ordering::Relaxed) || target.is_some_and(|n| tally.records >= n) {
            break;
        }
        if let (Some(d), Some(s)) = (a.duration, tally.started) {
            if s.elapsed() >= d {
                break;
            }
        }
        if tally.last_record.elapsed() >= settings.timeout {
            incomplete = target.map(|n| Error::Incomplete {
                got: tally.records,
                wanted: n,
                idle: settings.timeout,
            });
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => tally.add(&m),
            Some(Err(e)) => tolerate_transient(&a.topic, e)?,
        }
        progress.tick("received", tally.records, tally.bytes);
    }
    progress.done();
    Ok(Summary {
        kind: "consume",
        topic: a.topic,
        records: tally.records,
        bytes: tally.bytes,
        failed: 0,
        elapsed: tally.started.map_or(Duration::ZERO, |s| s.elapsed()),
        latency: tally.latency,
        latency_label: "record timestamp to receipt",
        incomplete,
    })
}

/// Records to read: the count asked for; without a count or duration, what is there when the
/// run starts; with only a duration, no limit.
fn consume_target(
    a: &ConsumeArgs,
    lookup: &BaseConsumer<TribContext>,
    settings: &Settings,
    partitions: &[i32],
) -> Result<Option<u64>> {
    if a.num_records.is_some() || a.duration.is_some() {
        return Ok(a.num_records);
    }
    let mut total = 0u64;
    for p in partitions {
        let (low, high) = client::watermarks(lookup, settings, &a.topic, *p)?;
        total += (high - low).max(0) as u64;
    }
    Ok(Some(total))
}

/// A consumer of the topic: in the named group (subscribed, committing), or on its own from
/// the beginning of every partition.
fn bench_consumer(
    a: &ConsumeArgs,
    settings: &Settings,
    partitions: &[i32],
) -> Result<BaseConsumer<TribContext>> {
    let group = a.group.clone().unwrap_or_else(client::ephemeral_group);
    let cfg = settings.config_with(
        &[
            ("enable.auto.commit", a.group.is_some().to_string()),
            ("auto.offset.reset", "earliest".to_string()),
            ("allow.auto.create.topics", "false".to_string()),
        ],
        &[("group.id", group)],
    );
    let consumer: BaseConsumer<TribContext> = settings.create(&cfg)?;
    if a.group.is_some() {
        consumer
            .subscribe(&[&a.topic])
            .map_err(|e| Error::kafka(format!("subscribe to '{}'", a.topic), e))?;
    } else {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition_offset(&a.topic, *p, Offset::Beginning)
                .map_err(|e| Error::kafka("build the assignment", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| Error::kafka(format!("read '{}'", a.topic), e))?;
    }
    Ok(consumer)
}

/// What the consume run has read so far.
struct Tally {
    records: u64,
    /// Key and value bytes.
    bytes: u64,
    /// When the first record arrived (the run's clock starts then).
    started: Option<Instant>,
    /// When the last record arrived, to give up after the idle timeout.
    last_record: Instant,
    /// Record timestamp to receipt, in microseconds.
    latency: Histogram,
}

impl Tally {
    fn new() -> Self {
        Tally {
            records: 0,
            bytes: 0,
            started: None,
            last_record: Instant::now(),
            latency: Histogram::new(),
        }
    }

    fn add(&mut self, m: &BorrowedMessage<'_>) {
        self.started.get_or_insert_with(Instant::now);
        self.last_record = Instant::now();
        self.records += 1;
        self.bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
        if let Some(ts) = m.timestamp().to_millis() {
            self.latency.record((now_ms() - ts).max(0) as u64 * 1000);
        }
    }
}

/// A poll error: the connection errors librdkafka recovers from are waited out; a missing
/// topic or anything else ends the run.
fn tolerate_transient(topic: &str, e: KafkaError) -> Result<()> {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Err(Error::UnknownTopic {
            topic: topic.to_string(),
        }),
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown) => Ok(()),
        _ => Err(Error::kafka(format!("consume from '{topic}'"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 20, 1 << 30, MAX_VALUE]) {
            let b = bucket(v);
            assert!(b >= last, "{v}");
            last = b;
            let top = bucket_top(b);
            assert!(top >= v, "bucket of {v} tops at {top}");
            assert!(top as f64 <= v as f64 * 1.01 + 1.0, "{v} -> {top}");
        }
    }

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let near = |got: u64, want: f64| (got as f64 - want).abs() <= want * 0.01 + 1.0;
        assert!(near(h.quantile(0.5), 5000.0), "{}", h.quantile(0.5));
        assert!(near(h.quantile(0.99), 9900.0), "{}", h.quantile(0.99));
        assert!(near(h.quantile(0.999), 9990.0), "{}", h.quantile(0.999));
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.max(), 10_000);
        assert!((h.mean() - 5000.5).abs() < 1e-9);
    }

    #[test]
    fn empty_histograms_report_zero() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.99), 0);
        assert_eq!(h.mean(), 0.0);
    }

    #[test]
    fn huge_values_are_clamped() {
        let mut h = Histogram::new();
        h.record(u64::MAX);
        assert_eq!(h.max(), MAX_VALUE);
    }

    #[test]
    fn payloads_have_the_requested_size() {
        assert_eq!(payload(0).len(), 0);
        let p = payload(1000);
        assert_eq!(p.len(), 1000);
        assert!(p.iter().all(u8::is_ascii_uppercase));
    }
}
