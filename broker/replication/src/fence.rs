//! Self-fencing: a broker in cluster mode that has not completed a renewal of its registration
//! Lease within its renew deadline (counted from when it SENT the last successful renewal, on
//! its own monotonic clock) stops acting as a leader: no produce, no high watermark advance,
//! no coordinator writes, until a renewal succeeds again. By then the controller may already
//! have moved its leaderships; safety rests on leader epochs, and the fence makes sure a
//! broker cut off from the API server does not keep acknowledging writes meanwhile.
//!
//! The fence is a deadline read at every check, not a flag a watchdog raises: a process that
//! was frozen (SIGSTOP, a long pause) is fenced the instant it runs again, before any task of
//! its own had a chance to notice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Whether this broker may act as a leader now. A standalone broker is never fenced.
#[derive(Debug)]
pub struct Fence {
    /// Nanoseconds since [`origin`] until which this broker may lead.
    valid_until: AtomicU64,
    /// Whether the last check found the broker fenced (to log each change once).
    reported: AtomicBool,
}

impl Default for Fence {
    /// Never fenced (standalone) until [`Fence::valid_until`] is first called.
    fn default() -> Fence {
        Fence {
            valid_until: AtomicU64::new(u64::MAX),
            reported: AtomicBool::new(false),
        }
    }
}

/// The process-wide monotonic origin the deadlines count from.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn nanos(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(origin()).as_nanos()).unwrap_or(u64::MAX)
}

impl Fence {
    /// Whether the broker must not act as a leader now.
    pub fn is_fenced(&self) -> bool {
        nanos(Instant::now()) >= self.valid_until.load(Ordering::Acquire)
    }

    /// Lets the broker lead until `deadline` after `sent`, when the renewal that succeeded
    /// was sent; never moves the deadline back.
    pub fn valid_until(&self, sent: Instant, deadline: Duration) {
        let until = nanos(sent.checked_add(deadline).unwrap_or(sent));
        let previous = self.valid_until.load(Ordering::Acquire);
        if previous == u64::MAX || until > previous {
            self.valid_until.store(until, Ordering::Release);
        }
    }

    /// Fences the broker until the next [`Fence::valid_until`] (release, supersession).
    pub fn revoke(&self) {
        self.valid_until.store(0, Ordering::Release);
    }

    /// Logs a change of state since the last report (called periodically, and harmless to
    /// call often).
    pub fn report(&self) {
        let fenced = self.is_fenced();
        if self.reported.swap(fenced, Ordering::AcqRel) != fenced {
            if fenced {
                tracing::error!(
                    "registration not renewed within its deadline: no longer acting as a leader"
                );
            } else {
                tracing::info!("registration renewed: acting as a leader again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_is_a_deadline_counted_from_when_the_renewal_was_sent() {
        let fence = Fence::default();
        assert!(!fence.is_fenced(), "standalone: never fenced");
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(10))
            .unwrap_or_else(Instant::now);
        let _ = origin();
        fence.valid_until(Instant::now(), Duration::from_secs(60));
        assert!(!fence.is_fenced());
        fence.valid_until(long_ago, Duration::from_secs(1));
        assert!(
            !fence.is_fenced(),
            "an older renewal never shortens the deadline"
        );
        fence.revoke();
        assert!(fence.is_fenced());
        fence.valid_until(Instant::now(), Duration::ZERO);
        assert!(fence.is_fenced(), "a deadline already passed");
        fence.valid_until(Instant::now(), Duration::from_secs(60));
        assert!(!fence.is_fenced(), "a renewal lifts it");
    }
}
