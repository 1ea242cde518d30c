//! Self-fencing: a broker in cluster mode that has not completed a renewal of its registration
//! Lease within its renew deadline (counted from when it SENT the last successful renewal, on
//! its own monotonic clock) stops acting as a leader: no produce, no high watermark advance,
//! no coordinator writes, until a renewal succeeds again. By then the controller may already
//! have moved its leaderships; safety rests on leader epochs, and the fence makes sure a
//! broker cut off from the API server does not keep acknowledging writes meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this broker may act as a leader now. A standalone broker is never fenced.
#[derive(Debug, Default)]
pub struct Fence {
    fenced: AtomicBool,
}

impl Fence {
    /// Whether the broker must not act as a leader.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// Raises (true) or lowers (false) the fence; logs each change.
    pub fn set(&self, fenced: bool) {
        if self.fenced.swap(fenced, Ordering::AcqRel) != fenced {
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
