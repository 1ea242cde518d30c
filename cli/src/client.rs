//! Building librdkafka clients from the global options, and the checks every command starts
//! with: is a broker reachable, does the topic exist.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::Consumer;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::{Metadata, MetadataTopic};

use crate::error::{Error, Result};

/// Connection settings shared by every command (the global flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// How long to wait for the broker in any one operation.
    pub timeout: Duration,
    /// `-X key=value` settings passed to librdkafka verbatim, applied last.
    pub overrides: Vec<(String, String)>,
    /// Print librdkafka's log lines to stderr.
    pub verbose: bool,
}

impl Settings {
    /// The librdkafka configuration for a client of these settings.
    pub fn config(&self) -> ClientConfig {
        self.config_with(&[], &[])
    }

    /// The configuration with a command's `defaults` (which `-X` may override) and the values
    /// of its explicit flags (which win over `-X`).
    pub fn config_with(
        &self,
        defaults: &[(&str, String)],
        flags: &[(&str, String)],
    ) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        // librdkafka accepts socket timeouts of 10 ms to 5 minutes.
        let ms = self.timeout.as_millis().clamp(10, 300_000).to_string();
        cfg.set("bootstrap.servers", &self.brokers)
            .set("client.id", "trib")
            .set("socket.timeout.ms", ms.as_str())
            // Reconnect quickly: a CLI cares about the next few seconds only.
            .set("reconnect.backoff.max.ms", "1000")
            .set_log_level(if self.verbose {
                RDKafkaLogLevel::Debug
            } else {
                RDKafkaLogLevel::Warning
            });
        for (k, v) in defaults {
            cfg.set(*k, v);
        }
        for (k, v) in &self.overrides {
            cfg.set(k, v);
        }
        for (k, v) in flags {
            cfg.set(*k, v);
        }
        cfg
    }

    /// Creates a client of type `T` from `cfg` with a fresh [`TribContext`].
    pub fn create<T>(&self, cfg: &ClientConfig) -> Result<T>
    where
        T: FromClientConfigAndContext<TribContext>,
    {
        self.create_with(cfg, TribContext::new(self.verbose))
    }

    /// Creates a client of type `T` from `cfg` with the given context.
    pub fn create_with<C, T>(&self, cfg: &ClientConfig, context: C) -> Result<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        cfg.create_with_context(context)
            .map_err(|e| Error::kafka("create the client", e))
    }

    /// An admin client.
    pub fn admin(&self) -> Result<AdminClient<TribContext>> {
        self.create(&self.config())
    }

    /// A consumer that never subscribes: used for metadata, watermarks, offset lookups and, with
    /// a group id, for reading and committing a group's offsets.
    pub fn lookup_consumer(&self, group: Option<&str>) -> Result<BaseConsumer<TribContext>> {
        let defaults = [
            ("enable.auto.commit", "false".to_string()),
            ("allow.auto.create.topics", "false".to_string()),
        ];
        let flags: Vec<(&str, String)> = group
            .map(|g| ("group.id", g.to_string()))
            .into_iter()
            .collect();
        self.create(&self.config_with(&defaults, &flags))
    }

    /// Admin request options with the global timeout.
    pub fn admin_options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }
}

/// A group id for a consumer that reads assigned partitions without committing: librdkafka
/// needs one to assign partitions, and it is never joined or committed to.
pub fn ephemeral_group() -> String {
    format!(
        "trib-reader-{}-{}",
        std::process::id(),
        crate::parse::now_ms()
    )
}

/// What the client context has seen in librdkafka's logs and error events.
#[derive(Debug, Default)]
struct Seen {
    /// Brokers (as librdkafka names them) whose connection failed, with the last reason.
    failures: Vec<(String, String)>,
    /// The controller id from the last Metadata response (needs `debug=metadata`).
    controller: Option<i32>,
}

/// The client context of every handle trib creates: it silences librdkafka's own logging
/// (or prints it with `--verbose`) and remembers connection failures and the controller id.
#[derive(Debug)]
pub struct TribContext {
    verbose: bool,
    seen: Mutex<Seen>,
}

impl TribContext {
    /// A context; `verbose` prints librdkafka's log lines to stderr.
    pub fn new(verbose: bool) -> TribContext {
        TribContext {
            verbose,
            seen: Mutex::new(Seen::default()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        // A poisoned lock only means another thread panicked mid-update; the data is still usable.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The controller id seen in a Metadata response, if any.
    pub fn controller(&self) -> Option<i32> {
        self.seen().controller
    }

    /// Connection failures seen so far, as (broker, reason).
    pub fn failures(&self) -> Vec<(String, String)> {
        self.seen().failures.clone()
    }

    fn record(&self, fac: &str, message: &str) {
        if let Some(id) = parse_controller_id(message) {
            self.seen().controller = Some(id);
        }
        if let Some((broker, reason)) = parse_failure(fac, message) {
            let mut seen = self.seen();
            match seen.failures.iter_mut().find(|(b, _)| *b == broker) {
                Some(entry) => entry.1 = reason,
                None => seen.failures.push((broker, reason)),
            }
        }
    }
}

impl ClientContext for TribContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.record(fac, message);
        if self.verbose {
            eprintln!("librdkafka {level:?} {fac}: {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.record("ERROR", reason);
        if self.verbose {
            eprintln!("librdkafka error: {error}: {reason}");
        }
    }
}

impl ConsumerContext for TribContext {}

/// Extracts the controller id from librdkafka's `debug=metadata` line
/// `"...: ClusterId: abc, ControllerId: 1"`.
pub fn parse_controller_id(message: &str) -> Option<i32> {
    let rest = &message[message.find("ControllerId: ")? + "ControllerId: ".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Recognises a connection failure log line (`FAIL` facility):
/// `"127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (...)"`.
/// Returns the broker name and the reason.
pub fn parse_failure(fac: &str, message: &str) -> Option<(String, String)> {
    if fac != "FAIL" && fac != "ERROR" {
        return None;
    }
    let (broker, reason) = message.split_once(": ")?;
    // Error events name no broker when several are down ("1/1 brokers are down").
    if broker.contains(' ') {
        return None;
    }
    Some((broker.to_string(), reason.trim().to_string()))
}

/// Splits the bootstrap list into its brokers.
fn bootstrap_count(brokers: &str) -> usize {
    brokers
        .split(',')
        .filter(|b| !b.trim().is_empty())
        .count()
        .max(1)
}

/// The error for a broker that cannot be reached, named after the kind of failure.
fn unreachable(settings: &Settings, failures: &[(String, String)]) -> Error {
    let detail = failures
        .last()
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| "no answer".to_string());
    let brokers = settings.brokers.clone();
    let lower = detail.to_ascii_lowercase();
    if lower.contains("sasl") || lower.contains("authentication") {
        Error::Authentication { brokers, detail }
    } else if lower.contains("ssl") || lower.contains("tls") || lower.contains("certificate") {
        Error::Tls { brokers, detail }
    } else {
        Error::Unreachable { brokers, detail }
    }
}

/// A lookup consumer and the cluster metadata: the reachability check every command starts with.
pub fn connect(settings: &Settings) -> Result<(BaseConsumer<TribContext>, Metadata)> {
    let consumer = settings.lookup_consumer(None)?;
    let md = metadata(&consumer, settings, None)?;
    Ok((consumer, md))
}

/// Serves the consumer's pending log and error events, so its context sees them. Only for
/// consumers without an assignment: a fetched message would be dropped.
pub fn drain_events(consumer: &BaseConsumer<TribContext>) {
    for _ in 0..1000 {
        if consumer.poll(Duration::from_millis(1)).is_none() {
            return;
        }
    }
}

/// Fetches cluster metadata (all topics, or one), failing fast with [`Error::Unreachable`]
/// (or an authentication/TLS error) once every bootstrap broker has refused the connection,
/// instead of waiting out the whole timeout.
pub fn metadata(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    topic: Option<&str>,
) -> Result<Metadata> {
    let client = consumer.client();
    let start = Instant::now();
    let slice = Duration::from_millis(250);
    let wanted = bootstrap_count(&settings.brokers);
    loop {
        let left = settings.timeout.saturating_sub(start.elapsed());
        match client.fetch_metadata(topic, slice.min(left).max(Duration::from_millis(1))) {
            Ok(md) => {
                drain_events(consumer);
                return Ok(md);
            }
            Err(e) => {
                let code = e.rdkafka_error_code();
                let transient = matches!(
                    code,
                    Some(RDKafkaErrorCode::OperationTimedOut)
                        | Some(RDKafkaErrorCode::BrokerTransportFailure)
                        | Some(RDKafkaErrorCode::AllBrokersDown)
                );
                if !transient {
                    return Err(Error::kafka("fetch cluster metadata", e));
                }
            }
        }
        drain_events(consumer);
        let failures = client.context().failures();
        // A name can resolve to several addresses (localhost: ::1, then 127.0.0.1) and
        // librdkafka tries them one by one, about 100 ms apart: give it a second before
        // treating "every broker failed once" as unreachable.
        let all_failed = failures.len() >= wanted && start.elapsed() >= Duration::from_secs(1);
        let fatal = failures.iter().any(|(_, r)| {
            let r = r.to_ascii_lowercase();
            r.contains("authentication") || r.contains("ssl") || r.contains("apiversion")
        });
        if all_failed || fatal || start.elapsed() >= settings.timeout {
            if failures.is_empty() {
                return Err(Error::Timeout {
                    action: format!("fetch cluster metadata from {}", settings.brokers),
                    timeout: settings.timeout,
                });
            }
            return Err(unreachable(settings, &failures));
        }
    }
}

/// Fails with a clear error when the broker has no consumer group support, instead of letting
/// librdkafka wait forever for a group coordinator. Other errors are left to the join itself.
pub fn check_group_support(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    group: &str,
) -> Result<()> {
    match consumer.fetch_group_list(Some(group), settings.timeout) {
        Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature) => {
            Err(Error::code(
                format!("join consumer group '{group}'"),
                RDKafkaErrorCode::UnsupportedFeature,
            ))
        }
        _ => Ok(()),
    }
}

/// Looks up one topic in `md`, or fails with [`Error::UnknownTopic`].
pub fn find_topic<'a>(md: &'a Metadata, topic: &str) -> Result<&'a MetadataTopic> {
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| Error::UnknownTopic {
            topic: topic.to_string(),
        })?;
    match t.error() {
        None => Ok(t),
        Some(e) => {
            let code = RDKafkaErrorCode::from(e);
            if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                Err(Error::UnknownTopic {
                    topic: topic.to_string(),
                })
            } else {
                Err(Error::code(
                    format!("read metadata of topic '{topic}'"),
                    code,
                ))
            }
        }
    }
}

/// The partition ids of a topic, sorted.
pub fn partition_ids(t: &MetadataTopic) -> Vec<i32> {
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    ids
}

/// Checks that every requested partition exists in the topic.
pub fn check_partitions(t: &MetadataTopic, wanted: &[i32]) -> Result<()> {
    let ids = partition_ids(t);
    for p in wanted {
        if !ids.contains(p) {
            return Err(Error::UnknownPartition {
                topic: t.name().to_string(),
                partition: *p,
                count: ids.len(),
            });
        }
    }
    Ok(())
}

/// Whether a topic is internal (`__consumer_offsets` and the like).
pub fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

/// Low and high watermarks of one partition, with the operation named in errors.
pub fn watermarks(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64)> {
    use rdkafka::consumer::Consumer;
    consumer
        .fetch_watermarks(topic, partition, settings.timeout)
        .map_err(|e| Error::kafka(format!("read the offsets of {topic}/{partition}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_id_is_read_from_the_metadata_debug_line() {
        assert_eq!(
            parse_controller_id("127.0.0.1:9092/0: ClusterId: abc, ControllerId: 3"),
            Some(3)
        );
        assert_eq!(
            parse_controller_id("ClusterId: , ControllerId: -1"),
            Some(-1)
        );
        assert_eq!(parse_controller_id("ControllerId update 1 -> 2"), None);
        assert_eq!(parse_controller_id("nothing here"), None);
    }

    #[test]
    fn connection_failures_name_the_broker() {
        assert_eq!(
            parse_failure(
                "FAIL",
                "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"
            ),
            Some((
                "127.0.0.1:1/bootstrap".to_string(),
                "Connect to ipv4#127.0.0.1:1 failed: Connection refused".to_string()
            ))
        );
        assert_eq!(parse_failure("METADATA", "a: b"), None);
        assert_eq!(parse_failure("ERROR", "1/1 brokers are down"), None);
    }

    #[test]
    fn failure_kind_picks_the_error() {
        let s = Settings {
            brokers: "b:1".into(),
            timeout: Duration::from_secs(1),
            overrides: vec![],
            verbose: false,
        };
        let f = |r: &str| vec![("b:1/bootstrap".to_string(), r.to_string())];
        assert_eq!(
            unreachable(&s, &f("SASL authentication error: bad password")).kind(),
            "authentication"
        );
        assert_eq!(unreachable(&s, &f("SSL handshake failed")).kind(), "tls");
        assert_eq!(
            unreachable(&s, &f("Connection refused")).kind(),
            "unreachable"
        );
    }

    #[test]
    fn any_timeout_makes_a_valid_client_config() {
        for timeout in [
            Duration::from_millis(1),
            Duration::from_secs(3600 * 24 * 365),
        ] {
            let s = Settings {
                brokers: "127.0.0.1:1".into(),
                timeout,
                overrides: vec![],
                verbose: false,
            };
            assert!(s.lookup_consumer(None).is_ok(), "{timeout:?}");
        }
    }

    #[test]
    fn bootstrap_lists_are_counted() {
        assert_eq!(bootstrap_count("a:1,b:2"), 2);
        assert_eq!(bootstrap_count(""), 1);
        assert_eq!(bootstrap_count("a:1,,"), 1);
    }
}
