//! Partition reassignments (KIP-455). In cluster mode a request is checked against this
//! broker's image as Kafka's controller checks it (unknown partitions, empty, duplicate or
//! unregistered replica lists) and recorded in the KafkaPartition objects
//! ([`crate::metadata::reassignments::PartitionReassignments`]); the controller completes it
//! once the target replicas are in sync, and ListPartitionReassignments reports the adding and
//! removing replicas recorded there. A standalone broker is the only replica of everything:
//! nothing is ever being reassigned, and the only reassignment that can succeed keeps each
//! partition on this broker, as Kafka answers for such a cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::metadata::reassignments::{check_target, Ongoing, ReassignError, Requested};

/// The shortest time a request gets to record its changes, whatever its timeout says.
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// ListPartitionReassignments: those recorded in the cluster's partition objects (none on a
/// standalone broker).
pub(crate) async fn list_reassignments(
    ctx: RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let Some(reassignments) = &ctx.broker.reassignments else {
        return ListPartitionReassignmentsResponse::default();
    };
    let only: Option<Vec<(String, i32)>> = request.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|p| (t.name.as_str().to_owned(), *p))
            })
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect::<Vec<_>>();
    for o in reassignments.list(only.as_deref()) {
        let Ongoing {
            topic,
            partition,
            replicas,
            adding,
            removing,
        } = o;
        by_topic.entry(topic).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(partition)
                .with_replicas(ids(replicas))
                .with_adding_replicas(ids(adding))
                .with_removing_replicas(ids(removing)),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            OngoingTopicReassignment::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}

/// AlterPartitionReassignments: in cluster mode, each partition's request is checked, then
/// recorded (see the module documentation); on a standalone broker, see
/// [`alter_standalone`].
pub(crate) async fn alter_reassignments(
    ctx: RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let Some(reassignments) = ctx.broker.reassignments.clone() else {
        return alter_standalone(ctx, request);
    };
    let image = ctx.broker.metadata.image();
    let mut answers: BTreeMap<(String, i32), Result<(), ReassignError>> = BTreeMap::new();
    let mut requested: Vec<Requested> = Vec::new();
    for t in &request.topics {
        for p in &t.partitions {
            let key = (t.name.as_str().to_owned(), p.partition_index);
            let target: Option<Vec<i32>> =
                p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
            let checked = match (image.partition(&key.0, key.1), &target) {
                (None, _) => Err(ReassignError::UnknownTopicOrPartition),
                (Some(_), None) => Ok(()),
                (Some(state), Some(target)) => {
                    check_target(target, &image.brokers).and_then(|()| {
                        let keeps_rf = target.len() == state.replicas.len();
                        if request.allow_replication_factor_change || keeps_rf {
                            Ok(())
                        } else {
                            Err(ReassignError::InvalidReplicationFactor(format!(
                                "the request changes the replication factor from {} to {} but does not allow it",
                                state.replicas.len(),
                                target.len()
                            )))
                        }
                    })
                }
            };
            match checked {
                Ok(()) => requested.push((key, target)),
                Err(e) => {
                    answers.insert(key, Err(e));
                }
            }
        }
    }
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    answers.extend(
        reassignments
            .alter(requested, timeout.max(MIN_TIMEOUT))
            .await,
    );
    answer_reassignments(request, |topic, partition, _| {
        let answer = answers.get(&(topic.as_str().to_owned(), partition))?;
        let error = answer.as_ref().err()?;
        Some((error_code(error), error.to_string()))
    })
}

/// The Kafka error of a refused reassignment.
fn error_code(error: &ReassignError) -> ResponseError {
    match error {
        ReassignError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        ReassignError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        ReassignError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        ReassignError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        ReassignError::Unavailable(_) => ResponseError::RequestTimedOut,
    }
}

/// AlterPartitionReassignments on a standalone broker: moving a partition onto this broker
/// alone is a no-op; any other replica list names brokers that do not exist, and there is
/// never a reassignment to cancel.
fn alter_standalone(
    ctx: RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let this = BrokerId(ctx.broker.config.broker_id);
    answer_reassignments(request, |topic, partition, replicas| {
        if ctx
            .broker
            .metadata
            .image()
            .partition(topic, partition)
            .is_none()
        {
            return Some((
                ResponseError::UnknownTopicOrPartition,
                "no such partition".to_string(),
            ));
        }
        match replicas {
            None => Some((
                ResponseError::NoReassignmentInProgress,
                "no reassignment is in progress".to_string(),
            )),
            Some([only]) if *only == this => None,
            Some([]) => Some((
                ResponseError::InvalidReplicaAssignment,
                "the replica list is empty".to_string(),
            )),
            Some(list) => {
                let other = list.iter().find(|&&b| b != this).unwrap_or(&this);
                Some((
                    ResponseError::InvalidReplicaAssignment,
                    format!("broker {} is not registered, or is listed twice", other.0),
                ))
            }
        }
    })
}

/// The response giving each requested partition the error `decide` returns for it.
fn answer_reassignments(
    request: AlterPartitionReassignmentsRequest,
    decide: impl Fn(
        &kafka_protocol::messages::TopicName,
        i32,
        Option<&[BrokerId]>,
    ) -> Option<(ResponseError, String)>,
) -> AlterPartitionReassignmentsResponse {
    let allow_replication_factor_change = request.allow_replication_factor_change;
    let responses = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let refused = decide(&t.name, p.partition_index, p.replicas.as_deref());
                    if let Some((_, message)) = &refused {
                        tracing::info!(topic = %t.name.as_str(), partition = p.partition_index, %message, "reassignment refused");
                    }
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(refused.as_ref().map_or(0, |r| r.0.code()))
                        .with_error_message(refused.map(|r| StrBytes::from_string(r.1)))
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_responses(responses)
}

impl Refuse for AlterPartitionReassignmentsRequest {
    type Response = AlterPartitionReassignmentsResponse;
    fn refuse(self, error: ResponseError) -> AlterPartitionReassignmentsResponse {
        answer_reassignments(self, |_, _, _| Some((error, error.to_string())))
    }
}

impl Refuse for ListPartitionReassignmentsRequest {
    type Response = ListPartitionReassignmentsResponse;
    fn refuse(self, error: ResponseError) -> ListPartitionReassignmentsResponse {
        ListPartitionReassignmentsResponse::default().with_error_code(error.code())
    }
}
