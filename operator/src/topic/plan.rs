//! The KafkaTopic decision: given the topic, its cluster and which brokers are alive, what the
//! status should be. Pure; the reconciler writes the result with a resourceVersion
//! precondition.

use std::collections::{BTreeMap, BTreeSet};

use tributary_crds::conditions::{set_condition, DEGRADED, READY};
use tributary_crds::config::validate_topic_config;
use tributary_crds::ids::kafka_id_from_uid;
use tributary_crds::{KafkaCluster, KafkaTopic, KafkaTopicStatus, PartitionStatus, TopicPhase};

use crate::placement::{place, Broker, PlacementError, PlacementRequest};

/// What the plan looks at.
#[derive(Clone, Copy, Debug)]
pub struct TopicInput<'a> {
    /// The topic as last read.
    pub topic: &'a KafkaTopic,
    /// Its cluster, if it exists.
    pub cluster: Option<&'a KafkaCluster>,
    /// Brokers of that cluster holding a live Lease.
    pub live_brokers: &'a BTreeSet<i32>,
}

/// Something worth a Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanEvent {
    /// PascalCase reason.
    pub reason: &'static str,
    /// Human-readable detail.
    pub note: String,
    /// Warning rather than Normal.
    pub warning: bool,
}

/// The desired status and the events describing the change.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicPlan {
    /// Status to write.
    pub status: KafkaTopicStatus,
    /// Events to publish (only for changes, so repeated reconciles stay quiet).
    pub events: Vec<PlanEvent>,
}

/// Computes the topic's next status.
pub fn plan(input: TopicInput<'_>) -> TopicPlan {
    let topic = input.topic;
    let old = topic.status.clone().unwrap_or_default();
    let generation = topic.metadata.generation;
    let mut status = old.clone();
    status.observed_generation = generation;
    status.topic_id = topic
        .metadata
        .uid
        .as_deref()
        .and_then(|u| kafka_id_from_uid(u).ok());
    status.effective_config = topic
        .spec
        .config
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    let mut events = Vec::new();

    let blocked = |status: &mut KafkaTopicStatus, phase, reason: &str, msg: String| {
        status.phase = Some(phase);
        set_condition(
            &mut status.conditions,
            READY,
            false,
            reason,
            msg.clone(),
            generation,
        );
        set_condition(
            &mut status.conditions,
            DEGRADED,
            true,
            reason,
            msg,
            generation,
        );
    };

    let Some(cluster) = input.cluster else {
        let msg = format!(
            "KafkaCluster {:?} not found in this namespace",
            topic.spec.cluster_ref
        );
        blocked(
            &mut status,
            TopicPhase::Pending,
            "ClusterNotFound",
            msg.clone(),
        );
        push_if_new(
            &mut events,
            &old,
            &status,
            PlanEvent {
                reason: "ClusterNotFound",
                note: msg,
                warning: true,
            },
        );
        return TopicPlan { status, events };
    };
    if let Err(e) = validate_topic_config(&topic.spec.config) {
        blocked(
            &mut status,
            TopicPhase::InvalidConfig,
            "InvalidConfig",
            e.to_string(),
        );
        push_if_new(
            &mut events,
            &old,
            &status,
            PlanEvent {
                reason: "InvalidConfig",
                note: e.to_string(),
                warning: true,
            },
        );
        return TopicPlan { status, events };
    }
    let min_isr = topic
        .spec
        .config
        .get("min.insync.replicas")
        .cloned()
        .flatten()
        .and_then(|v| v.parse::<i32>().ok());
    if let Some(min_isr) = min_isr.filter(|m| *m > topic.spec.replication_factor) {
        let msg = format!(
            "min.insync.replicas={min_isr} exceeds replicationFactor={}; acks=all writes could never succeed",
            topic.spec.replication_factor
        );
        blocked(
            &mut status,
            TopicPhase::InvalidConfig,
            "InvalidConfig",
            msg.clone(),
        );
        push_if_new(
            &mut events,
            &old,
            &status,
            PlanEvent {
                reason: "InvalidConfig",
                note: msg,
                warning: true,
            },
        );
        return TopicPlan { status, events };
    }

    let racks: BTreeMap<i32, Option<String>> = cluster
        .status
        .iter()
        .flat_map(|s| s.brokers.iter())
        .map(|b| (b.id, b.rack.clone()))
        .collect();
    let brokers: Vec<Broker> = (0..cluster.spec.brokers)
        .map(|id| Broker {
            id,
            rack: racks.get(&id).cloned().flatten(),
        })
        .collect();
    let existing: Vec<Vec<i32>> = old.partitions.iter().map(|p| p.replicas.clone()).collect();
    let assignment = match place(PlacementRequest {
        brokers: &brokers,
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        existing: &existing,
    }) {
        Ok(a) => a,
        Err(e) => {
            let (phase, reason) = match e {
                PlacementError::InsufficientBrokers { .. } => {
                    (TopicPhase::InsufficientBrokers, "InsufficientBrokers")
                }
                PlacementError::PartitionsDecrease { .. } => {
                    (TopicPhase::InvalidConfig, "PartitionsDecrease")
                }
            };
            blocked(&mut status, phase, reason, e.to_string());
            push_if_new(
                &mut events,
                &old,
                &status,
                PlanEvent {
                    reason,
                    note: e.to_string(),
                    warning: true,
                },
            );
            return TopicPlan { status, events };
        }
    };

    let unclean = topic
        .spec
        .config
        .get("unclean.leader.election.enable")
        .cloned()
        .flatten()
        .as_deref()
        == Some("true")
        || cluster
            .spec
            .config
            .get("unclean.leader.election.enable")
            .map(String::as_str)
            == Some("true");
    status.partitions = merge_assignment(&old.partitions, &assignment);
    let elected = elect_leaders(&mut status.partitions, input.live_brokers, unclean);
    status.leaderless_partitions = count(&status.partitions, |p| p.leader < 0);
    status.under_replicated_partitions =
        count(&status.partitions, |p| p.isr.len() < p.replicas.len());
    status.phase = Some(TopicPhase::Provisioned);
    if status.leaderless_partitions == 0 {
        set_condition(
            &mut status.conditions,
            READY,
            true,
            "Provisioned",
            "every partition has a leader",
            generation,
        );
    } else {
        let msg = format!(
            "{} of {} partitions have no live leader",
            status.leaderless_partitions,
            status.partitions.len()
        );
        set_condition(
            &mut status.conditions,
            READY,
            false,
            "LeaderNotAvailable",
            msg,
            generation,
        );
    }
    if status.under_replicated_partitions > 0 {
        let msg = format!(
            "{} partitions are under-replicated",
            status.under_replicated_partitions
        );
        set_condition(
            &mut status.conditions,
            DEGRADED,
            true,
            "UnderReplicated",
            msg,
            generation,
        );
    } else {
        set_condition(
            &mut status.conditions,
            DEGRADED,
            false,
            "Healthy",
            "",
            generation,
        );
    }

    if old.partitions.len() != status.partitions.len() {
        let note = if old.partitions.is_empty() {
            format!(
                "assigned {} partitions x {} replicas",
                status.partitions.len(),
                topic.spec.replication_factor
            )
        } else {
            format!(
                "partitions increased from {} to {}",
                old.partitions.len(),
                status.partitions.len()
            )
        };
        events.push(PlanEvent {
            reason: "PartitionsAssigned",
            note,
            warning: false,
        });
    }
    if !elected.is_empty() {
        let note = format!("elected leaders for partitions {elected:?}");
        events.push(PlanEvent {
            reason: "LeadersElected",
            note,
            warning: false,
        });
    }
    TopicPlan { status, events }
}

fn count(partitions: &[PartitionStatus], f: impl Fn(&PartitionStatus) -> bool) -> i32 {
    i32::try_from(partitions.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
}

fn push_if_new(
    events: &mut Vec<PlanEvent>,
    old: &KafkaTopicStatus,
    new: &KafkaTopicStatus,
    event: PlanEvent,
) {
    if old.phase != new.phase {
        events.push(event);
    }
}

/// Combines placement with the leadership already recorded: existing partitions keep leader,
/// epoch and ISR (restricted to their replicas); new partitions start leaderless with every
/// replica in sync (they are empty).
fn merge_assignment(old: &[PartitionStatus], assignment: &[Vec<i32>]) -> Vec<PartitionStatus> {
    assignment
        .iter()
        .enumerate()
        .map(|(i, replicas)| {
            let partition = i32::try_from(i).unwrap_or(i32::MAX);
            match old.get(i) {
                Some(p) => {
                    let isr: Vec<i32> = p
                        .isr
                        .iter()
                        .copied()
                        .filter(|id| replicas.contains(id))
                        .collect();
                    let leader = if replicas.contains(&p.leader) {
                        p.leader
                    } else {
                        -1
                    };
                    let leader_epoch = if leader == p.leader {
                        p.leader_epoch
                    } else {
                        p.leader_epoch + 1
                    };
                    PartitionStatus {
                        partition,
                        replicas: replicas.clone(),
                        leader,
                        leader_epoch,
                        isr,
                    }
                }
                None => PartitionStatus {
                    partition,
                    replicas: replicas.clone(),
                    leader: -1,
                    leader_epoch: 0,
                    isr: replicas.clone(),
                },
            }
        })
        .collect()
}

/// The Kafka controller's leader election: a partition whose leader is not live gets the first
/// live in-sync replica (in preferred order) and a higher leader epoch. With no live in-sync
/// replica it goes offline (leader -1), unless unclean election is enabled. Returns the
/// partitions whose leader changed.
pub fn elect_leaders(
    partitions: &mut [PartitionStatus],
    live: &BTreeSet<i32>,
    unclean: bool,
) -> Vec<i32> {
    let mut changed = Vec::new();
    for p in partitions.iter_mut() {
        if p.leader >= 0 && live.contains(&p.leader) {
            continue;
        }
        let dead_leader = p.leader;
        let clean = p
            .replicas
            .iter()
            .copied()
            .find(|id| p.isr.contains(id) && live.contains(id));
        let new_leader = match clean {
            Some(id) => {
                if dead_leader >= 0 && p.isr.len() > 1 {
                    p.isr.retain(|r| *r != dead_leader);
                }
                Some(id)
            }
            None if unclean => {
                let id = p.replicas.iter().copied().find(|id| live.contains(id));
                if let Some(id) = id {
                    p.isr = vec![id];
                }
                id
            }
            None => None,
        };
        let leader = new_leader.unwrap_or(-1);
        if leader != p.leader {
            p.leader = leader;
            p.leader_epoch += 1;
            changed.push(p.partition);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], leader: i32, epoch: i32, isr: &[i32]) -> PartitionStatus {
        PartitionStatus {
            partition: 0,
            replicas: replicas.to_vec(),
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn dead_leader_is_replaced_by_live_isr_member_with_higher_epoch() {
        let mut ps = vec![part(&[0, 1, 2], 0, 4, &[0, 1, 2])];
        let changed = elect_leaders(&mut ps, &BTreeSet::from([1, 2]), false);
        assert_eq!(changed, vec![0]);
        assert_eq!((ps[0].leader, ps[0].leader_epoch), (1, 5));
        assert_eq!(ps[0].isr, vec![1, 2]);
    }

    #[test]
    fn no_live_isr_means_offline_unless_unclean() {
        let mut ps = vec![part(&[0, 1], 0, 1, &[0])];
        elect_leaders(&mut ps, &BTreeSet::from([1]), false);
        assert_eq!((ps[0].leader, ps[0].leader_epoch), (-1, 2));
        elect_leaders(&mut ps, &BTreeSet::from([1]), true);
        assert_eq!(
            (ps[0].leader, ps[0].leader_epoch, ps[0].isr.clone()),
            (1, 3, vec![1])
        );
    }

    #[test]
    fn live_leader_is_left_alone() {
        let mut ps = vec![part(&[0, 1], 1, 7, &[0, 1])];
        assert!(elect_leaders(&mut ps, &BTreeSet::from([0, 1]), false).is_empty());
        assert_eq!((ps[0].leader, ps[0].leader_epoch), (1, 7));
    }
}
