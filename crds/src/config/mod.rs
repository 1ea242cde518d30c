//! Which Kafka configuration keys a KafkaCluster or KafkaTopic may set, and what their values
//! must look like. The key lists feed the CRD's CEL rules (so `kubectl apply` rejects a typo)
//! and the value checks run in the operator (so a bad value becomes a condition, not a crash).

use std::collections::BTreeMap;

use kube::core::Rule;

/// Broker settings users may set in `KafkaCluster.spec.config`. Everything the operator derives
/// itself (broker id, listeners, advertised listeners, log dirs, rack) is deliberately absent.
pub const BROKER_CONFIG_KEYS: &[&str] = &[
    "allow.everyone.if.no.acl.found",
    "auto.create.topics.enable",
    "auto.leader.rebalance.enable",
    "compression.type",
    "default.replication.factor",
    "delete.topic.enable",
    "group.consumer.assignors",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.max.size",
    "group.consumer.migration.policy",
    "group.consumer.session.timeout.ms",
    "group.coordinator.rebalance.protocols",
    "group.initial.rebalance.delay.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "group.min.session.timeout.ms",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "log.cleaner.backoff.ms",
    "log.cleanup.policy",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.retention.bytes",
    "log.retention.hours",
    "log.retention.ms",
    "log.roll.ms",
    "log.segment.bytes",
    "max.broker.partitions",
    "max.uncompressed.batch.bytes",
    "message.max.bytes",
    "min.insync.replicas",
    "num.io.threads",
    "num.network.threads",
    "num.partitions",
    "offsets.retention.minutes",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "replica.fsync.before.ack",
    "replica.lag.time.max.ms",
    "socket.receive.buffer.bytes",
    "socket.request.max.bytes",
    "socket.send.buffer.bytes",
    "transaction.state.log.min.isr",
    "transaction.state.log.replication.factor",
    "unclean.leader.election.enable",
];

/// Topic-level settings users may set in `KafkaTopic.spec.config` (Kafka's topic configs).
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// Upper bound on entries in a config map; keeps the CEL cost of the key check bounded.
pub const MAX_CONFIG_ENTRIES: u32 = 64;

/// A configuration value the broker would not accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The key is not in the allow-list (the CRD rejects this too; kept for old objects).
    #[error(
        "config key {key:?} is not supported; see the list in the KafkaTopic/KafkaCluster docs"
    )]
    UnknownKey {
        /// The rejected key.
        key: String,
    },
    /// The value does not parse as the key's type or is outside its range.
    #[error("config {key}={value:?} is invalid: expected {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// The rejected value.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
}

/// CEL rule restricting a map's keys to `keys` (`self` is the map).
pub fn keys_rule(keys: &[&str], what: &str) -> Rule {
    let list = keys
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = format!(
        "unsupported {what} config key; allowed keys: {}",
        keys.join(", ")
    );
    Rule::new(format!("self.all(k, k in [{list}])")).message(message.as_str())
}

/// CEL rule for `KafkaCluster.spec.config`.
pub fn broker_keys_rule() -> Rule {
    keys_rule(BROKER_CONFIG_KEYS, "broker")
}

/// CEL rule for `KafkaTopic.spec.config`.
pub fn topic_keys_rule() -> Rule {
    keys_rule(TOPIC_CONFIG_KEYS, "topic")
}

/// Checks every value of a topic config. Keys mapped to `None` are unmanaged and skipped.
pub fn validate_topic_config(config: &BTreeMap<String, Option<String>>) -> Result<(), ConfigError> {
    for (key, value) in config {
        let Some(value) = value else { continue };
        if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::UnknownKey { key: key.clone() });
        }
        check_value(key, value)?;
    }
    Ok(())
}

/// Checks every value of a broker config.
pub fn validate_broker_config(config: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (key, value) in config {
        if !BROKER_CONFIG_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::UnknownKey { key: key.clone() });
        }
        check_value(key, value)?;
    }
    Ok(())
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

/// The non-empty items of a comma-separated list.
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check_value(key: &str, value: &str) -> Result<(), ConfigError> {
    let bad = |expected| ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected,
    };
    match key {
        "cleanup.policy" | "log.cleanup.policy" => {
            if !is_cleanup_policy(value) {
                return Err(bad(
                    "a comma-separated list of delete and compact, or empty (keep everything)",
                ));
            }
        }
        "compression.type" => {
            if !matches!(
                value,
                "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd"
            ) {
                return Err(bad(
                    "one of producer, uncompressed, gzip, snappy, lz4, zstd",
                ));
            }
        }
        // The consumer group protocol (KIP-848) is on by default; `classic` always stays on.
        "group.coordinator.rebalance.protocols" => {
            let listed = comma_list(&value.to_ascii_lowercase());
            if !listed.iter().any(|n| n == "classic")
                || listed
                    .iter()
                    .any(|n| !matches!(n.as_str(), "classic" | "consumer"))
            {
                return Err(bad("`classic` or `classic,consumer`"));
            }
        }
        "group.consumer.assignors" => {
            let listed = comma_list(value);
            if listed.is_empty()
                || listed
                    .iter()
                    .any(|n| !matches!(n.as_str(), "uniform" | "range"))
            {
                return Err(bad("one or more of uniform and range, separated by commas"));
            }
        }
        "group.consumer.migration.policy" => {
            if !matches!(
                value.to_ascii_lowercase().as_str(),
                "bidirectional" | "upgrade" | "downgrade" | "disabled"
            ) {
                return Err(bad("one of bidirectional, upgrade, downgrade, disabled"));
            }
        }
        "message.timestamp.type" => {
            if !matches!(value, "CreateTime" | "LogAppendTime") {
                return Err(bad("CreateTime or LogAppendTime"));
            }
        }
        // Kafka's atLeast(1): a group that admits nobody is a mistake.
        "group.max.size" | "group.consumer.max.size" => match value.parse::<i32>() {
            Ok(n) if n >= 1 => {}
            _ => return Err(bad("an integer from 1 to 2147483647")),
        },
        // Kafka's atLeast(1): a zero interval would check without pause.
        "leader.imbalance.check.interval.seconds" => match value.parse::<i64>() {
            Ok(n) if n >= 1 => {}
            _ => return Err(bad("an integer >= 1 (seconds)")),
        },
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
            if !is_throttled_replicas(value) {
                return Err(bad("`*` or partition:broker pairs separated by commas"));
            }
        }
        "min.cleanable.dirty.ratio" => match value.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => {}
            _ => return Err(bad("a number between 0 and 1")),
        },
        k if k.ends_with(".enable")
            || k == "preallocate"
            || k == "replica.fsync.before.ack"
            || k == "allow.everyone.if.no.acl.found" =>
        {
            if !matches!(value, "true" | "false") {
                return Err(bad("true or false"));
            }
        }
        // -2: as the total retention (tiered storage's local part).
        "local.retention.ms" | "local.retention.bytes" => match value.parse::<i64>() {
            Ok(n) if n >= -2 => {}
            _ => return Err(bad("an integer >= -2 (-2 means the total retention)")),
        },
        // Deprecated in Kafka 3 and ignored, but still accepted (0.10.0, 3.0-IV1, ...).
        "message.format.version" => {
            if value.trim().is_empty() {
                return Err(bad("a Kafka version such as 3.0"));
            }
        }
        // retention.ms and retention.bytes accept -1 for "unlimited".
        "retention.ms" | "retention.bytes" | "log.retention.ms" | "log.retention.bytes" => {
            match value.parse::<i64>() {
                Ok(n) if n >= -1 => {}
                _ => return Err(bad("an integer >= -1 (-1 means unlimited)")),
            }
        }
        _ => match value.parse::<i64>() {
            Ok(n) if n >= 0 => {}
            _ => return Err(bad("a non-negative integer")),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn accepts_valid_topic_config_and_skips_unmanaged_keys() {
        let c = topic(&[
            ("cleanup.policy", Some("compact,delete")),
            ("retention.ms", Some("-1")),
            ("min.insync.replicas", Some("2")),
            ("compression.type", None),
        ]);
        assert_eq!(validate_topic_config(&c), Ok(()));
    }

    #[test]
    fn rejects_bad_values_with_the_key_named() {
        let err = validate_topic_config(&topic(&[("cleanup.policy", Some("forever"))]));
        assert!(
            matches!(err, Err(ConfigError::BadValue { ref key, .. }) if key == "cleanup.policy")
        );
        assert!(validate_topic_config(&topic(&[("segment.bytes", Some("-5"))])).is_err());
        assert!(validate_topic_config(&topic(&[("retention.ms", Some("1d"))])).is_err());
        assert!(validate_topic_config(&topic(&[("log.dirs", Some("/x"))])).is_err());
        let throttled = "leader.replication.throttled.replicas";
        assert_eq!(
            validate_topic_config(&topic(&[(throttled, Some("0:1, 2:0"))])),
            Ok(())
        );
        assert_eq!(
            validate_topic_config(&topic(&[(throttled, Some("*"))])),
            Ok(())
        );
        assert!(validate_topic_config(&topic(&[(throttled, Some("all"))])).is_err());
    }

    /// Kafka 4 (KIP-1161) takes an emptied `cleanup.policy` (an IncrementalAlterConfigs
    /// SUBTRACT of the last policy leaves one) and refuses unknown names and empty items.
    #[test]
    fn cleanup_policy_may_be_empty_but_holds_only_delete_and_compact() {
        for key in ["cleanup.policy", "log.cleanup.policy"] {
            for (value, ok) in [
                ("", true),
                ("  ", true),
                ("delete", true),
                ("compact, delete", true),
                ("delete,delete", true),
                ("delete,", false),
                (",", false),
                ("Delete", false),
                ("shred", false),
                ("delete,shred", false),
            ] {
                let checked = check_value(key, value);
                assert_eq!(checked.is_ok(), ok, "{key}={value:?}: {checked:?}");
            }
        }
        assert_eq!(list_items(" compact , delete "), ["compact", "delete"]);
        assert!(list_items(" ").is_empty());
    }

    #[test]
    fn broker_setting_values_are_checked() {
        let broker = |k: &str, v: &str| -> BTreeMap<String, String> {
            [(k.to_owned(), v.to_owned())].into()
        };
        for (k, v, ok) in [
            ("auto.leader.rebalance.enable", "false", true),
            ("auto.leader.rebalance.enable", "yes", false),
            ("leader.imbalance.per.broker.percentage", "0", true),
            ("leader.imbalance.per.broker.percentage", "-1", false),
            ("leader.imbalance.check.interval.seconds", "1", true),
            (
                "group.coordinator.rebalance.protocols",
                "classic,consumer",
                true,
            ),
            ("group.coordinator.rebalance.protocols", "classic", true),
            ("group.coordinator.rebalance.protocols", "consumer", false),
            (
                "group.coordinator.rebalance.protocols",
                "classic,share",
                false,
            ),
            ("group.consumer.assignors", "uniform, range", true),
            ("group.consumer.assignors", "sticky", false),
            ("group.consumer.assignors", " ", false),
            ("group.consumer.migration.policy", "bidirectional", true),
            ("group.consumer.migration.policy", "sometimes", false),
            ("group.max.size", "250", true),
            ("group.max.size", "0", false),
            ("group.consumer.max.size", "-3", false),
            ("group.consumer.session.timeout.ms", "45000", true),
            ("group.consumer.heartbeat.interval.ms", "-1", false),
            ("leader.imbalance.check.interval.seconds", "0", false),
            ("replica.fsync.before.ack", "true", true),
            ("replica.fsync.before.ack", "1", false),
        ] {
            assert_eq!(validate_broker_config(&broker(k, v)).is_ok(), ok, "{k}={v}");
        }
    }

    #[test]
    fn broker_config_rejects_operator_owned_keys() {
        let c: BTreeMap<String, String> = [("broker.id".to_owned(), "3".to_owned())].into();
        assert!(matches!(
            validate_broker_config(&c),
            Err(ConfigError::UnknownKey { .. })
        ));
    }

    #[test]
    fn keys_rule_lists_every_key() {
        let rule = topic_keys_rule();
        for k in TOPIC_CONFIG_KEYS {
            assert!(rule.rule.contains(&format!("'{k}'")));
        }
    }
}
