//! Which Kafka configuration keys a KafkaCluster or KafkaTopic may set, and what their values
//! must look like, from the one table of keys (`keys`). The key lists feed the CRD's CEL rules
//! (so `kubectl apply` rejects a typo), the value checks run in the operator (so a bad value
//! becomes a condition, not a crash) and in the broker's config APIs.

use std::collections::BTreeMap;

use kube::core::Rule;

mod keys;
pub mod reference;

pub use keys::{
    broker_value, defaulted_by, is_cleanup_policy, is_throttled_replicas, list_items, topic_key,
    BrokerKey, Check, ConfigType, TopicKey, BROKER_KEYS, TOPIC_KEYS,
};

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
        expected: String,
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
    let keys: Vec<&str> = BROKER_KEYS.iter().map(|k| k.name).collect();
    keys_rule(&keys, "broker")
}

/// CEL rule for `KafkaTopic.spec.config`.
pub fn topic_keys_rule() -> Rule {
    let keys: Vec<&str> = TOPIC_KEYS.iter().map(|k| k.name).collect();
    keys_rule(&keys, "topic")
}

/// Checks every value of a topic config. Keys mapped to `None` are unmanaged and skipped.
pub fn validate_topic_config(config: &BTreeMap<String, Option<String>>) -> Result<(), ConfigError> {
    for (key, value) in config {
        let Some(value) = value else { continue };
        check_value(Scope::Topic, key, value)?;
    }
    Ok(())
}

/// Checks every value of a broker config.
pub fn validate_broker_config(config: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (key, value) in config {
        check_value(Scope::Broker, key, value)?;
    }
    Ok(())
}

/// Which table a key is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A topic config ([`TOPIC_KEYS`]).
    Topic,
    /// A broker config a KafkaCluster may set ([`BROKER_KEYS`]).
    Broker,
}

/// Checks one value of the key `key` of `scope`.
pub fn check_value(scope: Scope, key: &str, value: &str) -> Result<(), ConfigError> {
    let unknown = || ConfigError::UnknownKey {
        key: key.to_owned(),
    };
    let (kind, check) = match scope {
        Scope::Topic => topic_key(key).map(|k| (k.kind, k.check)),
        Scope::Broker => broker_value(key),
    }
    .ok_or_else(unknown)?;
    keys::check_value(kind, check, value).map_err(|expected| ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected,
    })
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
                let scope = if key == "cleanup.policy" {
                    Scope::Topic
                } else {
                    Scope::Broker
                };
                let checked = check_value(scope, key, value);
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
            (
                "confluent.schema.registry.url",
                "http://registry:8081",
                true,
            ),
            ("confluent.schema.registry.url", "https://10.0.0.1", true),
            ("confluent.schema.registry.url", "registry:8081", false),
            ("confluent.schema.registry.url", "http://", false),
            (
                "confluent.schema.registry.url",
                "http://a:1, https://b",
                true,
            ),
            ("confluent.schema.registry.url", "http://a:1,b:1", false),
            ("confluent.schema.registry.url", "http://a b", false),
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

    /// Each broker key checked "as its topic key" has one, and is checked by its rules.
    #[test]
    fn broker_keys_that_default_a_topic_key_are_checked_as_it() {
        for key in BROKER_KEYS {
            assert!(
                broker_value(key.name).is_some(),
                "{} has no check",
                key.name
            );
        }
        for (value, ok) in [("13", false), ("14", true), ("2147483648", false)] {
            for (scope, key) in [
                (Scope::Topic, "segment.bytes"),
                (Scope::Broker, "log.segment.bytes"),
            ] {
                let checked = check_value(scope, key, value);
                assert_eq!(checked.is_ok(), ok, "{key}={value}: {checked:?}");
            }
        }
        assert!(check_value(Scope::Broker, "segment.bytes", "100").is_err());
        assert!(check_value(Scope::Topic, "log.segment.bytes", "100").is_err());
    }

    /// The KafkaTopic door takes exactly what the Kafka door takes.
    #[test]
    fn values_follow_each_keys_type_and_bounds() {
        for (key, value, ok) in [
            ("index.interval.bytes", "0", false),
            ("min.insync.replicas", "0", false),
            ("retention.ms", "-1", true),
            ("retention.ms", "-2", false),
            ("local.retention.ms", "-2", true),
            ("message.format.version", "3.0-IV1", true),
            ("message.format.version", "latest", false),
            ("min.cleanable.dirty.ratio", "0.5", true),
            ("min.cleanable.dirty.ratio", "1.5", false),
            ("preallocate", "yes", false),
            ("compression.type", "none", false),
            ("message.timestamp.type", "LogAppendTime", true),
            ("confluent.value.schema.validation", "true", true),
            ("confluent.key.schema.validation", "on", false),
            (
                "confluent.value.subject.name.strategy",
                "RecordNameStrategy",
                true,
            ),
            (
                "confluent.key.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
                true,
            ),
            ("confluent.value.subject.name.strategy", "Custom", false),
        ] {
            let checked = check_value(Scope::Topic, key, value);
            assert_eq!(checked.is_ok(), ok, "{key}={value}: {checked:?}");
        }
        let refused = check_value(Scope::Topic, "retention.bytes", "-5").unwrap_err();
        assert!(
            refused.to_string().contains("-1 means unlimited"),
            "{refused}"
        );
    }

    #[test]
    fn keys_rule_lists_every_key() {
        let rule = topic_keys_rule();
        for k in TOPIC_KEYS {
            assert!(rule.rule.contains(&format!("'{}'", k.name)));
        }
    }
}
