//! One writer at a time in Kubernetes: a `coordination.k8s.io/v1` Lease whose
//! `holderIdentity` is the writer's advertised URL, so followers know where to forward.
//!
//! Every change of the Lease is a create or a replace carrying the resourceVersion read, so
//! two instances never both believe they took it. The holder renews every renew interval and
//! stops writing when it has not completed a renewal within the renew deadline (counted from
//! when it sent the last successful one, on its own monotonic clock), before any follower may
//! take over: a follower takes the Lease only once it has seen it unchanged for the lease
//! duration by its own clock (DESIGN: nobody trusts another machine's clock). A new writer
//! fences the previous one in the cluster and reads `_schemas` to its end
//! ([`Store::catch_up`]) before it serves a write, so ids continue from the highest one any
//! writer committed; a writer that overslept its deadline (frozen between its role check and
//! its append) finds its producer fenced and is deposed ([`Elector::deposed`]). The Lease is
//! read and written by the shared elector ([`tributary_crds::lease`]); the registry's own
//! decisions are pure ([`decide`]); this module is the loop that applies them.

pub mod decide;

use std::sync::Arc;
use std::time::Duration;

use kube::{Api, Client};
use parking_lot::Mutex;
use tokio::time::Instant;
use tributary_crds::lease::{Look, Outcome};
use tributary_crds::update::UpdateError;

use crate::elector::{Elector, Role};
use crate::service::Store;
use decide::{role, Standing, Timings};

/// Where the Lease is and who this instance is.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name (the operator uses `<cluster>-schema-registry`).
    pub name: String,
    /// This instance's advertised URL: its identity in the Lease and where followers forward.
    pub url: String,
    /// Lease duration and renew interval.
    pub timings: Timings,
}

/// Why a tick of the election failed; the loop logs it and tries again at the next tick
/// (leadership lapses by itself at the renew deadline).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The API server refused or could not be reached.
    #[error("{what} Lease {name}: {source}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The Lease.
        name: String,
        /// The conditional update's error.
        #[source]
        source: UpdateError,
    },
    /// The API server did not answer within the renew interval.
    #[error("{what} Lease {name}: no answer within {waited:?}")]
    Timeout {
        /// What was being done.
        what: &'static str,
        /// The Lease.
        name: String,
        /// How long this tick waited.
        waited: Duration,
    },
}

/// Parses `NAMESPACE/NAME`, the `--lease` flag's form.
pub fn parse_lease_ref(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(format!("expected NAMESPACE/NAME, got {s:?}")),
    }
}

/// The Lease elector: its loop ([`LeaseElector::run`]) keeps the standing current; the
/// service and the HTTP layer ask it for the role at every request.
pub struct LeaseElector {
    lease: tributary_crds::lease::LeaseElector,
    settings: LeaseSettings,
    standing: Mutex<Standing>,
}

impl Elector for LeaseElector {
    fn role(&self) -> Role {
        role(
            &self.settings.url,
            &self.standing.lock(),
            Instant::now().into_std(),
            &self.settings.timings,
        )
    }

    fn deposed(&self) {
        self.standing.lock().deposed();
    }
}

/// What a tick did, for the loop to follow up.
enum Ticked {
    /// This instance took the Lease (a new term): read the topic to its end.
    Acquired(u64),
    /// Anything else.
    Nothing,
}

impl LeaseElector {
    /// An elector for the Lease in `settings`, through `client`. Nothing happens until
    /// [`LeaseElector::run`].
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        let lease = tributary_crds::lease::LeaseElector::new(
            Api::namespaced(client, &settings.namespace),
            &settings.name,
            &settings.url,
            settings.timings.lease_duration(),
        )
        .standby_grace(settings.timings.renew_interval());
        LeaseElector {
            lease,
            settings,
            standing: Mutex::new(Standing::default()),
        }
    }

    /// Runs the election forever: one tick every renew interval. After each acquisition it
    /// reads `store` to its end before this instance becomes the writer.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>) {
        let interval = self.settings.timings.renew_interval();
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was = self.role();
        loop {
            ticks.tick().await;
            match self.tick().await {
                Ok(Ticked::Acquired(term)) => {
                    tracing::info!(lease = %self.settings.name, term, "took the writer Lease; reading the schemas topic to its end");
                    tokio::spawn(catch_up(self.clone(), store.clone(), term));
                }
                Ok(Ticked::Nothing) => {}
                Err(error) => tracing::warn!(%error, "writer election tick failed; retrying"),
            }
            let now = self.role();
            if now != was {
                tracing::info!(role = ?now, "registry role changed");
                was = now;
            }
        }
    }

    /// One look at the Lease and the action it calls for.
    async fn tick(&self) -> Result<Ticked, LeaseError> {
        let timings = self.settings.timings;
        let holding = self.standing.lock().holding;
        let Look { outcome, sent } = self.bounded("update", self.lease.look(holding)).await?;
        let mut standing = self.standing.lock();
        let sent = sent.into_std();
        match outcome {
            Outcome::Renewed => standing.renewed(sent, &timings),
            Outcome::Acquired => {
                standing.acquired(&self.settings.url, sent, &timings);
                return Ok(Ticked::Acquired(standing.term));
            }
            // Someone else holds it, or won a race: the next tick reads who.
            Outcome::Following(holder) => standing.following(holder),
        }
        Ok(Ticked::Nothing)
    }

    /// Gives the Lease up on shutdown so a follower takes over at once: stops writing first,
    /// waits out the produce timeout so no record of this instance is still in flight, then
    /// clears the holder if it is still this instance.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let was_holding = {
            let mut standing = self.standing.lock();
            let was = standing.holding;
            standing.following(None);
            was
        };
        if !was_holding {
            return Ok(());
        }
        tokio::time::sleep(self.settings.timings.produce_timeout()).await;
        self.bounded("release", self.lease.release()).await
    }

    /// A look or release bounded by the renew interval.
    async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = Result<T, UpdateError>>,
    ) -> Result<T, LeaseError> {
        let waited = self.settings.timings.renew_interval();
        match tokio::time::timeout(waited, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(LeaseError::Api {
                what,
                name: self.settings.name.clone(),
                source,
            }),
            Err(_) => Err(LeaseError::Timeout {
                what,
                name: self.settings.name.clone(),
                waited,
            }),
        }
    }
}

/// Reads the topic to its end for `term`; this instance becomes the writer only if it still
/// holds that term when the read completes. A failure leaves it unavailable for writes until
/// the next acquisition or a retry here.
async fn catch_up(elector: Arc<LeaseElector>, store: Arc<dyn Store>, term: u64) {
    loop {
        let current = {
            let s = elector.standing.lock();
            s.holding && s.term == term
        };
        if !current {
            return;
        }
        match store.catch_up().await {
            Ok(offset) => {
                let mut s = elector.standing.lock();
                if s.holding && s.term == term {
                    s.caught_up = Some(term);
                    tracing::info!(term, offset, "read the schemas topic to its end: writing");
                }
                return;
            }
            Err(error @ crate::service::StoreError::Fenced(_)) => {
                let mut s = elector.standing.lock();
                if s.holding && s.term == term {
                    s.deposed();
                }
                tracing::warn!(%error, term, "a newer writer fenced this one while it took over; following");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, term, "reading the schemas topic to its end failed; retrying");
                tokio::time::sleep(elector.settings.timings.renew_interval()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_refs_are_namespace_slash_name() {
        assert_eq!(
            parse_lease_ref("streaming/demo-schema-registry"),
            Ok(("streaming".into(), "demo-schema-registry".into()))
        );
        assert!(parse_lease_ref("no-slash").is_err());
        assert!(parse_lease_ref("/name").is_err());
        assert!(parse_lease_ref("ns/").is_err());
        assert!(parse_lease_ref("a/b/c").is_err());
    }
}
