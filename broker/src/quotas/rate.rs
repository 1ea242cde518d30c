//! Byte rates measured as Kafka measures them for quotas: eleven one-second samples, and a
//! throttle time that brings the rate back to the quota.

use std::collections::VecDeque;

/// Samples kept (Kafka's `quota.window.num`).
const SAMPLES: i64 = 11;
/// Length of one sample (Kafka's `quota.window.size.seconds`).
const SAMPLE_MS: i64 = 1000;
/// The shortest window a rate is measured over, in seconds.
pub(super) const MIN_WINDOW_SECONDS: f64 = ((SAMPLES - 1) * SAMPLE_MS / 1000) as f64;
/// Longest throttle: the whole measured window.
pub(super) const MAX_THROTTLE_MS: i64 = SAMPLES * SAMPLE_MS;

/// A windowed rate of one quota entity.
#[derive(Debug, Default)]
pub(super) struct Rate {
    /// (sample start, total) oldest first.
    samples: VecDeque<(i64, f64)>,
}

impl Rate {
    /// Adds `value` at `now_ms`.
    pub(super) fn record(&mut self, value: f64, now_ms: i64) {
        self.purge(now_ms);
        match self.samples.back_mut() {
            Some((start, total)) if now_ms < *start + SAMPLE_MS => *total += value,
            _ => self.samples.push_back((now_ms, value)),
        }
    }

    /// Whether nothing was recorded within the window.
    pub(super) fn is_idle(&mut self, now_ms: i64) -> bool {
        self.purge(now_ms);
        self.samples.is_empty()
    }

    /// The rate per second at `now_ms`. As in Kafka the window counts at least ten whole
    /// samples, so a new client's first burst is spread over ten seconds.
    fn per_second(&self, now_ms: i64) -> f64 {
        let total: f64 = self.samples.iter().map(|(_, t)| t).sum();
        total * 1000.0 / window_ms(self.samples.front().map_or(now_ms, |s| s.0), now_ms)
    }

    /// How long the client must pause for the rate to come back to `quota` per second.
    pub(super) fn throttle_ms(&self, quota: f64, now_ms: i64) -> i64 {
        let rate = self.per_second(now_ms);
        if rate <= quota {
            return 0;
        }
        let oldest = self.samples.front().map_or(now_ms, |s| s.0);
        let ms = (rate - quota) / quota * window_ms(oldest, now_ms);
        (ms.round() as i64).clamp(0, MAX_THROTTLE_MS)
    }

    fn purge(&mut self, now_ms: i64) {
        while self
            .samples
            .front()
            .is_some_and(|(start, _)| start + SAMPLES * SAMPLE_MS <= now_ms)
        {
            self.samples.pop_front();
        }
    }
}

fn window_ms(oldest_ms: i64, now_ms: i64) -> f64 {
    let elapsed = (now_ms - oldest_ms).max(0);
    let full = elapsed / SAMPLE_MS;
    let padded = elapsed + (SAMPLES - 1 - full).max(0) * SAMPLE_MS;
    padded as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_within_its_quota_is_not_throttled() {
        let mut rate = Rate::default();
        for tick in 0..40 {
            rate.record(450.0, tick * 500);
            assert_eq!(rate.throttle_ms(1000.0, tick * 500), 0, "at {tick}");
        }
    }

    #[test]
    fn going_over_the_quota_pauses_long_enough_to_come_back_to_it() {
        let mut rate = Rate::default();
        // 20,000 bytes at once against 1,000/s: spread over the 10 s minimum window that is
        // 2,000/s, so the client pauses 10 s more to average 1,000/s.
        rate.record(20_000.0, 0);
        assert_eq!(rate.throttle_ms(1000.0, 0), 10_000);
        rate.record(1_000_000.0, 0);
        assert_eq!(rate.throttle_ms(1000.0, 0), MAX_THROTTLE_MS);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut rate = Rate::default();
        rate.record(50_000.0, 0);
        assert!(rate.throttle_ms(1000.0, 0) > 0);
        assert!(!rate.is_idle(10_999));
        assert!(rate.is_idle(11_000));
        assert_eq!(rate.throttle_ms(1000.0, 11_000), 0);
    }
}
