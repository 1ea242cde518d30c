//! The rolling-update decision: which broker may restart now, or why none may. Pure, so the
//! rules below (and the Strimzi and Redpanda failures they prevent) are table tests; the
//! reconciler ([`super::rollout`]) reads the world, calls [`decide`] and deletes at most one pod.
//!
//! The broker StatefulSet uses `OnDelete`, so a pod runs a new template only once the operator
//! deletes it. A broker is *outdated* while its pod runs another revision than the
//! StatefulSet's `updateRevision`. The rules:
//!
//! 1. **One broker down at a time; restarted brokers rejoin first.** No restart while a broker
//!    at the new revision (or the one restarted last, whatever its revision now) is missing,
//!    not Ready, not registered as a newer incarnation than before its restart, or not back in
//!    the ISR (under its current incarnation) of every partition it replicates. Readiness is
//!    not "caught up" (a Redpanda operator roll during log replay took a cluster down).
//! 2. **Never force-restart a recovering broker.** An outdated broker whose pod is not Ready
//!    but whose Lease the controller sees renewed is recovering (log recovery after a crash):
//!    it is left alone and nothing else restarts meanwhile. One that is Ready but out of some
//!    ISR is catching up: it is not restarted (the others may be, within rule 4).
//! 3. **Stuck pods first.** An outdated broker that is neither Ready nor renewing its Lease
//!    (crash-looping, pending, hung before registering) serves nothing; it restarts before the
//!    others, lowest id first, since the new template may be what fixes it.
//! 4. **Availability (Strimzi's KafkaAvailability).** Broker b may restart only if no
//!    partition with b in its ISR has |ISR| <= its `min.insync.replicas`: the restart would
//!    take the partition below it and fail `acks=all` producers. ISR entries count only under
//!    their broker's current incarnation. Partitions whose replication factor is at most
//!    their `min.insync.replicas` never block: any restart of one of their replicas makes them
//!    refuse `acks=all` writes, so blocking would stall the roll for ever (Strimzi #2964);
//!    taking `min(minISR, RF)` instead would still block for ever at RF = minISR. Rule 1
//!    still makes the next restart wait until such a partition's ISR is whole again.
//! 5. **Order.** Ready outdated brokers restart highest id first, as a StatefulSet's own
//!    RollingUpdate does (so `kubectl rollout`-minded users see the order they expect); one
//!    blocked by rule 4 is skipped for the next that is not.
//!
//! Leadership moves off the restarting broker by itself: it announces a controlled shutdown on
//! SIGTERM and waits (bounded) until the controller has moved its leaderships, within the
//! pod's `terminationGracePeriodSeconds` (at least 30 s, default 120 s).

use std::collections::BTreeMap;
use std::fmt;

use tributary_crds::cluster::RestartedBroker;
use tributary_crds::IsrEntry;

/// Partitions named in one blocker's message; the rest are counted.
const NAMED_PARTITIONS: usize = 5;

/// A broker's pod as the roll sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodState {
    /// No pod: the StatefulSet controller has not recreated it yet.
    Missing,
    /// The pod is being deleted.
    Terminating,
    /// A pod created from `revision` (its `controller-revision-hash` label).
    Present {
        /// Pod UID.
        uid: String,
        /// StatefulSet revision of its template.
        revision: String,
        /// The Ready condition is true.
        ready: bool,
    },
}

/// One broker of the StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerState {
    /// Broker id (pod ordinal).
    pub id: i32,
    /// Its pod.
    pub pod: PodState,
    /// The incarnation in its Lease while the Lease is held; `None` when unregistered.
    pub incarnation: Option<i64>,
    /// Whether the active controller sees its Lease renewed; `None` while it has not judged
    /// yet (just after start), which counts as possibly alive.
    pub live: Option<bool>,
}

impl BrokerState {
    fn ready(&self) -> bool {
        matches!(self.pod, PodState::Present { ready: true, .. })
    }
}

/// One partition with replicas on the cluster's brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// KafkaPartition object name (what the messages name).
    pub name: String,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replicas with the incarnation each joined as.
    pub isr: Vec<IsrEntry>,
    /// The topic's `min.insync.replicas` (see [`min_insync_replicas`]).
    pub min_isr: i32,
}

/// Everything the decision reads.
#[derive(Clone, Copy, Debug)]
pub struct RollInput<'a> {
    /// The StatefulSet's `updateRevision`, once its controller has observed the latest spec.
    pub revision: &'a str,
    /// Brokers `0..replicas` of the StatefulSet.
    pub brokers: &'a [BrokerState],
    /// The cluster's partitions.
    pub partitions: &'a [PartitionState],
    /// The broker restarted last, from the KafkaCluster status.
    pub restarting: Option<&'a RestartedBroker>,
}

/// Why an outdated broker is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartKind {
    /// Neither Ready nor renewing its Lease: stuck, restarted first (rule 3).
    Stuck,
    /// Ready, in sync, and its restart keeps every partition at or above min ISR.
    Outdated,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollDecision {
    /// Every broker runs the revision (and the one restarted last is back); no roll.
    Done,
    /// Delete the pod `pod_uid` of `broker` (it is outdated and may restart).
    Restart {
        /// Broker id.
        broker: i32,
        /// UID of the pod to delete (a precondition of the delete).
        pod_uid: String,
        /// Why this one.
        kind: RestartKind,
    },
    /// No broker may restart now, for these reasons (at least one).
    Wait(Vec<Blocker>),
}

/// A partition that keeps a broker from restarting because of min ISR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinIsrBlock {
    /// KafkaPartition name.
    pub partition: String,
    /// In-sync replicas under their current incarnations, the broker included.
    pub isr: usize,
    /// Its `min.insync.replicas`.
    pub min_isr: i32,
}

/// Why the roll cannot restart a broker now. Each clears by itself (a pod comes back, an ISR
/// grows), and the next reconcile proceeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// The broker's pod was deleted and is not back yet (missing, terminating, or the old pod
    /// still listed).
    Restarting {
        /// Broker id.
        broker: i32,
    },
    /// A broker at the new revision, or restarted last, is not Ready.
    NotReady {
        /// Broker id.
        broker: i32,
    },
    /// A restarted broker is Ready but its Lease does not show a newer incarnation yet.
    NotRegistered {
        /// Broker id.
        broker: i32,
    },
    /// A broker is not in the ISR of these partitions under its current incarnation.
    OutOfSync {
        /// Broker id.
        broker: i32,
        /// KafkaPartition names.
        partitions: Vec<String>,
    },
    /// An outdated broker is not Ready but renews its Lease: recovering its logs.
    Recovering {
        /// Broker id.
        broker: i32,
    },
    /// Restarting the broker would take these partitions below min ISR.
    MinIsr {
        /// Broker id.
        broker: i32,
        /// The partitions at (or below) min ISR with the broker in their ISR.
        partitions: Vec<MinIsrBlock>,
    },
}

impl Blocker {
    /// Condition and Event reason, and the `reason` label of the roll metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Blocker::Restarting { .. } => "BrokerRestarting",
            Blocker::NotReady { .. } => "BrokerNotReady",
            Blocker::NotRegistered { .. } => "BrokerNotRegistered",
            Blocker::OutOfSync { .. } => "BrokerNotInSync",
            Blocker::Recovering { .. } => "BrokerRecovering",
            Blocker::MinIsr { .. } => "MinInSyncReplicas",
        }
    }

    /// Every reason a blocker can have, so metric series exist before the first roll.
    pub const REASONS: [&'static str; 6] = [
        "BrokerRestarting",
        "BrokerNotReady",
        "BrokerNotRegistered",
        "BrokerNotInSync",
        "BrokerRecovering",
        "MinInSyncReplicas",
    ];

    /// Whether this is the ordinary wait for a restart in progress rather than a roll held
    /// up by the cluster's state.
    pub fn is_routine(&self) -> bool {
        matches!(
            self,
            Blocker::Restarting { .. } | Blocker::NotReady { .. } | Blocker::NotRegistered { .. }
        )
    }
}

/// `names` joined, at most [`NAMED_PARTITIONS`] of them, then how many more.
fn named<T: fmt::Display>(names: &[T]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(NAMED_PARTITIONS)
        .map(ToString::to_string)
        .collect();
    let more = names.len().saturating_sub(NAMED_PARTITIONS);
    if more == 0 {
        shown.join(", ")
    } else {
        format!("{} and {more} more", shown.join(", "))
    }
}

impl fmt::Display for MinIsrBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (ISR {}, min.insync.replicas {})",
            self.partition, self.isr, self.min_isr
        )
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Restarting { broker } => {
                write!(f, "broker {broker} is restarting (its pod is not back yet)")
            }
            Blocker::NotReady { broker } => write!(f, "broker {broker} is not Ready"),
            Blocker::NotRegistered { broker } => write!(
                f,
                "broker {broker} has not registered as a new incarnation since its restart"
            ),
            Blocker::OutOfSync { broker, partitions } => write!(
                f,
                "broker {broker} is not in the ISR of {}",
                named(partitions)
            ),
            Blocker::Recovering { broker } => write!(
                f,
                "broker {broker} is not Ready but renews its Lease (recovering); it is not restarted and nothing else is meanwhile"
            ),
            Blocker::MinIsr { broker, partitions } => write!(
                f,
                "restarting broker {broker} would take {} below min.insync.replicas",
                named(partitions)
            ),
        }
    }
}

/// Decides the roll's next step (see the module docs for the rules).
pub fn decide(input: &RollInput<'_>) -> RollDecision {
    let incarnations: BTreeMap<i32, i64> = input
        .brokers
        .iter()
        .filter_map(|b| Some((b.id, b.incarnation?)))
        .collect();
    let outdated = |b: &BrokerState| matches!(&b.pod, PodState::Present { revision, .. } if revision != input.revision);
    if !input.brokers.iter().any(outdated) {
        // The roll ends once the broker restarted last is back too.
        let last = input
            .restarting
            .and_then(|r| Some((r, input.brokers.iter().find(|b| b.id == r.id)?)));
        if let Some((r, b)) = last {
            if let Some(blocker) = not_back(b, Some(r), input.partitions, &incarnations) {
                return RollDecision::Wait(vec![blocker]);
            }
        }
        return RollDecision::Done;
    }
    let mut waits = Vec::new();
    for b in input.brokers {
        let recorded = input.restarting.filter(|r| r.id == b.id);
        if outdated(b) && recorded.is_none() {
            if !b.ready() && b.live != Some(false) {
                waits.push(Blocker::Recovering { broker: b.id });
            }
            continue;
        }
        if let Some(blocker) = not_back(b, recorded, input.partitions, &incarnations) {
            waits.push(blocker);
        }
    }
    if !waits.is_empty() {
        return RollDecision::Wait(waits);
    }
    let mut blocked = Vec::new();
    for b in restart_order(input.brokers, input.revision) {
        let PodState::Present { uid, ready, .. } = &b.pod else {
            continue;
        };
        if *ready {
            let out = out_of_sync(b, input.partitions, &incarnations);
            if !out.is_empty() {
                blocked.push(Blocker::OutOfSync {
                    broker: b.id,
                    partitions: out,
                });
                continue;
            }
        }
        let at_min = at_min_isr(b, input.partitions, &incarnations);
        if !at_min.is_empty() {
            blocked.push(Blocker::MinIsr {
                broker: b.id,
                partitions: at_min,
            });
            continue;
        }
        return RollDecision::Restart {
            broker: b.id,
            pod_uid: uid.clone(),
            kind: if *ready {
                RestartKind::Outdated
            } else {
                RestartKind::Stuck
            },
        };
    }
    RollDecision::Wait(blocked)
}

/// Outdated brokers in the order they restart: stuck ones (not Ready, Lease not renewed) by
/// id, then Ready ones highest id first. Recovering ones are not listed.
pub fn restart_order<'a>(brokers: &'a [BrokerState], revision: &str) -> Vec<&'a BrokerState> {
    let outdated: Vec<&BrokerState> = brokers
        .iter()
        .filter(|b| matches!(&b.pod, PodState::Present { revision: r, .. } if r != revision))
        .collect();
    let mut stuck: Vec<&BrokerState> = outdated
        .iter()
        .copied()
        .filter(|b| !b.ready() && b.live == Some(false))
        .collect();
    stuck.sort_by_key(|b| b.id);
    let mut ready: Vec<&BrokerState> = outdated.into_iter().filter(|b| b.ready()).collect();
    ready.sort_by_key(|b| std::cmp::Reverse(b.id));
    stuck.extend(ready);
    stuck
}

/// Why broker `b` (restarted, or at the new revision) is not back, if it is not.
fn not_back(
    b: &BrokerState,
    recorded: Option<&RestartedBroker>,
    partitions: &[PartitionState],
    incarnations: &BTreeMap<i32, i64>,
) -> Option<Blocker> {
    let broker = b.id;
    match &b.pod {
        PodState::Missing | PodState::Terminating => return Some(Blocker::Restarting { broker }),
        PodState::Present { uid, .. } if recorded.is_some_and(|r| &r.pod_uid == uid) => {
            return Some(Blocker::Restarting { broker })
        }
        PodState::Present { ready: false, .. } => return Some(Blocker::NotReady { broker }),
        PodState::Present { .. } => {}
    }
    let newer = match (b.incarnation, recorded.and_then(|r| r.incarnation)) {
        (None, _) => false,
        (Some(now), Some(before)) => now > before,
        (Some(_), None) => true,
    };
    if !newer {
        return Some(Blocker::NotRegistered { broker });
    }
    let out = out_of_sync(b, partitions, incarnations);
    (!out.is_empty()).then_some(Blocker::OutOfSync {
        broker,
        partitions: out,
    })
}

/// Whether `entry` is in sync under its broker's current incarnation.
fn current(entry: &IsrEntry, incarnations: &BTreeMap<i32, i64>) -> bool {
    incarnations.get(&entry.broker_id) == Some(&entry.broker_epoch)
}

/// Partitions replicated on `b` whose ISR lacks `b` under its current incarnation.
fn out_of_sync(
    b: &BrokerState,
    partitions: &[PartitionState],
    incarnations: &BTreeMap<i32, i64>,
) -> Vec<String> {
    partitions
        .iter()
        .filter(|p| p.replicas.contains(&b.id))
        .filter(|p| {
            !p.isr
                .iter()
                .any(|e| e.broker_id == b.id && current(e, incarnations))
        })
        .map(|p| p.name.clone())
        .collect()
}

/// Partitions with `b` in their ISR that restarting `b` would take below min ISR (rule 4).
fn at_min_isr(
    b: &BrokerState,
    partitions: &[PartitionState],
    incarnations: &BTreeMap<i32, i64>,
) -> Vec<MinIsrBlock> {
    partitions
        .iter()
        .filter(|p| p.replicas.contains(&b.id))
        .filter(|p| i32::try_from(p.replicas.len()).unwrap_or(i32::MAX) > p.min_isr)
        .filter_map(|p| {
            let isr: Vec<&IsrEntry> = p.isr.iter().filter(|e| current(e, incarnations)).collect();
            let in_isr = isr.iter().any(|e| e.broker_id == b.id);
            let size = i32::try_from(isr.len()).unwrap_or(i32::MAX);
            (in_isr && size <= p.min_isr).then(|| MinIsrBlock {
                partition: p.name.clone(),
                isr: isr.len(),
                min_isr: p.min_isr,
            })
        })
        .collect()
}

/// A topic's `min.insync.replicas`: the topic's own value (effective config, then spec), else
/// the cluster's `spec.config`, else Kafka's default of 1. Unparsable values fall through, as
/// the broker would have refused them.
pub fn min_insync_replicas(
    topic_effective: Option<&BTreeMap<String, String>>,
    topic_spec: Option<&BTreeMap<String, Option<String>>>,
    cluster: &BTreeMap<String, String>,
) -> i32 {
    const KEY: &str = "min.insync.replicas";
    let parse = |v: &str| v.parse::<i32>().ok().filter(|n| *n >= 1);
    topic_effective
        .and_then(|c| c.get(KEY))
        .and_then(|v| parse(v))
        .or_else(|| {
            topic_spec
                .and_then(|c| c.get(KEY)?.as_deref())
                .and_then(parse)
        })
        .or_else(|| cluster.get(KEY).and_then(|v| parse(v)))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::st;

    const OLD: &str = "sts-1";
    const NEW: &str = "sts-2";

    /// Broker `id` with a Ready pod at `revision`, registered as incarnation 1, renewing.
    fn broker(id: i32, revision: &str) -> BrokerState {
        BrokerState {
            id,
            pod: PodState::Present {
                uid: format!("uid-{id}-{revision}"),
                revision: revision.to_owned(),
                ready: true,
            },
            incarnation: Some(1),
            live: Some(true),
        }
    }

    fn unready(mut b: BrokerState) -> BrokerState {
        if let PodState::Present { ready, .. } = &mut b.pod {
            *ready = false;
        }
        b
    }

    fn incarnation(mut b: BrokerState, i: i64) -> BrokerState {
        b.incarnation = Some(i);
        b
    }

    fn dead(mut b: BrokerState) -> BrokerState {
        b.live = Some(false);
        b
    }

    /// Partition `name` on `replicas` with `isr` as (broker, incarnation) and min ISR `min`.
    fn partition(name: &str, replicas: &[i32], isr: &[(i32, i64)], min: i32) -> PartitionState {
        PartitionState {
            name: name.to_owned(),
            replicas: replicas.to_vec(),
            isr: st(0, 0, 0, isr).isr,
            min_isr: min,
        }
    }

    fn full(name: &str, min: i32) -> PartitionState {
        partition(name, &[0, 1, 2], &[(0, 1), (1, 1), (2, 1)], min)
    }

    fn decide_with(
        brokers: &[BrokerState],
        partitions: &[PartitionState],
        restarting: Option<&RestartedBroker>,
    ) -> RollDecision {
        decide(&RollInput {
            revision: NEW,
            brokers,
            partitions,
            restarting,
        })
    }

    fn restarts(d: &RollDecision) -> Option<i32> {
        match d {
            RollDecision::Restart { broker, .. } => Some(*broker),
            _ => None,
        }
    }

    fn waits(d: &RollDecision) -> Vec<Blocker> {
        match d {
            RollDecision::Wait(b) => b.clone(),
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    fn recorded(id: i32, uid: &str, incarnation: i64) -> RestartedBroker {
        RestartedBroker {
            id,
            pod_uid: uid.to_owned(),
            incarnation: Some(incarnation),
        }
    }

    #[test]
    fn nothing_to_do_when_every_pod_runs_the_revision() {
        let brokers = [broker(0, NEW), broker(1, NEW), broker(2, NEW)];
        assert_eq!(
            decide_with(&brokers, &[full("t-0", 2)], None),
            RollDecision::Done
        );
        // Missing pods are the StatefulSet's to create (at the new revision): no roll.
        let brokers = [
            broker(0, NEW),
            BrokerState {
                pod: PodState::Missing,
                ..broker(1, NEW)
            },
        ];
        assert_eq!(decide_with(&brokers, &[], None), RollDecision::Done);
    }

    #[test]
    fn the_roll_ends_once_the_last_restarted_broker_is_back_in_every_isr() {
        let restarted = recorded(0, "uid-0-sts-1", 1);
        let brokers = [
            incarnation(broker(0, NEW), 2),
            broker(1, NEW),
            broker(2, NEW),
        ];
        assert_eq!(
            waits(&decide_with(&brokers, &[full("t-0", 2)], Some(&restarted))),
            vec![Blocker::OutOfSync {
                broker: 0,
                partitions: vec!["t-0".into()]
            }]
        );
        let parts = [partition("t-0", &[0, 1, 2], &[(0, 2), (1, 1), (2, 1)], 2)];
        assert_eq!(
            decide_with(&brokers, &parts, Some(&restarted)),
            RollDecision::Done
        );
    }

    #[test]
    fn a_healthy_cluster_restarts_the_highest_outdated_broker_first() {
        let brokers = [broker(0, OLD), broker(1, OLD), broker(2, OLD)];
        let d = decide_with(&brokers, &[full("t-0", 2)], None);
        assert_eq!(
            d,
            RollDecision::Restart {
                broker: 2,
                pod_uid: "uid-2-sts-1".into(),
                kind: RestartKind::Outdated
            }
        );
        let brokers = [broker(0, OLD), broker(1, OLD), broker(2, NEW)];
        assert_eq!(
            restarts(&decide_with(&brokers, &[full("t-0", 2)], None)),
            Some(1)
        );
    }

    #[test]
    fn a_roll_at_exactly_min_isr_blocks_every_broker_in_that_isr() {
        // Broker 0 lags (out of the ISR): 1 and 2 are the last two in sync at min ISR 2, and
        // 0 is catching up, so nobody restarts until the ISR grows.
        let brokers = [broker(0, OLD), broker(1, OLD), broker(2, OLD)];
        let parts = [partition("t-0", &[0, 1, 2], &[(1, 1), (2, 1)], 2)];
        let blockers = waits(&decide_with(&brokers, &parts, None));
        let at_min = |broker| Blocker::MinIsr {
            broker,
            partitions: vec![MinIsrBlock {
                partition: "t-0".into(),
                isr: 2,
                min_isr: 2,
            }],
        };
        assert_eq!(
            blockers,
            vec![
                at_min(2),
                at_min(1),
                Blocker::OutOfSync {
                    broker: 0,
                    partitions: vec!["t-0".into()]
                }
            ]
        );
        assert_eq!(
            blockers[0].to_string(),
            "restarting broker 2 would take t-0 (ISR 2, min.insync.replicas 2) below min.insync.replicas"
        );
        // Once 0 is back in the ISR, the roll proceeds.
        assert_eq!(
            restarts(&decide_with(&brokers, &[full("t-0", 2)], None)),
            Some(2)
        );
    }

    #[test]
    fn a_blocked_broker_is_skipped_for_one_that_may_restart() {
        // t-1 on 1 and 2 only, at min ISR 2 of RF 3 (its third replica on a broker outside
        // the set): 2 and 1 are blocked, 0 is not.
        let brokers = [broker(0, OLD), broker(1, OLD), broker(2, OLD)];
        let parts = [
            full("t-0", 2),
            partition("t-1", &[1, 2, 7], &[(1, 1), (2, 1)], 2),
        ];
        assert_eq!(restarts(&decide_with(&brokers, &parts, None)), Some(0));
    }

    #[test]
    fn below_min_isr_with_the_broker_in_the_isr_blocks_it() {
        let brokers = [broker(0, OLD), broker(1, NEW), broker(2, NEW)];
        let parts = [partition("t-0", &[0, 5, 6], &[(0, 1)], 2)];
        assert_eq!(
            waits(&decide_with(&brokers, &parts, None)),
            vec![Blocker::MinIsr {
                broker: 0,
                partitions: vec![MinIsrBlock {
                    partition: "t-0".into(),
                    isr: 1,
                    min_isr: 2
                }]
            }]
        );
    }

    #[test]
    fn topics_with_replication_factor_at_most_min_isr_never_block() {
        let brokers = [broker(0, OLD), broker(1, OLD)];
        let parts = [
            partition("rf1-0", &[1], &[(1, 1)], 2),
            partition("rf2-0", &[0, 1], &[(0, 1), (1, 1)], 2),
        ];
        assert_eq!(restarts(&decide_with(&brokers, &parts, None)), Some(1));
    }

    #[test]
    fn isr_entries_of_an_earlier_incarnation_do_not_count() {
        // 2's entry is of incarnation 1 but 2 runs as 2 now: the ISR really is {0, 1}, and
        // 2 is out of sync (a restarted broker that has not caught up).
        let brokers = [
            broker(0, OLD),
            broker(1, OLD),
            incarnation(broker(2, NEW), 2),
        ];
        let d = decide_with(&brokers, &[full("t-0", 2)], None);
        assert_eq!(
            waits(&d),
            vec![Blocker::OutOfSync {
                broker: 2,
                partitions: vec!["t-0".into()]
            }]
        );
    }

    #[test]
    fn the_next_broker_waits_until_the_restarted_one_is_back_in_every_isr() {
        let restarted = recorded(2, "uid-2-sts-1", 1);
        let parts = [full("t-0", 1), full("t-1", 1)];
        // Its old pod still listed (the delete not yet seen): wait, never delete again.
        let brokers = [broker(0, OLD), broker(1, OLD), broker(2, OLD)];
        assert_eq!(
            waits(&decide_with(&brokers, &parts, Some(&restarted))),
            vec![Blocker::Restarting { broker: 2 }]
        );
        // Gone, then back but not Ready.
        let gone = BrokerState {
            pod: PodState::Terminating,
            ..broker(2, OLD)
        };
        let brokers = [broker(0, OLD), broker(1, OLD), gone];
        assert_eq!(
            waits(&decide_with(&brokers, &parts, Some(&restarted))),
            vec![Blocker::Restarting { broker: 2 }]
        );
        let brokers = [broker(0, OLD), broker(1, OLD), unready(broker(2, NEW))];
        assert_eq!(
            waits(&decide_with(&brokers, &parts, Some(&restarted))),
            vec![Blocker::NotReady { broker: 2 }]
        );
        // Ready, but the Lease still shows the incarnation from before the restart.
        let brokers = [broker(0, OLD), broker(1, OLD), broker(2, NEW)];
        assert_eq!(
            waits(&decide_with(&brokers, &parts, Some(&restarted))),
            vec![Blocker::NotRegistered { broker: 2 }]
        );
        // Ready as incarnation 2 but in only one ISR (readiness is not "caught up").
        let back = incarnation(broker(2, NEW), 2);
        let brokers = [broker(0, OLD), broker(1, OLD), back.clone()];
        let parts = [
            partition("t-0", &[0, 1, 2], &[(0, 1), (1, 1), (2, 2)], 1),
            full("t-1", 1),
        ];
        assert_eq!(
            waits(&decide_with(&brokers, &parts, Some(&restarted))),
            vec![Blocker::OutOfSync {
                broker: 2,
                partitions: vec!["t-1".into()]
            }]
        );
        // In every ISR: the next one goes.
        let parts = [
            partition("t-0", &[0, 1, 2], &[(0, 1), (1, 1), (2, 2)], 1),
            partition("t-1", &[0, 1, 2], &[(0, 1), (1, 1), (2, 2)], 1),
        ];
        assert_eq!(
            restarts(&decide_with(&brokers, &parts, Some(&restarted))),
            Some(1)
        );
    }

    #[test]
    fn a_restarted_broker_killed_mid_roll_is_waited_for_and_never_restarted_again() {
        let restarted = recorded(2, "uid-2-sts-1", 1);
        let parts = [partition("t-0", &[0, 1, 2], &[(0, 1), (1, 1), (2, 2)], 1)];
        // It came back as 2, then was killed: its pod restarts (not Ready).
        let killed = unready(incarnation(broker(2, NEW), 2));
        let brokers = [broker(0, OLD), broker(1, OLD), killed];
        assert_eq!(
            waits(&decide_with(&brokers, &parts, Some(&restarted))),
            vec![Blocker::NotReady { broker: 2 }]
        );
        // Back as incarnation 3: its ISR entry of incarnation 2 no longer counts.
        let brokers = [
            broker(0, OLD),
            broker(1, OLD),
            incarnation(broker(2, NEW), 3),
        ];
        assert_eq!(
            waits(&decide_with(&brokers, &parts, Some(&restarted))),
            vec![Blocker::OutOfSync {
                broker: 2,
                partitions: vec!["t-0".into()]
            }]
        );
        // The same with no record (an operator that lost it): a broker at the new revision
        // out of an ISR still holds the roll.
        assert_eq!(
            waits(&decide_with(&brokers, &parts, None)),
            vec![Blocker::OutOfSync {
                broker: 2,
                partitions: vec!["t-0".into()]
            }]
        );
    }

    #[test]
    fn a_broker_in_slow_log_recovery_is_never_force_restarted() {
        // Outdated, not Ready, renewing its Lease: recovering. Nobody restarts.
        let brokers = [broker(0, OLD), unready(broker(1, OLD)), broker(2, OLD)];
        assert_eq!(
            waits(&decide_with(&brokers, &[full("t-0", 1)], None)),
            vec![Blocker::Recovering { broker: 1 }]
        );
        // Before the controller has judged liveness, the same.
        let mut unknown = unready(broker(1, OLD));
        unknown.live = None;
        let brokers = [broker(0, OLD), unknown, broker(2, OLD)];
        assert_eq!(
            waits(&decide_with(&brokers, &[full("t-0", 1)], None)),
            vec![Blocker::Recovering { broker: 1 }]
        );
        // Restarted and recovering slowly at the new revision: waited for.
        let restarted = recorded(2, "uid-2-sts-1", 1);
        let slow = unready(incarnation(broker(2, NEW), 2));
        let brokers = [broker(0, OLD), broker(1, OLD), slow];
        assert_eq!(
            waits(&decide_with(&brokers, &[full("t-0", 1)], Some(&restarted))),
            vec![Blocker::NotReady { broker: 2 }]
        );
    }

    #[test]
    fn stuck_pods_restart_first() {
        // 0 is not Ready and its Lease is not renewed (crash-looping on the old template).
        let stuck = dead(unready(broker(0, OLD)));
        let brokers = [stuck, broker(1, OLD), broker(2, OLD)];
        let parts = [partition("t-0", &[0, 1, 2], &[(1, 1), (2, 1)], 1)];
        assert_eq!(
            decide_with(&brokers, &parts, None),
            RollDecision::Restart {
                broker: 0,
                pod_uid: "uid-0-sts-1".into(),
                kind: RestartKind::Stuck
            }
        );
        let order: Vec<i32> = restart_order(&brokers, NEW).iter().map(|b| b.id).collect();
        assert_eq!(order, vec![0, 2, 1]);
    }

    #[test]
    fn a_ready_broker_catching_up_is_not_restarted_but_others_may_be() {
        let brokers = [broker(0, OLD), broker(1, OLD), broker(2, OLD)];
        // 2 lags on t-0 (min ISR 1, ISR {0, 1}): 2 is not restarted, 1 is.
        let parts = [partition("t-0", &[0, 1, 2], &[(0, 1), (1, 1)], 1)];
        assert_eq!(restarts(&decide_with(&brokers, &parts, None)), Some(1));
    }

    #[test]
    fn min_insync_replicas_comes_from_the_topic_then_the_cluster_then_one() {
        let effective = BTreeMap::from([("min.insync.replicas".to_owned(), "3".to_owned())]);
        let spec = BTreeMap::from([("min.insync.replicas".to_owned(), Some("2".to_owned()))]);
        let unmanaged = BTreeMap::from([("min.insync.replicas".to_owned(), None)]);
        let cluster = BTreeMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]);
        let none = BTreeMap::new();
        assert_eq!(min_insync_replicas(Some(&effective), Some(&spec), &none), 3);
        assert_eq!(min_insync_replicas(None, Some(&spec), &none), 2);
        assert_eq!(min_insync_replicas(None, Some(&unmanaged), &cluster), 2);
        assert_eq!(min_insync_replicas(None, None, &none), 1);
        let bad = BTreeMap::from([("min.insync.replicas".to_owned(), "x".to_owned())]);
        assert_eq!(min_insync_replicas(Some(&bad), None, &none), 1);
    }

    #[test]
    fn long_partition_lists_are_cut_short() {
        let b = Blocker::OutOfSync {
            broker: 1,
            partitions: (0..8).map(|i| format!("t-{i}")).collect(),
        };
        assert_eq!(
            b.to_string(),
            "broker 1 is not in the ISR of t-0, t-1, t-2, t-3, t-4 and 3 more"
        );
    }
}
