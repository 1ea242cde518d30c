//! The one Lease elector the operator's replicas and the schema registry's instances elect
//! their leader with, and whose clock rules the brokers' registration Leases follow too
//! (client-go's `leaderelection`, as every Kubernetes component shares it).
//!
//! The rules, each a pure function here:
//! - whether a held Lease has expired is judged by the observer's own monotonic clock, never
//!   by the times written in it (another machine's clock): a Lease is expired once this
//!   process has seen it unchanged for its lease duration ([`Watch`]); one already held at
//!   this process's first look (or found again after the watching was interrupted) waits a
//!   grace more, so standbys that were watching all along take over before a restarted
//!   holder does;
//! - what to do at each look ([`decide`]): create a missing Lease, renew one this process
//!   holds, take over one released or expired, follow anyone else's. A Lease naming this
//!   identity that this process did not take belongs to an earlier run and is waited out;
//! - what a held, renewed or released Lease says ([`held_spec`], [`released_spec`]).
//!
//! Every write goes through [`crate::update::ConditionalUpdate`], a replace carrying the
//! resourceVersion read, so two processes can never both believe they took the Lease.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use tokio::time::Instant;

use crate::update::{ConditionalUpdate, Decision, RetryPolicy, UpdateError};

/// What to do with the Lease at one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No Lease yet: create it naming this process.
    Create,
    /// This process holds it: renew it.
    Renew,
    /// Released, or expired by this process's observation: take it.
    TakeOver,
    /// Someone else holds it (possibly an earlier run of this identity): follow.
    Follow {
        /// The holder's identity.
        holder: String,
    },
}

/// Decides what to do with the Lease (`None`: there is none). `holding` is whether this
/// process took or renewed it and has not lost or released it since; `expired` comes from
/// [`Watch::expired`].
pub fn decide(me: &str, holding: bool, lease: Option<&LeaseSpec>, expired: bool) -> Action {
    let Some(lease) = lease else {
        return Action::Create;
    };
    match lease.holder_identity.as_deref().filter(|h| !h.is_empty()) {
        None => Action::TakeOver,
        Some(h) if h == me && holding => Action::Renew,
        Some(_) if expired => Action::TakeOver,
        Some(h) => Action::Follow {
            holder: h.to_owned(),
        },
    }
}

/// When this process saw the Lease change: the only clock an expiry is judged by. A pure
/// record of what was observed and when, for every component judging a Lease held by someone
/// else (the electors here, the operator's view of broker liveness).
#[derive(Debug, Default, Clone)]
pub struct Watch {
    seen: Option<Seen>,
}

#[derive(Debug, Clone)]
struct Seen {
    /// Holder, times and transitions as last seen: any change of them is a renewal.
    record: String,
    /// When this process saw `record` first, or observation restarted after it, whichever
    /// came later.
    since: Instant,
    /// Whether `record` was already there when observation (re)started: no change of it has
    /// been seen since.
    first_look: bool,
}

impl Watch {
    /// Records `spec` as seen at `now`: a change of its holder, times or transitions is a
    /// renewal, seen now; the same record again is no sign of life.
    pub fn observe(&mut self, spec: &LeaseSpec, now: Instant) {
        let record = format!(
            "{:?}/{:?}/{:?}/{:?}",
            spec.holder_identity, spec.acquire_time, spec.renew_time, spec.lease_transitions
        );
        let first_look = self.seen.is_none();
        match &self.seen {
            Some(seen) if seen.record == record => {}
            _ => {
                self.seen = Some(Seen {
                    record,
                    since: now,
                    first_look,
                })
            }
        }
    }

    /// When the Lease as last observed expires unless it changes: `duration` after the change
    /// was seen, plus `grace` when none has been seen since observation (re)started. `None`
    /// before anything was observed.
    pub fn expires_at(&self, duration: Duration, grace: Duration) -> Option<Instant> {
        self.seen.as_ref().map(|seen| {
            let wait = if seen.first_look {
                duration + grace
            } else {
                duration
            };
            seen.since + wait
        })
    }

    /// When the Lease was last seen changing (or observation restarted after that): news of
    /// its holder that arrived later than this is news the holder has not answered since.
    pub fn changed_at(&self) -> Option<Instant> {
        self.seen.as_ref().map(|seen| seen.since)
    }

    /// Whether a change was seen since observation (re)started: the holder is seen renewing,
    /// not merely found unexpired (which a dead holder's Lease is for up to a duration).
    pub fn renewed(&self) -> bool {
        self.seen.as_ref().is_some_and(|seen| !seen.first_look)
    }

    /// Observation was interrupted until `now` (a broken watch): changes may have gone unseen,
    /// so the count starts again at `now` and the Lease is judged as at a first look.
    pub fn restart_grace(&mut self, now: Instant) {
        if let Some(seen) = &mut self.seen {
            seen.since = seen.since.max(now);
            seen.first_look = true;
        }
    }

    /// Records `spec` as seen at `now` and says whether it has been unchanged for `duration`,
    /// plus `grace` when it was already there at this process's first look.
    pub fn expired(
        &mut self,
        spec: &LeaseSpec,
        now: Instant,
        duration: Duration,
        grace: Duration,
    ) -> bool {
        self.observe(spec, now);
        self.expires_at(duration, grace).is_some_and(|at| now >= at)
    }
}

/// How long `spec` must be seen unchanged before it is expired: the longer of the duration
/// its holder wrote (the one its own fencing obeys) and `ours`.
pub fn expiry(spec: &LeaseSpec, ours: Duration) -> Duration {
    spec.lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(ours, Duration::from_secs)
        .max(ours)
}

/// `leaseDurationSeconds` for `duration`: whole seconds rounded up, at least 1.
pub fn duration_secs(duration: Duration) -> i32 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX).max(1)
}

/// The spec of a Lease `me` holds after writing it at `now`: a renewal keeps the acquire time
/// and the transitions of `current`; a takeover starts a new term and counts a transition; a
/// creation starts the first term.
pub fn held_spec(
    current: Option<&LeaseSpec>,
    me: &str,
    duration: Duration,
    renew: bool,
    now: Timestamp,
) -> LeaseSpec {
    let existed = current.is_some();
    let current = current.cloned().unwrap_or_default();
    let transitions = current.lease_transitions.unwrap_or(0);
    let (acquired, transitions) = if renew {
        (current.acquire_time.unwrap_or(MicroTime(now)), transitions)
    } else {
        (MicroTime(now), transitions + i32::from(existed))
    };
    LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(duration_secs(duration)),
        acquire_time: Some(acquired),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..current
    }
}

/// `spec` given up: no holder and no times, so the next look anywhere takes it at once.
pub fn released_spec(spec: &LeaseSpec) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        acquire_time: None,
        renew_time: None,
        ..spec.clone()
    }
}

/// What one look at the Lease did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This process created or took the Lease: a new term.
    Acquired,
    /// This process renewed the Lease it holds.
    Renewed,
    /// Someone else holds it (`None`: unknown, after a lost race the next look reads who).
    Following(Option<String>),
}

/// One look's outcome and when the read it was decided on was sent: a holder's right to act
/// ends a renew deadline after that, whatever the API server's answer took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    /// What the look did.
    pub outcome: Outcome,
    /// When the read was sent.
    pub sent: Instant,
}

/// Acquires, renews and releases one Lease for one identity.
pub struct LeaseElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    grace: Duration,
    watch: Mutex<Watch>,
}

impl LeaseElector {
    /// An elector for Lease `name` through `api`, as `identity`, writing `duration` into the
    /// Lease and waiting at least that long before taking it from another holder.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        LeaseElector {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            grace: Duration::ZERO,
            watch: Mutex::new(Watch::default()),
        }
    }

    /// How much longer a Lease found held at this process's first look must stay unchanged
    /// before this process takes it (the renew interval: standbys go first).
    pub fn standby_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// This process's identity in the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One look: reads the Lease, decides with [`decide`] and writes what that calls for.
    /// `holding` is whether this process holds the Lease as far as it knows. A lost race is
    /// [`Outcome::Following`], not an error: the next look reads the winner.
    pub async fn look(&self, holding: bool) -> Result<Look, UpdateError> {
        let looked = ConditionalUpdate::new(&self.api, &self.name)
            .policy(RetryPolicy::once())
            .run(|current| self.decide(current, holding))
            .await;
        match looked {
            Ok(done) => {
                let outcome = match (done.written, done.value) {
                    (true, Action::Renew) => Outcome::Renewed,
                    (true, _) => Outcome::Acquired,
                    (false, Action::Follow { holder }) => Outcome::Following(Some(holder)),
                    (false, _) => Outcome::Following(None),
                };
                Ok(Look {
                    outcome,
                    sent: done.read_at,
                })
            }
            Err(UpdateError::Exhausted { .. }) => Ok(Look {
                outcome: Outcome::Following(None),
                sent: Instant::now(),
            }),
            Err(error) => Err(error),
        }
    }

    fn decide(&self, current: Option<&Lease>, holding: bool) -> Decision<Lease, Action> {
        let now = Instant::now();
        let spec = current.map(|l| l.spec.clone().unwrap_or_default());
        let expired = spec.as_ref().is_some_and(|spec| {
            self.watch
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .expired(spec, now, expiry(spec, self.duration), self.grace)
        });
        let action = decide(&self.identity, holding, spec.as_ref(), expired);
        let renew = match &action {
            Action::Follow { .. } => return Decision::Keep(action),
            Action::Renew => true,
            Action::Create | Action::TakeOver => false,
        };
        let mut lease = current.cloned().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        });
        lease.spec = Some(held_spec(
            spec.as_ref(),
            &self.identity,
            self.duration,
            renew,
            Timestamp::now(),
        ));
        Decision::Replace(lease, action)
    }

    /// Gives the Lease up (clears the holder) so another process takes it at once instead of
    /// after the lease duration; nothing is written unless this identity still holds it.
    pub async fn release(&self) -> Result<(), UpdateError> {
        ConditionalUpdate::new(&self.api, &self.name)
            .run(|current| match current {
                Some(lease)
                    if lease
                        .spec
                        .as_ref()
                        .and_then(|s| s.holder_identity.as_deref())
                        == Some(self.identity.as_str()) =>
                {
                    let mut released = lease.clone();
                    released.spec = lease.spec.as_ref().map(released_spec);
                    Decision::Replace(released, ())
                }
                _ => Decision::Keep(()),
            })
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use kube::api::PostParams;
    use tributary_e2e::FakeApiServer;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn held_by(holder: Option<&str>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: Some(MicroTime(Timestamp::UNIX_EPOCH)),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_missing_lease_is_created_a_released_one_taken_and_a_held_one_followed() {
        assert_eq!(decide("a", false, None, false), Action::Create);
        assert_eq!(
            decide("a", false, Some(&held_by(None)), false),
            Action::TakeOver
        );
        assert_eq!(
            decide("a", false, Some(&held_by(Some(""))), false),
            Action::TakeOver
        );
        assert_eq!(
            decide("a", false, Some(&held_by(Some("b"))), false),
            Action::Follow { holder: "b".into() }
        );
        assert_eq!(
            decide("a", false, Some(&held_by(Some("b"))), true),
            Action::TakeOver
        );
    }

    #[test]
    fn a_lease_naming_this_identity_is_renewed_only_if_this_process_took_it() {
        let mine = held_by(Some("a"));
        assert_eq!(decide("a", true, Some(&mine), false), Action::Renew);
        // An earlier run of the same identity: waited out like any other holder.
        assert_eq!(
            decide("a", false, Some(&mine), false),
            Action::Follow { holder: "a".into() }
        );
        assert_eq!(decide("a", false, Some(&mine), true), Action::TakeOver);
    }

    #[test]
    fn expiry_counts_from_the_last_change_seen_on_the_observers_clock() {
        let t0 = Instant::now();
        let mut watch = Watch::default();
        let spec = held_by(Some("b"));
        assert!(!watch.expired(&spec, t0, 10 * SECOND, Duration::ZERO));
        assert!(!watch.expired(&spec, t0 + 9 * SECOND, 10 * SECOND, Duration::ZERO));
        // A renewal (the renew time changed, whatever it says) restarts the count.
        let mut renewed = spec.clone();
        renewed.renew_time = Some(MicroTime(Timestamp::UNIX_EPOCH + 1 * SECOND));
        assert!(!watch.expired(&renewed, t0 + 10 * SECOND, 10 * SECOND, Duration::ZERO));
        assert!(!watch.expired(&renewed, t0 + 19 * SECOND, 10 * SECOND, Duration::ZERO));
        assert!(watch.expired(&renewed, t0 + 20 * SECOND, 10 * SECOND, Duration::ZERO));
    }

    #[test]
    fn a_lease_held_at_the_first_look_waits_the_grace_more() {
        let t0 = Instant::now();
        let (duration, grace) = (10 * SECOND, 2 * SECOND);
        let mut late = Watch::default();
        let spec = held_by(Some("b"));
        assert!(!late.expired(&spec, t0, duration, grace));
        assert!(!late.expired(&spec, t0 + duration, duration, grace));
        assert!(late.expired(&spec, t0 + duration + grace, duration, grace));
        // A change seen later is judged without the grace.
        let mut renewed = spec;
        renewed.lease_transitions = Some(1);
        assert!(!late.expired(&renewed, t0 + 20 * SECOND, duration, grace));
        assert!(late.expired(&renewed, t0 + 30 * SECOND, duration, grace));
    }

    #[test]
    fn a_broken_watch_restarts_the_count_and_renewals_are_told_from_a_first_look() {
        let t0 = Instant::now();
        let (duration, grace) = (10 * SECOND, 2 * SECOND);
        let mut watch = Watch::default();
        assert_eq!(watch.expires_at(duration, grace), None, "nothing observed");
        watch.restart_grace(t0);
        assert_eq!(watch.expires_at(duration, grace), None);
        let spec = held_by(Some("b"));
        watch.observe(&spec, t0);
        assert!(
            !watch.renewed(),
            "found held: maybe dead for most of a duration"
        );
        assert_eq!(
            watch.expires_at(duration, grace),
            Some(t0 + duration + grace)
        );
        let mut renewed = spec.clone();
        renewed.renew_time = Some(MicroTime(Timestamp::UNIX_EPOCH + 1 * SECOND));
        watch.observe(&renewed, t0 + 3 * SECOND);
        assert!(watch.renewed());
        assert_eq!(watch.expires_at(duration, grace), Some(t0 + 13 * SECOND));
        // Interrupted until t0 + 7 s: counted from then, with the grace, and not renewing.
        watch.restart_grace(t0 + 7 * SECOND);
        assert!(!watch.renewed(), "renewals may have gone unseen");
        assert_eq!(
            watch.expires_at(duration, grace),
            Some(t0 + 7 * SECOND + duration + grace)
        );
        assert!(!watch.expired(&renewed, t0 + 18 * SECOND, duration, grace));
        assert!(watch.expired(&renewed, t0 + 19 * SECOND, duration, grace));
        // A restart never moves the count back.
        watch.restart_grace(t0);
        assert_eq!(
            watch.expires_at(duration, grace),
            Some(t0 + 7 * SECOND + duration + grace)
        );
        // The next change seen counts as a renewal again.
        watch.observe(&spec, t0 + 20 * SECOND);
        assert!(watch.renewed());
        assert_eq!(watch.expires_at(duration, grace), Some(t0 + 30 * SECOND));
    }

    #[test]
    fn the_longer_of_the_holders_duration_and_ours_is_waited() {
        let mut spec = held_by(Some("b"));
        assert_eq!(expiry(&spec, 5 * SECOND), 5 * SECOND);
        spec.lease_duration_seconds = Some(15);
        assert_eq!(expiry(&spec, 5 * SECOND), 15 * SECOND);
        spec.lease_duration_seconds = Some(2);
        assert_eq!(expiry(&spec, 5 * SECOND), 5 * SECOND);
        spec.lease_duration_seconds = Some(-1);
        assert_eq!(expiry(&spec, 5 * SECOND), 5 * SECOND);
        assert_eq!(duration_secs(Duration::from_millis(1500)), 2);
        assert_eq!(duration_secs(Duration::ZERO), 1);
    }

    #[test]
    fn a_takeover_starts_a_term_and_a_renewal_keeps_it() {
        let t = |s: i64| Timestamp::UNIX_EPOCH + Duration::from_secs(s as u64);
        let created = held_spec(None, "a", 10 * SECOND, false, t(1));
        assert_eq!(created.lease_transitions, Some(0));
        assert_eq!(created.acquire_time, Some(MicroTime(t(1))));
        let renewed = held_spec(Some(&created), "a", 10 * SECOND, true, t(2));
        assert_eq!(renewed.acquire_time, Some(MicroTime(t(1))));
        assert_eq!(renewed.renew_time, Some(MicroTime(t(2))));
        assert_eq!(renewed.lease_transitions, Some(0));
        let taken = held_spec(Some(&renewed), "b", 10 * SECOND, false, t(3));
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken.acquire_time, Some(MicroTime(t(3))));
        assert_eq!(taken.lease_transitions, Some(1));
        let released = released_spec(&taken);
        assert_eq!(released.holder_identity, None);
        assert_eq!(released.renew_time, None);
        assert_eq!(released.lease_transitions, Some(1));
        // Taking a released Lease is a transition too (client-go counts every change of
        // holder).
        let retaken = held_spec(Some(&released), "a", 10 * SECOND, false, t(4));
        assert_eq!(retaken.lease_transitions, Some(2));
    }

    async fn elector(server: &FakeApiServer, identity: &str, duration: Duration) -> LeaseElector {
        LeaseElector::new(
            Api::namespaced(server.client("ns"), "ns"),
            "leader",
            identity,
            duration,
        )
    }

    #[tokio::test]
    async fn one_of_two_candidates_leads_and_the_other_takes_over_once_it_released() {
        let server = FakeApiServer::new();
        server.create_namespace("ns");
        let a = elector(&server, "a", 30 * SECOND).await;
        let b = elector(&server, "b", 30 * SECOND).await;
        let first = a.look(false).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.outcome, Outcome::Acquired);
        let other = b.look(false).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other.outcome, Outcome::Following(Some("a".into())));
        let again = a.look(true).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.outcome, Outcome::Renewed);
        // Not the holder: releasing writes nothing.
        b.release().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            b.look(false).await.map(|l| l.outcome).ok(),
            Some(Outcome::Following(Some("a".into())))
        );
        a.release().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            b.look(false).await.map(|l| l.outcome).ok(),
            Some(Outcome::Acquired)
        );
        let api: Api<Lease> = Api::namespaced(server.client("ns"), "ns");
        let lease = api.get("leader").await.unwrap_or_else(|e| panic!("{e}"));
        let spec = lease.spec.unwrap_or_default();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_duration_seconds, Some(30));
    }

    #[tokio::test]
    async fn a_lease_left_by_an_earlier_run_of_this_identity_is_waited_out() {
        let server = FakeApiServer::new();
        server.create_namespace("ns");
        let api: Api<Lease> = Api::namespaced(server.client("ns"), "ns");
        let left = Lease {
            metadata: ObjectMeta {
                name: Some("leader".into()),
                ..ObjectMeta::default()
            },
            spec: Some(held_spec(None, "a", SECOND, false, Timestamp::now())),
        };
        api.create(&PostParams::default(), &left)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let restarted = elector(&server, "a", SECOND).await;
        assert_eq!(
            restarted.look(false).await.map(|l| l.outcome).ok(),
            Some(Outcome::Following(Some("a".into())))
        );
        tokio::time::sleep(SECOND + Duration::from_millis(100)).await;
        assert_eq!(
            restarted.look(false).await.map(|l| l.outcome).ok(),
            Some(Outcome::Acquired)
        );
    }
}
