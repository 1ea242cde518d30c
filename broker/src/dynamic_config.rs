//! Dynamic broker configs: the `log.*` defaults of topic configs, the replication throttle
//! rates and Kafka's Kerberos login settings (kept, without effect here), changed at runtime with AlterConfigs or IncrementalAlterConfigs on a BROKER resource,
//! as Kafka allows for its cluster-wide dynamic configs. A value set for this broker (resource name = its id) wins over
//! one set for every broker (empty resource name), which wins over the static configuration.
//! Both levels are kept in `dynamic-configs.json` in the data directory; in cluster mode the
//! cluster-wide level lives in the ConfigMap `<cluster>-dynamic-configs` instead, which every
//! broker follows, so a change through any broker reaches them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use tributary_crds::config::{self as crds_config, defaulted_by, ConfigType, Scope, TOPIC_KEYS};

use crate::shared_state::{attach, Shared};

/// File holding both levels, in the data directory.
const FILE: &str = "dynamic-configs.json";

/// Broker configs that may change at runtime, each with the topic config it is the default
/// of (Kafka's `DynamicLogConfig` names, from the key table), by broker key.
pub fn dynamic_log_keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    let mut keys: Vec<_> = TOPIC_KEYS
        .iter()
        .filter_map(|k| Some((k.broker_key?, k.name)))
        .collect();
    keys.sort_unstable();
    keys.into_iter()
}

/// The leader's replication throttle, bytes/s.
pub const LEADER_RATE_KEY: &str = "leader.replication.throttled.rate";
/// The follower's replication throttle, bytes/s.
pub const FOLLOWER_RATE_KEY: &str = "follower.replication.throttled.rate";

/// A throttle rate as configured: a non-negative whole number of bytes per second.
fn parse_rate(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

/// Dynamic broker configs of their own (no topic config): the replication throttles' bytes/s,
/// unbounded unless set (Kafka's default is Long.MAX_VALUE).
pub const REPLICATION_RATE_KEYS: &[&str] = &[LEADER_RATE_KEY, FOLLOWER_RATE_KEY];

/// Kafka's Kerberos (GSSAPI) login settings, which it lets change at runtime
/// (`DynamicListenerConfig`), with their types and Kafka's defaults. This broker offers no
/// GSSAPI, so they are validated, kept and described as Kafka does (admin tools and clients'
/// test suites set them), and change nothing.
pub const KERBEROS_KEYS: &[(&str, ConfigType, &str)] = &[
    (
        "sasl.kerberos.kinit.cmd",
        ConfigType::String,
        "/usr/bin/kinit",
    ),
    (
        "sasl.kerberos.min.time.before.relogin",
        ConfigType::Long,
        "60000",
    ),
    (
        "sasl.kerberos.principal.to.local.rules",
        ConfigType::List,
        "DEFAULT",
    ),
    ("sasl.kerberos.service.name", ConfigType::String, ""),
    (
        "sasl.kerberos.ticket.renew.jitter",
        ConfigType::Double,
        "0.05",
    ),
    (
        "sasl.kerberos.ticket.renew.window.factor",
        ConfigType::Double,
        "0.8",
    ),
];

fn kerberos(broker_key: &str) -> Option<&'static (&'static str, ConfigType, &'static str)> {
    KERBEROS_KEYS.iter().find(|(k, _, _)| *k == broker_key)
}

/// Kafka's default of a [`KERBEROS_KEYS`] setting.
pub fn kerberos_default(broker_key: &str) -> Option<&'static str> {
    kerberos(broker_key).map(|(_, _, default)| *default)
}

/// Whether `broker_key` may change at runtime.
fn is_dynamic(broker_key: &str) -> bool {
    topic_key(broker_key).is_some()
        || REPLICATION_RATE_KEYS.contains(&broker_key)
        || kerberos(broker_key).is_some()
}

/// The topic config a dynamic broker config is the default of.
pub fn topic_key(broker_key: &str) -> Option<&'static str> {
    defaulted_by(broker_key).map(|k| k.name)
}

/// The dynamic broker config that is the default of a topic config.
pub fn broker_key(topic_key: &str) -> Option<&'static str> {
    crds_config::topic_key(topic_key).and_then(|k| k.broker_key)
}

/// The value type of a dynamic broker config.
pub fn kind(broker_key: &str) -> Option<ConfigType> {
    if REPLICATION_RATE_KEYS.contains(&broker_key) {
        return Some(ConfigType::Long);
    }
    if let Some((_, kind, _)) = kerberos(broker_key) {
        return Some(*kind);
    }
    defaulted_by(broker_key).map(|k| k.kind)
}

/// Which set of dynamic values a BROKER resource names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// This broker only (resource name = its id): Kafka's DYNAMIC_BROKER_CONFIG.
    Broker,
    /// Every broker (empty resource name): Kafka's DYNAMIC_DEFAULT_BROKER_CONFIG.
    Cluster,
}

/// Why a dynamic config change is refused.
#[derive(Debug, thiserror::Error)]
pub enum DynamicConfigError {
    /// The key is not one of [`dynamic_log_keys`], [`REPLICATION_RATE_KEYS`] or
    /// [`KERBEROS_KEYS`].
    #[error("cannot update these configs dynamically: {0}")]
    NotDynamic(String),
    /// The value does not suit the key.
    #[error("{0}")]
    InvalidValue(String),
    /// The file could not be written; nothing changed.
    #[error("saving {path}: {source}")]
    Save {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The shared cluster-wide level could not be written; nothing changed.
    #[error("saving the cluster-wide configs: {0}")]
    Shared(String),
    /// The file exists but does not parse.
    #[error(transparent)]
    Load(#[from] crate::fsutil::JsonFileError),
}

/// Both levels, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Levels {
    #[serde(default)]
    broker: BTreeMap<String, String>,
    #[serde(default)]
    cluster: BTreeMap<String, String>,
}

impl Levels {
    fn at(&self, level: Level) -> &BTreeMap<String, String> {
        match level {
            Level::Broker => &self.broker,
            Level::Cluster => &self.cluster,
        }
    }

    fn at_mut(&mut self, level: Level) -> &mut BTreeMap<String, String> {
        match level {
            Level::Broker => &mut self.broker,
            Level::Cluster => &mut self.cluster,
        }
    }
}

/// Dynamic values by key.
pub type Values = BTreeMap<String, String>;

/// The new values of a level from its current ones.
pub type Compute<'a> = &'a (dyn Fn(&Values) -> Result<Values, DynamicConfigError> + Send + Sync);

/// The dynamic values of this broker; shared by every copy of the broker configuration.
#[derive(Default)]
pub struct DynamicConfigs {
    /// Where they persist; `None` keeps them in memory (tests, tools).
    path: Option<PathBuf>,
    /// Where the cluster-wide level persists when the cluster shares it (cluster mode).
    shared: OnceLock<Arc<dyn Shared<Values>>>,
    levels: RwLock<Levels>,
    /// Serializes changes to the file.
    changing: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for DynamicConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicConfigs")
            .field("levels", &*self.levels.read())
            .field("shared", &self.shared.get().is_some())
            .finish()
    }
}

impl DynamicConfigs {
    /// Loads the values saved in `data_dir`, if any.
    pub fn open(data_dir: &Path) -> Result<DynamicConfigs, DynamicConfigError> {
        let path = data_dir.join(FILE);
        let levels = crate::fsutil::read_json_or_default(&path)?;
        Ok(DynamicConfigs {
            path: Some(path),
            levels: RwLock::new(levels),
            ..DynamicConfigs::default()
        })
    }

    /// Keeps the cluster-wide level in `shared` from now on: it is what `shared` holds, and
    /// `changed` runs after each change it delivers (to apply new defaults to the topics).
    /// Unlike the other shared documents this is attached once the broker is built (the first
    /// time only): `changed` reaches the hosted partitions, which are built from the
    /// configuration these values belong to.
    pub fn share(
        self: &Arc<Self>,
        shared: Arc<dyn Shared<Values>>,
        changed: Box<dyn Fn() + Send + Sync>,
    ) {
        if self.shared.set(shared.clone()).is_err() {
            return;
        }
        attach(self, &shared, move |me, values| {
            me.levels.write().cluster = values;
            changed();
        });
    }

    /// The dynamic value of a broker key and the level it comes from, this broker's first.
    pub fn get(&self, broker_key: &str) -> Option<(String, Level)> {
        let levels = self.levels.read();
        levels
            .broker
            .get(broker_key)
            .map(|v| (v.clone(), Level::Broker))
            .or_else(|| {
                levels
                    .cluster
                    .get(broker_key)
                    .map(|v| (v.clone(), Level::Cluster))
            })
    }

    /// A replication throttle's bound in bytes/s (`None`: unbounded).
    pub fn replication_rate(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|(value, _)| parse_rate(&value))
    }

    /// Every value set at `level`.
    pub fn at(&self, level: Level) -> BTreeMap<String, String> {
        self.levels.read().at(level).clone()
    }

    /// Replaces the values of `level` with `values` after checking each (unless
    /// `validate_only`), and saves them; on error nothing changes.
    pub async fn replace(
        &self,
        level: Level,
        values: Values,
        validate_only: bool,
    ) -> Result<(), DynamicConfigError> {
        self.change(level, &|_| Ok(values.clone()), validate_only)
            .await
    }

    /// Sets the values of `level` to what `compute` makes of the current ones, checked (and
    /// only checked with `validate_only`), and saves them; on error nothing changes. The
    /// shared cluster-wide level is computed from its latest version, again if another broker
    /// changed it meanwhile.
    pub async fn change(
        &self,
        level: Level,
        compute: Compute<'_>,
        validate_only: bool,
    ) -> Result<(), DynamicConfigError> {
        let checked = |current: &Values| compute(current).and_then(|v| check(&v).map(|()| v));
        if validate_only {
            return checked(&self.at(level)).map(drop);
        }
        let shared = self.shared.get().filter(|_| level == Level::Cluster);
        let Some(shared) = shared else {
            return self.change_file(level, &checked);
        };
        let refused = parking_lot::Mutex::new(None);
        let written = shared
            .update(&|values| match checked(values) {
                Ok(next) => {
                    *refused.lock() = None;
                    *values = next;
                }
                Err(error) => *refused.lock() = Some(error),
            })
            .await
            .map_err(DynamicConfigError::Shared)?;
        if let Some(error) = refused.into_inner() {
            return Err(error);
        }
        self.levels.write().cluster = written;
        Ok(())
    }

    fn change_file(
        &self,
        level: Level,
        checked: &dyn Fn(&Values) -> Result<Values, DynamicConfigError>,
    ) -> Result<(), DynamicConfigError> {
        let _one_at_a_time = self.changing.lock();
        let mut next = self.levels.read().clone();
        *next.at_mut(level) = checked(next.at(level))?;
        if let Some(path) = &self.path {
            crate::fsutil::write_json(path, &next).map_err(|source| DynamicConfigError::Save {
                path: path.clone(),
                source,
            })?;
        }
        *self.levels.write() = next;
        Ok(())
    }
}

/// Checks that every key may change at runtime and every value suits its key.
fn check(values: &Values) -> Result<(), DynamicConfigError> {
    let refused: Vec<&str> = values
        .keys()
        .filter(|k| !is_dynamic(k))
        .map(String::as_str)
        .collect();
    if !refused.is_empty() {
        return Err(DynamicConfigError::NotDynamic(refused.join(", ")));
    }
    for (key, value) in values {
        if let Some(topic_key) = topic_key(key) {
            crds_config::check_value(Scope::Topic, topic_key, value).map_err(|reason| {
                DynamicConfigError::InvalidValue(reason.to_string().replace(topic_key, key))
            })?;
        } else if let Some((_, kind, _)) = kerberos(key) {
            let valid = match kind {
                ConfigType::Long => value.trim().parse::<i64>().is_ok_and(|v| v >= 0),
                ConfigType::Double => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
                _ => true,
            };
            if !valid {
                return Err(DynamicConfigError::InvalidValue(format!(
                    "{key} must be a {kind:?}, not {value:?}"
                )));
            }
        } else if parse_rate(value).is_none() {
            return Err(DynamicConfigError::InvalidValue(format!(
                "{key} must be a whole number of bytes per second, not {value:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rates_parse_as_whole_bytes_per_second() {
        assert_eq!(parse_rate(" 1048576 "), Some(1 << 20));
        assert_eq!(parse_rate("-1"), None);
        assert_eq!(parse_rate("fast"), None);
    }
    #[tokio::test]
    async fn broker_values_win_over_cluster_values_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dynamic = DynamicConfigs::open(dir.path()).expect("open");
        assert_eq!(dynamic.get("log.retention.ms"), None);
        dynamic
            .replace(
                Level::Cluster,
                values(&[("log.retention.ms", "1000"), ("log.roll.ms", "500")]),
                false,
            )
            .await
            .expect("cluster");
        dynamic
            .replace(
                Level::Broker,
                values(&[("log.retention.ms", "2000")]),
                false,
            )
            .await
            .expect("broker");
        let reopened = DynamicConfigs::open(dir.path()).expect("reopen");
        assert_eq!(
            reopened.get("log.retention.ms"),
            Some(("2000".into(), Level::Broker))
        );
        assert_eq!(
            reopened.get("log.roll.ms"),
            Some(("500".into(), Level::Cluster))
        );
        assert_eq!(reopened.at(Level::Broker).len(), 1);
    }

    #[tokio::test]
    async fn static_keys_and_bad_values_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dynamic = DynamicConfigs::open(dir.path()).expect("open");
        let not_dynamic = dynamic
            .replace(
                Level::Cluster,
                values(&[("num.partitions", "3"), ("log.retention.ms", "5")]),
                false,
            )
            .await;
        assert!(
            matches!(&not_dynamic, Err(DynamicConfigError::NotDynamic(k)) if k == "num.partitions"),
            "{not_dynamic:?}"
        );
        let bad = dynamic
            .replace(
                Level::Cluster,
                values(&[("log.segment.bytes", "many")]),
                false,
            )
            .await;
        assert!(
            matches!(&bad, Err(DynamicConfigError::InvalidValue(m)) if m.contains("log.segment.bytes")),
            "{bad:?}"
        );
        dynamic
            .replace(Level::Cluster, values(&[("log.retention.ms", "5")]), true)
            .await
            .expect("valid");
        assert_eq!(dynamic.get("log.retention.ms"), None, "validate_only");
        assert!(!dir.path().join(FILE).exists());
    }

    #[tokio::test]
    async fn replication_throttle_rates_are_dynamic_whole_bytes_per_second() {
        let dynamic = DynamicConfigs::default();
        assert_eq!(dynamic.replication_rate(LEADER_RATE_KEY), None);
        dynamic
            .replace(
                Level::Broker,
                values(&[(LEADER_RATE_KEY, "1048576"), (FOLLOWER_RATE_KEY, "0")]),
                false,
            )
            .await
            .expect("rates");
        assert_eq!(dynamic.replication_rate(LEADER_RATE_KEY), Some(1 << 20));
        assert_eq!(dynamic.replication_rate(FOLLOWER_RATE_KEY), Some(0));
        assert_eq!(kind(LEADER_RATE_KEY), Some(ConfigType::Long));
        let bad = dynamic
            .replace(Level::Broker, values(&[(FOLLOWER_RATE_KEY, "-5")]), false)
            .await;
        assert!(
            matches!(&bad, Err(DynamicConfigError::InvalidValue(m)) if m.contains(FOLLOWER_RATE_KEY)),
            "{bad:?}"
        );
    }

    #[tokio::test]
    async fn kerberos_login_settings_are_kept_typed_and_checked() {
        let dynamic = DynamicConfigs::default();
        let relogin = "sasl.kerberos.min.time.before.relogin";
        dynamic
            .replace(Level::Broker, values(&[(relogin, "58000")]), false)
            .await
            .expect("a Kafka dynamic broker config");
        assert_eq!(dynamic.get(relogin), Some(("58000".into(), Level::Broker)));
        assert_eq!(kind(relogin), Some(ConfigType::Long));
        assert_eq!(kerberos_default(relogin), Some("60000"));
        for (key, value) in [
            (relogin, "soon"),
            ("sasl.kerberos.ticket.renew.jitter", "NaN"),
        ] {
            let bad = dynamic
                .replace(Level::Broker, values(&[(key, value)]), false)
                .await;
            assert!(
                matches!(&bad, Err(DynamicConfigError::InvalidValue(m)) if m.contains(key)),
                "{bad:?}"
            );
        }
        assert_eq!(dynamic.get(relogin), Some(("58000".into(), Level::Broker)));
    }

    #[test]
    fn each_dynamic_key_defaults_one_topic_config_and_back() {
        let keys: Vec<_> = dynamic_log_keys().collect();
        assert_eq!(keys.len(), 18, "{keys:?}");
        for (broker, topic) in keys {
            assert_eq!(topic_key(broker), Some(topic));
            assert_eq!(broker_key(topic), Some(broker));
            assert!(is_dynamic(broker), "{broker}");
        }
        assert_eq!(topic_key("log.segment.bytes"), Some("segment.bytes"));
        assert_eq!(broker_key("segment.index.bytes"), None);
    }
}
