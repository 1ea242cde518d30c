//! The control plane's clock for token lifetimes: the system clock plus an offset that tests
//! step forward, so a token's expiry and the kubelet's rotation are tested without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Seconds since the Unix epoch as the API server and the kubelet see them. Cheap to clone;
/// clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    /// The current time, in whole seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        k8s_openapi::jiff::Timestamp::now().as_second() + self.0.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone) `by` forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 2);
        self.0.fetch_add(secs, Ordering::Relaxed);
    }
}

/// `secs` since the epoch as Kubernetes writes timestamps (RFC 3339, whole seconds).
pub fn rfc3339(secs: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The seconds since the epoch of an RFC 3339 timestamp, if it is one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::default();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::from_secs(3600));
        assert!(other.now() >= before + 3600);
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00Z"), Some(3600));
        assert_eq!(parse_rfc3339("soon"), None);
    }
}
