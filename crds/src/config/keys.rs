//! Every Kafka configuration key Tributary knows, defined once as Kafka's `LogConfig` and
//! `KafkaConfig` define theirs: name, type, what a value must look like, and for a topic key
//! its documentation and the dynamic broker key that is its default. The KafkaTopic and
//! KafkaCluster CRDs, the operator's validation and the broker's config APIs all read these
//! tables, so a key added here is accepted and checked the same way at every door.

/// Kafka's config value types, as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// true/false.
    Boolean = 1,
    /// Free string with a per-key check.
    String = 2,
    /// 32-bit integer.
    Int = 3,
    /// 64-bit integer.
    Long = 5,
    /// Floating point.
    Double = 6,
    /// Comma-separated list.
    List = 7,
    /// A secret: described as sensitive, its value never sent.
    Password = 9,
}

/// What a value of a key must look like, beyond parsing as its [`ConfigType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Nothing more than the type (true/false for a Boolean).
    Type,
    /// An integer of the key's type, at least this (Kafka's `atLeast`; -1 and -2 are the
    /// "unlimited" and "as the total" of retention keys).
    AtLeast(i64),
    /// A number from 0 to 1.
    Ratio,
    /// One of these values, exactly.
    OneOf(&'static [&'static str]),
    /// One of these values, in any case.
    OneOfAnyCase(&'static [&'static str]),
    /// `delete` and `compact` in any order, or nothing (KIP-1161).
    CleanupPolicy,
    /// Empty, `*`, or `partition:broker` pairs.
    ThrottledReplicas,
    /// A Kafka release or inter-broker protocol version: `0.10.0`, `3.0-IV1`.
    KafkaVersion,
    /// `classic`, optionally with `consumer` (KIP-848); `classic` always stays on.
    RebalanceProtocols,
    /// One or more of the KIP-848 server assignors.
    Assignors,
    /// `http://` or `https://` URLs with a host, separated by commas.
    HttpUrls,
}

/// The subject name strategies of Confluent's schema validation, by short name or by the
/// class name Confluent Server takes.
const SUBJECT_NAME_STRATEGIES: &[&str] = &[
    "TopicNameStrategy",
    "RecordNameStrategy",
    "TopicRecordNameStrategy",
    "io.confluent.kafka.serializers.subject.TopicNameStrategy",
    "io.confluent.kafka.serializers.subject.RecordNameStrategy",
    "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
];

/// A topic configuration key (Kafka's `LogConfig`).
#[derive(Debug)]
pub struct TopicKey {
    /// Kafka's key name.
    pub name: &'static str,
    /// Value type.
    pub kind: ConfigType,
    /// What a value must look like.
    pub check: Check,
    /// One-line documentation (DescribeConfigs v3+ include_documentation).
    pub doc: &'static str,
    /// The dynamic broker config that is its default (Kafka's `DynamicLogConfig`), if any.
    pub broker_key: Option<&'static str>,
}

const fn topic(
    name: &'static str,
    kind: ConfigType,
    check: Check,
    broker_key: Option<&'static str>,
    doc: &'static str,
) -> TopicKey {
    TopicKey {
        name,
        kind,
        check,
        doc,
        broker_key,
    }
}

/// Kafka's topic compression codecs: `none` is a producer's setting, not a topic's.
const COMPRESSION: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];

use Check::{AtLeast, CleanupPolicy, KafkaVersion, OneOf, Ratio, ThrottledReplicas, Type};
use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

/// Every topic config key the broker serves and a KafkaTopic may hold, in Kafka's order:
/// name, type, check, the dynamic broker key that defaults it, documentation.
#[rustfmt::skip]
pub const TOPIC_KEYS: &[TopicKey] = &[
    topic("cleanup.policy", List, CleanupPolicy, Some("log.cleanup.policy"),
        "delete and/or compact old segments"),
    topic("compression.type", Str, OneOf(COMPRESSION), Some("compression.type"),
        "final compression of stored batches"),
    topic("confluent.key.schema.validation", Boolean, Type, None,
        "refuse batches whose keys lack a schema id registered under the key subject"),
    topic("confluent.key.subject.name.strategy", Str, OneOf(SUBJECT_NAME_STRATEGIES), None,
        "how the key subject is named: TopicNameStrategy, RecordNameStrategy, TopicRecordNameStrategy"),
    topic("confluent.value.schema.validation", Boolean, Type, None,
        "refuse batches whose values lack a schema id registered under the value subject"),
    topic("confluent.value.subject.name.strategy", Str, OneOf(SUBJECT_NAME_STRATEGIES), None,
        "how the value subject is named: TopicNameStrategy, RecordNameStrategy, TopicRecordNameStrategy"),
    topic("delete.retention.ms", Long, AtLeast(0), Some("log.cleaner.delete.retention.ms"),
        "how long tombstones are kept when compacting"),
    topic("file.delete.delay.ms", Long, AtLeast(0), None,
        "delay before a deleted file is removed"),
    topic("flush.messages", Long, AtLeast(1), Some("log.flush.interval.messages"),
        "records between forced fsyncs"),
    topic("flush.ms", Long, AtLeast(1), Some("log.flush.interval.ms"),
        "milliseconds between forced fsyncs"),
    topic("follower.replication.throttled.replicas", List, ThrottledReplicas, None,
        "replicas throttled on the follower side (partition:broker, or *)"),
    topic("index.interval.bytes", Int, AtLeast(1), Some("log.index.interval.bytes"),
        "log bytes between offset index entries"),
    topic("leader.replication.throttled.replicas", List, ThrottledReplicas, None,
        "replicas throttled on the leader side (partition:broker, or *)"),
    topic("local.retention.bytes", Long, AtLeast(-2), None,
        "local size kept when tiered storage is on (-2: retention.bytes)"),
    topic("local.retention.ms", Long, AtLeast(-2), None,
        "local time kept when tiered storage is on (-2: retention.ms)"),
    topic("max.compaction.lag.ms", Long, AtLeast(1), Some("log.cleaner.max.compaction.lag.ms"),
        "longest a record stays uncompacted"),
    topic("max.message.bytes", Int, AtLeast(1), Some("message.max.bytes"),
        "largest record batch accepted"),
    topic("message.downconversion.enable", Boolean, Type, None,
        "accepted for compatibility; old formats are never served"),
    topic("message.format.version", Str, KafkaVersion, None,
        "deprecated since Kafka 3.0 and ignored: batches are always v2"),
    topic("message.timestamp.after.max.ms", Long, AtLeast(0),
        Some("log.message.timestamp.after.max.ms"),
        "how far ahead a CreateTime may be"),
    topic("message.timestamp.before.max.ms", Long, AtLeast(0),
        Some("log.message.timestamp.before.max.ms"),
        "how far behind a CreateTime may be"),
    topic("message.timestamp.difference.max.ms", Long, AtLeast(0), None,
        "deprecated form of message.timestamp.before.max.ms"),
    topic("message.timestamp.type", Str, OneOf(&["CreateTime", "LogAppendTime"]),
        Some("log.message.timestamp.type"),
        "CreateTime or LogAppendTime"),
    topic("min.cleanable.dirty.ratio", Double, Ratio, Some("log.cleaner.min.cleanable.ratio"),
        "dirty ratio that triggers compaction"),
    topic("min.compaction.lag.ms", Long, AtLeast(0), Some("log.cleaner.min.compaction.lag.ms"),
        "shortest a record stays uncompacted"),
    topic("min.insync.replicas", Int, AtLeast(1), Some("min.insync.replicas"),
        "replicas that must ack an acks=all write"),
    topic("preallocate", Boolean, Type, None,
        "reserve a segment's whole segment.bytes on disk at its first append"),
    topic("remote.storage.enable", Boolean, Type, None,
        "tier the log to the bucket (needs the broker's remote storage)"),
    topic("retention.bytes", Long, AtLeast(-1), Some("log.retention.bytes"),
        "largest size of a partition before old segments go"),
    topic("retention.ms", Long, AtLeast(-1), Some("log.retention.ms"),
        "longest time a segment is kept"),
    topic("segment.bytes", Int, AtLeast(14), Some("log.segment.bytes"),
        "segment size at which the log rolls"),
    topic("segment.index.bytes", Int, AtLeast(4), None,
        "maximum size of an offset index"),
    topic("segment.jitter.ms", Long, AtLeast(0), None,
        "random jitter subtracted from segment.ms"),
    topic("segment.ms", Long, AtLeast(1), Some("log.roll.ms"),
        "segment age at which the log rolls"),
    topic("unclean.leader.election.enable", Boolean, Type, None,
        "allow out-of-sync leaders"),
];

/// A broker configuration key a KafkaCluster may set.
#[derive(Debug)]
pub struct BrokerKey {
    /// Kafka's key name.
    pub name: &'static str,
    /// Its type and check, or `None` when it is the default of a topic key and checked as
    /// that key is (`log.segment.bytes` as `segment.bytes`).
    pub value: Option<(ConfigType, Check)>,
}

const fn broker(name: &'static str, kind: ConfigType, check: Check) -> BrokerKey {
    BrokerKey {
        name,
        value: Some((kind, check)),
    }
}

/// A broker key that is the default of a topic key (see [`BrokerKey::value`]).
const fn topic_default(name: &'static str) -> BrokerKey {
    BrokerKey { name, value: None }
}

/// Broker settings users may set in `KafkaCluster.spec.config`. Everything the operator derives
/// itself (broker id, listeners, advertised listeners, log dirs, rack) is deliberately absent.
pub const BROKER_KEYS: &[BrokerKey] = &[
    broker("allow.everyone.if.no.acl.found", Boolean, Type),
    broker("auto.create.topics.enable", Boolean, Type),
    broker("auto.leader.rebalance.enable", Boolean, Type),
    topic_default("compression.type"),
    // An external registry for schema validation (a cluster running its own is given that).
    broker(
        "confluent.schema.registry.url",
        ConfigType::String,
        Check::HttpUrls,
    ),
    broker("default.replication.factor", Int, AtLeast(0)),
    broker("delete.topic.enable", Boolean, Type),
    broker("group.consumer.assignors", List, Check::Assignors),
    broker("group.consumer.heartbeat.interval.ms", Int, AtLeast(0)),
    broker("group.consumer.max.size", Int, AtLeast(1)),
    broker(
        "group.consumer.migration.policy",
        Str,
        Check::OneOfAnyCase(&["bidirectional", "upgrade", "downgrade", "disabled"]),
    ),
    broker("group.consumer.session.timeout.ms", Int, AtLeast(0)),
    broker(
        "group.coordinator.rebalance.protocols",
        List,
        Check::RebalanceProtocols,
    ),
    broker("group.initial.rebalance.delay.ms", Int, AtLeast(0)),
    broker("group.max.session.timeout.ms", Int, AtLeast(0)),
    broker("group.max.size", Int, AtLeast(1)),
    broker("group.min.session.timeout.ms", Int, AtLeast(0)),
    broker("group.share.delivery.count.limit", Int, AtLeast(1)),
    broker("group.share.enable", Boolean, Type),
    broker("group.share.heartbeat.interval.ms", Int, AtLeast(1)),
    broker("group.share.max.delivery.count.limit", Int, AtLeast(1)),
    broker("group.share.max.heartbeat.interval.ms", Int, AtLeast(1)),
    broker(
        "group.share.max.partition.max.record.locks",
        Int,
        AtLeast(1),
    ),
    broker("group.share.max.record.lock.duration.ms", Int, AtLeast(1)),
    broker("group.share.max.session.timeout.ms", Int, AtLeast(1)),
    broker("group.share.max.share.sessions", Int, AtLeast(1)),
    broker("group.share.max.size", Int, AtLeast(1)),
    broker("group.share.min.delivery.count.limit", Int, AtLeast(1)),
    broker("group.share.min.heartbeat.interval.ms", Int, AtLeast(1)),
    broker(
        "group.share.min.partition.max.record.locks",
        Int,
        AtLeast(1),
    ),
    broker("group.share.min.record.lock.duration.ms", Int, AtLeast(1)),
    broker("group.share.min.session.timeout.ms", Int, AtLeast(1)),
    broker("group.share.partition.max.record.locks", Int, AtLeast(1)),
    broker("group.share.record.lock.duration.ms", Int, AtLeast(1)),
    broker("group.share.session.timeout.ms", Int, AtLeast(1)),
    broker("leader.imbalance.check.interval.seconds", Long, AtLeast(1)),
    broker("leader.imbalance.per.broker.percentage", Int, AtLeast(0)),
    broker("log.cleaner.backoff.ms", Long, AtLeast(0)),
    topic_default("log.cleanup.policy"),
    topic_default("log.flush.interval.messages"),
    topic_default("log.flush.interval.ms"),
    topic_default("log.retention.bytes"),
    // Any negative count is unlimited, as Kafka reads it (no validator of its own).
    broker("log.retention.hours", Int, Type),
    topic_default("log.retention.ms"),
    topic_default("log.roll.ms"),
    topic_default("log.segment.bytes"),
    broker("max.broker.partitions", Int, AtLeast(0)),
    broker("max.uncompressed.batch.bytes", Long, AtLeast(0)),
    topic_default("message.max.bytes"),
    topic_default("min.insync.replicas"),
    broker("num.io.threads", Int, AtLeast(0)),
    broker("num.network.threads", Int, AtLeast(0)),
    broker("num.partitions", Int, AtLeast(0)),
    broker("offsets.retention.minutes", Int, AtLeast(0)),
    broker("offsets.topic.num.partitions", Int, AtLeast(0)),
    broker("offsets.topic.replication.factor", Int, AtLeast(0)),
    broker("replica.fsync.before.ack", Boolean, Type),
    broker("replica.lag.time.max.ms", Long, AtLeast(0)),
    // -1 (any value below 1) keeps the operating system's buffer size; Kafka checks no more.
    broker("socket.receive.buffer.bytes", Int, Type),
    broker("socket.request.max.bytes", Int, AtLeast(0)),
    broker("socket.send.buffer.bytes", Int, Type),
    broker("transaction.state.log.min.isr", Int, AtLeast(0)),
    broker("transaction.state.log.replication.factor", Int, AtLeast(0)),
    broker("unclean.leader.election.enable", Boolean, Type),
];

/// The topic key `name`.
pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// The topic key whose default the dynamic broker config `broker_key` is.
pub fn defaulted_by(broker_key: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.broker_key == Some(broker_key))
}

/// The type and check of the broker key `name`, if a KafkaCluster may set it.
pub fn broker_value(name: &str) -> Option<(ConfigType, Check)> {
    let key = BROKER_KEYS.iter().find(|k| k.name == name)?;
    key.value
        .or_else(|| defaulted_by(name).map(|t| (t.kind, t.check)))
}

/// Checks `value` as a value of a key of type `kind` held to `check`. The error says what a
/// valid value looks like ([`expected`]).
pub(super) fn check_value(kind: ConfigType, check: Check, value: &str) -> Result<(), String> {
    if fits(kind, check, value) {
        Ok(())
    } else {
        Err(expected(kind, check))
    }
}

fn fits(kind: ConfigType, check: Check, value: &str) -> bool {
    match kind {
        Boolean => return matches!(value, "true" | "false"),
        Int | Long => {
            let min = match check {
                AtLeast(min) => min,
                _ => i64::MIN,
            };
            let parsed = if kind == Int {
                value.parse::<i32>().map(i64::from).ok()
            } else {
                value.parse::<i64>().ok()
            };
            return parsed.is_some_and(|n| n >= min);
        }
        _ => {}
    }
    match check {
        Type | AtLeast(_) => true,
        Ratio => value.parse::<f64>().is_ok_and(|r| (0.0..=1.0).contains(&r)),
        OneOf(allowed) => allowed.contains(&value),
        Check::OneOfAnyCase(allowed) => allowed.iter().any(|a| a.eq_ignore_ascii_case(value)),
        CleanupPolicy => is_cleanup_policy(value),
        ThrottledReplicas => is_throttled_replicas(value),
        KafkaVersion => is_kafka_version(value),
        Check::RebalanceProtocols => {
            let listed = comma_list(&value.to_ascii_lowercase());
            listed.iter().any(|n| n == "classic")
                && listed
                    .iter()
                    .all(|n| matches!(n.as_str(), "classic" | "consumer"))
        }
        Check::Assignors => {
            let listed = comma_list(value);
            !listed.is_empty()
                && listed
                    .iter()
                    .all(|n| matches!(n.as_str(), "uniform" | "range"))
        }
        Check::HttpUrls => {
            let listed = comma_list(value);
            !listed.is_empty() && listed.iter().all(|url| is_http_url(url))
        }
    }
}

/// `http://` or `https://`, a host, and no spaces.
fn is_http_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        !host.is_empty() && !rest.contains(char::is_whitespace)
    })
}

/// What a valid value of a key of type `kind` held to `check` looks like, in words: the error
/// a refused value gets, and the configuration chapter's "valid values".
pub(super) fn expected(kind: ConfigType, check: Check) -> String {
    match (kind, check) {
        (Boolean, _) => "true or false".into(),
        (Int | Long, _) => {
            let width = if kind == Int { "a 32-bit" } else { "an" };
            match check {
                AtLeast(min) => format!("{width} integer of at least {min}{}", unlimited(min)),
                _ => format!("{width} integer"),
            }
        }
        (_, Ratio) => "a number between 0 and 1".into(),
        (_, OneOf(allowed) | Check::OneOfAnyCase(allowed)) => {
            format!("one of {}", allowed.join(", "))
        }
        (_, CleanupPolicy) => {
            "a comma-separated list of delete and compact, or empty (keep everything)".into()
        }
        (_, ThrottledReplicas) => "`*` or partition:broker pairs separated by commas".into(),
        (_, KafkaVersion) => "a Kafka version such as 3.0-IV1".into(),
        (_, Check::RebalanceProtocols) => "`classic` or `classic,consumer`".into(),
        (_, Check::Assignors) => "one or more of uniform and range, separated by commas".into(),
        (_, Check::HttpUrls) => "an http:// or https:// URL".into(),
        (_, Type | AtLeast(_)) => "any value".into(),
    }
}

/// What the special low bounds of retention keys mean.
fn unlimited(min: i64) -> &'static str {
    match min {
        -1 => " (-1 means unlimited)",
        -2 => " (-2 means the total retention)",
        _ => "",
    }
}

/// The items of a list config as Kafka parses one (`ConfigDef.Type.LIST`): a blank value is the
/// empty list, anything else every comma-separated item, trimmed, empty items included (Kafka
/// refuses those: `delete,` is a typo, not a policy).
pub fn list_items(value: &str) -> Vec<&str> {
    let value = value.trim();
    if value.is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).collect()
}

/// Whether `value` is a valid `cleanup.policy` (or `log.cleanup.policy`): `delete` and
/// `compact` in any order, or nothing at all, which Kafka 4 accepts (KIP-1161) and which keeps
/// every segment, neither deleted by retention nor compacted. A repeated item is tolerated, as
/// Kafka does again since KAFKA-19875 (configs written before KIP-1161 may hold them).
pub fn is_cleanup_policy(value: &str) -> bool {
    list_items(value)
        .iter()
        .all(|p| matches!(*p, "delete" | "compact"))
}

/// Whether `value` is a valid replication throttle list
/// (`leader/follower.replication.throttled.replicas`): empty, `*`, or `partition:broker` pairs.
pub fn is_throttled_replicas(value: &str) -> bool {
    let items = list_items(value);
    items == ["*"]
        || items.iter().all(|pair| {
            pair.split_once(':')
                .is_some_and(|(p, b)| p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
        })
}

/// A Kafka release or inter-broker protocol version: `0.10.0`, `2.8-IV1`, `3.0-IV1`.
fn is_kafka_version(value: &str) -> bool {
    let (release, iv) = value.split_once("-IV").unwrap_or((value, "0"));
    let parts: Vec<&str> = release.split('.').collect();
    (2..=4).contains(&parts.len())
        && parts.iter().all(|p| p.parse::<u16>().is_ok())
        && iv.parse::<u8>().is_ok()
}

/// The non-empty items of a comma-separated list.
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}
