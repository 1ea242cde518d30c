//! The controller's decision for one partition: given its assignment, its recorded leadership
//! and the live brokers, what its status should become (Kafka's `PartitionChangeBuilder`).
//! Pure, so every rule is a table test; the writer applies the result with a resourceVersion
//! precondition and, on conflict, decides again from the fresh object.
//!
//! Rules:
//! - A new partition (no status yet) is led by the first live replica of its assignment, with
//!   every live replica in the ISR at its current incarnation and both epochs 0. While no
//!   replica is live it gets no status.
//! - A broker stays in the ISR while it is alive, not shutting down, still a replica and the
//!   incarnation recorded for it is its current one. Others leave, except that the ISR never
//!   becomes empty: the last member (the leader if it was one) stays recorded, as KRaft keeps
//!   it, so it can lead again when it returns.
//! - A partition whose leader is -1, dead, shutting down, restarted (another incarnation) or no
//!   longer a replica gets a new leader: the first replica in assignment order that is a
//!   current ISR member (clean election); else the last ISR member if it is alive again, under
//!   a new incarnation (it holds the only copy the ISR vouches for); else, only with
//!   `unclean.leader.election.enable`, the first live replica, alone in the ISR; else none
//!   (offline).
//! - Every leadership change raises the leader epoch (also going offline, and re-electing a
//!   restarted leader); every change raises the partition epoch. A returning broker never
//!   rejoins the ISR here: its leader adds it once it has caught up.

use std::fmt;

use tributary_crds::partition::NO_LEADER;
use tributary_crds::{IsrEntry, KafkaCluster, KafkaPartitionStatus, KafkaTopic};

use super::liveness::BrokerView;

/// What kind of change a decision makes, for metrics and Events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// First status of a new partition.
    Initial,
    /// A new leader from the ISR.
    CleanElection,
    /// A new leader from outside the ISR (`unclean.leader.election.enable`).
    UncleanElection,
    /// No replica may lead: the partition goes offline.
    Offline,
    /// The leader stays; brokers left the ISR.
    IsrShrink,
    /// Leadership back to the preferred replica, an ISR member (auto leader rebalance or an
    /// election request; see [`preferred`](super::preferred)).
    PreferredElection,
    /// A reassignment completes: the removed replicas leave the ISR, and a removed leader
    /// hands over to a target replica (see [`reassign`](super::reassign)).
    Reassignment,
}

impl Change {
    /// Every kind, for metrics that should exist at zero from the start.
    pub const ALL: [Change; 7] = [
        Change::Initial,
        Change::CleanElection,
        Change::UncleanElection,
        Change::Offline,
        Change::IsrShrink,
        Change::PreferredElection,
        Change::Reassignment,
    ];

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Change::Initial => "initial",
            Change::CleanElection => "clean",
            Change::UncleanElection => "unclean",
            Change::Offline => "offline",
            Change::IsrShrink => "isr_shrink",
            Change::PreferredElection => "preferred",
            Change::Reassignment => "reassignment",
        }
    }

    /// Whether leadership changes (these writes go first: they end unavailability).
    pub fn is_election(self) -> bool {
        !matches!(self, Change::IsrShrink)
    }
}

/// A partition's next status and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Status to write.
    pub status: KafkaPartitionStatus,
    /// What changed.
    pub change: Change,
}

/// Decides the partition's next status; `None` when it should stay as it is.
pub fn decide(
    replicas: &[i32],
    status: Option<&KafkaPartitionStatus>,
    brokers: &BrokerView,
    unclean: bool,
) -> Option<Decision> {
    let view = Eligibility { replicas, brokers };
    let Some(old) = status else {
        return initial(&view);
    };
    let isr = kept_isr(&view, old);
    let leader_ok = isr
        .iter()
        .any(|e| e.broker_id == old.leader && view.current(e));
    if leader_ok {
        return (isr != old.isr).then(|| Decision {
            status: KafkaPartitionStatus {
                leader: old.leader,
                leader_epoch: old.leader_epoch,
                partition_epoch: old.partition_epoch.saturating_add(1),
                isr,
            },
            change: Change::IsrShrink,
        });
    }
    let (leader, isr, change) = elect(&view, isr, unclean);
    after_election(old, leader, isr, change)
}

/// Which brokers may be in the partition's ISR or lead it: live, not shutting down, replicas.
struct Eligibility<'a> {
    replicas: &'a [i32],
    brokers: &'a BrokerView,
}

impl Eligibility<'_> {
    /// The current incarnation of broker `id`, if it is eligible.
    fn eligible(&self, id: i32) -> Option<i64> {
        self.brokers
            .get(&id)
            .filter(|b| !b.shutting_down && self.replicas.contains(&id))
            .map(|b| b.incarnation)
    }

    /// Whether the ISR entry is of an eligible broker's current incarnation.
    fn current(&self, e: &IsrEntry) -> bool {
        self.eligible(e.broker_id) == Some(e.broker_epoch)
    }

    /// An ISR entry for eligible broker `id` at its current incarnation.
    fn entry(&self, id: i32) -> Option<IsrEntry> {
        self.eligible(id).map(|epoch| IsrEntry {
            broker_id: id,
            broker_epoch: epoch,
        })
    }
}

/// The first status of a new partition, if some replica is live.
fn initial(view: &Eligibility<'_>) -> Option<Decision> {
    // The first live replica leads, and every live replica is in the ISR at its current
    // incarnation, as Kafka creates partitions: their logs are all empty, so each holds
    // everything the partition has, and an acks=all write to a new partition never meets
    // an ISR still growing (which could refuse a producer's first batch while taking the
    // next). Replicas that are not live join once their leader sees them catch up.
    let isr: Vec<IsrEntry> = view
        .replicas
        .iter()
        .filter_map(|&id| view.entry(id))
        .collect();
    let leader = isr.first()?.broker_id;
    Some(Decision {
        status: KafkaPartitionStatus {
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            isr,
        },
        change: Change::Initial,
    })
}

/// The ISR the controller keeps: replicas only, each once, current members only, never empty
/// (the last member, the leader if it was one, stays recorded).
fn kept_isr(view: &Eligibility<'_>, old: &KafkaPartitionStatus) -> Vec<IsrEntry> {
    let replicas = view.replicas;
    let mut recorded: Vec<IsrEntry> = Vec::with_capacity(old.isr.len());
    for e in &old.isr {
        if replicas.contains(&e.broker_id) && !recorded.iter().any(|r| r.broker_id == e.broker_id) {
            recorded.push(*e);
        }
    }
    let mut isr: Vec<IsrEntry> = recorded
        .iter()
        .copied()
        .filter(|e| view.current(e))
        .collect();
    if isr.is_empty() {
        let order = |e: &&IsrEntry| replicas.iter().position(|r| *r == e.broker_id);
        let last = recorded
            .iter()
            .find(|e| e.broker_id == old.leader)
            .or_else(|| recorded.iter().min_by_key(order));
        isr.extend(last.copied());
    }
    isr
}

/// The new leader, ISR and kind of election for a partition whose leader may not stay: clean
/// from the ISR, else the last ISR member back as a new incarnation, else unclean if allowed,
/// else offline.
fn elect(
    view: &Eligibility<'_>,
    isr: Vec<IsrEntry>,
    unclean: bool,
) -> (i32, Vec<IsrEntry>, Change) {
    let clean = view
        .replicas
        .iter()
        .copied()
        .find(|id| isr.iter().any(|e| e.broker_id == *id && view.current(e)));
    if let Some(id) = clean {
        return (id, isr, Change::CleanElection);
    }
    let returning = match isr.as_slice() {
        // The last ISR member, back as a new incarnation, still holds what it had in sync,
        // unless its data directory is newer than its entry (an empty or replaced disk).
        [last] if holds_data_of(view.brokers, last) => view.entry(last.broker_id),
        _ => None,
    };
    if let Some(entry) = returning {
        return (entry.broker_id, vec![entry], Change::CleanElection);
    }
    let outside = view
        .replicas
        .iter()
        .filter(|_| unclean)
        .find_map(|&id| view.entry(id));
    match outside {
        Some(entry) => (entry.broker_id, vec![entry], Change::UncleanElection),
        None => (NO_LEADER, isr, Change::Offline),
    }
}

/// The status after an election (or a failed one), with its epochs raised; `None` when a
/// partition that stays offline keeps its ISR.
fn after_election(
    old: &KafkaPartitionStatus,
    leader: i32,
    isr: Vec<IsrEntry>,
    change: Change,
) -> Option<Decision> {
    // Re-electing the same broker still raises the epoch: it is a new incarnation.
    let new_leadership = leader != NO_LEADER || old.leader != NO_LEADER;
    if !new_leadership && isr == old.isr {
        return None;
    }
    Some(Decision {
        status: KafkaPartitionStatus {
            leader,
            leader_epoch: if new_leadership {
                old.leader_epoch.saturating_add(1)
            } else {
                old.leader_epoch
            },
            partition_epoch: old.partition_epoch.saturating_add(1),
            isr,
        },
        change: if new_leadership {
            change
        } else {
            Change::IsrShrink
        },
    })
}

/// Whether the broker of ISR entry `entry` still has the data directory it had then: one
/// created at a later incarnation never held what the entry vouches for.
fn holds_data_of(brokers: &BrokerView, entry: &IsrEntry) -> bool {
    brokers
        .get(&entry.broker_id)
        .and_then(|b| b.directory_epoch)
        .is_none_or(|created| created <= entry.broker_epoch)
}

/// The config key that allows electing a replica outside the ISR.
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// Whether a partition of `topic` may elect a leader outside the ISR: the topic's setting if it
/// manages the key, else the cluster's, else no (Kafka's default).
pub fn unclean_enabled(topic: Option<&KafkaTopic>, cluster: Option<&KafkaCluster>) -> bool {
    let topic_value = topic
        .and_then(|t| t.spec.config.get(UNCLEAN_LEADER_ELECTION))
        .and_then(Option::as_deref);
    let cluster_value = cluster
        .and_then(|c| c.spec.config.get(UNCLEAN_LEADER_ELECTION))
        .map(String::as_str);
    topic_value.or(cluster_value) == Some("true")
}

/// Why a partition status breaks the rules every writer must keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The leader is not one of the replicas.
    LeaderNotReplica(i32),
    /// The leader is not in the ISR.
    LeaderNotInIsr(i32),
    /// An ISR member is not a replica.
    IsrNotReplica(i32),
    /// A status with a leader has an empty ISR.
    EmptyIsr,
    /// An epoch went backwards, or the partition epoch did not rise with a change.
    EpochRegression {
        /// Epochs (leader, partition) before.
        before: (i32, i32),
        /// Epochs (leader, partition) after.
        after: (i32, i32),
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::LeaderNotReplica(id) => write!(f, "leader {id} is not a replica"),
            Violation::LeaderNotInIsr(id) => write!(f, "leader {id} is not in the ISR"),
            Violation::IsrNotReplica(id) => write!(f, "ISR member {id} is not a replica"),
            Violation::EmptyIsr => write!(f, "the ISR is empty"),
            Violation::EpochRegression { before, after } => write!(
                f,
                "epochs (leader, partition) went from {before:?} to {after:?}"
            ),
        }
    }
}

/// Checks `next` (replacing `previous`, if any) against the invariants: the leader is a
/// replica and in the ISR, the ISR holds replicas only and is not empty, epochs never go back
/// and the partition epoch rises with every change. The writer refuses a decision that breaks
/// one (that would be a bug here), and tests check every version an API server stored.
pub fn violations(
    replicas: &[i32],
    previous: Option<&KafkaPartitionStatus>,
    next: &KafkaPartitionStatus,
) -> Vec<Violation> {
    let mut out = Vec::new();
    if next.leader != NO_LEADER {
        if !replicas.contains(&next.leader) {
            out.push(Violation::LeaderNotReplica(next.leader));
        }
        if !next.isr.iter().any(|e| e.broker_id == next.leader) {
            out.push(Violation::LeaderNotInIsr(next.leader));
        }
        if next.isr.is_empty() {
            out.push(Violation::EmptyIsr);
        }
    }
    for e in &next.isr {
        if !replicas.contains(&e.broker_id) {
            out.push(Violation::IsrNotReplica(e.broker_id));
        }
    }
    if let Some(p) = previous {
        let changed = p != next;
        if next.leader_epoch < p.leader_epoch
            || next.partition_epoch < p.partition_epoch
            || (changed && next.partition_epoch == p.partition_epoch)
            || (p.leader != next.leader && next.leader_epoch == p.leader_epoch)
        {
            out.push(Violation::EpochRegression {
                before: (p.leader_epoch, p.partition_epoch),
                after: (next.leader_epoch, next.partition_epoch),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::{live, st};

    /// One step of a scenario: the brokers alive now, and the status (and change) expected
    /// after deciding, `None` for "no write".
    struct Step {
        what: &'static str,
        brokers: BrokerView,
        expect: Option<(KafkaPartitionStatus, Change)>,
    }

    fn step(
        what: &'static str,
        brokers: &[(i32, i64, bool)],
        expect: Option<(KafkaPartitionStatus, Change)>,
    ) -> Step {
        Step {
            what,
            brokers: live(brokers),
            expect,
        }
    }

    /// Runs `steps` from `start`, feeding each decision into the next step, and checks every
    /// written status against the invariants and that deciding again changes nothing.
    fn scenario(
        replicas: &[i32],
        unclean: bool,
        start: Option<KafkaPartitionStatus>,
        steps: Vec<Step>,
    ) {
        let mut status = start;
        for s in steps {
            let got = decide(replicas, status.as_ref(), &s.brokers, unclean);
            let got_pair = got.clone().map(|d| (d.status, d.change));
            assert_eq!(got_pair, s.expect, "step: {}", s.what);
            if let Some(d) = got {
                let v = violations(replicas, status.as_ref(), &d.status);
                assert!(v.is_empty(), "step {}: {v:?}", s.what);
                assert_eq!(
                    decide(replicas, Some(&d.status), &s.brokers, unclean),
                    None,
                    "step {}: deciding again is a no-op",
                    s.what
                );
                status = Some(d.status);
            }
        }
    }

    use Change::*;

    #[test]
    fn the_topic_setting_overrides_the_cluster_setting() {
        let topic = |v: Option<Option<&str>>| -> KafkaTopic {
            let mut config = serde_json::Map::new();
            if let Some(v) = v {
                config.insert(UNCLEAN_LEADER_ELECTION.into(), v.into());
            }
            serde_json::from_value(serde_json::json!({
                "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaTopic", "metadata": { "name": "t" },
                "spec": { "clusterRef": "c", "partitions": 1, "replicationFactor": 1, "config": config },
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let cluster = |v: Option<&str>| -> KafkaCluster {
            let mut config = serde_json::Map::new();
            if let Some(v) = v {
                config.insert(UNCLEAN_LEADER_ELECTION.into(), v.into());
            }
            serde_json::from_value(serde_json::json!({
                "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster", "metadata": { "name": "c" },
                "spec": { "brokers": 1, "config": config },
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        for (t, c, want) in [
            (None, None, false),
            (Some(Some("true")), None, true),
            (None, Some("true"), true),
            (Some(Some("false")), Some("true"), false),
            (Some(None), Some("true"), true),
            (Some(Some("true")), Some("false"), true),
        ] {
            let (t, c) = (topic(t), cluster(c));
            assert_eq!(
                unclean_enabled(Some(&t), Some(&c)),
                want,
                "{:?} {:?}",
                t.spec.config,
                c.spec.config
            );
        }
        assert!(!unclean_enabled(None, None));
    }

    #[test]
    fn rf1_leader_death_takes_the_partition_offline_until_the_broker_returns() {
        scenario(
            &[0],
            false,
            None,
            vec![
                step("nobody registered yet: no status", &[], None),
                step(
                    "first status",
                    &[(0, 1, false)],
                    Some((st(0, 0, 0, &[(0, 1)]), Initial)),
                ),
                step("stable", &[(0, 1, false)], None),
                step(
                    "dead: offline, last ISR member kept",
                    &[],
                    Some((st(-1, 1, 1, &[(0, 1)]), Offline)),
                ),
                step("still dead", &[], None),
                step(
                    "returns as a new incarnation and leads again",
                    &[(0, 2, false)],
                    Some((st(0, 2, 2, &[(0, 2)]), CleanElection)),
                ),
            ],
        );
    }

    #[test]
    fn rf3_leader_death_moves_leadership_to_the_next_isr_member_in_assignment_order() {
        // Both followers caught up, and the leader added them to the ISR.
        let start = st(2, 0, 0, &[(2, 1), (0, 1), (1, 1)]);
        scenario(
            &[2, 0, 1],
            false,
            Some(start),
            vec![
                step(
                    "leader 2 dies",
                    &[(0, 1, false), (1, 1, false)],
                    Some((st(0, 1, 1, &[(0, 1), (1, 1)]), CleanElection)),
                ),
                step(
                    "broker 2 returns: not re-added by the controller",
                    &[(0, 1, false), (1, 1, false), (2, 2, false)],
                    None,
                ),
                step(
                    "a follower dies: it leaves the ISR, the leader stays",
                    &[(0, 1, false), (2, 2, false)],
                    Some((st(0, 1, 2, &[(0, 1)]), IsrShrink)),
                ),
            ],
        );
    }

    #[test]
    fn two_deaths_leave_the_last_isr_member_leading_then_offline_then_back() {
        let start = st(0, 4, 9, &[(0, 1), (1, 1), (2, 1)]);
        scenario(
            &[0, 1, 2],
            false,
            Some(start),
            vec![
                step(
                    "leader 0 and follower 1 die together",
                    &[(2, 1, false)],
                    Some((st(2, 5, 10, &[(2, 1)]), CleanElection)),
                ),
                step(
                    "0 and 1 come back, out of sync",
                    &[(0, 2, false), (1, 2, false), (2, 1, false)],
                    None,
                ),
                step(
                    "2 dies too: 0 and 1 are not in the ISR, so offline",
                    &[(0, 2, false), (1, 2, false)],
                    Some((st(-1, 6, 11, &[(2, 1)]), Offline)),
                ),
                step(
                    "2 returns: the last ISR member leads",
                    &[(0, 2, false), (1, 2, false), (2, 3, false)],
                    Some((st(2, 7, 12, &[(2, 3)]), CleanElection)),
                ),
            ],
        );
    }

    #[test]
    fn the_last_isr_member_back_with_a_newer_data_directory_is_not_elected() {
        let offline = st(-1, 6, 11, &[(2, 1)]);
        let back = |incarnation: i64, directory: Option<i64>| {
            let mut view = live(&[(2, incarnation, false)]);
            if let Some(b) = view.get_mut(&2) {
                b.directory_epoch = directory;
            }
            view
        };
        // Its directory predates the entry: it holds what it had in sync.
        let kept = decide(&[0, 1, 2], Some(&offline), &back(3, Some(1)), false);
        assert_eq!(kept.map(|d| d.status), Some(st(2, 7, 12, &[(2, 3)])));
        // Created at incarnation 3 (an empty disk), after the entry of incarnation 1: it
        // stays offline at every later start too, unless unclean election is allowed.
        for incarnation in [3, 4] {
            let empty = back(incarnation, Some(3));
            assert_eq!(decide(&[0, 1, 2], Some(&offline), &empty, false), None);
        }
        let unclean = decide(&[0, 1, 2], Some(&offline), &back(4, Some(3)), true);
        assert_eq!(
            unclean.map(|d| (d.status, d.change)),
            Some((st(2, 7, 12, &[(2, 4)]), UncleanElection))
        );
    }

    #[test]
    fn a_shutting_down_leader_hands_over_and_leaves_the_isr() {
        let start = st(1, 3, 3, &[(1, 5), (0, 5)]);
        scenario(
            &[1, 0],
            false,
            Some(start),
            vec![
                step(
                    "1 announces shutdown",
                    &[(0, 5, false), (1, 5, true)],
                    Some((st(0, 4, 4, &[(0, 5)]), CleanElection)),
                ),
                step("then its Lease goes", &[(0, 5, false)], None),
            ],
        );
    }

    #[test]
    fn a_shutting_down_sole_replica_goes_offline_and_stays_recorded() {
        scenario(
            &[0],
            false,
            Some(st(0, 0, 0, &[(0, 1)])),
            vec![step(
                "shutting down",
                &[(0, 1, true)],
                Some((st(-1, 1, 1, &[(0, 1)]), Offline)),
            )],
        );
    }

    #[test]
    fn unclean_election_only_when_enabled() {
        let start = st(0, 2, 5, &[(0, 1)]);
        let alive = [(1, 4, false), (2, 4, false)];
        scenario(
            &[0, 1, 2],
            false,
            Some(start.clone()),
            vec![step(
                "off: offline",
                &alive,
                Some((st(-1, 3, 6, &[(0, 1)]), Offline)),
            )],
        );
        scenario(
            &[0, 1, 2],
            true,
            Some(start),
            vec![
                step(
                    "on: the first live replica, alone in the ISR",
                    &alive,
                    Some((st(1, 3, 6, &[(1, 4)]), UncleanElection)),
                ),
                step(
                    "the old leader returns: not re-added",
                    &[(0, 2, false), (1, 4, false), (2, 4, false)],
                    None,
                ),
            ],
        );
    }

    #[test]
    fn a_restarted_leader_is_a_new_incarnation_and_cannot_keep_leading_on_its_old_entry() {
        scenario(
            &[0, 1],
            false,
            Some(st(0, 1, 1, &[(0, 1), (1, 1)])),
            vec![step(
                "0 restarted within its lease: 1 (current) takes over, stale 0 leaves the ISR",
                &[(0, 2, false), (1, 1, false)],
                Some((st(1, 2, 2, &[(1, 1)]), CleanElection)),
            )],
        );
    }

    #[test]
    fn the_isr_never_becomes_empty() {
        scenario(
            &[0, 1, 2],
            false,
            Some(st(1, 0, 0, &[(0, 1), (1, 1)])),
            vec![step(
                "every ISR member dies at once: the leader's entry stays",
                &[(2, 1, false)],
                Some((st(-1, 1, 1, &[(1, 1)]), Offline)),
            )],
        );
        scenario(
            &[0, 1, 2],
            false,
            Some(st(-1, 3, 3, &[(2, 1), (1, 1)])),
            vec![step(
                "already offline, both dead: the first in assignment order stays",
                &[],
                Some((st(-1, 3, 4, &[(1, 1)]), IsrShrink)),
            )],
        );
    }

    #[test]
    fn leaders_and_isr_members_that_are_no_longer_replicas_are_replaced() {
        // Broker 3 was decommissioned and replaced by 2 in the assignment.
        scenario(
            &[0, 1, 2],
            false,
            Some(st(3, 7, 7, &[(3, 1), (0, 1), (0, 1), (1, 1)])),
            vec![step(
                "3 leads no more; duplicates go too",
                &[(0, 1, false), (1, 1, false), (2, 1, false), (3, 1, false)],
                Some((st(0, 8, 8, &[(0, 1), (1, 1)]), CleanElection)),
            )],
        );
    }

    #[test]
    fn a_new_partition_waits_for_a_live_replica_skips_shutting_down_ones_and_starts_with_every_live_one_in_its_isr(
    ) {
        scenario(
            &[2, 1, 0],
            false,
            None,
            vec![
                step(
                    "only a shutting-down replica",
                    &[(2, 1, true), (5, 1, false)],
                    None,
                ),
                step(
                    "1 and 0 live",
                    &[(2, 1, true), (1, 3, false), (0, 4, false)],
                    Some((st(1, 0, 0, &[(1, 3), (0, 4)]), Initial)),
                ),
            ],
        );
    }

    #[test]
    fn partition_epochs_rise_with_every_write_and_leader_epochs_with_every_leadership_change() {
        let before = st(0, 5, 8, &[(0, 1), (1, 1)]);
        assert!(violations(&[0, 1], Some(&before), &st(1, 6, 9, &[(1, 1)])).is_empty());
        assert_eq!(
            violations(&[0, 1], Some(&before), &st(1, 5, 9, &[(1, 1)])),
            vec![Violation::EpochRegression {
                before: (5, 8),
                after: (5, 9)
            }],
            "a new leader needs a new leader epoch"
        );
        assert_eq!(
            violations(&[0, 1], Some(&before), &st(0, 5, 8, &[(0, 1)])).len(),
            1,
            "a change needs a new partition epoch"
        );
        assert_eq!(
            violations(&[0, 1], Some(&before), &st(0, 4, 9, &[(0, 1)])).len(),
            1,
            "epochs never go back"
        );
        assert_eq!(
            violations(&[0, 1], None, &st(2, 0, 0, &[(1, 1), (7, 1)])),
            vec![
                Violation::LeaderNotReplica(2),
                Violation::LeaderNotInIsr(2),
                Violation::IsrNotReplica(7)
            ]
        );
        assert_eq!(
            violations(&[0], None, &st(0, 0, 0, &[])),
            vec![Violation::LeaderNotInIsr(0), Violation::EmptyIsr]
        );
        // Every decision from arbitrary recorded states keeps the invariants.
        let views = [
            live(&[]),
            live(&[(0, 1, false)]),
            live(&[(0, 2, false), (1, 1, true)]),
            live(&[(0, 1, false), (1, 1, false), (2, 1, false)]),
            live(&[(1, 2, false), (2, 1, false)]),
        ];
        let starts = [
            st(-1, 0, 0, &[]),
            st(0, 1, 1, &[(0, 1)]),
            st(1, 2, 2, &[(0, 1), (1, 1)]),
            st(2, 3, 3, &[(2, 1), (1, 2)]),
            st(-1, 4, 4, &[(1, 1), (2, 1), (0, 2)]),
        ];
        for view in &views {
            for start in &starts {
                for unclean in [false, true] {
                    if let Some(d) = decide(&[0, 1, 2], Some(start), view, unclean) {
                        let v = violations(&[0, 1, 2], Some(start), &d.status);
                        assert!(v.is_empty(), "{start:?} with {view:?}: {v:?}");
                    }
                }
            }
        }
    }
}
