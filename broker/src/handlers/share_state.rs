//! The share coordinator's inter-broker APIs (KIP-932): InitializeShareGroupState,
//! ReadShareGroupState, WriteShareGroupState, DeleteShareGroupState and
//! ReadShareGroupStateSummary, which share-partition leaders and group coordinators on other
//! brokers send to the broker serving a share-partition's state ([`crate::share_state`]).
//! WriteShareGroupState v1's delivery-complete count (KIP-1226) is accepted and not stored:
//! the count a summary reports is computed from the state the coordinator holds, which is
//! what the writer counted.
//! They need ClusterAction, as Kafka's do; a broker not serving a key's state partition
//! answers NOT_COORDINATOR for it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    delete_share_group_state_response as delete_resp,
    initialize_share_group_state_response as init_resp,
    read_share_group_state_response as read_resp,
    read_share_group_state_summary_response as summary_resp,
    write_share_group_state_response as write_resp, DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse, InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse, ReadShareGroupStateRequest, ReadShareGroupStateResponse,
    ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse,
    WriteShareGroupStateRequest, WriteShareGroupStateResponse,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::refuse::Refuse;
use super::RequestContext;
use crate::share::coordinator::ShareCoordinator;
use crate::share::records::SharePartitionKey;
use crate::share_state::ranges_from_wire;

/// The most state batches one write may carry (Kafka bounds a share-partition's in-flight
/// records far lower).
const MAX_STATE_BATCHES: usize = 10_000;

/// The share-partition `partition` of `topic` in `group`; INVALID_REQUEST without a group.
fn key(group: &StrBytes, topic: Uuid, partition: i32) -> Result<SharePartitionKey, ResponseError> {
    if group.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    Ok(SharePartitionKey {
        group: group.to_string(),
        topic,
        partition,
    })
}

/// The error code of `result` and a message naming it.
fn code_of<T>(result: &Result<T, ResponseError>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(_) => (0, None),
        Err(error) => (
            error.code(),
            Some(StrBytes::from_string(format!("{error:?}"))),
        ),
    }
}

/// Answers an InitializeShareGroupState request.
pub(crate) async fn initialize(
    ctx: RequestContext,
    request: InitializeShareGroupStateRequest,
) -> InitializeShareGroupStateResponse {
    let shares = ctx.broker.shares.clone();
    let mut results = Vec::new();
    for topic in request.topics {
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let result = match key(&request.group_id, topic.topic_id, p.partition) {
                Ok(_) if p.start_offset < -1 || p.state_epoch < 0 => {
                    Err(ResponseError::InvalidRequest)
                }
                Ok(k) => shares.initialize(&k, p.state_epoch, p.start_offset).await,
                Err(error) => Err(error),
            };
            let (code, message) = code_of(&result);
            partitions.push(
                init_resp::PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        results.push(
            init_resp::InitializeStateResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    InitializeShareGroupStateResponse::default().with_results(results)
}

/// Answers a ReadShareGroupState request: a share-partition never initialized answers start
/// offset -1 at state epoch 0, as Kafka's share coordinator does.
pub(crate) async fn read(
    ctx: RequestContext,
    request: ReadShareGroupStateRequest,
) -> ReadShareGroupStateResponse {
    let shares = ctx.broker.shares.clone();
    let mut results = Vec::new();
    for topic in request.topics {
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let result = match key(&request.group_id, topic.topic_id, p.partition) {
                Ok(k) => shares.read(&k, p.leader_epoch).await,
                Err(error) => Err(error),
            };
            let (code, message) = code_of(&result);
            let mut answer = read_resp::PartitionResult::default()
                .with_partition(p.partition)
                .with_error_code(code)
                .with_error_message(message)
                .with_start_offset(-1);
            if let Ok(Some(state)) = result {
                let batches = state
                    .ranges
                    .iter()
                    .map(|r| {
                        read_resp::StateBatch::default()
                            .with_first_offset(r.first)
                            .with_last_offset(r.last)
                            .with_delivery_state(r.state.code())
                            .with_delivery_count(
                                i16::try_from(r.delivery_count).unwrap_or(i16::MAX),
                            )
                    })
                    .collect();
                answer = answer
                    .with_state_epoch(state.state_epoch)
                    .with_start_offset(state.start_offset)
                    .with_state_batches(batches);
            }
            partitions.push(answer);
        }
        results.push(
            read_resp::ReadStateResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateResponse::default().with_results(results)
}

/// Answers a WriteShareGroupState request (answered once the state is durable).
pub(crate) async fn write(
    ctx: RequestContext,
    request: WriteShareGroupStateRequest,
) -> WriteShareGroupStateResponse {
    let shares = ctx.broker.shares.clone();
    let mut results = Vec::new();
    for topic in request.topics {
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let result = write_one(&shares, &request.group_id, topic.topic_id, &p).await;
            let (code, message) = code_of(&result);
            partitions.push(
                write_resp::PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        results.push(
            write_resp::WriteStateResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    WriteShareGroupStateResponse::default().with_results(results)
}

async fn write_one(
    shares: &Arc<ShareCoordinator>,
    group: &StrBytes,
    topic: Uuid,
    p: &kafka_protocol::messages::write_share_group_state_request::PartitionData,
) -> Result<(), ResponseError> {
    let k = key(group, topic, p.partition)?;
    if p.state_batches.len() > MAX_STATE_BATCHES || p.start_offset < -1 {
        return Err(ResponseError::InvalidRequest);
    }
    let ranges = ranges_from_wire(p.state_batches.iter().map(|b| {
        (
            b.first_offset,
            b.last_offset,
            b.delivery_state,
            b.delivery_count,
        )
    }))?;
    let start = (p.start_offset >= 0).then_some(p.start_offset);
    shares
        .write(&k, p.state_epoch, p.leader_epoch, start, &ranges)
        .await
}

/// Answers a DeleteShareGroupState request.
pub(crate) async fn delete(
    ctx: RequestContext,
    request: DeleteShareGroupStateRequest,
) -> DeleteShareGroupStateResponse {
    let shares = ctx.broker.shares.clone();
    let mut results = Vec::new();
    for topic in request.topics {
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let result = match key(&request.group_id, topic.topic_id, p.partition) {
                Ok(k) => shares.delete(&k).await,
                Err(error) => Err(error),
            };
            let (code, message) = code_of(&result);
            partitions.push(
                delete_resp::PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        results.push(
            delete_resp::DeleteStateResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    DeleteShareGroupStateResponse::default().with_results(results)
}

/// Answers a ReadShareGroupStateSummary request: start offset -1 for a share-partition
/// without state.
pub(crate) async fn summary(
    ctx: RequestContext,
    request: ReadShareGroupStateSummaryRequest,
) -> ReadShareGroupStateSummaryResponse {
    let shares = ctx.broker.shares.clone();
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let result = key(&request.group_id, topic.topic_id, p.partition)
                        .and_then(|k| shares.summary(&k));
                    let (code, message) = code_of(&result);
                    let summary = result.ok().flatten();
                    summary_resp::PartitionResult::default()
                        .with_partition(p.partition)
                        .with_error_code(code)
                        .with_error_message(message)
                        .with_state_epoch(summary.map_or(0, |s| s.state_epoch))
                        .with_leader_epoch(summary.map_or(-1, |s| s.leader_epoch))
                        .with_start_offset(summary.map_or(-1, |s| s.start_offset))
                        .with_delivery_complete_count(
                            summary
                                .and_then(|s| s.delivery_complete)
                                .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
                        )
                })
                .collect();
            summary_resp::ReadStateSummaryResult::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    ReadShareGroupStateSummaryResponse::default().with_results(results)
}

/// Every partition of a request answered with one error.
macro_rules! refuse_each {
    ($request:ty, $response:ty, $result:ty, $partition:ty) => {
        impl Refuse for $request {
            type Response = $response;
            fn refuse(self, error: ResponseError) -> $response {
                let results = self
                    .topics
                    .into_iter()
                    .map(|t| {
                        let partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                <$partition>::default()
                                    .with_partition(p.partition)
                                    .with_error_code(error.code())
                            })
                            .collect();
                        <$result>::default()
                            .with_topic_id(t.topic_id)
                            .with_partitions(partitions)
                    })
                    .collect();
                <$response>::default().with_results(results)
            }
        }
    };
}

refuse_each!(
    InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse,
    init_resp::InitializeStateResult,
    init_resp::PartitionResult
);
refuse_each!(
    ReadShareGroupStateRequest,
    ReadShareGroupStateResponse,
    read_resp::ReadStateResult,
    read_resp::PartitionResult
);
refuse_each!(
    WriteShareGroupStateRequest,
    WriteShareGroupStateResponse,
    write_resp::WriteStateResult,
    write_resp::PartitionResult
);
refuse_each!(
    DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse,
    delete_resp::DeleteStateResult,
    delete_resp::PartitionResult
);
refuse_each!(
    ReadShareGroupStateSummaryRequest,
    ReadShareGroupStateSummaryResponse,
    summary_resp::ReadStateSummaryResult,
    summary_resp::PartitionResult
);
