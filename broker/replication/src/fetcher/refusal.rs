//! What a follower says of a leader that stopped answering. A connection the leader's address
//! *refused* means nothing listens there: the leader's process is gone (a SIGKILLed broker in
//! a running pod). The follower says so, naming the process's incarnation, so the controller
//! fails the leader over without waiting for its Lease to run out; it withdraws the word once
//! the leader answers again or is no longer followed. A connection that broke or timed out is
//! tried again at once, once, so that a leader that died mid-fetch is found refused at once
//! rather than a back-off later.

use super::{Host, HostError};

/// One fetcher's dealings with its leader's failures.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    /// The leader's incarnation this follower said refused it, if it said so.
    reported: Option<i64>,
    /// The last fetch failed without a refusal.
    broken: bool,
}

impl Refusals {
    /// The leader answered: whatever was said of it is withdrawn.
    pub(super) fn answered(&mut self, host: &Host, leader: i32) {
        self.broken = false;
        self.withdraw(host, leader);
    }

    /// The fetch failed with `error`; true when the next round should come at once.
    pub(super) fn failed(&mut self, host: &Host, leader: i32, error: &HostError) -> bool {
        if !refused(error) {
            return !std::mem::replace(&mut self.broken, true);
        }
        let incarnation = host
            .metadata()
            .image()
            .broker(leader)
            .map(|b| b.incarnation);
        if let Some(incarnation) = incarnation.filter(|i| self.reported != Some(*i)) {
            tracing::info!(
                leader,
                incarnation,
                %error,
                "the leader's address refused the follower's connection; reporting its process gone"
            );
            host.report_refusal(leader, Some(incarnation));
            self.reported = Some(incarnation);
        }
        false
    }

    /// The leader is no longer followed (or answered): withdraw what was said of it.
    pub(super) fn withdraw(&mut self, host: &Host, leader: i32) {
        if self.reported.take().is_some() {
            host.report_refusal(leader, None);
        }
    }
}

/// Whether `error` is, or was caused by, a refused TCP connection.
pub(super) fn refused(error: &HostError) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = next {
        let io = e.downcast_ref::<std::io::Error>();
        if io.is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        next = e.source();
    }
    false
}
