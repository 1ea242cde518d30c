//! A set of partitions keyed by topic id: what a member owns, is targeted to own or must
//! revoke. Ordered maps and sets, so every iteration (and so every record and assignor
//! decision built from one) is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id. An empty topic entry is never kept, so two equal sets of partitions
/// always compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Assignment(BTreeMap<Uuid, BTreeSet<i32>>);

impl Assignment {
    /// No partitions.
    pub fn new() -> Assignment {
        Assignment::default()
    }

    /// Built from (topic, partitions) pairs, as requests and records list them.
    pub fn from_topics<I, P>(topics: I) -> Assignment
    where
        I: IntoIterator<Item = (Uuid, P)>,
        P: IntoIterator<Item = i32>,
    {
        let mut out = Assignment::new();
        for (topic, partitions) in topics {
            for p in partitions {
                out.insert(topic, p);
            }
        }
        out
    }

    /// Whether there are no partitions.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of partitions.
    pub fn len(&self) -> usize {
        self.0.values().map(BTreeSet::len).sum()
    }

    /// Whether `topic`-`partition` is in the set.
    pub fn contains(&self, topic: Uuid, partition: i32) -> bool {
        self.0.get(&topic).is_some_and(|s| s.contains(&partition))
    }

    /// Adds `topic`-`partition`; false if it was there already.
    pub fn insert(&mut self, topic: Uuid, partition: i32) -> bool {
        self.0.entry(topic).or_default().insert(partition)
    }

    /// Removes `topic`-`partition`; false if it was not there.
    pub fn remove(&mut self, topic: Uuid, partition: i32) -> bool {
        let Some(set) = self.0.get_mut(&topic) else {
            return false;
        };
        let removed = set.remove(&partition);
        if set.is_empty() {
            self.0.remove(&topic);
        }
        removed
    }

    /// Every (topic, partition), in order.
    pub fn iter(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.0
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
    }

    /// The partitions of each topic, in order (the shape records and responses list).
    pub fn topics(&self) -> impl Iterator<Item = (Uuid, &BTreeSet<i32>)> + '_ {
        self.0.iter().map(|(t, ps)| (*t, ps))
    }

    /// The partitions in both sets.
    pub fn intersection(&self, other: &Assignment) -> Assignment {
        Assignment::from_topics(
            self.topics()
                .map(|(t, ps)| (t, ps.iter().copied().filter(move |p| other.contains(t, *p)))),
        )
    }

    /// The partitions here and not in `other`.
    pub fn difference(&self, other: &Assignment) -> Assignment {
        Assignment::from_topics(self.topics().map(|(t, ps)| {
            (
                t,
                ps.iter().copied().filter(move |p| !other.contains(t, *p)),
            )
        }))
    }

    /// Whether every partition here is also in `other`.
    pub fn is_subset(&self, other: &Assignment) -> bool {
        self.iter().all(|(t, p)| other.contains(t, p))
    }

    /// Whether the two sets share a partition.
    pub fn intersects(&self, other: &Assignment) -> bool {
        self.iter().any(|(t, p)| other.contains(t, p))
    }

    /// Adds every partition of `other`.
    pub fn extend(&mut self, other: &Assignment) {
        for (t, p) in other.iter() {
            self.insert(t, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn empty_topics_are_dropped_so_equal_sets_compare_equal() {
        let mut a = Assignment::from_topics([(t(1), vec![0, 1])]);
        assert!(a.remove(t(1), 0));
        assert!(a.remove(t(1), 1));
        assert!(!a.remove(t(1), 1));
        assert_eq!(a, Assignment::new());
        assert!(a.is_empty());
    }

    #[test]
    fn set_operations() {
        let a = Assignment::from_topics([(t(1), vec![0, 1, 2]), (t(2), vec![0])]);
        let b = Assignment::from_topics([(t(1), vec![1, 2, 3])]);
        assert_eq!(
            a.intersection(&b),
            Assignment::from_topics([(t(1), vec![1, 2])])
        );
        assert_eq!(
            a.difference(&b),
            Assignment::from_topics([(t(1), vec![0]), (t(2), vec![0])])
        );
        assert!(a.intersects(&b));
        assert!(a.intersection(&b).is_subset(&a));
        assert!(!a.is_subset(&b));
        assert_eq!(a.len(), 4);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![(t(1), 0), (t(1), 1), (t(1), 2), (t(2), 0)]
        );
    }
}
