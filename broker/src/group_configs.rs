//! Group configs (Kafka's config resource type GROUP, 32): per-group overrides of the group
//! coordinator's defaults for consumer groups (KIP-848) and share groups (KIP-932), checked
//! against Kafka 4.3's bounds, kept in the data directory (standalone) or in a document every
//! broker of the cluster follows ([`crate::shared_state`]), and read by share groups'
//! membership and share-partitions whenever they act (a change applies to later
//! acquisitions, as KIP-1240 has it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::share::group::ShareGroupConfig;
use crate::share::manager::{OffsetReset, ShareSettings};
use crate::share::partition::Limits;
use crate::share_broker_config::ShareBrokerConfig;
use crate::shared_state::{attach, Shared};
use crate::topics::config::ConfigType;
use crate::topics::describe::{Described, Source};

/// The file holding every group's overrides, in the data directory.
const FILE: &str = "group-configs.json";

/// What a value of a group config must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A 32-bit integer within the inclusive bounds.
    Int(i64, i64),
    /// `true` or `false`.
    Boolean,
    /// One of the names.
    OneOf(&'static [&'static str]),
    /// `latest`, `earliest` or `by_duration:<ISO-8601 duration>`.
    OffsetReset,
}

/// One group config: its name, default and rule.
#[derive(Debug, Clone)]
struct GroupKey {
    name: &'static str,
    default: String,
    rule: Rule,
}

impl GroupKey {
    fn new(name: &'static str, default: impl ToString, rule: Rule) -> GroupKey {
        GroupKey {
            name,
            default: default.to_string(),
            rule,
        }
    }
}

/// Kafka 4.3's group configs: the share keys with broker synonyms default to the broker's
/// `group.share.*` values and are bounded by its minimums and maximums (KIP-1240); the
/// consumer keys by Kafka's `group.consumer.*` defaults.
fn group_keys(broker: &ShareBrokerConfig) -> Vec<GroupKey> {
    let b = broker;
    vec![
        GroupKey::new(
            "consumer.heartbeat.interval.ms",
            5_000,
            Rule::Int(5_000, 15_000),
        ),
        GroupKey::new(
            "consumer.session.timeout.ms",
            45_000,
            Rule::Int(45_000, 60_000),
        ),
        GroupKey::new("share.auto.offset.reset", "latest", Rule::OffsetReset),
        GroupKey::new(
            "share.delivery.count.limit",
            b.delivery_count_limit,
            Rule::Int(b.min_delivery_count_limit, b.max_delivery_count_limit),
        ),
        GroupKey::new(
            "share.heartbeat.interval.ms",
            b.heartbeat_interval_ms,
            Rule::Int(b.min_heartbeat_interval_ms, b.max_heartbeat_interval_ms),
        ),
        GroupKey::new(
            "share.isolation.level",
            "read_uncommitted",
            Rule::OneOf(&["read_uncommitted", "read_committed"]),
        ),
        GroupKey::new(
            "share.partition.max.record.locks",
            b.partition_max_record_locks,
            Rule::Int(
                b.min_partition_max_record_locks,
                b.max_partition_max_record_locks,
            ),
        ),
        GroupKey::new(
            "share.record.lock.duration.ms",
            b.record_lock_duration_ms,
            Rule::Int(b.min_record_lock_duration_ms, b.max_record_lock_duration_ms),
        ),
        GroupKey::new("share.renew.acknowledge.enable", false, Rule::Boolean),
        GroupKey::new(
            "share.session.timeout.ms",
            b.session_timeout_ms,
            Rule::Int(b.min_session_timeout_ms, b.max_session_timeout_ms),
        ),
    ]
}

/// Why a group config change was refused (INVALID_CONFIG), or could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum GroupConfigError {
    /// A key Kafka does not define for groups.
    #[error("unknown group config name: {0}")]
    Unknown(String),
    /// A value its rule refuses.
    #[error("invalid value {value:?} for group config {key}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What it must be.
        reason: String,
    },
    /// APPEND or SUBTRACT of a key that is not a list.
    #[error("group config {0} is not a list: only SET and DELETE apply")]
    NotAList(String),
    /// The overrides could not be written.
    #[error("cannot save group configs to {path}: {source}")]
    Save {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The shared document could not be changed (cluster mode); nothing changed.
    #[error("changing the shared group configs: {0}")]
    Shared(String),
    /// The saved overrides could not be read.
    #[error(transparent)]
    Load(#[from] crate::fsutil::JsonFileError),
}

/// One change of an IncrementalAlterConfigs request for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupConfigOp {
    /// SET the key to the value.
    Set(String, String),
    /// DELETE the override (back to the default).
    Delete(String),
    /// APPEND or SUBTRACT (refused: no group config is a list).
    ListOp(String),
}

/// Every group's overrides by group id: the document kept.
pub type GroupOverrides = BTreeMap<String, BTreeMap<String, String>>;

/// Every group's overrides, kept in the data directory or shared by the cluster's brokers.
#[derive(Default)]
pub struct GroupConfigs {
    /// Where they persist on their own; `None` keeps them in memory.
    path: Option<PathBuf>,
    /// Where they persist when shared (cluster mode); then the file is not used.
    shared: Option<Arc<dyn Shared<GroupOverrides>>>,
    groups: RwLock<GroupOverrides>,
    /// Every key with its default and rule.
    keys: Vec<GroupKey>,
    /// Serializes changes to the file.
    changing: Mutex<()>,
}

impl std::fmt::Debug for GroupConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConfigs")
            .field("groups", &self.groups.read().len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl GroupConfigs {
    /// The overrides saved in `data_dir`, if any, or with `shared` (cluster mode) those the
    /// shared document holds from then on, so every broker applies the same; defaults and
    /// bounds from the broker's share group settings.
    pub fn open(
        data_dir: &Path,
        shared: Option<Arc<dyn Shared<GroupOverrides>>>,
        broker: &ShareBrokerConfig,
    ) -> Result<Arc<GroupConfigs>, GroupConfigError> {
        let keys = group_keys(broker);
        let configs = match shared {
            Some(shared) => GroupConfigs {
                shared: Some(shared),
                keys,
                ..GroupConfigs::default()
            },
            None => {
                let path = data_dir.join(FILE);
                let groups = crate::fsutil::read_json_or_default(&path)?;
                GroupConfigs {
                    path: Some(path),
                    groups: RwLock::new(groups),
                    keys,
                    ..GroupConfigs::default()
                }
            }
        };
        let configs = Arc::new(configs);
        if let Some(shared) = &configs.shared {
            attach(&configs, shared, |me, document| {
                *me.groups.write() = document
            });
        }
        Ok(configs)
    }

    /// The groups with an override, by id: the GROUP config resources ListConfigResources
    /// lists (KIP-1142), whether or not the group exists.
    pub fn groups(&self) -> Vec<String> {
        self.groups.read().keys().cloned().collect()
    }

    /// Group `group`'s overrides.
    pub fn overrides(&self, group: &str) -> BTreeMap<String, String> {
        self.groups.read().get(group).cloned().unwrap_or_default()
    }

    /// Applies `ops` to `group`'s overrides, checked whole first; with `validate_only`
    /// nothing changes. Shared overrides are changed in the shared document, re-applied to
    /// a newer version when another broker changed it first.
    pub async fn alter(
        &self,
        group: &str,
        ops: &[GroupConfigOp],
        validate_only: bool,
    ) -> Result<(), GroupConfigError> {
        overrides_after(&self.keys, &self.overrides(group), ops)?;
        if validate_only {
            return Ok(());
        }
        let Some(shared) = &self.shared else {
            return self.alter_file(group, ops);
        };
        let written = shared
            .update(&|document: &mut GroupOverrides| {
                let current = document.get(group).cloned().unwrap_or_default();
                // The ops were checked above; only their effect on a newer version remains.
                if let Ok(next) = overrides_after(&self.keys, &current, ops) {
                    set_group(document, group, next);
                }
            })
            .await
            .map_err(GroupConfigError::Shared)?;
        *self.groups.write() = written;
        Ok(())
    }

    fn alter_file(&self, group: &str, ops: &[GroupConfigOp]) -> Result<(), GroupConfigError> {
        let _changing = self.changing.lock();
        let mut all = self.groups.read().clone();
        let current = all.get(group).cloned().unwrap_or_default();
        set_group(&mut all, group, overrides_after(&self.keys, &current, ops)?);
        if let Some(path) = &self.path {
            crate::fsutil::write_json(path, &all).map_err(|source| GroupConfigError::Save {
                path: path.clone(),
                source,
            })?;
        }
        *self.groups.write() = all;
        Ok(())
    }

    /// Every group config of `group` as DescribeConfigs shows it.
    pub fn describe(&self, group: &str) -> Vec<Described> {
        let overrides = self.overrides(group);
        self.keys
            .iter()
            .map(|key| {
                let (value, source) = match overrides.get(key.name) {
                    Some(value) => (value.clone(), Source::Group),
                    None => (key.default.clone(), Source::Default),
                };
                Described {
                    name: key.name.to_owned(),
                    value,
                    source,
                    kind: match key.rule {
                        Rule::Int(..) => ConfigType::Int,
                        Rule::Boolean => ConfigType::Boolean,
                        Rule::OneOf(_) | Rule::OffsetReset => ConfigType::String,
                    },
                    doc: "",
                    read_only: false,
                }
            })
            .collect()
    }

    /// The settings `group`'s share-partitions run with.
    pub fn share_settings(&self, group: &str) -> ShareSettings {
        // Read on every share fetch and acknowledgement: borrowed, nothing copied.
        let groups = self.groups.read();
        let overrides = groups.get(group);
        let value = |key: &str| {
            overrides
                .and_then(|o| o.get(key))
                .or_else(|| self.keys.iter().find(|k| k.name == key).map(|k| &k.default))
                .map(String::as_str)
        };
        let int = |key: &str| value(key).and_then(|v| v.parse::<i64>().ok());
        let defaults = Limits::default();
        ShareSettings {
            limits: Limits {
                lock_duration_ms: int("share.record.lock.duration.ms")
                    .unwrap_or(defaults.lock_duration_ms),
                delivery_count_limit: int("share.delivery.count.limit")
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or(defaults.delivery_count_limit),
                max_in_flight: int("share.partition.max.record.locks")
                    .unwrap_or(defaults.max_in_flight),
                renew_enabled: value("share.renew.acknowledge.enable") == Some("true"),
            },
            reset: value("share.auto.offset.reset")
                .and_then(|v| offset_reset(v).ok())
                .unwrap_or(OffsetReset::Latest),
            read_committed: value("share.isolation.level") == Some("read_committed"),
        }
    }

    /// `base` (the broker's share group membership settings) with `group`'s overrides.
    pub fn share_membership(&self, group: &str, base: ShareGroupConfig) -> ShareGroupConfig {
        let overrides = self.overrides(group);
        let int = |key: &str| overrides.get(key).and_then(|v| v.parse::<i64>().ok());
        ShareGroupConfig {
            session_timeout_ms: int("share.session.timeout.ms").unwrap_or(base.session_timeout_ms),
            heartbeat_interval_ms: int("share.heartbeat.interval.ms")
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(base.heartbeat_interval_ms),
            ..base
        }
    }
}

/// `group`'s overrides in `all` made `next` (none: the group is forgotten).
fn set_group(all: &mut GroupOverrides, group: &str, next: BTreeMap<String, String>) {
    if next.is_empty() {
        all.remove(group);
    } else {
        all.insert(group.to_owned(), next);
    }
}

/// The overrides after `ops`, every key and value checked (Kafka's bounds keep every session
/// longer than any heartbeat interval, so no pair needs checking).
fn overrides_after(
    keys: &[GroupKey],
    current: &BTreeMap<String, String>,
    ops: &[GroupConfigOp],
) -> Result<BTreeMap<String, String>, GroupConfigError> {
    let mut next = current.clone();
    for op in ops {
        match op {
            GroupConfigOp::Set(key, value) => {
                check(keys, key, value)?;
                next.insert(key.clone(), value.clone());
            }
            GroupConfigOp::Delete(key) => {
                known(keys, key)?;
                next.remove(key);
            }
            GroupConfigOp::ListOp(key) => {
                known(keys, key)?;
                return Err(GroupConfigError::NotAList(key.clone()));
            }
        }
    }
    Ok(next)
}

fn known<'a>(keys: &'a [GroupKey], key: &str) -> Result<&'a GroupKey, GroupConfigError> {
    keys.iter()
        .find(|k| k.name == key)
        .ok_or_else(|| GroupConfigError::Unknown(key.to_owned()))
}

/// Checks `value` against `key`'s rule.
fn check(keys: &[GroupKey], key: &str, value: &str) -> Result<(), GroupConfigError> {
    let invalid = |reason: String| GroupConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    match known(keys, key)?.rule {
        Rule::Int(min, max) => match value.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(invalid(format!("an integer from {min} to {max}"))),
        },
        Rule::Boolean => match value {
            "true" | "false" => Ok(()),
            _ => Err(invalid("true or false".into())),
        },
        Rule::OneOf(names) => {
            if names.contains(&value) {
                Ok(())
            } else {
                Err(invalid(format!("one of {}", names.join(", "))))
            }
        }
        Rule::OffsetReset => offset_reset(value).map(drop).map_err(invalid),
    }
}

/// `share.auto.offset.reset` as the share-partitions take it.
fn offset_reset(value: &str) -> Result<OffsetReset, String> {
    match value {
        "latest" => Ok(OffsetReset::Latest),
        "earliest" => Ok(OffsetReset::Earliest),
        other => {
            let duration = other
                .strip_prefix("by_duration:")
                .ok_or("latest, earliest or by_duration:<ISO-8601 duration>")?;
            iso_duration_ms(duration).map(OffsetReset::ByDuration)
        }
    }
}

/// An ISO-8601 duration (`PnDTnHnMn.nS`, the form Java's `Duration.parse` reads, days at most)
/// in milliseconds.
fn iso_duration_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an ISO-8601 duration such as P1D or PT1H30M");
    let rest = text
        .strip_prefix('P')
        .or_else(|| text.strip_prefix('p'))
        .ok_or_else(bad)?;
    let (days, time) = match rest.find(['T', 't']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let mut total: f64 = 0.0;
    let mut parts = 0;
    if !days.is_empty() {
        let n = days
            .strip_suffix(['D', 'd'])
            .and_then(|n| n.parse::<f64>().ok())
            .ok_or_else(bad)?;
        total += n * 86_400_000.0;
        parts += 1;
    }
    if let Some(mut time) = time {
        for (unit, ms) in [('H', 3_600_000.0), ('M', 60_000.0), ('S', 1_000.0)] {
            if let Some(at) = time.find([unit, unit.to_ascii_lowercase()]) {
                let n: f64 = time[..at].parse().map_err(|_| bad())?;
                total += n * ms;
                time = &time[at + 1..];
                parts += 1;
            }
        }
        if !time.is_empty() {
            return Err(bad());
        }
    }
    if parts == 0 || !total.is_finite() || total < 0.0 || total > i64::MAX as f64 {
        return Err(bad());
    }
    // Whole milliseconds: the value was checked to fit.
    #[allow(clippy::cast_possible_truncation)]
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> GroupConfigOp {
        GroupConfigOp::Set(key.into(), value.into())
    }

    /// Checks `value` of `key` against Kafka's default broker bounds.
    fn check(key: &str, value: &str) -> Result<(), GroupConfigError> {
        super::check(&group_keys(&ShareBrokerConfig::default()), key, value)
    }

    #[tokio::test]
    async fn the_brokers_share_settings_are_the_defaults_and_bound_the_overrides() {
        let dir = tempfile::tempdir().expect("dir");
        let broker = ShareBrokerConfig {
            record_lock_duration_ms: 1_000,
            min_record_lock_duration_ms: 1_000,
            delivery_count_limit: 3,
            ..ShareBrokerConfig::default()
        };
        let store = GroupConfigs::open(dir.path(), None, &broker).expect("open");
        let settings = store.share_settings("g");
        assert_eq!(settings.limits.lock_duration_ms, 1_000);
        assert_eq!(settings.limits.delivery_count_limit, 3);
        let lock = store
            .describe("g")
            .into_iter()
            .find(|d| d.name == "share.record.lock.duration.ms")
            .expect("described");
        assert_eq!(
            (lock.value.as_str(), lock.source),
            ("1000", Source::Default)
        );
        // The broker's minimum lets a group lock for one second; Kafka's default does not.
        let short = [set("share.record.lock.duration.ms", "1000")];
        store
            .alter("g", &short, false)
            .await
            .expect("within the broker's bounds");
        assert!(check("share.record.lock.duration.ms", "1000").is_err());
    }

    #[test]
    fn values_are_checked_as_kafka_bounds_them() {
        let ok = [
            ("share.auto.offset.reset", "earliest"),
            ("share.auto.offset.reset", "by_duration:PT1H"),
            ("share.record.lock.duration.ms", "15000"),
            ("share.delivery.count.limit", "10"),
            ("share.isolation.level", "read_committed"),
            ("share.renew.acknowledge.enable", "true"),
            ("consumer.session.timeout.ms", "60000"),
        ];
        for (key, value) in ok {
            assert!(check(key, value).is_ok(), "{key}={value}");
        }
        let refused = [
            ("share.auto.offset.reset", "none"),
            ("share.auto.offset.reset", "by_duration:1h"),
            ("share.record.lock.duration.ms", "14999"),
            ("share.delivery.count.limit", "11"),
            ("share.partition.max.record.locks", "99"),
            ("share.isolation.level", "committed"),
            ("share.renew.acknowledge.enable", "yes"),
            ("consumer.heartbeat.interval.ms", "x"),
        ];
        for (key, value) in refused {
            assert!(
                matches!(check(key, value), Err(GroupConfigError::Invalid { .. })),
                "{key}={value}"
            );
        }
        assert!(matches!(
            check("share.unknown", "1"),
            Err(GroupConfigError::Unknown(_))
        ));
    }

    #[test]
    fn iso_durations_read_as_java_reads_them() {
        assert_eq!(iso_duration_ms("P1D"), Ok(86_400_000));
        assert_eq!(iso_duration_ms("PT1H30M"), Ok(5_400_000));
        assert_eq!(iso_duration_ms("PT0.5S"), Ok(500));
        assert_eq!(iso_duration_ms("P2DT3M"), Ok(2 * 86_400_000 + 180_000));
        for bad in ["", "P", "PT", "1D", "PT1X", "P-1D"] {
            assert!(iso_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn changes_apply_whole_persist_and_reach_the_settings() {
        let dir = tempfile::tempdir().expect("dir");
        let store =
            GroupConfigs::open(dir.path(), None, &ShareBrokerConfig::default()).expect("open");
        let ops = [
            set("share.auto.offset.reset", "earliest"),
            set("share.record.lock.duration.ms", "20000"),
        ];
        store.alter("g", &ops, true).await.expect("validate only");
        assert!(
            store.overrides("g").is_empty(),
            "validate_only changes nothing"
        );
        store.alter("g", &ops, false).await.expect("alter");
        // A refused op leaves every other op of the request unapplied.
        let mixed = [set("share.delivery.count.limit", "3"), set("bad.key", "1")];
        assert!(store.alter("g", &mixed, false).await.is_err());
        assert_eq!(store.overrides("g").len(), 2);
        let reopened =
            GroupConfigs::open(dir.path(), None, &ShareBrokerConfig::default()).expect("reopen");
        let settings = reopened.share_settings("g");
        assert_eq!(settings.reset, OffsetReset::Earliest);
        assert_eq!(settings.limits.lock_duration_ms, 20_000);
        assert_eq!(settings.limits.delivery_count_limit, 5);
        let described = reopened.describe("g");
        let reset = described
            .iter()
            .find(|d| d.name == "share.auto.offset.reset")
            .expect("described");
        assert_eq!(
            (reset.value.as_str(), reset.source),
            ("earliest", Source::Group)
        );
        reopened
            .alter(
                "g",
                &[GroupConfigOp::Delete("share.auto.offset.reset".into())],
                false,
            )
            .await
            .expect("delete");
        assert_eq!(reopened.share_settings("g").reset, OffsetReset::Latest);
        assert!(matches!(
            reopened
                .alter(
                    "g",
                    &[GroupConfigOp::ListOp("share.isolation.level".into())],
                    false
                )
                .await,
            Err(GroupConfigError::NotAList(_))
        ));
    }
}
