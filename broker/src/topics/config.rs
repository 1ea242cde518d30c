//! Topic configuration: each key's broker default and effective value (the keys themselves are
//! the table in `tributary_crds::config`), validation of overrides, and the settings a topic's
//! partitions run with ([`TopicSettings`], its [`LogConfig`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tributary_crds::config::{self as crds_config, Scope};
use tributary_replication::settings::ReplicaSettings;

use crate::codec::CompressionPolicy;
use crate::config::BrokerConfig;
use crate::dynamic_config as dynamic;
use crate::partition::TopicSettings;
use crate::storage::{LogConfig, TimestampType};

pub use crds_config::{ConfigType, TopicKey, TOPIC_KEYS};

/// The broker-wide default of each topic key, as a string like Kafka reports it: a dynamic
/// broker config if one is set, else the static configuration.
pub fn broker_default(broker: &BrokerConfig, name: &str) -> String {
    match dynamic::broker_key(name).and_then(|key| broker.dynamic.get(key)) {
        Some((value, _)) => value,
        None => static_default(broker, name),
    }
}

/// What a dynamic broker config is when no dynamic value is set: its topic config's static
/// default, or Kafka's default for a Kerberos setting, or unbounded for a replication
/// throttle rate.
pub fn dynamic_default(broker: &BrokerConfig, broker_key: &str) -> String {
    match dynamic::topic_key(broker_key) {
        Some(topic_key) => static_default(broker, topic_key),
        None => dynamic::kerberos_default(broker_key)
            .map_or_else(|| i64::MAX.to_string(), str::to_owned),
    }
}

/// The default of a topic key from the broker's static configuration.
pub fn static_default(broker: &BrokerConfig, name: &str) -> String {
    let log = &broker.log_defaults;
    match name {
        "cleanup.policy" => broker.cleanup_policy.clone(),
        "compression.type" => broker.compression_type.clone(),
        "confluent.key.schema.validation" | "confluent.value.schema.validation" => "false".into(),
        "confluent.key.subject.name.strategy" | "confluent.value.subject.name.strategy" => {
            "io.confluent.kafka.serializers.subject.TopicNameStrategy".into()
        }
        "delete.retention.ms" => "86400000".into(),
        "file.delete.delay.ms" => "60000".into(),
        "follower.replication.throttled.replicas" | "leader.replication.throttled.replicas" => {
            String::new()
        }
        "local.retention.bytes" | "local.retention.ms" => "-2".into(),
        "message.downconversion.enable" => "true".into(),
        "message.format.version" => "3.0-IV1".into(),
        "flush.messages" => log.flush_messages.to_string(),
        "flush.ms" => log.flush_ms.to_string(),
        "index.interval.bytes" => log.index_interval_bytes.to_string(),
        "max.compaction.lag.ms" => i64::MAX.to_string(),
        "max.message.bytes" => log.max_message_bytes.to_string(),
        "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.difference.max.ms" => i64::MAX.to_string(),
        "message.timestamp.type" => "CreateTime".into(),
        "min.cleanable.dirty.ratio" => "0.5".into(),
        "min.compaction.lag.ms" => "0".into(),
        "min.insync.replicas" => broker.min_insync_replicas.to_string(),
        "preallocate" | "remote.storage.enable" => "false".into(),
        "unclean.leader.election.enable" => broker.unclean_leader_election.to_string(),
        "retention.bytes" => log.retention_bytes.to_string(),
        "retention.ms" => log.retention_ms.to_string(),
        "segment.bytes" => log.segment_bytes.to_string(),
        "segment.index.bytes" => "10485760".into(),
        "segment.jitter.ms" => "0".into(),
        "segment.ms" => log.segment_ms.to_string(),
        _ => String::new(),
    }
}

/// Checks one override; the error text goes back to the client with INVALID_CONFIG.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    crds_config::check_value(Scope::Topic, name, value).map_err(|e| e.to_string())
}

/// Whether a `leader/follower.replication.throttled.replicas` value names `broker`'s replica
/// of `partition` (`*` names every replica).
pub fn throttles_replica(list: &str, partition: i32, broker: i32) -> bool {
    let list = list.trim();
    list == "*"
        || list.split(',').any(|pair| {
            pair.trim().split_once(':').is_some_and(|(p, b)| {
                p.trim().parse() == Ok(partition) && b.trim().parse() == Ok(broker)
            })
        })
}

/// Checks a whole set of overrides, each alone and then the combinations Kafka refuses.
pub fn validate_all(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<(), String> {
    overrides.iter().try_for_each(|(k, v)| validate(k, v))?;
    validate_tiering(broker, overrides)
}

/// Checks a change of a topic's overrides from `old` to `new`: besides [`validate_all`],
/// tiering cannot be turned off on a topic that has it (as in Kafka 3.9): its remote log
/// would be left behind, unread and never expired.
pub fn validate_change(
    broker: &BrokerConfig,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), String> {
    validate_all(broker, new)?;
    let tiered = |configs| effective(broker, configs, "remote.storage.enable") == "true";
    if tiered(old) && !tiered(new) {
        return Err(
            "disabling remote storage (remote.storage.enable) on a topic is not \
                    supported; delete the topic to remove its remote log"
                .into(),
        );
    }
    Ok(())
}

/// Kafka's checks of a tiered topic (`LogConfig.validateRemoteStorage*`): the broker must
/// have remote storage on, compacted topics are never tiered, and the local retention limits
/// may not exceed the total ones (-2 meaning "the total").
pub fn validate_tiering(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<(), String> {
    let get = |name: &str| effective(broker, overrides, name);
    if get("remote.storage.enable") != "true" {
        return Ok(());
    }
    if broker.tiered.is_none() {
        return Err("remote.storage.enable=true needs the broker's \
                    remote.log.storage.system.enable (tiered storage is off on this broker)"
            .into());
    }
    if has_policy(&get("cleanup.policy"), "compact") {
        return Err(
            "remote.storage.enable=true is not supported on compacted topics \
                    (cleanup.policy contains compact): Kafka does not tier them"
                .into(),
        );
    }
    for (local_key, total_key) in [
        ("local.retention.ms", "retention.ms"),
        ("local.retention.bytes", "retention.bytes"),
    ] {
        let local: i64 = get(local_key).parse().unwrap_or(-2);
        let total: i64 = get(total_key).parse().unwrap_or(-1);
        if local == -2 || total == -1 {
            continue;
        }
        if local == -1 {
            return Err(format!(
                "{local_key}=-1 (unlimited) exceeds {total_key}={total}: the local log cannot \
                 be kept longer than the whole log"
            ));
        }
        if local > total {
            return Err(format!(
                "{local_key}={local} exceeds {total_key}={total}: it must be at most the total, \
                 or -2 for the total"
            ));
        }
    }
    Ok(())
}

/// The effective value of `name`: the topic's override, else the broker default.
pub fn effective(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
    name: &str,
) -> String {
    overrides
        .get(name)
        .cloned()
        .unwrap_or_else(|| broker_default(broker, name))
}

/// Everything a topic's partitions run with, resolved once per change of its overrides or
/// the broker's defaults.
pub fn topic_settings(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> TopicSettings {
    let get = |name: &str| effective(broker, overrides, name);
    TopicSettings {
        log: log_config(broker, overrides),
        compression: CompressionPolicy::parse(&get("compression.type")),
        min_insync_replicas: get("min.insync.replicas").parse().unwrap_or(1),
    }
}

/// What the replica manager takes from the broker's configuration; topics resolve against
/// `broker`'s defaults.
pub fn replica_settings(broker: &Arc<BrokerConfig>) -> ReplicaSettings {
    let defaults = broker.clone();
    ReplicaSettings {
        broker_id: broker.broker_id,
        data_dir: broker.data_dir.clone(),
        tiered: broker.tiered.is_some(),
        topic_settings: Arc::new(move |overrides| topic_settings(&defaults, overrides)),
    }
}

/// The storage settings a topic's partitions run with.
pub fn log_config(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let get = |name: &str| effective(broker, overrides, name);
    let d = &broker.log_defaults;
    let policy = get("cleanup.policy");
    LogConfig {
        segment_bytes: get("segment.bytes").parse().unwrap_or(d.segment_bytes),
        segment_ms: get("segment.ms").parse().unwrap_or(d.segment_ms),
        retention_ms: get("retention.ms").parse().unwrap_or(d.retention_ms),
        retention_bytes: get("retention.bytes").parse().unwrap_or(d.retention_bytes),
        max_message_bytes: get("max.message.bytes")
            .parse()
            .unwrap_or(d.max_message_bytes),
        index_interval_bytes: get("index.interval.bytes")
            .parse()
            .unwrap_or(d.index_interval_bytes),
        timestamp_type: if get("message.timestamp.type") == "LogAppendTime" {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        timestamp_before_max_ms: timestamp_bound(
            &get("message.timestamp.before.max.ms"),
            &get("message.timestamp.difference.max.ms"),
        ),
        timestamp_after_max_ms: timestamp_bound(
            &get("message.timestamp.after.max.ms"),
            &get("message.timestamp.difference.max.ms"),
        ),
        max_uncompressed_batch_bytes: d.max_uncompressed_batch_bytes,
        delete: has_policy(&policy, "delete"),
        compact: has_policy(&policy, "compact"),
        delete_retention_ms: get("delete.retention.ms")
            .parse()
            .unwrap_or(d.delete_retention_ms),
        min_compaction_lag_ms: get("min.compaction.lag.ms")
            .parse()
            .unwrap_or(d.min_compaction_lag_ms),
        max_compaction_lag_ms: get("max.compaction.lag.ms")
            .parse()
            .unwrap_or(d.max_compaction_lag_ms),
        min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
            .parse()
            .unwrap_or(d.min_cleanable_dirty_ratio),
        flush_messages: get("flush.messages").parse().unwrap_or(d.flush_messages),
        flush_ms: get("flush.ms").parse().unwrap_or(d.flush_ms),
        // Tiered only while the broker has remote storage on.
        remote_storage: broker.tiered.is_some() && get("remote.storage.enable") == "true",
        local_retention_ms: get("local.retention.ms")
            .parse()
            .unwrap_or(d.local_retention_ms),
        local_retention_bytes: get("local.retention.bytes")
            .parse()
            .unwrap_or(d.local_retention_bytes),
        preallocate: get("preallocate") == "true",
    }
}

/// A timestamp bound as Kafka resolves it: the `before`/`after` setting when set, else the
/// deprecated `message.timestamp.difference.max.ms`, else no bound.
fn timestamp_bound(bound: &str, difference: &str) -> i64 {
    match bound.parse::<i64>() {
        Ok(ms) if ms != i64::MAX => ms,
        _ => difference.parse().unwrap_or(i64::MAX),
    }
}

/// Whether a `cleanup.policy` list names `policy` (an empty list names none).
fn has_policy(list: &str, policy: &str) -> bool {
    crds_config::list_items(list).contains(&policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, Flags};

    #[test]
    fn validation_follows_types_and_ranges() {
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "abc").is_err());
        assert!(validate("segment.bytes", "10").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("message.format.version", "0.10.0.0").is_ok());
        assert!(validate("message.format.version", "3.0-IV1").is_ok());
        assert!(validate("message.format.version", "latest").is_err());
        assert!(validate("leader.replication.throttled.replicas", "0:1,1:2").is_ok());
        assert!(validate("leader.replication.throttled.replicas", "*").is_ok());
        assert!(validate("leader.replication.throttled.replicas", "x").is_err());
        assert!(throttles_replica("*", 3, 7));
        assert!(throttles_replica("0:1, 3:7", 3, 7));
        assert!(!throttles_replica("0:1,3:6", 3, 7));
        assert!(!throttles_replica("", 0, 0));
        assert!(validate("remote.storage.enable", "maybe").is_err());
        assert!(validate("local.retention.ms", "-2").is_ok());
        assert!(validate("compression.type", "zstd").is_ok());
        assert!(validate("compression.type", "brotli").is_err());
        assert!(validate("compression.type", "uncompressed").is_ok());
        assert!(validate("compression.type", "none").is_err());
        assert!(validate("no.such.key", "1").is_err());
    }

    /// What an IncrementalAlterConfigs SUBTRACT of the last policy leaves (KIP-1161).
    #[test]
    fn an_emptied_cleanup_policy_is_valid_and_neither_deletes_nor_compacts() {
        assert!(validate("cleanup.policy", "").is_ok());
        assert!(validate("cleanup.policy", " ").is_ok());
        assert!(
            validate("cleanup.policy", "delete,").is_err(),
            "an empty item"
        );
        assert!(validate("cleanup.policy", "delete,shred").is_err());
        let broker = BrokerConfig::resolve(Flags::default()).unwrap();
        let emptied = overrides(&[("cleanup.policy", "")]);
        assert!(validate_all(&broker, &emptied).is_ok());
        let log = log_config(&broker, &emptied);
        assert!(!log.delete && !log.compact);
        // A tiered topic may have it too: its local part still goes by local retention.
        let tiered = overrides(&[("cleanup.policy", ""), ("remote.storage.enable", "true")]);
        assert!(validate_all(&tiered_broker(), &tiered).is_ok());
        // And so may the broker-wide default.
        let flags = Flags {
            log_cleanup_policy: Some(String::new()),
            ..Flags::default()
        };
        let broker = BrokerConfig::resolve(flags).unwrap();
        let log = log_config(&broker, &BTreeMap::new());
        assert!(!log.delete && !log.compact);
    }

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tiered_broker() -> BrokerConfig {
        BrokerConfig::resolve(Flags {
            remote_log_storage_system_enable: Some(true),
            remote_storage_url: Some("file:///tmp/tiered-config-test".into()),
            ..Flags::default()
        })
        .unwrap()
    }

    #[test]
    fn remote_storage_is_refused_unless_the_broker_has_it_and_never_on_compacted_topics() {
        let local = BrokerConfig::resolve(Flags::default()).unwrap();
        let tiered = tiered_broker();
        let on = overrides(&[("remote.storage.enable", "true")]);
        let refused = validate_all(&local, &on).unwrap_err();
        assert!(
            refused.contains("remote.log.storage.system.enable"),
            "{refused}"
        );
        assert!(validate_all(&tiered, &on).is_ok());
        assert!(log_config(&tiered, &on).remote_storage);
        assert!(!log_config(&local, &on).remote_storage);
        assert!(
            !log_config(&tiered, &BTreeMap::new()).remote_storage,
            "off by default"
        );
        let compacted = overrides(&[
            ("remote.storage.enable", "true"),
            ("cleanup.policy", "compact,delete"),
        ]);
        let refused = validate_all(&tiered, &compacted).unwrap_err();
        assert!(refused.contains("compacted"), "{refused}");
    }

    #[test]
    fn tiering_cannot_be_turned_off_once_on() {
        let tiered = tiered_broker();
        let on = overrides(&[("remote.storage.enable", "true")]);
        let off = overrides(&[("remote.storage.enable", "false")]);
        assert!(validate_change(&tiered, &off, &on).is_ok(), "turning it on");
        assert!(validate_change(&tiered, &on, &on).is_ok());
        let refused = validate_change(&tiered, &on, &off).unwrap_err();
        assert!(refused.contains("disabling remote storage"), "{refused}");
        assert!(
            validate_change(&tiered, &on, &BTreeMap::new()).is_err(),
            "by removing the key"
        );
    }

    #[test]
    fn local_retention_may_not_exceed_the_total_on_a_tiered_topic() {
        let tiered = tiered_broker();
        let check = |pairs: &[(&str, &str)]| {
            let mut all = overrides(pairs);
            all.insert("remote.storage.enable".into(), "true".into());
            validate_all(&tiered, &all)
        };
        assert!(check(&[("local.retention.ms", "1000"), ("retention.ms", "5000")]).is_ok());
        assert!(check(&[("local.retention.ms", "-2"), ("retention.ms", "5000")]).is_ok());
        assert!(check(&[("local.retention.ms", "9000"), ("retention.ms", "5000")]).is_err());
        assert!(check(&[("local.retention.ms", "-1"), ("retention.ms", "5000")]).is_err());
        assert!(check(&[("local.retention.ms", "-1"), ("retention.ms", "-1")]).is_ok());
        assert!(check(&[("local.retention.bytes", "10"), ("retention.bytes", "100")]).is_ok());
        assert!(check(&[("local.retention.bytes", "200"), ("retention.bytes", "100")]).is_err());
        let log = log_config(
            &tiered,
            &overrides(&[
                ("remote.storage.enable", "true"),
                ("local.retention.bytes", "10"),
            ]),
        );
        assert_eq!(log.local_retention_bytes, 10);
        assert_eq!(log.local_retention_ms, -2);
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let broker = BrokerConfig::resolve(Flags::default()).unwrap();
        let mut overrides = BTreeMap::new();
        overrides.insert("retention.ms".to_string(), "1000".to_string());
        overrides.insert("message.timestamp.type".into(), "LogAppendTime".into());
        let log = log_config(&broker, &overrides);
        assert_eq!(log.retention_ms, 1000);
        assert_eq!(log.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(log.segment_bytes, broker.log_defaults.segment_bytes);
        assert!(log.delete && !log.compact);
        overrides.insert("cleanup.policy".into(), "compact".into());
        overrides.insert("delete.retention.ms".into(), "5".into());
        let log = log_config(&broker, &overrides);
        assert!(!log.delete && log.compact);
        assert_eq!(log.delete_retention_ms, 5);
        overrides.insert("cleanup.policy".into(), "compact, delete".into());
        let log = log_config(&broker, &overrides);
        assert!(log.delete && log.compact);
    }
}
