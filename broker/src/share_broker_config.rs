//! The broker's share group settings (Kafka's `group.share.*` broker configs): the defaults a
//! share group runs with unless its group configs say otherwise, and the bounds those group
//! configs are checked against (KIP-1240), with Kafka 4.3's defaults and valid ranges.

use crate::flags::Flags;

/// `group.share.*` as resolved at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareBrokerConfig {
    /// `group.share.record.lock.duration.ms`.
    pub record_lock_duration_ms: i64,
    /// `group.share.min.record.lock.duration.ms`.
    pub min_record_lock_duration_ms: i64,
    /// `group.share.max.record.lock.duration.ms`.
    pub max_record_lock_duration_ms: i64,
    /// `group.share.delivery.count.limit`.
    pub delivery_count_limit: i64,
    /// `group.share.min.delivery.count.limit`.
    pub min_delivery_count_limit: i64,
    /// `group.share.max.delivery.count.limit`.
    pub max_delivery_count_limit: i64,
    /// `group.share.partition.max.record.locks`.
    pub partition_max_record_locks: i64,
    /// `group.share.min.partition.max.record.locks`.
    pub min_partition_max_record_locks: i64,
    /// `group.share.max.partition.max.record.locks`.
    pub max_partition_max_record_locks: i64,
    /// `group.share.session.timeout.ms`.
    pub session_timeout_ms: i64,
    /// `group.share.min.session.timeout.ms`.
    pub min_session_timeout_ms: i64,
    /// `group.share.max.session.timeout.ms`.
    pub max_session_timeout_ms: i64,
    /// `group.share.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i64,
    /// `group.share.min.heartbeat.interval.ms`.
    pub min_heartbeat_interval_ms: i64,
    /// `group.share.max.heartbeat.interval.ms`.
    pub max_heartbeat_interval_ms: i64,
    /// `group.share.max.size`: members per share group.
    pub max_size: i64,
    /// `group.share.max.share.sessions`: share sessions per broker.
    pub max_share_sessions: i64,
}

impl Default for ShareBrokerConfig {
    /// Kafka 4.3's defaults.
    fn default() -> ShareBrokerConfig {
        ShareBrokerConfig {
            record_lock_duration_ms: 30_000,
            min_record_lock_duration_ms: 15_000,
            max_record_lock_duration_ms: 60_000,
            delivery_count_limit: 5,
            min_delivery_count_limit: 2,
            max_delivery_count_limit: 10,
            partition_max_record_locks: 2_000,
            min_partition_max_record_locks: 100,
            max_partition_max_record_locks: 4_000,
            session_timeout_ms: 45_000,
            min_session_timeout_ms: 45_000,
            max_session_timeout_ms: 60_000,
            heartbeat_interval_ms: 5_000,
            min_heartbeat_interval_ms: 5_000,
            max_heartbeat_interval_ms: 15_000,
            max_size: 200,
            max_share_sessions: 2_000,
        }
    }
}

/// One setting: its Kafka name, its field here and flag, and Kafka's valid range.
struct Setting {
    name: &'static str,
    field: fn(&mut ShareBrokerConfig) -> &mut i64,
    flag: fn(&mut Flags) -> &mut Option<i32>,
    range: (i64, i64),
}

/// The largest int setting.
const MAX: i64 = i32::MAX as i64;

/// A [`Setting`] of `field` and flag `group_share_<field>`.
macro_rules! setting {
    ($name:literal, $field:ident, $flag:ident, $min:expr, $max:expr) => {
        Setting {
            name: $name,
            field: |c| &mut c.$field,
            flag: |f| &mut f.$flag,
            range: ($min, $max),
        }
    };
}

/// Every setting with Kafka's valid range.
const SETTINGS: &[Setting] = &[
    setting!(
        "group.share.record.lock.duration.ms",
        record_lock_duration_ms,
        group_share_record_lock_duration_ms,
        1_000,
        3_600_000
    ),
    setting!(
        "group.share.min.record.lock.duration.ms",
        min_record_lock_duration_ms,
        group_share_min_record_lock_duration_ms,
        1_000,
        30_000
    ),
    setting!(
        "group.share.max.record.lock.duration.ms",
        max_record_lock_duration_ms,
        group_share_max_record_lock_duration_ms,
        30_000,
        3_600_000
    ),
    setting!(
        "group.share.delivery.count.limit",
        delivery_count_limit,
        group_share_delivery_count_limit,
        2,
        10
    ),
    setting!(
        "group.share.min.delivery.count.limit",
        min_delivery_count_limit,
        group_share_min_delivery_count_limit,
        2,
        5
    ),
    setting!(
        "group.share.max.delivery.count.limit",
        max_delivery_count_limit,
        group_share_max_delivery_count_limit,
        5,
        25
    ),
    setting!(
        "group.share.partition.max.record.locks",
        partition_max_record_locks,
        group_share_partition_max_record_locks,
        100,
        10_000
    ),
    setting!(
        "group.share.min.partition.max.record.locks",
        min_partition_max_record_locks,
        group_share_min_partition_max_record_locks,
        100,
        10_000
    ),
    setting!(
        "group.share.max.partition.max.record.locks",
        max_partition_max_record_locks,
        group_share_max_partition_max_record_locks,
        100,
        10_000
    ),
    setting!(
        "group.share.session.timeout.ms",
        session_timeout_ms,
        group_share_session_timeout_ms,
        1,
        MAX
    ),
    setting!(
        "group.share.min.session.timeout.ms",
        min_session_timeout_ms,
        group_share_min_session_timeout_ms,
        1,
        MAX
    ),
    setting!(
        "group.share.max.session.timeout.ms",
        max_session_timeout_ms,
        group_share_max_session_timeout_ms,
        1,
        MAX
    ),
    setting!(
        "group.share.heartbeat.interval.ms",
        heartbeat_interval_ms,
        group_share_heartbeat_interval_ms,
        1,
        MAX
    ),
    setting!(
        "group.share.min.heartbeat.interval.ms",
        min_heartbeat_interval_ms,
        group_share_min_heartbeat_interval_ms,
        1,
        MAX
    ),
    setting!(
        "group.share.max.heartbeat.interval.ms",
        max_heartbeat_interval_ms,
        group_share_max_heartbeat_interval_ms,
        1,
        MAX
    ),
    setting!(
        "group.share.max.size",
        max_size,
        group_share_max_size,
        1,
        1_000
    ),
    setting!(
        "group.share.max.share.sessions",
        max_share_sessions,
        group_share_max_share_sessions,
        1,
        MAX
    ),
];

/// The flag of `group.share.*` key `key`, for the properties file; `None` for another key.
pub fn flag<'a>(flags: &'a mut Flags, key: &str) -> Option<&'a mut Option<i32>> {
    let setting = SETTINGS.iter().find(|s| s.name == key)?;
    Some((setting.flag)(flags))
}

impl ShareBrokerConfig {
    /// The settings `flags` give over Kafka's defaults, each within Kafka's range and every
    /// default within its own bounds (Kafka refuses to start otherwise); the reason if not.
    pub fn resolve(flags: &mut Flags) -> Result<ShareBrokerConfig, String> {
        let mut config = ShareBrokerConfig::default();
        for setting in SETTINGS {
            if let Some(value) = *(setting.flag)(flags) {
                let value = i64::from(value);
                let (min, max) = setting.range;
                if !(min..=max).contains(&value) {
                    return Err(format!(
                        "{} must be from {min} to {max}, not {value}",
                        setting.name
                    ));
                }
                *(setting.field)(&mut config) = value;
            }
        }
        config.check()?;
        Ok(config)
    }

    /// Kafka's cross-checks: each default within its minimum and maximum, sessions longer
    /// than heartbeats, and room for a whole group's sessions.
    fn check(&self) -> Result<(), String> {
        let within = |name: &str, value: i64, min: i64, max: i64| {
            if min <= value && value <= max {
                Ok(())
            } else {
                Err(format!(
                    "group.share.{name} ({value}) must be within its minimum ({min}) and maximum ({max})"
                ))
            }
        };
        within(
            "record.lock.duration.ms",
            self.record_lock_duration_ms,
            self.min_record_lock_duration_ms,
            self.max_record_lock_duration_ms,
        )?;
        within(
            "delivery.count.limit",
            self.delivery_count_limit,
            self.min_delivery_count_limit,
            self.max_delivery_count_limit,
        )?;
        within(
            "partition.max.record.locks",
            self.partition_max_record_locks,
            self.min_partition_max_record_locks,
            self.max_partition_max_record_locks,
        )?;
        within(
            "session.timeout.ms",
            self.session_timeout_ms,
            self.min_session_timeout_ms,
            self.max_session_timeout_ms,
        )?;
        within(
            "heartbeat.interval.ms",
            self.heartbeat_interval_ms,
            self.min_heartbeat_interval_ms,
            self.max_heartbeat_interval_ms,
        )?;
        if self.heartbeat_interval_ms >= self.session_timeout_ms {
            return Err(
                "group.share.heartbeat.interval.ms must be less than group.share.session.timeout.ms"
                    .into(),
            );
        }
        if self.max_share_sessions < self.max_size {
            return Err(
                "group.share.max.share.sessions must be at least group.share.max.size".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_defaults_hold_and_flags_override_them_within_kafkas_bounds() {
        let config = ShareBrokerConfig::resolve(&mut Flags::default()).expect("defaults");
        assert_eq!(config, ShareBrokerConfig::default());
        // The lock a client suite runs with: one second, minimum one second.
        let mut short = Flags {
            group_share_record_lock_duration_ms: Some(1_000),
            group_share_min_record_lock_duration_ms: Some(1_000),
            ..Flags::default()
        };
        let config = ShareBrokerConfig::resolve(&mut short).expect("a one-second lock");
        assert_eq!(
            (
                config.record_lock_duration_ms,
                config.min_record_lock_duration_ms
            ),
            (1_000, 1_000)
        );
        for (why, flags) in [
            (
                "below the minimum",
                Flags {
                    group_share_record_lock_duration_ms: Some(1_000),
                    ..Flags::default()
                },
            ),
            (
                "outside Kafka's range",
                Flags {
                    group_share_delivery_count_limit: Some(11),
                    ..Flags::default()
                },
            ),
            (
                "a heartbeat as long as the session",
                Flags {
                    group_share_heartbeat_interval_ms: Some(45_000),
                    group_share_max_heartbeat_interval_ms: Some(45_000),
                    ..Flags::default()
                },
            ),
            (
                "fewer sessions than a group's members",
                Flags {
                    group_share_max_share_sessions: Some(10),
                    ..Flags::default()
                },
            ),
        ] {
            let mut flags = flags;
            assert!(ShareBrokerConfig::resolve(&mut flags).is_err(), "{why}");
        }
    }
}
