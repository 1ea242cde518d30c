//! What a topic's or this broker's configs are described as (DescribeConfigs, and the configs
//! CreateTopics answers with): every key with its value, where that value comes from, its type
//! and documentation, in Kafka's terms. Pure over the broker's configuration: the handlers add
//! authorization and the wire encoding.

use std::collections::BTreeMap;

use super::config::{static_default, ConfigType, TOPIC_KEYS};
use crate::config::BrokerConfig;
use crate::dynamic_config::{self as dynamic, Level, KERBEROS_KEYS, REPLICATION_RATE_KEYS};
use crate::security::tokens::{MS_SETTINGS, SECRET_KEY};

/// Where a described value comes from (Kafka's `ConfigSource`, as its wire code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A per-topic override.
    Topic = 1,
    /// A dynamic config of this broker.
    DynamicBroker = 2,
    /// A dynamic config of every broker.
    DynamicDefault = 3,
    /// The broker's static configuration.
    StaticBroker = 4,
    /// The built-in default.
    Default = 5,
    /// A group's override (GROUP_CONFIG).
    Group = 8,
}

impl Source {
    /// The source of a dynamic value set at `level`.
    fn of(level: Level) -> Source {
        match level {
            Level::Broker => Source::DynamicBroker,
            Level::Cluster => Source::DynamicDefault,
        }
    }

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// One described config.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// Kafka's key name.
    pub name: String,
    /// Its value as Kafka reports it.
    pub value: String,
    /// Where the value comes from.
    pub source: Source,
    /// Value type (DescribeConfigs v3+).
    pub kind: ConfigType,
    /// One-line documentation (DescribeConfigs v3+), empty where there is none.
    pub doc: &'static str,
    /// Only a restart changes it.
    pub read_only: bool,
}

impl Described {
    /// A config the config APIs may change.
    fn alterable(name: &str, (value, source): (String, Source), kind: ConfigType) -> Described {
        Described {
            name: name.to_string(),
            value,
            source,
            kind,
            doc: "",
            read_only: false,
        }
    }
}

/// Every topic config of a topic with `overrides`: the override, else the dynamic broker
/// default, else the static one.
pub fn topic(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<Described> {
    TOPIC_KEYS
        .iter()
        .map(|key| {
            let (value, source) = match overrides.get(key.name) {
                Some(v) => (v.clone(), Source::Topic),
                None => dynamic_default(broker, key.name)
                    .unwrap_or_else(|| (static_default(broker, key.name), Source::Default)),
            };
            Described {
                name: key.name.to_string(),
                value,
                source,
                kind: key.kind,
                doc: key.doc,
                read_only: false,
            }
        })
        .collect()
}

/// The dynamic broker config standing in for topic key `topic_key`'s default, with its source.
fn dynamic_default(broker: &BrokerConfig, topic_key: &str) -> Option<(String, Source)> {
    let (value, level) = broker.dynamic.get(dynamic::broker_key(topic_key)?)?;
    Some((value, Source::of(level)))
}

/// A BROKER resource's configs at `level`: for every broker (`Level::Cluster`, resource name
/// "") its dynamic values alone, as Kafka describes that resource; for this broker its static
/// settings, then its dynamic `log.*` defaults, replication rates, Kerberos and delegation
/// token settings.
pub fn broker(config: &BrokerConfig, level: Level) -> Vec<Described> {
    if level == Level::Cluster {
        return config
            .dynamic
            .at(Level::Cluster)
            .into_iter()
            .map(|(name, value)| {
                let kind = dynamic::kind(&name).unwrap_or(ConfigType::String);
                Described::alterable(&name, (value, Source::DynamicDefault), kind)
            })
            .collect();
    }
    let statics = static_settings(config)
        .into_iter()
        .map(|(name, value, kind)| Described {
            name: name.to_string(),
            value,
            source: Source::StaticBroker,
            kind,
            doc: "",
            read_only: true,
        });
    let log_defaults = dynamic::dynamic_log_keys().map(|(name, topic_key)| {
        let value = dynamic_or(config, name, || {
            (static_default(config, topic_key), Source::StaticBroker)
        });
        let kind = dynamic::kind(name).unwrap_or(ConfigType::String);
        Described::alterable(name, value, kind)
    });
    let rates = REPLICATION_RATE_KEYS.iter().map(|&name| {
        let value = dynamic_or(config, name, || (i64::MAX.to_string(), Source::Default));
        Described::alterable(name, value, ConfigType::Long)
    });
    let kerberos = KERBEROS_KEYS.iter().map(|&(name, kind, default)| {
        let value = dynamic_or(config, name, || (default.to_owned(), Source::Default));
        Described::alterable(name, value, kind)
    });
    statics
        .chain(log_defaults)
        .chain(rates)
        .chain(kerberos)
        .chain(token_settings(config))
        .collect()
}

/// The delegation token settings (KIP-48), read at start-up as Kafka reads them: the secret
/// is a PASSWORD, described as sensitive without its value.
fn token_settings(config: &BrokerConfig) -> impl Iterator<Item = Described> + '_ {
    let secret = (SECRET_KEY, ConfigType::Password, None);
    let durations = MS_SETTINGS
        .iter()
        .map(|&(name, default)| (name, ConfigType::Long, Some(default.to_string())));
    std::iter::once(secret)
        .chain(durations)
        .map(|(name, kind, default)| {
            let set = config.security.global(name);
            Described {
                name: name.to_owned(),
                value: set.map(str::to_owned).or(default).unwrap_or_default(),
                source: if set.is_some() {
                    Source::StaticBroker
                } else {
                    Source::Default
                },
                kind,
                doc: "",
                read_only: true,
            }
        })
}

/// The name, value and type of each static setting a broker describes.
fn static_settings(config: &BrokerConfig) -> Vec<(&'static str, String, ConfigType)> {
    let listeners = &config.listeners.all;
    let join = |items: Vec<String>| items.join(",");
    vec![
        ("broker.id", config.broker_id.to_string(), ConfigType::Int),
        ("node.id", config.broker_id.to_string(), ConfigType::Int),
        (
            "listeners",
            join(
                listeners
                    .iter()
                    .map(|l| format!("{}://{}", l.name, l.bind))
                    .collect(),
            ),
            ConfigType::List,
        ),
        (
            "advertised.listeners",
            join(
                listeners
                    .iter()
                    .map(|l| format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port))
                    .collect(),
            ),
            ConfigType::List,
        ),
        (
            "log.dirs",
            config.data_dir.display().to_string(),
            ConfigType::String,
        ),
        (
            "num.partitions",
            config.num_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "default.replication.factor",
            config.default_replication_factor.to_string(),
            ConfigType::Int,
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            ConfigType::Boolean,
        ),
        (
            "socket.request.max.bytes",
            config.socket_request_max_bytes.to_string(),
            ConfigType::Int,
        ),
    ]
}

/// Dynamic config `name`'s value and source where it is set, else `default`'s.
fn dynamic_or(
    config: &BrokerConfig,
    name: &str,
    default: impl FnOnce() -> (String, Source),
) -> (String, Source) {
    match config.dynamic.get(name) {
        Some((value, level)) => (value, Source::of(level)),
        None => default(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Flags;
    use crate::dynamic_config::DynamicConfigs;

    /// A broker whose dynamic configs live in `dir`, with `cluster` set for every broker.
    async fn broker_with(dir: &std::path::Path, cluster: &[(&str, &str)]) -> BrokerConfig {
        let mut config = BrokerConfig::resolve(Flags::default()).expect("config");
        let dynamic = DynamicConfigs::open(dir).expect("dynamic configs");
        let values = cluster
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        dynamic
            .replace(Level::Cluster, values, false)
            .await
            .expect("set");
        config.dynamic = Arc::new(dynamic);
        config
    }

    #[tokio::test]
    async fn a_broker_describes_its_delegation_token_settings_as_kafka_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = broker_with(dir.path(), &[]).await;
        config.security = crate::security::settings::SecurityProps::from_pairs(&[
            ("delegation.token.secret.key", "s3cret"),
            ("delegation.token.expiry.time.ms", "1000"),
        ]);
        let described = broker(&config, Level::Broker);
        let got = |name: &str| {
            let d = find(&described, name);
            (d.value.clone(), d.source, d.kind, d.read_only)
        };
        assert_eq!(
            got("delegation.token.secret.key"),
            (
                "s3cret".into(),
                Source::StaticBroker,
                ConfigType::Password,
                true
            ),
            "the encoder leaves a Password's value out"
        );
        assert_eq!(
            got("delegation.token.expiry.time.ms"),
            ("1000".into(), Source::StaticBroker, ConfigType::Long, true)
        );
        assert_eq!(
            got("delegation.token.max.lifetime.ms"),
            ("604800000".into(), Source::Default, ConfigType::Long, true)
        );
        assert_eq!(
            got("delegation.token.expiry.check.interval.ms"),
            ("3600000".into(), Source::Default, ConfigType::Long, true)
        );
    }

    fn find<'a>(described: &'a [Described], name: &str) -> &'a Described {
        described
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is not described"))
    }

    #[tokio::test]
    async fn a_topic_key_comes_from_its_override_else_the_dynamic_default_else_the_static_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with(dir.path(), &[("log.retention.ms", "5000")]).await;
        let overrides = [("segment.bytes".to_owned(), "4096".to_owned())].into();
        let described = topic(&broker, &overrides);
        assert_eq!(described.len(), TOPIC_KEYS.len(), "every key, once");
        let segment = find(&described, "segment.bytes");
        assert_eq!(
            (segment.value.as_str(), segment.source),
            ("4096", Source::Topic)
        );
        assert_eq!(segment.kind, ConfigType::Int);
        assert!(!segment.doc.is_empty() && !segment.read_only);
        let retention = find(&described, "retention.ms");
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("5000", Source::DynamicDefault)
        );
        let policy = find(&described, "cleanup.policy");
        assert_eq!(
            (policy.value.as_str(), policy.source),
            ("delete", Source::Default)
        );
    }

    #[tokio::test]
    async fn the_every_broker_resource_lists_its_dynamic_values_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with(dir.path(), &[("log.retention.ms", "5000")]).await;
        let described = super::broker(&broker, Level::Cluster);
        assert_eq!(described.len(), 1, "{described:?}");
        assert_eq!(described[0].source, Source::DynamicDefault);
        assert_eq!(described[0].kind, ConfigType::Long);
    }

    #[tokio::test]
    async fn this_broker_lists_static_settings_read_only_then_what_may_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with(dir.path(), &[("log.retention.ms", "5000")]).await;
        let described = super::broker(&broker, Level::Broker);
        let id = find(&described, "broker.id");
        assert!(id.read_only && id.source == Source::StaticBroker);
        let retention = find(&described, "log.retention.ms");
        assert_eq!(
            (
                retention.value.as_str(),
                retention.source,
                retention.read_only
            ),
            ("5000", Source::DynamicDefault, false)
        );
        let roll = find(&described, "log.roll.ms");
        assert_eq!(roll.source, Source::StaticBroker);
        let rate = find(&described, "leader.replication.throttled.rate");
        assert_eq!(
            (rate.value.clone(), rate.source),
            (i64::MAX.to_string(), Source::Default)
        );
        assert_eq!(
            find(&described, "sasl.kerberos.kinit.cmd").value,
            "/usr/bin/kinit"
        );
    }
}
