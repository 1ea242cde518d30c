//! Broker liveness by observation, by the clock rule every Lease of the project is judged by
//! ([`tributary_crds::lease::Watch`], client-go's leader election's): a broker is alive while
//! the controller keeps seeing its Lease renewed. The times written in the Lease are another
//! machine's clock and are never compared with ours; only whether they *changed*, and when (on
//! this process's monotonic clock) we saw them change.
//!
//! A Lease is expired once `leaseDurationSeconds` of our time has passed since we last saw it
//! change, counted at the earliest from when observation (re)started: a newly active
//! controller, or one whose watch broke, has not watched long enough to tell a dead broker
//! from a live one, so it waits one full lease duration before declaring anyone dead. A Lease
//! with no holder (released at a clean shutdown), without complete registration annotations,
//! or deleted, is not alive: that is the broker's own statement, not a timing judgement.
//!
//! One piece of news ends a Lease sooner: a live broker saying in its own Lease that another
//! broker's process refused its connections ([`REFUSED_ANNOTATION`]). Nothing listens at that
//! address, so the process is gone (a SIGKILLed broker in a running pod); a frozen one keeps
//! its socket and is still judged by its Lease. The word holds for the incarnation it names,
//! and only until that broker's Lease is seen changing after it arrived: a live broker whose
//! connections were refused for another reason renews and is live again.
//!
//! [`REFUSED_ANNOTATION`]: tributary_crds::registration::REFUSED_ANNOTATION

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use tributary_crds::lease::Watch;
use tributary_crds::registration::{parse_broker_lease_name, BrokerIncarnation, Registration};

/// Lease duration assumed when a broker Lease states none (the brokers' default, Kafka's
/// `broker.session.timeout.ms`).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(9);

/// A broker the controller sees alive, with what elections need to know of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveBroker {
    /// The incarnation epoch in its Lease: ISR entries recorded under another one are stale.
    pub incarnation: i64,
    /// It announced a controlled shutdown: its leaderships and ISR places should move.
    pub shutting_down: bool,
    /// The incarnation its data directory was created at, if it says: an ISR entry of an
    /// earlier incarnation is of data it no longer has.
    pub directory_epoch: Option<i64>,
    /// This process has seen its Lease renewed since observation (re)started, rather than
    /// only found it unexpired: right after taking over, or after a broken watch, a dead
    /// broker's Lease still looks current for a lease duration. Failover tolerates that (it
    /// never waits on it); leadership given by choice (preferred elections) goes only to
    /// brokers seen renewing.
    pub renewing: bool,
}

/// The live brokers of one cluster at one instant, by id; absent means dead.
pub type BrokerView = BTreeMap<i32, LiveBroker>;

/// The incarnation each registered broker of one cluster last announced, by id.
pub type Incarnations = BTreeMap<i32, i64>;

/// One broker Lease's identity: namespace, cluster and broker id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrokerKey {
    /// Namespace of the Lease (and of the KafkaCluster).
    pub namespace: String,
    /// KafkaCluster name.
    pub cluster: String,
    /// Broker id.
    pub id: i32,
}

impl BrokerKey {
    /// The key of a broker Lease named `name` in `namespace`, if it is one.
    pub fn of(namespace: &str, name: &str) -> Option<BrokerKey> {
        let (cluster, id) = parse_broker_lease_name(name)?;
        Some(BrokerKey {
            namespace: namespace.to_owned(),
            cluster: cluster.to_owned(),
            id,
        })
    }
}

#[derive(Clone, Debug)]
struct Observation {
    /// When this process saw the Lease change.
    watch: Watch,
    duration: Duration,
    /// `None` without a holder or with incomplete annotations: not alive.
    registration: Option<Registration>,
    /// A live broker's word that this broker's process refused its connections: the
    /// incarnation named, and when the word first arrived.
    refused: Option<(i64, Instant)>,
}

/// Every broker Lease the controller watches, with when it last saw each renewed.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    leases: BTreeMap<BrokerKey, Observation>,
    /// Keys seen since a re-list began; the rest are dropped when it ends.
    relisting: Option<BTreeSet<BrokerKey>>,
}

impl Liveness {
    /// Starts observing (when this replica becomes the active controller): each Lease's count
    /// starts when it is first seen, so none expires before a lease duration from now.
    pub fn new() -> Self {
        Liveness::default()
    }

    /// Observation was interrupted (the Lease watch failed): renewals may have gone unseen, so
    /// start the grace period again rather than declare brokers dead that merely went unseen.
    pub fn restart_grace(&mut self, now: Instant) {
        for o in self.leases.values_mut() {
            o.watch.restart_grace(tokio_instant(now));
        }
    }

    /// Records `lease` (in `namespace`) as seen at `now`. Returns the broker it belongs to, or
    /// `None` if it is not a broker Lease.
    pub fn observe(&mut self, namespace: &str, lease: &Lease, now: Instant) -> Option<BrokerKey> {
        let name = lease.metadata.name.as_deref()?;
        let key = BrokerKey::of(namespace, name)?;
        let spec = lease.spec.clone().unwrap_or_default();
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_LEASE_DURATION, Duration::from_secs);
        let registration = Registration::from_lease(&key.cluster, lease);
        if let Some(seen) = &mut self.relisting {
            seen.insert(key.clone());
        }
        let o = self
            .leases
            .entry(key.clone())
            .or_insert_with(|| Observation {
                watch: Watch::default(),
                duration,
                registration: None,
                refused: None,
            });
        o.watch.observe(&spec, tokio_instant(now));
        o.duration = duration;
        let before = o.registration.as_ref().map(|r| r.refused.clone());
        let news: Vec<BrokerIncarnation> = registration.as_ref().map_or_else(Vec::new, |r| {
            r.refused
                .iter()
                .filter(|p| before.as_ref().is_none_or(|b| !b.contains(p)))
                .copied()
                .collect()
        });
        o.registration = registration;
        for peer in news {
            self.take_refusal(&key, peer, now);
        }
        Some(key)
    }

    /// Broker `reporter` says `peer`'s process refused its connections (news seen at `now`).
    fn take_refusal(&mut self, reporter: &BrokerKey, peer: BrokerIncarnation, now: Instant) {
        let key = BrokerKey {
            id: peer.id,
            ..reporter.clone()
        };
        if key == *reporter {
            return;
        }
        let Some(o) = self.leases.get_mut(&key) else {
            return;
        };
        if o.registration.as_ref().map(|r| r.incarnation) != Some(peer.incarnation) {
            return;
        }
        tracing::info!(
            namespace = key.namespace,
            cluster = key.cluster,
            broker = peer.id,
            incarnation = peer.incarnation,
            reporter = reporter.id,
            "a live broker's connections to this broker were refused: taking it as gone"
        );
        o.refused = Some((peer.incarnation, now));
    }

    /// The Lease `name` in `namespace` was deleted: its broker is no longer registered.
    pub fn forget(&mut self, namespace: &str, name: &str) {
        if let Some(key) = BrokerKey::of(namespace, name) {
            self.leases.remove(&key);
        }
    }

    /// The watch starts listing every Lease again (after a gap in its history).
    pub fn begin_relist(&mut self) {
        self.relisting = Some(BTreeSet::new());
    }

    /// The re-list is complete: Leases it did not return were deleted meanwhile.
    pub fn end_relist(&mut self) {
        if let Some(seen) = self.relisting.take() {
            self.leases.retain(|k, _| seen.contains(k));
        }
    }

    /// When `key`'s Lease expires by our clock, if it is alive at all.
    fn expiry(&self, key: &BrokerKey) -> Option<(Instant, &Observation, &Registration)> {
        let o = self.leases.get(key)?;
        let registration = o.registration.as_ref()?;
        // No grace beyond the lease duration: a broker found held is judged from first sight.
        let at = o.watch.expires_at(o.duration, Duration::ZERO)?.into_std();
        let gone = o.refused.filter(|(incarnation, seen)| {
            *incarnation == registration.incarnation
                && o.watch.changed_at().is_some_and(|c| c.into_std() < *seen)
        });
        let at = gone.map_or(at, |(_, seen)| at.min(seen));
        Some((at, o, registration))
    }

    /// Whether broker `key` is alive at `now`.
    pub fn is_live(&self, key: &BrokerKey, now: Instant) -> bool {
        self.expiry(key).is_some_and(|(at, _, _)| now < at)
    }

    /// The live brokers of `cluster` in `namespace` at `now`.
    pub fn view(&self, namespace: &str, cluster: &str, now: Instant) -> BrokerView {
        self.leases
            .keys()
            .filter(|k| k.namespace == namespace && k.cluster == cluster)
            .filter_map(|k| {
                let (at, o, r) = self.expiry(k)?;
                (now < at).then_some((
                    k.id,
                    LiveBroker {
                        incarnation: r.incarnation,
                        shutting_down: r.shutting_down,
                        directory_epoch: r.directory_epoch,
                        renewing: o.watch.renewed(),
                    },
                ))
            })
            .collect()
    }

    /// The incarnation of every registered broker of `cluster` in `namespace`, alive or not:
    /// an ISR entry recorded under a newer one was written by a leader that saw a
    /// registration this controller's watch has not delivered yet.
    pub fn incarnations(&self, namespace: &str, cluster: &str) -> Incarnations {
        self.leases
            .iter()
            .filter(|(k, _)| k.namespace == namespace && k.cluster == cluster)
            .filter_map(|(k, o)| Some((k.id, o.registration.as_ref()?.incarnation)))
            .collect()
    }

    /// Every live broker at `now`, for transitions and metrics.
    pub fn live(&self, now: Instant) -> BTreeSet<BrokerKey> {
        self.leases
            .keys()
            .filter(|k| self.is_live(k, now))
            .cloned()
            .collect()
    }

    /// The next instant a live broker expires unless renewed: when to look again, since an
    /// expiry produces no watch event.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.leases
            .keys()
            .filter_map(|k| self.expiry(k).map(|(at, _, _)| at))
            .filter(|at| *at > now)
            .min()
    }
}

/// `now` on the clock [`Watch`] keeps (the same monotonic clock).
fn tokio_instant(now: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
    use k8s_openapi::jiff::{SignedDuration, Timestamp};

    const NS: &str = "ns";
    const SECOND: Duration = Duration::from_secs(1);

    /// Broker `id`'s Lease as the broker writes it, renewed at `renewed` by its own clock.
    fn lease(id: i32, holder: Option<&str>, renewed: Timestamp, incarnation: i64) -> Lease {
        let registration = Registration {
            id,
            host: format!("demo-broker-{id}"),
            port: 9092,
            rack: None,
            incarnation,
            shutting_down: false,
            directory_epoch: None,
            listeners: Vec::new(),
            refused: Default::default(),
        };
        Lease {
            metadata: ObjectMeta {
                name: Some(format!("demo-broker-{id}")),
                annotations: Some(registration.annotations()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(10),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Broker `id`'s Lease saying that the processes `refused` refused its connections.
    fn reporting(id: i32, renewed: Timestamp, refused: &[(i32, i64)]) -> Lease {
        with_word(lease(id, Some("b"), renewed, 1), refused)
    }

    /// `l` saying that the processes `refused` refused its broker's connections.
    fn with_word(mut l: Lease, refused: &[(i32, i64)]) -> Lease {
        let refused = refused
            .iter()
            .map(|&(id, incarnation)| BrokerIncarnation { id, incarnation })
            .collect();
        if let Some(a) = &mut l.metadata.annotations {
            a.insert(
                tributary_crds::registration::REFUSED_ANNOTATION.into(),
                tributary_crds::registration::format_incarnations(&refused),
            );
        }
        l
    }

    fn key(id: i32) -> BrokerKey {
        BrokerKey {
            namespace: NS.into(),
            cluster: "demo".into(),
            id,
        }
    }

    fn at(wall: Timestamp, secs: i64) -> Timestamp {
        wall + SignedDuration::from_secs(secs)
    }

    /// Steps `(t, lease, live)`: at `t` seconds after activation, observe `lease` if any,
    /// then expect broker 0 to be live or not.
    fn run(steps: Vec<(u32, Option<Lease>, bool)>) {
        let t0 = Instant::now();
        let mut l = Liveness::new();
        for (i, (t, lease, live)) in steps.into_iter().enumerate() {
            let now = t0 + SECOND * t;
            if let Some(lease) = &lease {
                l.observe(NS, lease, now);
            }
            assert_eq!(l.is_live(&key(0), now), live, "step {i} at t={t}");
            assert_eq!(l.view(NS, "demo", now).contains_key(&0), live);
        }
    }

    #[test]
    fn a_renewing_broker_stays_live_and_a_silent_one_expires_after_one_duration() {
        let w = Timestamp::now();
        let renewed = |s: i64| Some(lease(0, Some("b0"), at(w, s), 1));
        run(vec![
            (0, renewed(0), true),
            (5, renewed(5), true),
            (12, renewed(12), true),
            // Observing the same renewal again is no sign of life.
            (20, renewed(12), true),
            (21, None, true),
            (22, None, false),
            // A renewal after expiry brings it back.
            (30, renewed(30), true),
        ]);
    }

    #[test]
    fn a_new_controller_waits_one_duration_before_declaring_a_stale_lease_dead() {
        // The Lease says it was renewed an hour ago, but that is the broker's clock: we only
        // know we have not seen it renewed since we started.
        let w = Timestamp::now();
        run(vec![
            (0, Some(lease(0, Some("b0"), at(w, -3600), 1)), true),
            (9, None, true),
            (10, None, false),
        ]);
    }

    #[test]
    fn a_renew_time_hours_in_the_future_does_not_keep_a_silent_broker_alive() {
        let w = Timestamp::now();
        run(vec![
            (0, Some(lease(0, Some("b0"), at(w, 3 * 3600), 1)), true),
            (9, None, true),
            (10, None, false),
            (3600, None, false),
        ]);
    }

    #[test]
    fn renewals_stamped_hours_in_the_past_keep_a_broker_alive() {
        let w = Timestamp::now();
        let skewed = |s: i64| Some(lease(0, Some("b0"), at(w, s - 5 * 3600), 1));
        run(vec![
            (0, skewed(0), true),
            (8, skewed(8), true),
            (16, skewed(16), true),
            (24, skewed(24), true),
            (33, None, true),
            (34, None, false),
        ]);
    }

    #[test]
    fn a_released_or_unannotated_lease_is_not_live_even_during_the_grace_period() {
        let w = Timestamp::now();
        let mut bare = lease(0, Some("b0"), w, 1);
        bare.metadata.annotations = None;
        run(vec![
            (0, Some(lease(0, Some("b0"), w, 1)), true),
            (1, Some(lease(0, None, at(w, 1), 1)), false),
            (2, Some(bare), false),
            (3, Some(lease(0, Some("b0"), at(w, 3), 2)), true),
        ]);
    }

    #[test]
    fn the_view_carries_incarnation_and_shutting_down_and_ignores_other_clusters() {
        let t0 = Instant::now();
        let w = Timestamp::now();
        let mut l = Liveness::new();
        let mut down = lease(1, Some("b1"), w, 7);
        let mut annotations = down.metadata.annotations.clone().unwrap_or_default();
        annotations.insert(
            tributary_crds::registration::SHUTTING_DOWN_ANNOTATION.into(),
            "true".into(),
        );
        down.metadata.annotations = Some(annotations);
        let mut other = lease(2, Some("x"), w, 1);
        other.metadata.name = Some("other-broker-2".into());
        let mut controller = lease(3, Some("op"), w, 1);
        controller.metadata.name = Some("demo-controller".into());
        l.observe(NS, &lease(0, Some("b0"), w, 3), t0);
        l.observe(NS, &down, t0);
        l.observe(NS, &other, t0);
        assert_eq!(l.observe(NS, &controller, t0), None);
        assert_eq!(
            l.view(NS, "demo", t0),
            BrokerView::from([
                (
                    0,
                    LiveBroker {
                        incarnation: 3,
                        shutting_down: false,
                        directory_epoch: None,
                        renewing: false,
                    }
                ),
                (
                    1,
                    LiveBroker {
                        incarnation: 7,
                        shutting_down: true,
                        directory_epoch: None,
                        renewing: false,
                    }
                ),
            ])
        );
        assert!(l.view("elsewhere", "demo", t0).is_empty());
    }

    #[test]
    fn a_relist_keeps_when_renewals_were_seen_and_drops_deleted_leases() {
        let t0 = Instant::now();
        let w = Timestamp::now();
        let mut l = Liveness::new();
        l.observe(NS, &lease(0, Some("b0"), w, 1), t0);
        l.observe(NS, &lease(1, Some("b1"), w, 1), t0);
        // The watch breaks and lists again 8 s later: broker 0 unchanged, broker 1 gone.
        l.begin_relist();
        l.observe(NS, &lease(0, Some("b0"), w, 1), t0 + 8 * SECOND);
        l.end_relist();
        assert!(
            !l.is_live(&key(1), t0 + 8 * SECOND),
            "deleted while unwatched"
        );
        assert!(
            !l.is_live(&key(0), t0 + 10 * SECOND),
            "an unchanged Lease seen again is not a renewal"
        );
    }

    #[test]
    fn a_broker_counts_as_renewing_once_a_renewal_is_seen_and_again_after_a_broken_watch() {
        let t0 = Instant::now();
        let w = Timestamp::now();
        let mut l = Liveness::new();
        let renewing = |l: &Liveness, t: Instant| l.view(NS, "demo", t).get(&0).map(|b| b.renewing);
        // Found unexpired at takeover: alive, but maybe dead for most of a lease already.
        l.observe(NS, &lease(0, Some("b0"), w, 1), t0);
        assert_eq!(renewing(&l, t0), Some(false));
        l.observe(NS, &lease(0, Some("b0"), w, 1), t0 + SECOND);
        assert_eq!(
            renewing(&l, t0 + SECOND),
            Some(false),
            "the same renewal again"
        );
        l.observe(NS, &lease(0, Some("b0"), at(w, 2), 1), t0 + 2 * SECOND);
        assert_eq!(renewing(&l, t0 + 2 * SECOND), Some(true));
        l.restart_grace(t0 + 3 * SECOND);
        assert_eq!(
            renewing(&l, t0 + 3 * SECOND),
            Some(false),
            "renewals may have gone unseen"
        );
        // A restart (new incarnation) is a change too.
        l.observe(NS, &lease(0, Some("b0"), at(w, 4), 2), t0 + 4 * SECOND);
        assert_eq!(renewing(&l, t0 + 4 * SECOND), Some(true));
    }

    #[test]
    fn a_new_term_or_transition_is_a_sign_of_life_as_for_every_lease() {
        let w = Timestamp::now();
        let mut taken = lease(0, Some("b0"), w, 1);
        if let Some(spec) = &mut taken.spec {
            spec.acquire_time = Some(MicroTime(at(w, 1)));
            spec.lease_transitions = Some(1);
        }
        run(vec![
            (0, Some(lease(0, Some("b0"), w, 1)), true),
            // Same renew time, new term: seen changing, so counted from here.
            (8, Some(taken.clone()), true),
            (17, Some(taken), true),
            (18, None, false),
        ]);
    }

    #[test]
    fn a_live_brokers_word_that_a_process_refused_its_connections_ends_its_lease_until_it_renews() {
        let w = Timestamp::now();
        let renewed = |s: i64| Some(lease(0, Some("b0"), at(w, s), 1));
        let word = |s: i64| Some(reporting(1, at(w, s), &[(0, 1)]));
        run(vec![
            (0, renewed(0), true),
            (2, renewed(2), true),
            // Nine seconds of Lease left, but nothing listens at broker 0's address.
            (3, word(3), false),
            // The same word again with broker 1's next renewal is not news.
            (5, word(5), false),
            // Broker 0 renews after the word arrived: it is alive after all.
            (6, renewed(6), true),
            (7, word(7), true),
            (15, None, true),
            (16, None, false),
        ]);
    }

    #[test]
    fn the_word_is_news_again_once_withdrawn_and_holds_only_for_the_incarnation_it_names() {
        let w = Timestamp::now();
        let renewed = |s: i64, incarnation: i64| Some(lease(0, Some("b0"), at(w, s), incarnation));
        run(vec![
            (0, renewed(0, 1), true),
            (1, Some(reporting(1, at(w, 1), &[(0, 1)])), false),
            (2, renewed(2, 1), true),
            (3, Some(reporting(1, at(w, 3), &[])), true),
            (4, Some(reporting(1, at(w, 4), &[(0, 1), (5, 1)])), false),
            // A new process of broker 0: the word was about the one before.
            (5, renewed(5, 2), true),
            (6, Some(reporting(1, at(w, 6), &[(0, 1)])), true),
            (7, Some(reporting(1, at(w, 7), &[])), true),
            (8, Some(reporting(1, at(w, 8), &[(0, 3)])), true),
            // A broker's word about itself is no news of anyone.
            (
                9,
                Some(with_word(lease(0, Some("b0"), at(w, 5), 2), &[(0, 2)])),
                true,
            ),
        ]);
    }

    #[test]
    fn a_broken_watch_restarts_the_grace_period() {
        let t0 = Instant::now();
        let w = Timestamp::now();
        let mut l = Liveness::new();
        l.observe(NS, &lease(0, Some("b0"), w, 1), t0);
        l.forget(NS, "not-a-broker");
        l.restart_grace(t0 + 7 * SECOND);
        assert!(l.is_live(&key(0), t0 + 16 * SECOND));
        assert!(!l.is_live(&key(0), t0 + 17 * SECOND));
        assert_eq!(l.next_expiry(t0), Some(t0 + 17 * SECOND));
        l.forget(NS, "demo-broker-0");
        assert!(!l.is_live(&key(0), t0 + SECOND), "a deleted Lease is gone");
        assert_eq!(l.next_expiry(t0), None);
    }
}
