//! Leader election between operator replicas: the shared Lease elector
//! ([`tributary_crds::lease`]), with this replica's view of whether it leads.
//!
//! A Lease naming this identity is ours only if this process took it: a restarted replica
//! (the same pod name) waits for its previous incarnation's Lease to expire like any
//! candidate, and gives standbys that were already watching it one renew interval more
//! ([`LeaderElector::standby_grace`]), so after a leader dies the standby takes over rather
//! than its own restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::{Api, Client};
use tributary_crds::lease::{LeaseElector, Outcome};
use tributary_crds::update::UpdateError;

use crate::{Error, Result};

/// Acquires, renews and releases one Lease for one identity.
pub struct LeaderElector {
    lease: LeaseElector,
    name: String,
    /// This process holds the Lease (took or renewed it, not released or lost it since).
    leading: AtomicBool,
}

impl LeaderElector {
    /// An elector for Lease `name` in `namespace`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        LeaderElector {
            lease: LeaseElector::new(Api::namespaced(client, namespace), name, identity, duration),
            name: name.to_owned(),
            leading: AtomicBool::new(false),
        }
    }

    /// How much longer than its lease duration a Lease found held at this process's first look
    /// must stay unchanged before this process takes it (the renew interval: standbys that were
    /// already watching it go first).
    pub fn standby_grace(mut self, grace: Duration) -> Self {
        self.lease = self.lease.standby_grace(grace);
        self
    }

    /// Takes the Lease if it is free, expired or already ours, and renews it. Returns whether
    /// this identity holds it now. Losing a race is `Ok(false)`, not an error.
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let looked = self.lease.look(self.leading.load(Ordering::SeqCst)).await;
        // An error (the API unreachable) leaves leadership as it was until the Lease expires.
        let look = looked.map_err(|e| self.error("update", e))?;
        let leading = matches!(look.outcome, Outcome::Acquired | Outcome::Renewed);
        self.leading.store(leading, Ordering::SeqCst);
        Ok(leading)
    }

    /// Gives the Lease up (clears the holder) so a standby takes over at once instead of after
    /// the lease duration. Only done if we still hold it.
    pub async fn release(&self) -> Result<()> {
        self.leading.store(false, Ordering::SeqCst);
        self.lease
            .release()
            .await
            .map_err(|e| self.error("release", e))
    }

    fn error(&self, what: &str, error: UpdateError) -> Error {
        Error::from_update(
            &format!("{what} Lease {}", self.name),
            error,
            |n| match n {},
        )
    }
}
