//! The share groups' `simple` assignor, server side: every subscribed partition goes to at
//! least one member, and to several when members outnumber partitions (share groups read a
//! partition together); member loads differ by at most one where subscriptions allow;
//! balance comes first, then stickiness: a member keeps what it had as far as balance lets it.
//!
//! Sharing: a partition of topic T is given to ceil(S / U) members, where S counts the members
//! subscribed to T and U the partitions those members subscribe to in all; with one
//! subscription for the whole group that is Kafka's ceil(members / partitions).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// A topic partition of the assignment.
pub type TopicPartition = (Uuid, i32);

/// What one member asks for and held before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    /// Topics it subscribes to (resolved from names or a regex by the caller).
    pub topics: BTreeSet<Uuid>,
    /// Its current assignment.
    pub previous: BTreeSet<TopicPartition>,
}

/// The target assignment of `members` (by member id) over `partitions` (topic to the
/// partitions assignable now: existing, with share-partition state initialized).
pub fn assign(
    members: &BTreeMap<String, MemberSpec>,
    partitions: &BTreeMap<Uuid, Vec<i32>>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut target: BTreeMap<String, BTreeSet<TopicPartition>> = members
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    let sharing = sharing(members, partitions);
    let total: usize = sharing.values().sum();
    let (floor, mut above_floor) = match members.len() {
        0 => return target,
        n => (total / n, total % n),
    };
    let mut holders: BTreeMap<TopicPartition, BTreeSet<String>> = BTreeMap::new();
    // Stickiness within balance: keep what is still wanted, up to the member's share.
    for (member, spec) in members {
        let mut kept = 0;
        for tp in &spec.previous {
            let wanted = sharing.get(tp).copied().unwrap_or(0);
            let shared = holders.get(tp).map_or(0, BTreeSet::len);
            if !spec.topics.contains(&tp.0) || shared >= wanted {
                continue;
            }
            if kept == floor {
                if above_floor == 0 {
                    break;
                }
                above_floor -= 1;
            } else if kept > floor {
                break;
            }
            kept += 1;
            holders.entry(*tp).or_default().insert(member.clone());
            if let Some(set) = target.get_mut(member) {
                set.insert(*tp);
            }
        }
    }
    // Fill every partition's missing places with the least loaded member who may take it.
    for (tp, wanted) in &sharing {
        for _ in holders.get(tp).map_or(0, BTreeSet::len)..*wanted {
            let holding = holders.entry(*tp).or_default();
            let pick = members
                .iter()
                .filter(|(m, spec)| spec.topics.contains(&tp.0) && !holding.contains(*m))
                .min_by_key(|(m, _)| (target.get(*m).map_or(0, BTreeSet::len), (*m).clone()))
                .map(|(m, _)| m.clone());
            let Some(member) = pick else { break };
            holding.insert(member.clone());
            if let Some(set) = target.get_mut(&member) {
                set.insert(*tp);
            }
        }
    }
    target
}

/// How many members each assignable partition is given.
fn sharing(
    members: &BTreeMap<String, MemberSpec>,
    partitions: &BTreeMap<Uuid, Vec<i32>>,
) -> BTreeMap<TopicPartition, usize> {
    let mut out = BTreeMap::new();
    for (topic, indexes) in partitions {
        let subscribers: Vec<&MemberSpec> = members
            .values()
            .filter(|s| s.topics.contains(topic))
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let reachable: BTreeSet<&Uuid> = subscribers.iter().flat_map(|s| &s.topics).collect();
        let spread: usize = reachable
            .iter()
            .map(|t| partitions.get(*t).map_or(0, Vec::len))
            .sum();
        let wanted = subscribers.len().div_ceil(spread.max(1));
        for index in indexes {
            out.insert((*topic, *index), wanted);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const T: Uuid = Uuid::from_u128(1);
    const U: Uuid = Uuid::from_u128(2);

    fn members(specs: &[(&str, &[Uuid], &[TopicPartition])]) -> BTreeMap<String, MemberSpec> {
        specs
            .iter()
            .map(|(m, topics, previous)| {
                let spec = MemberSpec {
                    topics: topics.iter().copied().collect(),
                    previous: previous.iter().copied().collect(),
                };
                (m.to_string(), spec)
            })
            .collect()
    }

    fn topics(counts: &[(Uuid, i32)]) -> BTreeMap<Uuid, Vec<i32>> {
        counts
            .iter()
            .map(|(t, n)| (*t, (0..*n).collect()))
            .collect()
    }

    fn loads(target: &BTreeMap<String, BTreeSet<TopicPartition>>) -> Vec<usize> {
        target.values().map(BTreeSet::len).collect()
    }

    #[test]
    fn fewer_members_than_partitions_split_them() {
        let m = members(&[("a", &[T], &[]), ("b", &[T], &[])]);
        let target = assign(&m, &topics(&[(T, 5)]));
        assert_eq!(loads(&target), vec![3, 2]);
        let all: BTreeSet<_> = target.values().flatten().collect();
        assert_eq!(all.len(), 5, "each partition once");
    }

    #[test]
    fn more_members_than_partitions_share_them() {
        // Four members on two partitions: two members per partition, one partition each.
        let m = members(&[
            ("a", &[T], &[]),
            ("b", &[T], &[]),
            ("c", &[T], &[]),
            ("d", &[T], &[]),
        ]);
        let target = assign(&m, &topics(&[(T, 2)]));
        assert_eq!(loads(&target), vec![1, 1, 1, 1]);
        for p in 0..2 {
            let holders = target.values().filter(|s| s.contains(&(T, p))).count();
            assert_eq!(holders, 2, "partition {p}");
        }
    }

    #[test]
    fn a_balanced_assignment_stays_and_a_newcomer_takes_from_the_fullest() {
        let before = members(&[
            ("a", &[T], &[(T, 0), (T, 1)]),
            ("b", &[T], &[(T, 2), (T, 3)]),
        ]);
        let target = assign(&before, &topics(&[(T, 4)]));
        assert_eq!(target["a"], before["a"].previous);
        assert_eq!(target["b"], before["b"].previous);

        let after = members(&[
            ("a", &[T], &[(T, 0), (T, 1)]),
            ("b", &[T], &[(T, 2), (T, 3)]),
            ("c", &[T], &[]),
        ]);
        let target = assign(&after, &topics(&[(T, 4)]));
        assert_eq!(loads(&target), vec![2, 1, 1]);
        assert!(
            target["a"].is_subset(&after["a"].previous),
            "moves are only away"
        );
        assert!(target["b"].is_subset(&after["b"].previous));
    }

    #[test]
    fn unsubscribed_topics_and_gone_partitions_are_dropped() {
        let m = members(&[("a", &[U], &[(T, 0), (U, 5)])]);
        let target = assign(&m, &topics(&[(T, 1), (U, 2)]));
        assert_eq!(target["a"], BTreeSet::from([(U, 0), (U, 1)]));
    }

    #[test]
    fn each_topic_goes_to_its_own_subscribers() {
        let m = members(&[("a", &[T], &[]), ("b", &[U], &[]), ("c", &[T, U], &[])]);
        let target = assign(&m, &topics(&[(T, 2), (U, 2)]));
        for (member, set) in &target {
            for (topic, _) in set {
                assert!(m[member].topics.contains(topic), "{member} got {topic}");
            }
        }
        for tp in [(T, 0), (T, 1), (U, 0), (U, 1)] {
            assert!(
                target.values().any(|s| s.contains(&tp)),
                "{tp:?} unassigned"
            );
        }
    }

    #[test]
    fn no_members_or_no_partitions_assign_nothing() {
        assert!(assign(&BTreeMap::new(), &topics(&[(T, 3)])).is_empty());
        let m = members(&[("a", &[T], &[])]);
        assert_eq!(loads(&assign(&m, &BTreeMap::new())), vec![0]);
    }

    proptest! {
        #[test]
        fn one_subscription_is_balanced_shared_evenly_and_complete(
            member_count in 1usize..9,
            partition_count in 1i32..9,
            previous in prop::collection::vec((0usize..9, 0i32..9), 0..20),
        ) {
            let mut specs: BTreeMap<String, MemberSpec> = (0..member_count)
                .map(|i| (format!("m{i}"), MemberSpec { topics: BTreeSet::from([T]), previous: BTreeSet::new() }))
                .collect();
            for (i, p) in previous {
                if let Some(spec) = specs.get_mut(&format!("m{}", i % member_count)) {
                    spec.previous.insert((T, p));
                }
            }
            let target = assign(&specs, &topics(&[(T, partition_count)]));
            let loads = loads(&target);
            let (min, max) = (loads.iter().min().copied().unwrap_or(0), loads.iter().max().copied().unwrap_or(0));
            prop_assert!(max - min <= 1, "loads {loads:?}");
            let partitions = usize::try_from(partition_count).unwrap_or(0);
            let sharing = member_count.div_ceil(partitions);
            for p in 0..partition_count {
                let holders = target.values().filter(|s| s.contains(&(T, p))).count();
                prop_assert_eq!(holders, sharing, "partition {}", p);
            }
            // Run again on its own result: a balanced assignment is kept as it is.
            for (m, set) in &target {
                if let Some(spec) = specs.get_mut(m) {
                    spec.previous = set.clone();
                }
            }
            prop_assert_eq!(assign(&specs, &topics(&[(T, partition_count)])), target);
        }
    }
}
