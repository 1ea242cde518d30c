//! The transaction coordinator's settings, Kafka's names in the comments.

use std::time::Duration;

/// Settings of the transaction coordinator.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// transaction.max.timeout.ms: longest transaction timeout a producer may ask for.
    pub max_timeout_ms: i32,
    /// transactional.id.expiration.ms: ids idle this long without an open transaction are
    /// forgotten.
    pub id_expiration_ms: i64,
    /// transaction.state.log.num.partitions: partitions of `__transaction_state` when this
    /// coordinator creates it (an existing topic keeps its count).
    pub topic_partitions: i32,
    /// How long a state record may take to become durable before the request fails (and the
    /// client retries).
    pub write_timeout: Duration,
    /// transaction.remove.expired.transaction.cleanup.interval.ms: how often ids are checked
    /// against the expiration. Kafka's default is an hour; this keeps the one second the
    /// broker has always checked at.
    pub remove_expired_interval_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> TxnConfig {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            topic_partitions: 50,
            write_timeout: Duration::from_secs(30),
            remove_expired_interval_ms: 1_000,
        }
    }
}
