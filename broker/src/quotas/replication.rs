//! Replication throttles (Kafka's `ReplicationQuotaManager`, KIP-73): the bytes a leader
//! sends to, and a follower fetches for, the replicas a topic's
//! `leader/follower.replication.throttled.replicas` name, measured as client quotas are and
//! bounded by the broker's dynamic `leader/follower.replication.throttled.rate`. Only
//! replicas outside the ISR are throttled, so a reassignment's copying cannot starve the
//! followers that acks=all waits for.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use super::rate::Rate;
pub use crate::dynamic_config::{FOLLOWER_RATE_KEY, LEADER_RATE_KEY};
use crate::topics::config::throttles_replica;
/// The topic config naming the replicas whose leader side is throttled.
pub const LEADER_REPLICAS_KEY: &str = "leader.replication.throttled.replicas";
/// The topic config naming the replicas whose follower side is throttled.
pub const FOLLOWER_REPLICAS_KEY: &str = "follower.replication.throttled.replicas";

/// One direction's throttled byte rate on this broker.
#[derive(Debug, Default)]
pub struct ReplicationQuota {
    rate: Mutex<Rate>,
}

impl ReplicationQuota {
    /// Whether the throttled replicas have used up `bound` bytes/s (None: unbounded), so a
    /// throttled replica gets nothing now.
    pub fn exceeded(&self, bound: Option<u64>, now_ms: i64) -> bool {
        let Some(bound) = bound else {
            return false;
        };
        // A bound of 0 stops throttled replication; the rate needs a positive quota.
        let mut rate = self.rate.lock();
        bound == 0 || (!rate.is_idle(now_ms) && rate.throttle_ms(bound as f64, now_ms) > 0)
    }

    /// Counts `bytes` replicated for throttled replicas.
    pub fn record(&self, bytes: usize, now_ms: i64) {
        if bytes > 0 {
            self.rate.lock().record(bytes as f64, now_ms);
        }
    }
}

/// Both directions.
#[derive(Debug, Default)]
pub struct ReplicationQuotas {
    /// What this broker sends as a leader.
    pub leader: ReplicationQuota,
    /// What this broker fetches as a follower.
    pub follower: ReplicationQuota,
}

/// Whether broker `me`'s replica of `partition` is throttled on the side whose topic config
/// is `replicas_key`: the topic's `configs` list it, and it is not in the ISR.
pub fn is_throttled(
    configs: &BTreeMap<String, String>,
    replicas_key: &str,
    partition: i32,
    me: i32,
    in_sync: impl FnOnce() -> bool,
) -> bool {
    configs
        .get(replicas_key)
        .is_some_and(|list| throttles_replica(list, partition, me))
        && !in_sync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unbounded_quota_is_never_exceeded() {
        let quota = ReplicationQuota::default();
        quota.record(100 << 20, 0);
        assert!(!quota.exceeded(None, 0));
    }

    #[test]
    fn a_burst_over_the_bound_stops_throttled_replication_until_the_window_passes() {
        let quota = ReplicationQuota::default();
        assert!(!quota.exceeded(Some(100_000), 0));
        // 1 MB over the 10 s minimum window is 100 kB/s: at the bound, not over it.
        quota.record(1_000_000, 0);
        assert!(!quota.exceeded(Some(100_000), 0));
        // 2 MB is twice the bound, for as long as the sample stays in the window.
        quota.record(1_000_000, 0);
        assert!(quota.exceeded(Some(100_000), 500));
        assert!(quota.exceeded(Some(100_000), 10_999));
        // The sample leaves the eleven-second window.
        assert!(!quota.exceeded(Some(100_000), 11_000));
    }

    #[test]
    fn a_zero_bound_stops_throttled_replication() {
        let quota = ReplicationQuota::default();
        assert!(quota.exceeded(Some(0), 0));
    }

    #[test]
    fn only_listed_replicas_outside_the_isr_are_throttled() {
        let configs: BTreeMap<String, String> =
            [(LEADER_REPLICAS_KEY.to_owned(), "0:1,2:1".to_owned())].into();
        assert!(is_throttled(&configs, LEADER_REPLICAS_KEY, 0, 1, || false));
        assert!(!is_throttled(&configs, LEADER_REPLICAS_KEY, 0, 1, || true));
        assert!(!is_throttled(&configs, LEADER_REPLICAS_KEY, 1, 1, || false));
        assert!(!is_throttled(&configs, LEADER_REPLICAS_KEY, 0, 2, || false));
        assert!(!is_throttled(&configs, FOLLOWER_REPLICAS_KEY, 0, 1, || {
            false
        }));
    }
}
