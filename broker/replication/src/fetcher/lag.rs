//! How far this broker's follower replicas are behind their leaders, as Kafka's
//! `kafka.server:type=ReplicaFetcherManager,name=MaxLag,clientId=Replica` reports it: after
//! each fetch a followed partition's lag is the leader's high watermark (from the fetch
//! response) minus where the follower's log now ends, never below 0, and the gauge is the
//! largest lag of any partition this broker follows.
//!
//! As in Kafka, the lag is measured against the high watermark, the only position of the
//! leader a fetch response carries. An in-sync follower holds the high watermark back itself,
//! so its lag reads 0 even while the leader's log runs ahead of it; a follower out of the ISR
//! (a restarted broker catching up, one that fell behind for `replica.lag.time.max.ms`) shows
//! the records it still has to copy. A steady non-zero value means replication falls behind.

use std::collections::HashMap;

use parking_lot::Mutex;
use prometheus::IntGauge;
use uuid::Uuid;

/// A followed partition: topic id and index.
pub type FollowedKey = (Uuid, i32);

/// The lag of a follower whose log ends at `log_end` after a fetch the leader answered with
/// `leader_high_watermark` (Kafka's `FetcherLagMetrics`): the records committed at the leader
/// that it does not have yet.
pub fn fetch_lag(leader_high_watermark: i64, log_end: i64) -> i64 {
    leader_high_watermark.saturating_sub(log_end).max(0)
}

/// Each followed partition's latest lag, and the gauge showing the largest.
pub struct FetcherLag {
    lags: Mutex<HashMap<FollowedKey, i64>>,
    gauge: IntGauge,
}

impl FetcherLag {
    /// Lags published in `gauge` (the broker's MaxLag metric).
    pub fn new(gauge: IntGauge) -> FetcherLag {
        FetcherLag {
            lags: Mutex::new(HashMap::new()),
            gauge,
        }
    }

    /// Records the lag of partition `key` after a fetch.
    pub fn record(&self, key: FollowedKey, lag: i64) {
        let mut lags = self.lags.lock();
        lags.insert(key, lag);
        self.gauge.set(max_lag(&lags));
    }

    /// Forgets every partition `still_followed` rejects: a partition that became a leader, or
    /// was deleted, lags nobody (Kafka drops its fetcher's lag stats when it stops fetching).
    pub fn retain(&self, still_followed: impl Fn(&FollowedKey) -> bool) {
        let mut lags = self.lags.lock();
        lags.retain(|key, _| still_followed(key));
        self.gauge.set(max_lag(&lags));
    }

    /// The largest lag recorded (0 with none).
    pub fn max(&self) -> i64 {
        max_lag(&self.lags.lock())
    }
}

fn max_lag(lags: &HashMap<FollowedKey, i64>) -> i64 {
    lags.values().copied().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_lags_by_what_the_leader_committed_beyond_its_log_end() {
        assert_eq!(fetch_lag(100, 40), 60, "behind");
        assert_eq!(fetch_lag(100, 100), 0, "caught up");
        assert_eq!(
            fetch_lag(100, 130),
            0,
            "an in-sync follower ahead of the high watermark"
        );
        assert_eq!(fetch_lag(-1, 0), 0, "no high watermark known");
        assert_eq!(fetch_lag(i64::MAX, -1), i64::MAX, "saturates");
    }

    #[test]
    fn the_gauge_shows_the_largest_lag_of_the_partitions_still_followed() {
        let gauge = IntGauge::new("maxlag", "test").expect("gauge");
        let lag = FetcherLag::new(gauge.clone());
        let (a, b) = ((Uuid::nil(), 0), (Uuid::nil(), 1));
        assert_eq!(gauge.get(), 0);
        lag.record(a, 500);
        lag.record(b, 20);
        assert_eq!((gauge.get(), lag.max()), (500, 500));
        // Caught up.
        lag.record(a, 0);
        assert_eq!(gauge.get(), 20);
        lag.record(a, 70);
        // b's replica became the leader: it no longer counts.
        lag.retain(|k| *k != b);
        assert_eq!(gauge.get(), 70);
        lag.retain(|_| false);
        assert_eq!(gauge.get(), 0);
    }
}
