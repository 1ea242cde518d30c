//! Property tests of replica placement: distinct brokers, balance, rack spread, stability.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tributary_operator::placement::{place, Broker, PlacementError, PlacementRequest};

fn brokers(n: usize, racks: usize) -> Vec<Broker> {
    (0..n)
        .map(|i| Broker {
            id: i32::try_from(i).unwrap_or(i32::MAX),
            rack: (racks > 0).then(|| format!("zone-{}", i % racks)),
        })
        .collect()
}

fn counts(assignment: &[Vec<i32>], leaders_only: bool) -> BTreeMap<i32, usize> {
    let mut c = BTreeMap::new();
    for replicas in assignment {
        let take = if leaders_only { 1 } else { replicas.len() };
        for id in replicas.iter().take(take) {
            *c.entry(*id).or_insert(0) += 1;
        }
    }
    c
}

fn spread(c: &BTreeMap<i32, usize>, brokers: &[Broker]) -> usize {
    let all: Vec<usize> = brokers
        .iter()
        .map(|b| c.get(&b.id).copied().unwrap_or(0))
        .collect();
    all.iter().max().unwrap_or(&0) - all.iter().min().unwrap_or(&0)
}

fn placed(brokers: &[Broker], partitions: i32, rf: i32, existing: &[Vec<i32>]) -> Vec<Vec<i32>> {
    match place(PlacementRequest {
        brokers,
        partitions,
        replication_factor: rf,
        existing,
        others: &[],
    }) {
        Ok(p) => p,
        Err(e) => panic!("placement failed: {e}"),
    }
}

proptest! {
    #[test]
    fn every_partition_gets_rf_distinct_brokers(n in 1usize..12, racks in 0usize..4, partitions in 1i32..200, rf in 1i32..5) {
        prop_assume!(rf as usize <= n);
        let b = brokers(n, racks);
        let a = placed(&b, partitions, rf, &[]);
        prop_assert_eq!(a.len(), partitions as usize);
        for replicas in &a {
            let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
            prop_assert_eq!(distinct.len(), rf as usize);
            prop_assert!(replicas.iter().all(|id| (*id as usize) < n));
        }
    }

    #[test]
    fn replicas_and_leaders_balance_within_one(extra in 0usize..9, partitions in 1i32..200, rf in 1i32..5, racks in prop::sample::select(vec![0usize, 0, 2, 3, 4])) {
        // Balance is promised when every rack has the same number of brokers.
        // With racks, the promise holds when every partition can use a distinct rack per replica.
        prop_assume!(racks == 0 || rf as usize <= racks);
        let n = (rf as usize + extra).div_ceil(racks.max(1)) * racks.max(1);
        let b = brokers(n, racks);
        let a = placed(&b, partitions, rf, &[]);
        prop_assert!(spread(&counts(&a, false), &b) <= 1, "replica counts {:?}", counts(&a, false));
        prop_assert!(spread(&counts(&a, true), &b) <= 1, "leader counts {:?}", counts(&a, true));
    }

    #[test]
    fn replicas_spread_across_racks(n in 2usize..12, racks in 2usize..4, partitions in 1i32..100, rf in 1i32..5) {
        prop_assume!(rf as usize <= n && racks <= n);
        let b = brokers(n, racks);
        let a = placed(&b, partitions, rf, &[]);
        for replicas in &a {
            let used: BTreeSet<usize> = replicas.iter().map(|id| *id as usize % racks).collect();
            prop_assert_eq!(used.len(), (rf as usize).min(racks), "partition {:?}", replicas);
        }
    }

    #[test]
    fn reconciling_again_and_adding_partitions_moves_nothing(n in 1usize..10, racks in 0usize..3, start in 1i32..60, extra in 0i32..60, rf in 1i32..4) {
        prop_assume!(rf as usize <= n);
        let b = brokers(n, racks);
        let first = placed(&b, start, rf, &[]);
        prop_assert_eq!(&placed(&b, start, rf, &first), &first);
        let grown = placed(&b, start + extra, rf, &first);
        prop_assert_eq!(&grown[..first.len()], &first[..]);
        if racks == 0 || n % racks == 0 {
            prop_assert!(spread(&counts(&grown, false), &b) <= 1, "after growth {:?}", counts(&grown, false));
        }
    }

    #[test]
    fn placement_is_deterministic(n in 1usize..10, partitions in 1i32..50, rf in 1i32..4) {
        prop_assume!(rf as usize <= n);
        let b = brokers(n, 0);
        prop_assert_eq!(placed(&b, partitions, rf, &[]), placed(&b, partitions, rf, &[]));
    }
}

#[test]
fn decommissioned_broker_replicas_are_replaced_and_nothing_else_moves() {
    let b = brokers(4, 0);
    let before = placed(&b, 8, 3, &[]);
    let after = placed(&b[..3], 8, 3, &before);
    for (old, new) in before.iter().zip(&after) {
        assert!(!new.contains(&3), "{new:?} still on the removed broker");
        for id in old.iter().filter(|id| **id != 3) {
            assert!(new.contains(id), "replica {id} of {old:?} moved: {new:?}");
        }
        assert_eq!(new.len(), 3);
    }
}

#[test]
fn too_few_brokers_and_shrinking_are_errors() {
    let b = brokers(2, 0);
    let err = place(PlacementRequest {
        brokers: &b,
        partitions: 3,
        replication_factor: 3,
        existing: &[],
        others: &[],
    });
    assert_eq!(
        err,
        Err(PlacementError::InsufficientBrokers {
            replication_factor: 3,
            brokers: 2
        })
    );
    let existing = placed(&b, 4, 2, &[]);
    let err = place(PlacementRequest {
        brokers: &b,
        partitions: 2,
        replication_factor: 2,
        existing: &existing,
        others: &[],
    });
    assert_eq!(
        err,
        Err(PlacementError::PartitionsDecrease {
            existing: 4,
            requested: 2
        })
    );
}

#[test]
fn single_partition_topics_created_one_after_another_spread_over_the_brokers() {
    let b = brokers(3, 0);
    let mut cluster: Vec<Vec<i32>> = Vec::new();
    for _ in 0..30 {
        let topic = place(PlacementRequest {
            brokers: &b,
            partitions: 1,
            replication_factor: 1,
            existing: &[],
            others: &cluster,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        cluster.extend(topic);
    }
    let mut per_broker = std::collections::BTreeMap::new();
    for replicas in &cluster {
        *per_broker.entry(replicas[0]).or_insert(0) += 1;
    }
    assert_eq!(
        per_broker.values().copied().collect::<Vec<_>>(),
        [10, 10, 10]
    );
}

#[test]
fn a_topics_leaders_spread_over_the_brokers_when_earlier_topics_left_replica_counts_uneven() {
    let b = brokers(3, 0);
    // Earlier single-replica partitions on brokers 0 and 1 only: broker 2 holds the fewest.
    let others = vec![vec![0], vec![1], vec![0], vec![1]];
    let placed = match place(PlacementRequest {
        brokers: &b,
        partitions: 3,
        replication_factor: 3,
        existing: &[],
        others: &others,
    }) {
        Ok(p) => p,
        Err(e) => panic!("placement failed: {e}"),
    };
    let leaders: BTreeSet<i32> = placed.iter().map(|r| r[0]).collect();
    assert_eq!(leaders, BTreeSet::from([0, 1, 2]), "{placed:?}");
}
