//! Leader election between operator replicas with a `coordination.k8s.io/v1` Lease. Every
//! write is a replace carrying the resourceVersion read, so two replicas can never both
//! believe they took the Lease.
//!
//! Whether a held Lease has expired is judged by the candidate's own clock, never the
//! holder's timestamps (DESIGN: nobody trusts another machine's clock): a Lease is expired
//! once it has not changed for its `leaseDurationSeconds` since this process saw it change.
//! A Lease naming this identity is ours only if this process took it: a restarted replica (the
//! same pod name) waits for its previous incarnation's Lease to expire like any candidate, and
//! gives standbys that were already watching it one renew interval more ([`standby_grace`]),
//! so after a leader dies the standby takes over rather than its own restart.
//!
//! [`standby_grace`]: LeaderElector::standby_grace

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::{Error, Result};

/// Acquires, renews and releases one Lease for one identity.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// Extra wait of a candidate whose first look at the Lease found it held.
    grace: Duration,
    state: Mutex<Observed>,
}

/// What this process has seen of the Lease.
#[derive(Default)]
struct Observed {
    /// This process holds the Lease (took or renewed it, not released or lost it since).
    leading: bool,
    /// The Lease's holder, times and transitions as last seen, when that was first seen, and
    /// whether it was already there at this process's first look.
    record: Option<(String, Instant, bool)>,
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
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            grace: Duration::ZERO,
            state: Mutex::new(Observed::default()),
        }
    }

    /// How much longer than its lease duration a Lease found held at this process's first look
    /// must stay unchanged before this process takes it (the renew interval: standbys that were
    /// already watching it go first).
    pub fn standby_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    fn with<T>(&self, f: impl FnOnce(&mut Observed) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Records what the Lease says now; returns whether it has been unchanged for longer than
    /// `duration` (plus the grace when it was already held at our first look).
    fn unchanged_for(&self, spec: &LeaseSpec, duration: Duration) -> bool {
        let record = format!(
            "{:?}/{:?}/{:?}/{:?}",
            spec.holder_identity, spec.acquire_time, spec.renew_time, spec.lease_transitions
        );
        let now = Instant::now();
        self.with(|o| {
            let first_look = o.record.is_none();
            match &o.record {
                Some((seen, _, _)) if *seen == record => {}
                _ => o.record = Some((record, now, first_look)),
            }
            o.record.as_ref().is_some_and(|(_, since, first)| {
                let wait = if *first {
                    duration + self.grace
                } else {
                    duration
                };
                now.duration_since(*since) >= wait
            })
        })
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1)
    }

    /// Takes the Lease if it is free, expired or already ours, and renews it. Returns whether
    /// this identity holds it now. Losing a race (409) is `Ok(false)`, not an error.
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let held = self.acquire_or_renew().await;
        // An error (the API unreachable) leaves leadership as it was until the Lease expires.
        if let Ok(leading) = held {
            self.with(|o| o.leading = leading);
        }
        held
    }

    async fn acquire_or_renew(&self) -> Result<bool> {
        let now = Timestamp::now();
        let existing = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| Error::kube(format!("get Lease {}", self.name), e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(Error::kube(format!("create Lease {}", self.name), e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.identity.as_str()) && self.with(|o| o.leading);
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.duration, Duration::from_secs);
        let expired = self.unchanged_for(&spec, duration);
        if !ours && holder.is_some() && !expired {
            return Ok(false);
        }
        let acquired = if ours {
            spec.acquire_time.map_or(now, |t| t.0)
        } else {
            now
        };
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        lease.spec = Some(self.spec(acquired, now, transitions));
        self.replace(&lease).await
    }

    /// Gives the Lease up (clears the holder) so a standby takes over at once instead of after
    /// the lease duration. Only done if we still hold it.
    pub async fn release(&self) -> Result<()> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| Error::kube(format!("get Lease {}", self.name), e))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        lease.spec = Some(spec);
        self.with(|o| o.leading = false);
        self.replace(&lease).await.map(|_| ())
    }

    async fn replace(&self, lease: &Lease) -> Result<bool> {
        match self
            .api
            .replace(&self.name, &PostParams::default(), lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::kube(format!("update Lease {}", self.name), e)),
        }
    }

    fn spec(&self, acquired: Timestamp, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_secs()),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}
