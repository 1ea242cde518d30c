//! The `uniform` assignor (Kafka's `UniformAssignor`): every member gets as many partitions
//! as the others, to within one, as far as subscriptions allow; and the fewest partitions
//! move. Balance comes first, then stickiness.
//!
//! 1. Each member keeps its current partitions that still exist and that it still
//!    subscribes to.
//! 2. Every partition left is given to the subscriber with the fewest partitions (ties go
//!    to the smaller member id).
//! 3. While a member has two partitions more than another that could take one of them, the
//!    most loaded gives one to the least loaded.
//!
//! When everybody subscribes to the same topics this is exactly balanced with the least
//! movement (members gain or lose only their surplus); with different subscriptions it
//! balances what the subscriptions let it.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::{Assignment, GroupSpec};

/// One partition handed from a more to a less loaded member.
struct Move {
    donor: usize,
    donor_load: usize,
    receiver: usize,
    receiver_load: usize,
    topic: Uuid,
    partition: i32,
}

/// The next move of step 3: from the most loaded member that has a partition a member with
/// two fewer can take, its last such partition, to the least loaded such member.
fn next_move(
    load: &BTreeSet<(usize, usize)>,
    owned: &[Assignment],
    spec: &GroupSpec,
) -> Option<Move> {
    for &(donor_load, donor) in load.iter().rev() {
        for &(receiver_load, receiver) in load.iter() {
            if donor_load <= receiver_load + 1 {
                break;
            }
            let topics = &spec.members[receiver].topics;
            if let Some((topic, partition)) = owned[donor]
                .iter()
                .filter(|(t, _)| topics.contains(t))
                .last()
            {
                return Some(Move {
                    donor,
                    donor_load,
                    receiver,
                    receiver_load,
                    topic,
                    partition,
                });
            }
        }
    }
    None
}

/// See the module documentation.
pub fn assign(spec: &GroupSpec) -> BTreeMap<String, Assignment> {
    let members = &spec.members;
    let mut owned: Vec<Assignment> = vec![Assignment::new(); members.len()];
    let mut taken = Assignment::new();

    // 1. Keep what is still valid.
    for (i, m) in members.iter().enumerate() {
        for (t, p) in m.current.iter() {
            let exists = spec.partitions.get(&t).is_some_and(|n| p >= 0 && p < *n);
            if exists && m.topics.contains(&t) && taken.insert(t, p) {
                owned[i].insert(t, p);
            }
        }
    }

    // 2. Give out the rest, fewest first.
    let subscribers: BTreeMap<Uuid, Vec<usize>> = spec
        .partitions
        .keys()
        .map(|t| {
            let who = (0..members.len())
                .filter(|i| members[*i].topics.contains(t))
                .collect();
            (*t, who)
        })
        .collect();
    for (&t, &n) in &spec.partitions {
        let who = &subscribers[&t];
        for p in 0..n {
            if taken.contains(t, p) {
                continue;
            }
            if let Some(&i) = who.iter().min_by_key(|i| (owned[**i].len(), **i)) {
                owned[i].insert(t, p);
                taken.insert(t, p);
            }
        }
    }

    // 3. Even out: the most loaded gives to the least loaded that can take a partition.
    let mut load: BTreeSet<(usize, usize)> = owned
        .iter()
        .enumerate()
        .map(|(i, a)| (a.len(), i))
        .collect();
    while let Some(m) = next_move(&load, &owned, spec) {
        load.remove(&(m.donor_load, m.donor));
        load.remove(&(m.receiver_load, m.receiver));
        owned[m.donor].remove(m.topic, m.partition);
        owned[m.receiver].insert(m.topic, m.partition);
        load.insert((m.donor_load - 1, m.donor));
        load.insert((m.receiver_load + 1, m.receiver));
    }

    members
        .iter()
        .zip(owned)
        .map(|(m, a)| (m.member_id.clone(), a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn sizes(out: &BTreeMap<String, Assignment>) -> Vec<usize> {
        out.values().map(Assignment::len).collect()
    }

    fn moved(before: &BTreeMap<String, Assignment>, after: &BTreeMap<String, Assignment>) -> usize {
        after
            .iter()
            .map(|(m, a)| {
                a.difference(&before.get(m).cloned().unwrap_or_default())
                    .len()
            })
            .sum()
    }

    #[test]
    fn a_fresh_group_is_balanced_to_within_one() {
        let s = spec(
            vec![
                member("a", &[1, 2], Assignment::new()),
                member("b", &[1, 2], Assignment::new()),
                member("c", &[1, 2], Assignment::new()),
            ],
            &[(1, 4), (2, 3)],
        );
        let out = assign(&s);
        assert_valid(&s, &out);
        assert_eq!(sizes(&out), vec![3, 2, 2]);
    }

    #[test]
    fn a_joining_member_takes_only_the_surplus() {
        let first = spec(
            vec![
                member("a", &[1], Assignment::new()),
                member("b", &[1], Assignment::new()),
            ],
            &[(1, 6)],
        );
        let before = assign(&first);
        let second = spec(
            vec![
                member("a", &[1], before["a"].clone()),
                member("b", &[1], before["b"].clone()),
                member("c", &[1], Assignment::new()),
            ],
            &[(1, 6)],
        );
        let after = assign(&second);
        assert_valid(&second, &after);
        assert_eq!(sizes(&after), vec![2, 2, 2]);
        assert_eq!(moved(&before, &after), 2, "only c's two partitions move");
        assert!(after["a"].is_subset(&before["a"]));
        assert!(after["b"].is_subset(&before["b"]));
    }

    #[test]
    fn a_leaving_members_partitions_go_to_the_others_and_nothing_else_moves() {
        let s = spec(
            vec![
                member("a", &[1], Assignment::from_topics([(topic(1), vec![0, 1])])),
                member("c", &[1], Assignment::from_topics([(topic(1), vec![4, 5])])),
            ],
            &[(1, 6)],
        );
        let out = assign(&s);
        assert_valid(&s, &out);
        assert_eq!(sizes(&out), vec![3, 3]);
        assert!(Assignment::from_topics([(topic(1), vec![0, 1])]).is_subset(&out["a"]));
        assert!(Assignment::from_topics([(topic(1), vec![4, 5])]).is_subset(&out["c"]));
    }

    #[test]
    fn unsubscribed_deleted_and_shrunk_partitions_are_dropped() {
        let s = spec(
            vec![member(
                "a",
                &[1],
                Assignment::from_topics([(topic(1), vec![0, 7]), (topic(2), vec![0])]),
            )],
            &[(1, 2), (2, 1)],
        );
        let out = assign(&s);
        assert_valid(&s, &out);
        assert_eq!(out["a"], Assignment::from_topics([(topic(1), vec![0, 1])]));
    }

    #[test]
    fn heterogeneous_subscriptions_balance_what_they_can() {
        let s = spec(
            vec![
                member("a", &[1, 2], Assignment::new()),
                member("b", &[2], Assignment::new()),
                member("c", &[3], Assignment::new()),
            ],
            &[(1, 4), (2, 4), (3, 1)],
        );
        let out = assign(&s);
        assert_valid(&s, &out);
        assert_eq!(out["a"].len(), 4);
        assert_eq!(out["b"].len(), 4);
        assert_eq!(out["c"].len(), 1);
    }

    #[test]
    fn the_same_input_gives_the_same_output() {
        let s = spec(
            vec![
                member("b", &[1, 2], Assignment::new()),
                member("a", &[1], Assignment::new()),
            ],
            &[(1, 5), (2, 2)],
        );
        assert_eq!(assign(&s), assign(&s));
    }

    #[test]
    fn random_homogeneous_groups_are_balanced_and_keep_what_they_can() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..300 {
            let topics: Vec<(u128, i32)> = (1..=1 + next(3) as u128)
                .map(|t| (t, 1 + next(12) as i32))
                .collect();
            let ids: Vec<u128> = topics.iter().map(|(t, _)| *t).collect();
            let members = 1 + next(7) as usize;
            // A current assignment: each partition with a random member, or nobody.
            let mut current = vec![Assignment::new(); members];
            for (t, n) in &topics {
                for p in 0..*n {
                    let who = next(members as u64 + 1) as usize;
                    if who < members {
                        current[who].insert(topic(*t), p);
                    }
                }
            }
            let s = spec(
                (0..members)
                    .map(|i| member(&format!("m{i}"), &ids, current[i].clone()))
                    .collect(),
                &topics,
            );
            let out = assign(&s);
            assert_valid(&s, &out);
            let total: usize = topics.iter().map(|(_, n)| *n as usize).sum();
            let floor = total / members;
            let loads: Vec<usize> = out.values().map(Assignment::len).collect();
            let (min, max) = (loads.iter().min(), loads.iter().max());
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{loads:?}");
            for (i, m) in s.members.iter().enumerate() {
                let kept = out[&m.member_id].intersection(&current[i]).len();
                assert!(
                    kept >= current[i].len().min(floor),
                    "{} lost more than its surplus",
                    m.member_id
                );
            }
        }
    }
}
