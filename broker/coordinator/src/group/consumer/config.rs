//! The broker settings a consumer group's decisions depend on (`group.consumer.*`), passed
//! in so the core reads no global state.

/// Consumer group protocol settings, with Kafka's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`: a member silent this long is removed.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: told to members in every response.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`: members beyond this are refused.
    pub max_size: usize,
    /// `group.consumer.assignors`: the server assignors by name; the first is the default.
    pub assignors: Vec<String>,
    /// How often the subscribed topics' metadata is compared with the cluster's even
    /// when no subscription changed (so new partitions and regex matches are noticed).
    pub metadata_refresh_interval_ms: i64,
    /// `group.consumer.migration.policy`: which online conversions between classic and
    /// consumer groups are allowed.
    pub migration_policy: MigrationPolicy,
    /// How many members a classic group may have: a downgrade that would make a larger
    /// classic group is not made (`group.max.size`, as in Kafka).
    pub classic_max_size: usize,
}

/// `group.consumer.migration.policy` (Kafka's `ConsumerGroupMigrationPolicy`): whether a
/// classic group converts to a consumer group when a consumer-protocol member joins it
/// (upgrade), and back when the last consumer-protocol member leaves (downgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    /// Both ways (Kafka 4's default).
    Bidirectional,
    /// Classic to consumer only.
    Upgrade,
    /// Consumer to classic only.
    Downgrade,
    /// Never: a group id keeps the type it was created with while it has members.
    Disabled,
}

impl MigrationPolicy {
    /// The policy a config value names (case-insensitive, as Kafka parses it).
    pub fn parse(value: &str) -> Option<MigrationPolicy> {
        match value.trim().to_ascii_lowercase().as_str() {
            "bidirectional" => Some(MigrationPolicy::Bidirectional),
            "upgrade" => Some(MigrationPolicy::Upgrade),
            "downgrade" => Some(MigrationPolicy::Downgrade),
            "disabled" => Some(MigrationPolicy::Disabled),
            _ => None,
        }
    }

    /// Whether a classic group may become a consumer group.
    pub fn upgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade
        )
    }

    /// Whether a consumer group may become a classic group.
    pub fn downgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade
        )
    }
}

impl Default for ConsumerGroupConfig {
    fn default() -> ConsumerGroupConfig {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            assignors: vec!["uniform".into(), "range".into()],
            metadata_refresh_interval_ms: 5_000,
            migration_policy: MigrationPolicy::Bidirectional,
            classic_max_size: i32::MAX as usize,
        }
    }
}

impl ConsumerGroupConfig {
    /// The assignor used when no member asks for one.
    pub fn default_assignor(&self) -> &str {
        self.assignors.first().map_or("uniform", String::as_str)
    }

    /// Whether `name` is a configured assignor.
    pub fn has_assignor(&self, name: &str) -> bool {
        self.assignors.iter().any(|a| a == name)
    }
}
