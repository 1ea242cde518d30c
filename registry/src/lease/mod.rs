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
//! its append) finds its producer fenced and is deposed ([`Elector::deposed`]). The decisions are pure ([`decide`]); this module
//! is the loop that applies them.

pub mod decide;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::elector::{Elector, Role};
use crate::service::Store;
use decide::{decide, role, Action, LeaseView, Standing, Timings, Watch};

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
        /// The client's error.
        #[source]
        source: kube::Error,
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
    api: Api<Lease>,
    settings: LeaseSettings,
    standing: Mutex<Standing>,
    watch: Mutex<Watch>,
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
        LeaseElector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            standing: Mutex::new(Standing::default()),
            watch: Mutex::new(Watch::default()),
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
        let sent = Instant::now();
        let existing = self
            .bounded("read", self.api.get_opt(&self.settings.name))
            .await?;
        let holding = self.standing.lock().holding;
        let view = existing.as_ref().map(|l| LeaseView {
            holder: l.spec.as_ref().and_then(|s| s.holder_identity.clone()),
        });
        let expired = existing.as_ref().is_some_and(|l| {
            let spec = l.spec.clone().unwrap_or_default();
            let record = format!(
                "{:?}/{:?}/{:?}/{:?}",
                spec.holder_identity, spec.acquire_time, spec.renew_time, spec.lease_transitions
            );
            // The holder's own duration when it wrote one: it is the one its fencing obeys.
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(timings.lease_duration(), Duration::from_secs)
                .max(timings.lease_duration());
            self.watch
                .lock()
                .expired(&record, sent.into_std(), duration, timings.renew_interval())
        });
        let action = decide(&self.settings.url, holding, view.as_ref(), expired);
        let now = Timestamp::now();
        let written = match (&action, existing) {
            (Action::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, now, 0)),
                };
                self.bounded_write("create", self.api.create(&PostParams::default(), &lease))
                    .await?
            }
            (Action::Renew | Action::TakeOver, Some(mut lease)) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let renew = action == Action::Renew;
                let acquired = if renew {
                    spec.acquire_time.map_or(now, |t| t.0)
                } else {
                    now
                };
                let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!renew);
                lease.spec = Some(self.spec(acquired, now, transitions));
                self.bounded_write(
                    "update",
                    self.api
                        .replace(&self.settings.name, &PostParams::default(), &lease),
                )
                .await?
            }
            (Action::Renew | Action::TakeOver, None) => false,
            (Action::Follow { holder }, _) => {
                self.standing.lock().following(Some(holder.clone()));
                return Ok(Ticked::Nothing);
            }
        };
        let mut standing = self.standing.lock();
        let sent = sent.into_std();
        match (written, &action) {
            (true, Action::Renew) => standing.renewed(sent, &timings),
            (true, _) => {
                standing.acquired(&self.settings.url, sent, &timings);
                return Ok(Ticked::Acquired(standing.term));
            }
            // Lost a race (409): someone else wrote the Lease; the next tick reads who.
            (false, _) => standing.following(view.and_then(|v| v.holder)),
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
        let Some(mut lease) = self
            .bounded("read", self.api.get_opt(&self.settings.name))
            .await?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.url.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = None;
        lease.spec = Some(spec);
        self.bounded_write(
            "release",
            self.api
                .replace(&self.settings.name, &PostParams::default(), &lease),
        )
        .await
        .map(drop)
    }

    fn spec(&self, acquired: Timestamp, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.settings.url.clone()),
            lease_duration_seconds: Some(self.settings.timings.lease_duration_secs()),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// An API call bounded by the renew interval.
    async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
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

    /// A conditional write: true if stored, false if it lost a race (409).
    async fn bounded_write(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = Result<Lease, kube::Error>>,
    ) -> Result<bool, LeaseError> {
        match self.bounded(what, call).await {
            Ok(_) => Ok(true),
            Err(LeaseError::Api {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
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
