//! Group coordinator settings, with Kafka's defaults so clients see the timings they expect.

/// Settings of the group coordinator (Kafka's `group.*` and `offsets.*` broker configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of a new group waits for
    /// more members, so consumers started together do not rebalance once per member.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`: shortest session a member may ask for.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: longest session a member may ask for.
    pub max_session_timeout_ms: i32,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets` when it is created.
    pub offsets_topic_partitions: i32,
    /// `offsets.retention.minutes` in milliseconds: how long offsets of an empty group are kept.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: i64,
    /// `offsets.commit.timeout.ms`: how long a commit waits for its record to be durable.
    pub offsets_commit_timeout_ms: i64,
    /// `offset.metadata.max.bytes`: largest metadata string accepted with a commit.
    pub offset_metadata_max_bytes: usize,
    /// Whether `group.coordinator.rebalance.protocols` lists `consumer` (the default, as in
    /// Kafka 4.0): the KIP-848 protocol (ConsumerGroupHeartbeat, ConsumerGroupDescribe) is
    /// served and advertised only then.
    pub consumer_protocol: bool,
    /// `group.max.size`: most members a classic group admits (KIP-389).
    pub max_size: usize,
    /// The `group.consumer.*` settings of consumer groups.
    pub consumer: super::consumer::ConsumerGroupConfig,
    /// The `group.share.*` membership settings of share groups (KIP-932).
    pub share: crate::share::group::ShareGroupConfig,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            offsets_topic_partitions: 50,
            offsets_retention_ms: 10_080 * 60_000,
            offsets_retention_check_interval_ms: 600_000,
            offsets_commit_timeout_ms: 5_000,
            offset_metadata_max_bytes: 4096,
            consumer_protocol: true,
            max_size: i32::MAX as usize,
            consumer: super::consumer::ConsumerGroupConfig::default(),
            share: crate::share::group::ShareGroupConfig::default(),
        }
    }
}
