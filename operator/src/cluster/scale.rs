//! The scale-down guard: a StatefulSet shrinks only once no KafkaPartition of the cluster has
//! a replica on the brokers it would remove (placement moves them off first). Pure, so the
//! rule is a unit test.

use std::collections::BTreeSet;

use tributary_crds::KafkaPartition;

/// How many brokers to run now, and which removed brokers still hold replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleDecision {
    /// `spec.replicas` for the StatefulSet.
    pub replicas: i32,
    /// Brokers with id >= the requested count that some partition still places replicas on.
    pub draining: BTreeSet<i32>,
}

/// Decides the StatefulSet size from its current size (`None` before it exists), the requested
/// broker count and the cluster's partitions. StatefulSets remove the highest ordinals first,
/// so it shrinks as far as the highest broker still holding a replica allows.
pub fn scale_decision(
    current: Option<i32>,
    desired: i32,
    partitions: &[KafkaPartition],
) -> ScaleDecision {
    let current = current.unwrap_or(desired);
    if current <= desired {
        return ScaleDecision {
            replicas: desired,
            draining: BTreeSet::new(),
        };
    }
    let draining: BTreeSet<i32> = partitions
        .iter()
        .flat_map(|p| p.spec.replicas.iter().copied())
        .filter(|id| *id >= desired && *id < current)
        .collect();
    let replicas = draining
        .last()
        .map_or(desired, |highest| (highest + 1).clamp(desired, current));
    ScaleDecision { replicas, draining }
}

#[cfg(test)]
mod tests {
    use tributary_crds::KafkaPartitionSpec;

    use super::*;

    /// The partitions of one topic placed on `replicas`.
    fn topic(replicas: &[&[i32]]) -> Vec<KafkaPartition> {
        (0..)
            .zip(replicas)
            .map(|(partition, r)| {
                KafkaPartition::new(
                    &format!("t-{partition}"),
                    KafkaPartitionSpec {
                        cluster_ref: "demo".into(),
                        topic: "t".into(),
                        topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                        partition,
                        replicas: r.to_vec(),
                        adding_replicas: Vec::new(),
                        removing_replicas: Vec::new(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn growing_or_creating_applies_the_requested_size() {
        assert_eq!(scale_decision(None, 3, &[]).replicas, 3);
        assert_eq!(scale_decision(Some(3), 5, &topic(&[&[2]])).replicas, 5);
    }

    #[test]
    fn shrink_waits_while_removed_brokers_hold_replicas() {
        let d = scale_decision(Some(5), 2, &[topic(&[&[0, 4]]), topic(&[&[1, 2]])].concat());
        assert_eq!(d.replicas, 5, "broker 4 still holds a replica");
        assert_eq!(d.draining, BTreeSet::from([2, 4]));
    }

    #[test]
    fn shrink_goes_as_far_as_the_highest_holder_allows() {
        let d = scale_decision(Some(5), 2, &topic(&[&[0, 2], &[1, 0]]));
        assert_eq!(d.replicas, 3);
        assert_eq!(d.draining, BTreeSet::from([2]));
    }

    #[test]
    fn shrink_proceeds_once_replicas_moved_off() {
        let d = scale_decision(Some(3), 2, &topic(&[&[0, 1], &[1, 0]]));
        assert_eq!(d.replicas, 2);
        assert!(d.draining.is_empty());
    }
}
