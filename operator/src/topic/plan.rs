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
    let status = base_status(topic, &old);
    match assign(input) {
        Err(blocked) => Ok(blocked_plan(&old, status, blocked)),
        Ok(assignment) => provisioned_plan(input, status, &assignment),
    }
}

/// Why the topic cannot be provisioned yet: the phase, the reason shared by the conditions and
/// the event, and the message they carry.
struct Blocked {
    phase: TopicPhase,
    reason: &'static str,
    message: String,
}

/// The status fields every outcome shares: the old status with this generation, the topic id
/// and the effective configuration.
fn base_status(topic: &KafkaTopic, old: &KafkaTopicStatus) -> KafkaTopicStatus {
    let mut status = old.clone();
    status.observed_generation = topic.metadata.generation;
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
    status
}

/// The replica lists for every partition, or why there are none: no cluster, an invalid
/// configuration, or a placement that cannot be made. Checked in that order.
fn assign(input: TopicInput<'_>) -> Result<Vec<Vec<i32>>, Blocked> {
    let topic = input.topic;
    let cluster = input.cluster.ok_or_else(|| Blocked {
        phase: TopicPhase::Pending,
        reason: "ClusterNotFound",
        message: format!(
            "KafkaCluster {:?} not found in this namespace",
            topic.spec.cluster_ref
        ),
    })?;
    check_config(topic)?;
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
    place(PlacementRequest {
        brokers: &brokers,
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        existing: &existing,
        others: &others,
    })
    .map_err(placement_blocked)
}

/// The topic's configuration is valid and its `min.insync.replicas` reachable with its
/// replication factor (otherwise acks=all writes could never succeed).
fn check_config(topic: &KafkaTopic) -> Result<(), Blocked> {
    let invalid = |message: String| Blocked {
        phase: TopicPhase::InvalidConfig,
        reason: "InvalidConfig",
        message,
    };
    validate_topic_config(&topic.spec.config).map_err(|e| invalid(e.to_string()))?;
    let min_isr = topic
        .spec
        .config
        .get("min.insync.replicas")
        .cloned()
        .flatten()
        .and_then(|v| v.parse::<i32>().ok());
    match min_isr.filter(|m| *m > topic.spec.replication_factor) {
        Some(min_isr) => Err(invalid(format!(
            "min.insync.replicas={min_isr} exceeds replicationFactor={}; acks=all writes could never succeed",
            topic.spec.replication_factor
        ))),
        None => Ok(()),
    }
}

/// The phase and reason a placement failure reports.
fn placement_blocked(e: PlacementError) -> Blocked {
    let (phase, reason) = match e {
        PlacementError::InsufficientBrokers { .. } => {
            (TopicPhase::InsufficientBrokers, "InsufficientBrokers")
        }
        PlacementError::PartitionsDecrease { .. } => {
            (TopicPhase::InvalidConfig, "PartitionsDecrease")
        }
    };
    Blocked {
        phase,
        reason,
        message: e.to_string(),
    }
}

/// No partition changes; the status says why (not ready, degraded) and a warning event says
/// so once, when the phase changes.
fn blocked_plan(
    old: &KafkaTopicStatus,
    mut status: KafkaTopicStatus,
    blocked: Blocked,
) -> TopicPlan {
    let generation = status.observed_generation;
    status.phase = Some(blocked.phase);
    set_condition(
        &mut status.conditions,
        READY,
        false,
        blocked.reason,
        blocked.message.clone(),
        generation,
    );
    set_condition(
        &mut status.conditions,
        DEGRADED,
        true,
        blocked.reason,
        blocked.message.clone(),
        generation,
    );
    let mut events = Vec::new();
    push_if_new(
        &mut events,
        old,
        &status,
        PlanEvent {
            reason: blocked.reason,
            note: blocked.message,
            warning: true,
        },
    );
    TopicPlan {
        partitions: PartitionChanges::default(),
        status,
        events,
    }
}

/// The partition objects the assignment needs, the provisioned status with its counts and
/// conditions, and an event when partitions are created.
fn provisioned_plan(
    input: TopicInput<'_>,
    mut status: KafkaTopicStatus,
    assignment: &[Vec<i32>],
) -> Result<TopicPlan, BuildError> {
    let partitions = changes(input.topic, input.partitions, assignment)?;
    summarize(&mut status, input.partitions, assignment.len());
    status.phase = Some(TopicPhase::Provisioned);
    set_ready(&mut status);
    set_degraded(&mut status);
    let events = if partitions.create.is_empty() {
        Vec::new()
    } else {
        vec![partitions_assigned(input, &status)]
    };
    Ok(TopicPlan {
        partitions,
        status,
        events,
    })
}

/// Ready when every placed partition has a leader.
fn set_ready(status: &mut KafkaTopicStatus) {
    let generation = status.observed_generation;
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
}

/// Degraded while some partition's ISR is short.
fn set_degraded(status: &mut KafkaTopicStatus) {
    let generation = status.observed_generation;
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
}

/// The event for newly created partitions: the first assignment or an increase.
fn partitions_assigned(input: TopicInput<'_>, status: &KafkaTopicStatus) -> PlanEvent {
    let before = input.partitions.len();
    let note = if before == 0 {
        format!(
            "assigned {} partitions x {} replicas",
            status.placed_partitions, input.topic.spec.replication_factor
        )
    } else {
        format!(
            "partitions increased from {before} to {}",
            status.placed_partitions
        )
    };
    PlanEvent {
        reason: "PartitionsAssigned",
        note,
        warning: false,
    }
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
