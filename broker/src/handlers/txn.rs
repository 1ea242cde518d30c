//! The transactional producer's APIs (KIP-98): AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit and EndTxn, answered by the transaction coordinator (InitProducerId lives
//! with the idempotent producer's handler).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, ProducerId, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};

use super::refuse::Refuse;
use super::{topic_lookup, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::coordinator_host::txn_verify;
use crate::group::commit::Committer;
use crate::group::coordinator::CommitOffset;
use crate::group::OFFSETS_TOPIC;
use crate::txn::ProducerRef;

/// AddPartitionsToTxn. v0-v3 (one transaction per request, as clients send it): every
/// partition joins, or none does; unknown partitions fail and the rest are not attempted.
/// v4+ is the brokers' batched form (KIP-890): several transactions, each either added as
/// v3 adds them or, with `verify_only`, only checked by a partition leader about to append
/// a transactional batch; it needs ClusterAction, as Kafka requires of broker requests.
pub(crate) async fn add_partitions(
    ctx: RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.version() >= 4 {
        return add_partitions_batched(ctx, request).await;
    }
    let producer = ProducerRef {
        id: request.v3_and_below_producer_id.0,
        epoch: request.v3_and_below_producer_epoch,
    };
    if !ctx.may_write_txn(&request.v3_and_below_transactional_id) {
        return request.refuse(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let results = add_to_transaction(
        &ctx,
        &request.v3_and_below_transactional_id,
        producer,
        request.v3_and_below_topics,
    )
    .await;
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

/// AddPartitionsToTxn v4+: each transaction of the batch answered on its own.
async fn add_partitions_batched(
    ctx: RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if !ctx.may_on_cluster(Operation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in request.transactions {
        let producer = ProducerRef {
            id: transaction.producer_id.0,
            epoch: transaction.producer_epoch,
        };
        let topic_results = if transaction.verify_only {
            verify_in_transaction(
                &ctx,
                &transaction.transactional_id,
                producer,
                transaction.topics,
            )
        } else {
            add_to_transaction(
                &ctx,
                &transaction.transactional_id,
                producer,
                transaction.topics,
            )
            .await
        };
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id)
                .with_topic_results(topic_results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// Adds `topics` to the producer's transaction: every partition joins, or none does.
async fn add_to_transaction(
    ctx: &RequestContext,
    transactional_id: &str,
    producer: ProducerRef,
    topics: Vec<AddPartitionsToTxnTopic>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    // Each partition's own lookup error, in request order.
    let lookups: Vec<Vec<Option<ResponseError>>> = topics
        .iter()
        .map(|topic| {
            let allowed = ctx.check_topic(Operation::Write, &topic.name);
            topic
                .partitions
                .iter()
                .map(|&p| {
                    allowed
                        .and_then(|()| topic_lookup::exists(&ctx.broker, &topic.name, p).map(drop))
                        .err()
                })
                .collect()
        })
        .collect();
    let outcome = if lookups.iter().flatten().any(Option::is_some) {
        Err(ResponseError::OperationNotAttempted)
    } else {
        let wanted: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.name.to_string(), p)))
            .collect();
        let added = ctx
            .broker
            .txns
            .add_partitions(transactional_id, producer, &wanted)
            .await;
        fencing_for_version(added, ctx.version(), 2)
    };
    topics
        .into_iter()
        .zip(lookups)
        .map(|(topic, lookups)| {
            let codes = lookups
                .into_iter()
                .map(|lookup| lookup.or(outcome.err()).map_or(0, |e| e.code()));
            topic_result(topic, codes)
        })
        .collect()
}

/// `verify_only`: whether each partition is in the producer's ongoing transaction
/// (TRANSACTION_ABORTABLE where it is not, as Kafka's coordinator answers; the asking leader
/// translates it for clients older than the error), or why the coordinator cannot say, for
/// all of them.
fn verify_in_transaction(
    ctx: &RequestContext,
    transactional_id: &str,
    producer: ProducerRef,
    topics: Vec<AddPartitionsToTxnTopic>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let asked: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| (t.name.to_string(), p)))
        .collect();
    let verified = if transactional_id.is_empty() {
        Err(ResponseError::InvalidRequest)
    } else {
        ctx.broker
            .txns
            .verify_partitions(transactional_id, producer, &asked)
    };
    let mut codes = asked.iter().enumerate().map(|(i, _)| match &verified {
        Err(error) => error.code(),
        Ok(added) if added.get(i).copied().unwrap_or(false) => 0,
        Ok(_) => ResponseError::TransactionAbortable.code(),
    });
    topics
        .into_iter()
        .map(|topic| {
            let n = topic.partitions.len();
            let topic_codes: Vec<i16> = codes.by_ref().take(n).collect();
            topic_result(topic, topic_codes)
        })
        .collect()
}

/// One topic's answer: `codes` per partition, in request order.
fn topic_result(
    topic: AddPartitionsToTxnTopic,
    codes: impl IntoIterator<Item = i16>,
) -> AddPartitionsToTxnTopicResult {
    let partitions = topic
        .partitions
        .iter()
        .zip(codes)
        .map(|(&p, code)| {
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(p)
                .with_partition_error_code(code)
        })
        .collect();
    AddPartitionsToTxnTopicResult::default()
        .with_name(topic.name)
        .with_results_by_partition(partitions)
}

/// AddOffsetsToTxn: the group's offsets will be committed with the transaction.
pub(crate) async fn add_offsets(
    ctx: RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let producer = ProducerRef {
        id: request.producer_id.0,
        epoch: request.producer_epoch,
    };
    if !ctx.may_write_txn(&request.transactional_id) {
        return request.refuse(ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !ctx.may(Operation::Read, ResourceType::Group, &request.group_id) {
        return request.refuse(ResponseError::GroupAuthorizationFailed);
    }
    let broker = &ctx.broker;
    let offsets_partition = (
        crate::group::OFFSETS_TOPIC.to_string(),
        broker.groups.partition_for(&request.group_id),
    );
    let outcome = broker
        .txns
        .add_offsets(
            &request.transactional_id,
            producer,
            &request.group_id,
            offsets_partition,
        )
        .await;
    let outcome = fencing_for_version(outcome, ctx.version(), 2);
    AddOffsetsToTxnResponse::default().with_error_code(code(outcome))
}

/// TxnOffsetCommit: offsets held by the transaction until it ends. A consumer-group member
/// sending its generation (KIP-447) is checked like an OffsetCommit. From v5 (transactions
/// v2) the group joins the transaction here, as AddOffsetsToTxn would have added it.
pub(crate) async fn txn_offset_commit(
    ctx: RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.to_string();
    if !ctx.may_write_txn(&request.transactional_id) {
        return request.refuse(ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !ctx.may(Operation::Read, ResourceType::Group, &group_id) {
        return request.refuse(ResponseError::GroupAuthorizationFailed);
    }
    let (refusals, offsets) = committable_offsets(&ctx, &request.topics);
    let implicit = ctx.version() >= 5;
    let outcome = add_txn_offsets(&ctx.broker, &request, &group_id, offsets, implicit).await;
    // Every served version predates PRODUCER_FENCED here.
    let outcome = fencing_for_version(outcome, ctx.version(), i16::MAX).map_err(|error| {
        let knows = ctx.version() >= txn_verify::TXN_OFFSET_COMMIT_ABORTABLE_VERSION;
        txn_verify::for_client(error, knows)
    });
    txn_offset_commit_response(request.topics, refusals, outcome)
}

/// Each partition's own refusal, in request order, and the offsets of the partitions that
/// have none.
fn committable_offsets(
    ctx: &RequestContext,
    topics: &[TxnOffsetCommitRequestTopic],
) -> (Vec<Vec<Option<ResponseError>>>, Vec<CommitOffset>) {
    let broker = &ctx.broker;
    let max_metadata = broker.groups.offset_metadata_max_bytes();
    let mut offsets = Vec::new();
    let refusals = topics
        .iter()
        .map(|topic| {
            let allowed = ctx.check_topic(Operation::Read, &topic.name);
            topic
                .partitions
                .iter()
                .map(|p| {
                    let exists = allowed.and_then(|()| {
                        topic_lookup::exists(broker, &topic.name, p.partition_index)
                    });
                    let metadata = p.committed_metadata.as_deref();
                    let refusal = offset_refusal(exists, metadata, max_metadata);
                    if refusal.is_none() {
                        offsets.push(pending_offset(&topic.name, p));
                    }
                    refusal
                })
                .collect()
        })
        .collect();
    (refusals, offsets)
}

/// Why a partition's offset is not committed, if it is not: the partition is not readable
/// or does not exist (`exists`), or its metadata is over `max_metadata` bytes.
fn offset_refusal(
    exists: Result<(), ResponseError>,
    metadata: Option<&str>,
    max_metadata: usize,
) -> Option<ResponseError> {
    match exists {
        Err(code) => Some(code),
        Ok(()) if metadata.is_some_and(|m| m.len() > max_metadata) => {
            Some(ResponseError::OffsetMetadataTooLarge)
        }
        Ok(()) => None,
    }
}

/// Partition `p`'s offset as the transaction writes it.
fn pending_offset(topic: &str, p: &TxnOffsetCommitRequestPartition) -> CommitOffset {
    CommitOffset {
        topic: topic.to_string(),
        partition: p.partition_index,
        offset: p.committed_offset,
        leader_epoch: p.committed_leader_epoch,
        metadata: p.committed_metadata.as_ref().map(ToString::to_string),
    }
}

/// Checks the committing member and that the group's partition is in the producer's
/// transaction (with `implicit`, TxnOffsetCommit v5, adds it), then writes `offsets` there as
/// records of the transaction.
async fn add_txn_offsets(
    broker: &Arc<Broker>,
    request: &TxnOffsetCommitRequest,
    group_id: &str,
    offsets: Vec<CommitOffset>,
    implicit: bool,
) -> Result<(), ResponseError> {
    let committer = Committer {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        generation: request.generation_id,
    };
    let producer = ProducerRef {
        id: request.producer_id.0,
        epoch: request.producer_epoch,
    };
    broker.groups.check_txn_committer(group_id, &committer)?;
    let offsets_partition = (
        OFFSETS_TOPIC.to_string(),
        broker.groups.partition_for(group_id),
    );
    txn_verify::verify_offsets(
        &**broker,
        &request.transactional_id,
        producer,
        (group_id, offsets_partition),
        implicit,
    )
    .await?;
    broker
        .groups
        .commit_txn_offsets(producer, group_id, offsets)
        .await
}

/// Each partition's answer: its own refusal, else the `outcome` of adding the offsets.
fn txn_offset_commit_response(
    topics: Vec<TxnOffsetCommitRequestTopic>,
    refusals: Vec<Vec<Option<ResponseError>>>,
    outcome: Result<(), ResponseError>,
) -> TxnOffsetCommitResponse {
    let topics = topics
        .into_iter()
        .zip(refusals)
        .map(|(topic, refusals)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(refusals)
                .map(|(p, refusal)| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(refusal.or(outcome.err()).map_or(0, |e| e.code()))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// EndTxn: commit or abort, answered once every marker is durable. From v5 (transactions v2)
/// the coordinator bumps the epoch and the answer carries the producer the client continues
/// with (Kafka's NO_PRODUCER_ID and NO_PRODUCER_EPOCH with an error).
pub(crate) async fn end_txn(ctx: RequestContext, request: EndTxnRequest) -> EndTxnResponse {
    if !ctx.may_write_txn(&request.transactional_id) {
        return request.refuse(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let producer = ProducerRef {
        id: request.producer_id.0,
        epoch: request.producer_epoch,
    };
    let txns = &ctx.broker.txns;
    let id = &request.transactional_id;
    let outcome = if ctx.version() >= 5 {
        txns.end_txn_v2(&*ctx.broker, id, producer, request.committed)
            .await
    } else {
        txns.end_txn(&*ctx.broker, id, producer, request.committed)
            .await
            .map(|()| producer)
    };
    let outcome = fencing_for_version(outcome, ctx.version(), 2);
    let continuing = outcome
        .as_ref()
        .map_or(ProducerRef { id: -1, epoch: -1 }, |p| *p);
    EndTxnResponse::default()
        .with_error_code(code(outcome.map(drop)))
        .with_producer_id(ProducerId(continuing.id))
        .with_producer_epoch(continuing.epoch)
}

fn code(outcome: Result<(), ResponseError>) -> i16 {
    outcome.err().map_or(0, |e| e.code())
}

/// PRODUCER_FENCED exists for clients from `since` on (KIP-588); older ones expect
/// INVALID_PRODUCER_EPOCH for the same condition.
pub(super) fn fencing_for_version<T>(
    outcome: Result<T, ResponseError>,
    version: i16,
    since: i16,
) -> Result<T, ResponseError> {
    match outcome {
        Err(ResponseError::ProducerFenced) if version < since => {
            Err(ResponseError::InvalidProducerEpoch)
        }
        other => other,
    }
}

impl Refuse for AddPartitionsToTxnRequest {
    type Response = AddPartitionsToTxnResponse;
    fn refuse(self, error: ResponseError) -> AddPartitionsToTxnResponse {
        AddPartitionsToTxnResponse::default()
            .with_error_code(error.code())
            .with_results_by_topic_v3_and_below(
                self.v3_and_below_topics
                    .into_iter()
                    .map(|t| {
                        AddPartitionsToTxnTopicResult::default()
                            .with_results_by_partition(
                                t.partitions
                                    .iter()
                                    .map(|&p| {
                                        AddPartitionsToTxnPartitionResult::default()
                                            .with_partition_index(p)
                                            .with_partition_error_code(error.code())
                                    })
                                    .collect(),
                            )
                            .with_name(t.name)
                    })
                    .collect(),
            )
    }
}

impl Refuse for AddOffsetsToTxnRequest {
    type Response = AddOffsetsToTxnResponse;
    fn refuse(self, error: ResponseError) -> AddOffsetsToTxnResponse {
        AddOffsetsToTxnResponse::default().with_error_code(error.code())
    }
}

impl Refuse for TxnOffsetCommitRequest {
    type Response = TxnOffsetCommitResponse;
    fn refuse(self, error: ResponseError) -> TxnOffsetCommitResponse {
        TxnOffsetCommitResponse::default().with_topics(
            self.topics
                .into_iter()
                .map(|t| {
                    TxnOffsetCommitResponseTopic::default()
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    TxnOffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                        .with_name(t.name)
                })
                .collect(),
        )
    }
}

impl Refuse for EndTxnRequest {
    type Response = EndTxnResponse;
    fn refuse(self, error: ResponseError) -> EndTxnResponse {
        EndTxnResponse::default()
            .with_error_code(error.code())
            .with_producer_id(self.producer_id)
            .with_producer_epoch(self.producer_epoch)
    }
}
