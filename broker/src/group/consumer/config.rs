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
}

impl Default for ConsumerGroupConfig {
    fn default() -> ConsumerGroupConfig {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            assignors: vec!["uniform".into(), "range".into()],
            metadata_refresh_interval_ms: 5_000,
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
