//! Partition reassignments on a standalone broker: nothing is ever being reassigned, so the
//! reassignment list is empty, and the only reassignment that can succeed keeps each partition
//! on this broker, as Kafka answers for such a cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;

/// ListPartitionReassignments: none is ever in progress.
pub(crate) async fn list_reassignments(
    _ctx: RequestContext,
    _request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}

/// AlterPartitionReassignments: moving a partition onto this broker alone is a no-op; any
/// other replica list names brokers that do not exist, and there is never a reassignment to
/// cancel.
pub(crate) async fn alter_reassignments(
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
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
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
