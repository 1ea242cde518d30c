//! The KafkaTopic decision: given the topic, its cluster and its KafkaPartitions, which
//! partition objects to create or reassign and what the summary status should say. Pure; the
//! reconciler writes the objects, then the status with a resourceVersion precondition.
//! Leadership is not decided here: the controller role writes it into each KafkaPartition.

use tributary_crds::conditions::{set_condition, DEGRADED, READY};
use tributary_crds::config::validate_topic_config;
use tributary_crds::ids::kafka_id_from_uid;
use tributary_crds::{KafkaCluster, KafkaPartition, KafkaTopic, KafkaTopicStatus, TopicPhase};

use super::partitions::{changes, recorded_assignment, with_requested, PartitionChanges};
use crate::builders::BuildError;
use crate::placement::{place, Broker, PlacementError, PlacementRequest};

/// What the plan looks at.
#[derive(Clone, Copy, Debug)]
pub struct TopicInput<'a> {
    /// The topic as last read.
    pub topic: &'a KafkaTopic,
    /// Its cluster, if it exists.
    pub cluster: Option<&'a KafkaCluster>,
    /// The topic's KafkaPartitions as read.
    pub partitions: &'a [KafkaPartition],
    /// The cluster's other topics' KafkaPartitions (their load guides placement).
    pub others: &'a [KafkaPartition],
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

/// The partition objects to write, the desired status and the events describing the change.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicPlan {
    /// KafkaPartitions to create or reassign (written before the status).
    pub partitions: PartitionChanges,
    /// Status to write.
    pub status: KafkaTopicStatus,
    /// Events to publish (only for changes, so repeated reconciles stay quiet).
    pub events: Vec<PlanEvent>,
}

/// Computes the topic's partition objects and next status.
pub fn plan(input: TopicInput<'_>) -> Result<TopicPlan, BuildError> {
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
        return Ok(TopicPlan {
            partitions: PartitionChanges::default(),
            status,
            events,
        });
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
        return Ok(TopicPlan {
            partitions: PartitionChanges::default(),
            status,
            events,
        });
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
        return Ok(TopicPlan {
            partitions: PartitionChanges::default(),
            status,
            events,
        });
    }

    let brokers = Broker::of_cluster(cluster);
    let others: Vec<Vec<i32>> = input
        .others
        .iter()
        .map(|p| p.spec.target_replicas())
        .collect();
    let existing = with_requested(
        recorded_assignment(input.partitions),
        input.partitions,
        &topic.spec.replica_assignments,
        topic.spec.partitions,
    );
    let assignment = match place(PlacementRequest {
        brokers: &brokers,
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        existing: &existing,
        others: &others,
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
            return Ok(TopicPlan {
                partitions: PartitionChanges::default(),
                status,
                events,
            });
        }
    };
    let partitions = changes(topic, input.partitions, &assignment)?;
    summarize(&mut status, input.partitions, assignment.len());
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
            "{} of {} partitions have no leader",
            status.leaderless_partitions, status.placed_partitions
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

    if !partitions.create.is_empty() {
        let before = input.partitions.len();
        let note = if before == 0 {
            format!(
                "assigned {} partitions x {} replicas",
                status.placed_partitions, topic.spec.replication_factor
            )
        } else {
            format!(
                "partitions increased from {before} to {}",
                status.placed_partitions
            )
        };
        events.push(PlanEvent {
            reason: "PartitionsAssigned",
            note,
            warning: false,
        });
    }
    Ok(TopicPlan {
        partitions,
        status,
        events,
    })
}

/// The counts: `placed` partitions, of which those without a leader (including the ones about
/// to be created, which the controller has not led yet) and those with a short ISR.
fn summarize(status: &mut KafkaTopicStatus, existing: &[KafkaPartition], placed: usize) {
    // During a reassignment, as Kafka counts it: the replicas it started from.
    let replicas = |p: &KafkaPartition| p.spec.original_replicas().len();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let led = existing
        .iter()
        .filter(|p| p.status.as_ref().is_some_and(|s| s.leader >= 0))
        .count();
    status.placed_partitions = count(placed);
    status.leaderless_partitions = count(placed.saturating_sub(led));
    status.under_replicated_partitions = count(
        existing
            .iter()
            .filter(|p| p.status.as_ref().is_some_and(|s| s.isr.len() < replicas(p)))
            .count(),
    );
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
