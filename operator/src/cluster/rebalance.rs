//! The rebalance plan: which partition reassignments to start now. Replicas leave brokers
//! being removed (before the StatefulSet shrinks), partitions reach their topic's replication
//! factor, and, after a scale-out, replicas spread evenly over the brokers. Every change is a
//! reassignment (the new replica catches up and joins the ISR before the old one leaves, see
//! `tributary_crds::partition::Assignment`), and at most `max_moves` are in progress at once
//! in the cluster. Pure, so each rule is a table test; the cluster reconciler writes the moves.

use std::collections::{BTreeMap, BTreeSet};

use crate::placement::Broker;

/// One partition as the plan sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    /// The KafkaPartition object's name.
    pub name: String,
    /// Its replicas (once a reassignment in progress completes).
    pub replicas: Vec<i32>,
    /// A reassignment is in progress: the plan leaves it alone, and it counts as a move.
    pub reassigning: bool,
    /// Its topic's replication factor.
    pub replication_factor: usize,
}

/// What the plan looks at.
#[derive(Clone, Copy, Debug)]
pub struct RebalanceInput<'a> {
    /// The brokers the cluster keeps (ids `0..spec.brokers`), with racks.
    pub brokers: &'a [Broker],
    /// Brokers registered now: only they receive replicas (a move onto a broker that is not
    /// running would wait on it).
    pub live: &'a BTreeSet<i32>,
    /// The cluster's partitions.
    pub partitions: &'a [PartitionView],
    /// Reassignments allowed in progress at once.
    pub max_moves: usize,
    /// Whether to even out replica counts (drains and replication-factor changes happen
    /// either way).
    pub balance: bool,
}

/// Why a partition moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MoveReason {
    /// It has a replica on a broker being removed.
    Drain,
    /// Its replica count differs from its topic's replication factor.
    ReplicationFactor,
    /// Its broker holds more replicas than another by two or more.
    Balance,
}

impl MoveReason {
    /// How Events and logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveReason::Drain => "drain",
            MoveReason::ReplicationFactor => "replication factor",
            MoveReason::Balance => "balance",
        }
    }
}

/// A reassignment to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// The KafkaPartition object.
    pub partition: String,
    /// Its target replicas, preferred leader first.
    pub target: Vec<i32>,
    /// Why.
    pub reason: MoveReason,
}

/// The plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebalancePlan {
    /// Reassignments to start now.
    pub moves: Vec<Move>,
    /// Reassignments in progress before these.
    pub in_progress: usize,
    /// Partitions that cannot get their replicas off removed brokers or reach their
    /// replication factor with the live brokers there are.
    pub stuck: Vec<String>,
    /// Moves that would be made but for the bound (so the caller knows to come back).
    pub deferred: usize,
}

/// Computes the reassignments to start now.
pub fn plan(input: RebalanceInput<'_>) -> RebalancePlan {
    let kept: BTreeSet<i32> = input.brokers.iter().map(|b| b.id).collect();
    let racks: BTreeMap<i32, Option<&str>> = input
        .brokers
        .iter()
        .map(|b| (b.id, b.rack.as_deref()))
        .collect();
    let targets: Vec<i32> = kept
        .iter()
        .copied()
        .filter(|id| input.live.contains(id))
        .collect();
    let mut loads = Loads::default();
    for p in input.partitions {
        loads.add(&p.replicas);
    }
    let in_progress = input.partitions.iter().filter(|p| p.reassigning).count();
    let mut out = RebalancePlan {
        in_progress,
        ..RebalancePlan::default()
    };
    let mut budget = input.max_moves.saturating_sub(in_progress);
    let mut settled: Vec<&PartitionView> =
        input.partitions.iter().filter(|p| !p.reassigning).collect();
    settled.sort_by(|a, b| a.name.cmp(&b.name));

    // Drains and replication-factor changes first.
    let mut moved: BTreeSet<&str> = BTreeSet::new();
    for p in &settled {
        let leaving = p.replicas.iter().any(|id| !kept.contains(id));
        if !leaving && p.replicas.len() == p.replication_factor {
            continue;
        }
        let Some(target) = repaired(p, &kept, &targets, &racks, &loads) else {
            out.stuck.push(p.name.clone());
            continue;
        };
        if target == p.replicas {
            continue;
        }
        if budget == 0 {
            out.deferred += 1;
            continue;
        }
        budget -= 1;
        loads.remove(&p.replicas);
        loads.add(&target);
        moved.insert(p.name.as_str());
        out.moves.push(Move {
            partition: p.name.clone(),
            target,
            reason: if leaving {
                MoveReason::Drain
            } else {
                MoveReason::ReplicationFactor
            },
        });
    }
    if !input.balance || !out.stuck.is_empty() || out.deferred > 0 {
        return out;
    }

    // Then even out replica counts: the fullest broker hands one replica to the emptiest live
    // broker, while they differ by two or more.
    while let Some((to, p, at)) = balancing_move(&settled, &moved, &kept, &targets, &racks, &loads)
    {
        if budget == 0 {
            out.deferred += 1;
            break;
        }
        budget -= 1;
        let mut target = p.replicas.clone();
        target[at] = to;
        loads.remove(&p.replicas);
        loads.add(&target);
        moved.insert(p.name.as_str());
        out.moves.push(Move {
            partition: p.name.clone(),
            target,
            reason: MoveReason::Balance,
        });
    }
    out
}

/// `p`'s replicas with those on removed brokers replaced in place (a replacement takes the
/// removed replica's position, so a preferred leader's successor is preferred), then grown or
/// shrunk to the replication factor; `None` when the live brokers cannot provide enough.
fn repaired(
    p: &PartitionView,
    kept: &BTreeSet<i32>,
    targets: &[i32],
    racks: &BTreeMap<i32, Option<&str>>,
    loads: &Loads,
) -> Option<Vec<i32>> {
    let mut target: Vec<Option<i32>> = p
        .replicas
        .iter()
        .map(|id| kept.contains(id).then_some(*id))
        .collect();
    // Too many: drop the most loaded followers (never the preferred leader while others can
    // go instead).
    while target.iter().flatten().count() > p.replication_factor {
        let drop = target
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(i, id)| Some((i, (*id)?)))
            .max_by_key(|(i, id)| (loads.replicas(*id), *i))
            .map(|(i, _)| i)
            .or_else(|| target.iter().position(Option::is_some))?;
        target.remove(drop);
    }
    let wanted = p.replication_factor;
    // Holes from removed brokers, then new places, up to the replication factor.
    let holes = target.iter().filter(|id| id.is_none()).count();
    let present = target.len() - holes;
    let missing = wanted.saturating_sub(present);
    for _ in 0..missing {
        let chosen: Vec<i32> = target.iter().flatten().copied().collect();
        let pick = best_target(&chosen, targets, racks, loads)?;
        match target.iter().position(Option::is_none) {
            Some(hole) => target[hole] = Some(pick),
            None => target.push(Some(pick)),
        }
    }
    Some(target.into_iter().flatten().take(wanted).collect())
}

/// The live broker to add to a partition already on `chosen`: a rack it does not use yet if
/// any, then the fewest replicas, then the fewest preferred leaderships, then the lowest id.
fn best_target(
    chosen: &[i32],
    targets: &[i32],
    racks: &BTreeMap<i32, Option<&str>>,
    loads: &Loads,
) -> Option<i32> {
    targets
        .iter()
        .copied()
        .filter(|id| !chosen.contains(id))
        .min_by_key(|id| {
            (
                rack_taken(*id, chosen, racks),
                loads.replicas(*id),
                loads.leaders(*id),
                *id,
            )
        })
}

/// How many of `chosen` sit in `id`'s rack (0 without racks).
fn rack_taken(id: i32, chosen: &[i32], racks: &BTreeMap<i32, Option<&str>>) -> usize {
    match racks.get(&id).copied().flatten() {
        None => 0,
        rack => chosen
            .iter()
            .filter(|c| **c != id && racks.get(c).copied().flatten() == rack)
            .count(),
    }
}

/// The next balancing move: (the broker to move to, the partition, the position of the
/// replica to replace), if the fullest
/// kept broker holds two or more replicas more than the emptiest live one and some partition
/// can move between them without crowding a rack.
fn balancing_move<'p>(
    settled: &[&'p PartitionView],
    moved: &BTreeSet<&str>,
    kept: &BTreeSet<i32>,
    targets: &[i32],
    racks: &BTreeMap<i32, Option<&str>>,
    loads: &Loads,
) -> Option<(i32, &'p PartitionView, usize)> {
    let to = targets
        .iter()
        .copied()
        .min_by_key(|id| (loads.replicas(*id), loads.leaders(*id), *id))?;
    let mut fullest: Vec<i32> = kept.iter().copied().collect();
    fullest.sort_by_key(|id| (std::cmp::Reverse(loads.replicas(*id)), *id));
    for from in fullest {
        if loads.replicas(from) < loads.replicas(to) + 2 {
            return None;
        }
        // A partition of `from` that `to` lacks; followers first (moving a preferred leader
        // moves leadership too), then the name, for a stable order.
        let candidate = settled
            .iter()
            .filter(|p| !moved.contains(p.name.as_str()) && !p.replicas.contains(&to))
            .filter_map(|p| Some((p, p.replicas.iter().position(|id| *id == from)?)))
            .filter(|(p, at)| {
                let others: Vec<i32> = p
                    .replicas
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i != at)
                    .map(|(_, id)| *id)
                    .collect();
                rack_taken(to, &others, racks) <= rack_taken(from, &others, racks)
            })
            .min_by_key(|(p, at)| (*at == 0, p.name.as_str()));
        if let Some((p, at)) = candidate {
            return Some((to, p, at));
        }
    }
    None
}

#[derive(Default)]
struct Loads {
    replicas: BTreeMap<i32, usize>,
    leaders: BTreeMap<i32, usize>,
}

impl Loads {
    fn add(&mut self, replicas: &[i32]) {
        for id in replicas {
            *self.replicas.entry(*id).or_default() += 1;
        }
        if let Some(first) = replicas.first() {
            *self.leaders.entry(*first).or_default() += 1;
        }
    }

    fn remove(&mut self, replicas: &[i32]) {
        for id in replicas {
            if let Some(n) = self.replicas.get_mut(id) {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(n) = replicas.first().and_then(|f| self.leaders.get_mut(f)) {
            *n = n.saturating_sub(1);
        }
    }

    fn replicas(&self, id: i32) -> usize {
        self.replicas.get(&id).copied().unwrap_or(0)
    }

    fn leaders(&self, id: i32) -> usize {
        self.leaders.get(&id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(n: i32) -> Vec<Broker> {
        (0..n).map(|id| Broker { id, rack: None }).collect()
    }

    fn racked(racks: &[&str]) -> Vec<Broker> {
        racks
            .iter()
            .zip(0..)
            .map(|(r, id)| Broker {
                id,
                rack: Some((*r).to_owned()),
            })
            .collect()
    }

    fn part(name: &str, replicas: &[i32], rf: usize) -> PartitionView {
        PartitionView {
            name: name.to_owned(),
            replicas: replicas.to_vec(),
            reassigning: false,
            replication_factor: rf,
        }
    }

    fn run(
        brokers: &[Broker],
        live: &[i32],
        partitions: &[PartitionView],
        max_moves: usize,
    ) -> RebalancePlan {
        plan(RebalanceInput {
            brokers,
            live: &live.iter().copied().collect(),
            partitions,
            max_moves,
            balance: true,
        })
    }

    /// Applies `plan`'s moves to `partitions` (as if every reassignment completed).
    fn apply(partitions: &mut [PartitionView], plan: &RebalancePlan) {
        for m in &plan.moves {
            if let Some(p) = partitions.iter_mut().find(|p| p.name == m.partition) {
                p.replicas = m.target.clone();
            }
        }
    }

    fn counts(partitions: &[PartitionView], n: i32) -> Vec<usize> {
        (0..n)
            .map(|id| {
                partitions
                    .iter()
                    .filter(|p| p.replicas.contains(&id))
                    .count()
            })
            .collect()
    }

    /// Twelve RF 3 partitions placed round-robin on brokers 0..3.
    fn twelve_on_three() -> Vec<PartitionView> {
        (0..12)
            .map(|i| {
                let r: Vec<i32> = (0..3).map(|k| (i + k) % 3).collect();
                part(&format!("t-{i:02}"), &r, 3)
            })
            .collect()
    }

    #[test]
    fn a_balanced_cluster_moves_nothing() {
        let plan = run(&brokers(3), &[0, 1, 2], &twelve_on_three(), 5);
        assert_eq!(plan, RebalancePlan::default());
    }

    #[test]
    fn scale_out_spreads_replicas_by_bounded_moves_until_counts_differ_by_at_most_one() {
        let mut parts = twelve_on_three();
        let all = [0, 1, 2, 3, 4];
        let mut rounds = 0;
        loop {
            let plan = run(&brokers(5), &all, &parts, 2);
            assert!(plan.moves.len() <= 2, "bounded: {plan:?}");
            if plan.moves.is_empty() {
                break;
            }
            for m in &plan.moves {
                assert_eq!(m.reason, MoveReason::Balance);
                let before = &parts
                    .iter()
                    .find(|p| p.name == m.partition)
                    .unwrap_or_else(|| panic!("{m:?}"))
                    .replicas;
                let changed = before.iter().zip(&m.target).filter(|(a, b)| a != b).count();
                assert_eq!(
                    changed, 1,
                    "one replica per move: {before:?} -> {:?}",
                    m.target
                );
            }
            apply(&mut parts, &plan);
            rounds += 1;
            assert!(rounds < 20, "converges");
        }
        let c = counts(&parts, 5);
        assert_eq!(c.iter().sum::<usize>(), 36);
        let (min, max) = (c.iter().min(), c.iter().max());
        assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{c:?}");
        assert!(parts.iter().all(|p| p.replicas.len() == 3));
    }

    #[test]
    fn moves_in_progress_count_against_the_bound() {
        let mut parts = twelve_on_three();
        parts[0].reassigning = true;
        parts[1].reassigning = true;
        let plan = run(&brokers(5), &[0, 1, 2, 3, 4], &parts, 3);
        assert_eq!((plan.in_progress, plan.moves.len()), (2, 1), "{plan:?}");
        assert!(plan
            .moves
            .iter()
            .all(|m| m.partition != "t-00" && m.partition != "t-01"));
        let full = run(&brokers(5), &[0, 1, 2, 3, 4], &parts, 2);
        assert!(full.moves.is_empty());
        assert_eq!(full.deferred, 1);
    }

    #[test]
    fn new_brokers_that_are_not_running_yet_receive_nothing() {
        let plan = run(&brokers(5), &[0, 1, 2], &twelve_on_three(), 5);
        assert!(plan.moves.is_empty(), "{plan:?}");
    }

    #[test]
    fn scale_in_replaces_replicas_on_removed_brokers_in_place_before_balancing() {
        // Five brokers going to three: partitions on 3 and 4 move first.
        let parts = vec![
            part("a", &[3, 0, 1], 3),
            part("b", &[0, 4, 2], 3),
            part("c", &[0, 1, 2], 3),
        ];
        let plan = run(&brokers(3), &[0, 1, 2, 3, 4], &parts, 5);
        assert_eq!(
            plan.moves,
            vec![
                Move {
                    partition: "a".into(),
                    target: vec![2, 0, 1],
                    reason: MoveReason::Drain
                },
                Move {
                    partition: "b".into(),
                    target: vec![0, 1, 2],
                    reason: MoveReason::Drain
                },
            ],
            "the replacement takes the removed replica's place (a's preferred leader is 2 now)"
        );
    }

    #[test]
    fn a_scale_in_that_cannot_keep_the_replication_factor_is_stuck_not_planned() {
        let parts = vec![part("a", &[0, 1, 2], 3), part("b", &[2, 0, 1], 3)];
        let plan = run(&brokers(2), &[0, 1, 2], &parts, 5);
        assert!(plan.moves.is_empty());
        assert_eq!(plan.stuck, vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn drains_wait_for_the_bound_and_balancing_waits_for_drains() {
        let parts = vec![
            part("a", &[3, 0, 1], 3),
            part("b", &[3, 1, 2], 3),
            part("c", &[3, 2, 0], 3),
        ];
        let plan = run(&brokers(3), &[0, 1, 2, 3], &parts, 1);
        assert_eq!(plan.moves.len(), 1);
        assert_eq!(plan.moves[0].reason, MoveReason::Drain);
        assert_eq!(plan.deferred, 2);
    }

    #[test]
    fn replication_factor_changes_grow_onto_the_emptiest_brokers_and_shrink_followers() {
        let parts = vec![
            part("a", &[0], 3),
            part("b", &[1, 2, 0], 1),
            part("c", &[2], 1),
        ];
        let plan = run(&brokers(3), &[0, 1, 2], &parts, 5);
        assert_eq!(
            plan.moves,
            vec![
                Move {
                    partition: "a".into(),
                    target: vec![0, 1, 2],
                    reason: MoveReason::ReplicationFactor
                },
                Move {
                    partition: "b".into(),
                    target: vec![1],
                    reason: MoveReason::ReplicationFactor
                },
            ]
        );
    }

    #[test]
    fn racks_stay_spread_through_drains_and_balancing() {
        // Racks x, y, z, x, y: brokers 3 and 4 go; their replacements keep three racks.
        let b = racked(&["x", "y", "z", "x", "y"]);
        let parts = vec![part("a", &[3, 1, 2], 3), part("b", &[0, 4, 2], 3)];
        let plan = run(&b[..3], &[0, 1, 2, 3, 4], &parts, 5);
        let targets: Vec<Vec<i32>> = plan.moves.iter().map(|m| m.target.clone()).collect();
        assert_eq!(targets, vec![vec![0, 1, 2], vec![0, 1, 2]]);
        // Balancing never puts two replicas of a partition in one rack when it was spread.
        let parts: Vec<PartitionView> = (0..6)
            .map(|i| part(&format!("p{i}"), &[0, 1, 2], 3))
            .collect();
        let mut parts = parts;
        for _ in 0..10 {
            let plan = run(&b, &[0, 1, 2, 3, 4], &parts, 3);
            apply(&mut parts, &plan);
        }
        let rack = |id: &i32| b[usize::try_from(*id).unwrap_or(0)].rack.clone();
        for p in &parts {
            let racks: BTreeSet<_> = p.replicas.iter().map(rack).collect();
            assert_eq!(racks.len(), 3, "{p:?}");
        }
        let c = counts(&parts, 5);
        assert!(c[3] > 0 && c[4] > 0, "the new brokers got replicas: {c:?}");
    }

    #[test]
    fn balancing_can_be_turned_off_but_drains_still_happen() {
        let parts = twelve_on_three();
        let plan = plan(RebalanceInput {
            brokers: &brokers(5),
            live: &BTreeSet::from([0, 1, 2, 3, 4]),
            partitions: &parts,
            max_moves: 5,
            balance: false,
        });
        assert!(plan.moves.is_empty());
        let drained = plan_of(&[part("a", &[3, 0, 1], 3)], false);
        assert_eq!(drained.moves.len(), 1);
    }

    fn plan_of(parts: &[PartitionView], balance: bool) -> RebalancePlan {
        plan(RebalanceInput {
            brokers: &brokers(3),
            live: &BTreeSet::from([0, 1, 2, 3]),
            partitions: parts,
            max_moves: 5,
            balance,
        })
    }
}
