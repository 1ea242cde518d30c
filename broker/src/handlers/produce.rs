//! Produce: append record batches, then answer once the requested durability is reached.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::Either;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::append_code;
use super::txn_verify::{self, Verdict, Verdicts};
use super::{topic_lookup, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::metadata::TopicImage;
use crate::partition::{AppendError, CommitWaitError, Durability, Partition};
use crate::producer::{BatchIdentity, TxnIndex};
use crate::quotas::entity::PRODUCER_BYTE_RATE;
use crate::storage::{BatchError, StorageError};
use crate::topics::config::effective;
use crate::txn::ProducerRef;

/// An append the answer waits for.
struct CommitWait {
    partition: Arc<Partition>,
    end_offset: i64,
    durability: Durability,
    /// The next journal round makes it durable, rather than an fsync of the segments.
    journaled: bool,
    /// acks=all: the in-sync replicas must have it too, and at least `min_isr` of them must
    /// be in the ISR when they do; acks=1 waits only for this broker's disk.
    min_isr: Option<usize>,
    topic_slot: usize,
    partition_slot: usize,
}

/// Appends every partition's batches now, and returns the future of the response (`None` for
/// acks=0, which Kafka never answers). In cluster mode, transactional batches whose
/// producer's transaction the partition has not seen yet are first verified with the
/// producer's transaction coordinator ([`txn_verify`], KIP-890); then the appends wait for
/// that answer.
pub(crate) fn handle(
    ctx: RequestContext,
    request: ProduceRequest,
) -> impl Future<Output = Option<ProduceResponse>> + Send + 'static {
    let txn_denied = request
        .transactional_id
        .as_deref()
        .is_some_and(|id| !ctx.may(Operation::Write, ResourceType::TransactionalId, id));
    let verification = if txn_denied {
        None
    } else {
        txn_verify::start(&ctx.broker, &request)
    };
    match verification {
        None => Either::Left(append(ctx, request, txn_denied, Verdicts::new())),
        Some(pending) => Either::Right(async move {
            let verdicts = pending.await;
            append(ctx, request, txn_denied, verdicts).await
        }),
    }
}

/// Appends every partition's batches now, transactional ones as `verdicts` allow (none when
/// the client may not write its transactional id, `txn_denied`), and returns the future of the
/// response.
fn append(
    ctx: RequestContext,
    request: ProduceRequest,
    txn_denied: bool,
    verdicts: Verdicts,
) -> impl Future<Output = Option<ProduceResponse>> + Send + 'static {
    let broker = ctx.broker.clone();
    let listener = ctx.client.listener.clone();
    let version = ctx.version();
    let acks = request.acks;
    let now = now_ms();
    let valid_acks = matches!(acks, -1..=1);
    // acks=all waits for the in-sync replicas (and the fsync when configured); acks=1 only for
    // the fsync when configured; acks=0 for nothing.
    let durability = match acks {
        -1 if broker.config.fsync_acks_all => Some(Durability::Synced),
        -1 => Some(Durability::Written),
        1 if broker.config.fsync_acks_one => Some(Durability::Synced),
        _ => None,
    };
    let wait_for_fsync = durability == Some(Durability::Synced);
    let journal = wait_for_fsync && broker.flusher.journal_ready();
    let bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_ref())
        .map(|r| r.len())
        .sum();
    let throttle_time_ms = ctx.charge(PRODUCER_BYTE_RATE, bytes);
    let has_transactional_id = request.transactional_id.is_some();
    let mut waits = Vec::new();
    let mut responses: Vec<TopicProduceResponse> = request
        .topic_data
        .into_iter()
        .enumerate()
        .map(|(topic_slot, topic_data)| {
            let topic = topic_lookup::topic(&broker, &topic_data.name);
            let denied = if txn_denied {
                Some(ResponseError::TransactionalIdAuthorizationFailed)
            } else {
                let name: &str = &topic_data.name;
                (!ctx.may(Operation::Write, ResourceType::Topic, name))
                    .then_some(ResponseError::TopicAuthorizationFailed)
            };
            let partitions = topic_data
                .partition_data
                .into_iter()
                .enumerate()
                .map(|(partition_slot, data)| {
                    let response = PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1);
                    if !valid_acks {
                        return response.with_error_code(ResponseError::InvalidRequiredAcks.code());
                    }
                    if let Some(denied) = denied {
                        return response.with_error_code(denied.code());
                    }
                    let partition =
                        match topic_lookup::leader(&broker, &topic_data.name, data.index) {
                            Ok(p) => p,
                            Err(code) => return response.with_error_code(code.code()),
                        };
                    let min_isr = min_insync_replicas(&broker, topic.as_deref());
                    if let Some(refusal) = topic
                        .as_deref()
                        .and_then(|t| refuse_topic(t, data.index, acks, min_isr))
                    {
                        if let Some(records) = &data.records {
                            partition.note_refused(records, now);
                        }
                        return response.with_error_code(refusal.code());
                    }
                    let Some(records) = data.records.filter(|r| !r.is_empty()) else {
                        return response.with_error_code(ResponseError::CorruptMessage.code());
                    };
                    let verdict = verdicts.get(&(topic_data.name.to_string(), data.index));
                    let verify = |batch: &BatchIdentity, txns: &TxnIndex| {
                        let request = TxnRequest {
                            has_transactional_id,
                            verdict: verdict.copied(),
                        };
                        verify_transactional(&broker, &partition, batch, txns, request)
                    };
                    match partition.append_verified(&records, now, &verify, journal) {
                        Ok(appended) => {
                            let m = &broker.metrics;
                            let labels = [partition.topic()];
                            m.bytes_in
                                .with_label_values(&labels)
                                .inc_by(records.len() as u64);
                            m.messages_in
                                .with_label_values(&labels)
                                .inc_by(u64::try_from(appended.records).unwrap_or(0));
                            if !wait_for_fsync {
                                broker.flusher.after_write(&partition, appended.flush);
                            }
                            if let Some(durability) = durability {
                                waits.push(CommitWait {
                                    partition: partition.clone(),
                                    end_offset: appended.end_offset,
                                    durability,
                                    journaled: appended.journaled,
                                    min_isr: (acks == -1)
                                        .then(|| min_insync_replicas(&broker, topic.as_deref())),
                                    topic_slot,
                                    partition_slot,
                                });
                            }
                            response
                                .with_base_offset(appended.base_offset)
                                .with_log_append_time_ms(appended.log_append_time)
                                .with_log_start_offset(if version >= 5 {
                                    appended.log_start_offset
                                } else {
                                    -1
                                })
                        }
                        Err(error) => {
                            let code = append_code(&error);
                            broker
                                .metrics
                                .failed_produce
                                .with_label_values(&[partition.topic(), &format!("{code:?}")])
                                .inc();
                            tracing::info!(
                                topic = partition.topic(),
                                partition = partition.index(),
                                %error,
                                "produce refused"
                            );
                            let response = response.with_error_code(code.code());
                            if version < 8 {
                                return response;
                            }
                            response
                                .with_error_message(Some(StrBytes::from_string(error.to_string())))
                                .with_record_errors(record_errors(&error))
                        }
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    let node_endpoints = if version >= 10 {
        add_leader_hints(&broker, &listener, &mut responses)
    } else {
        Vec::new()
    };
    let (journaled, fsynced): (Vec<_>, Vec<_>) = waits
        .iter()
        .filter(|w| w.durability == Durability::Synced)
        .partition(|w| w.journaled);
    broker
        .flusher
        .request_journal_commits(journaled.into_iter().map(|w| &w.partition));
    broker
        .flusher
        .request_syncs(fsynced.into_iter().map(|w| &w.partition));
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms.max(0)).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + timeout.max(Duration::from_millis(1));
    async move {
        let mut responses = responses;
        // Every partition waits at once and is judged the moment its own write commits, as
        // Kafka does: an ISR that shrinks while another partition of the request still waits
        // does not fail a write that committed with enough replicas.
        let outcomes = futures::future::join_all(waits.into_iter().map(|wait| async move {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let committed = match wait.min_isr {
                Some(_) => {
                    wait.partition
                        .wait_committed(wait.end_offset, wait.durability, left)
                        .await
                }
                None => wait.partition.wait_local(wait.end_offset, left).await,
            };
            let failure = match committed {
                Ok(())
                    if wait
                        .min_isr
                        .is_some_and(|min| wait.partition.isr_size() < min) =>
                {
                    Some((
                        ResponseError::NotEnoughReplicasAfterAppend,
                        "the write is committed, but the ISR shrank below min.insync.replicas",
                    ))
                }
                Ok(()) => None,
                Err(CommitWaitError::Gone) => Some((
                    ResponseError::UnknownTopicOrPartition,
                    "the topic was deleted before the write was committed",
                )),
                Err(CommitWaitError::TimedOut(_)) => Some((
                    ResponseError::RequestTimedOut,
                    "the write was not committed within the request timeout",
                )),
                Err(CommitWaitError::NotLeader) => Some((
                    ResponseError::NotLeaderOrFollower,
                    "leadership moved before the write was committed",
                )),
            };
            (wait.topic_slot, wait.partition_slot, failure)
        }))
        .await;
        for (topic_slot, partition_slot, failure) in outcomes {
            if let Some((code, message)) = failure {
                let slot = &mut responses[topic_slot].partition_responses[partition_slot];
                slot.error_code = code.code();
                if version >= 8 {
                    slot.error_message = Some(StrBytes::from_static_str(message));
                }
            }
        }
        (acks != 0).then(|| {
            ProduceResponse::default()
                .with_responses(responses)
                .with_throttle_time_ms(throttle_time_ms)
                .with_node_endpoints(node_endpoints)
        })
    }
}

/// Tells clients refused with NOT_LEADER_OR_FOLLOWER where each partition is led now
/// (KIP-951, Produce v10+): the leader and epoch per partition, and the leaders' endpoints.
fn add_leader_hints(
    broker: &Broker,
    listener: &str,
    responses: &mut [TopicProduceResponse],
) -> Vec<NodeEndpoint> {
    let mut endpoints: BTreeMap<i32, NodeEndpoint> = BTreeMap::new();
    for topic in responses {
        for partition in &mut topic.partition_responses {
            if partition.error_code != ResponseError::NotLeaderOrFollower.code() {
                continue;
            }
            let Some(hint) = topic_lookup::leader_hint(broker, &topic.name, partition.index) else {
                continue;
            };
            partition.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(hint.leader))
                .with_leader_epoch(hint.epoch);
            let info = hint.endpoint;
            // Once per leader, and only a leader the client's listener reaches.
            let (std::collections::btree_map::Entry::Vacant(slot), Some((host, port))) =
                (endpoints.entry(info.id), info.endpoint(listener))
            else {
                continue;
            };
            slot.insert(
                NodeEndpoint::default()
                    .with_node_id(BrokerId(info.id))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port)
                    .with_rack(info.rack.clone().map(StrBytes::from_string)),
            );
        }
    }
    endpoints.into_values().collect()
}

/// Topic-level reasons to refuse a produce: clients may not write internal topics, and
/// acks=all needs at least min.insync.replicas in the partition's ISR.
fn refuse_topic(
    topic: &TopicImage,
    index: i32,
    acks: i16,
    min_isr: usize,
) -> Option<ResponseError> {
    if topic.is_internal() {
        return Some(ResponseError::InvalidTopicException);
    }
    let isr = topic.partition(index).map_or(0, |p| p.isr.len());
    (acks == -1 && isr < min_isr).then_some(ResponseError::NotEnoughReplicas)
}

/// The topic's min.insync.replicas (1 when unknown).
fn min_insync_replicas(broker: &Broker, topic: Option<&TopicImage>) -> usize {
    topic
        .and_then(|t| {
            effective(&broker.config, &t.configs, "min.insync.replicas")
                .parse()
                .ok()
        })
        .unwrap_or(1)
}

/// What the produce request says of a transactional batch beyond the batch itself.
#[derive(Debug, Clone, Copy)]
struct TxnRequest {
    /// The request names a transactional id (Kafka refuses transactional data without one).
    has_transactional_id: bool,
    /// The verification with the producer's coordinator, if one was needed ([`txn_verify`]).
    verdict: Option<Verdict>,
}

/// Transactional batches need their producer's open transaction to have added the partition
/// (Kafka's transaction verification): a write outside one could never be ended. Runs under
/// the partition lock, with the partition's open transactions in `txns`.
fn verify_transactional(
    broker: &Broker,
    partition: &Partition,
    batch: &BatchIdentity,
    txns: &TxnIndex,
    request: TxnRequest,
) -> Result<(), AppendError> {
    if batch.producer_id < 0 {
        return Err(AppendError::InvalidRecord(
            "a transactional batch needs a producer id".into(),
        ));
    }
    if !request.has_transactional_id {
        return Err(AppendError::Transaction(
            ResponseError::TransactionalIdAuthorizationFailed,
        ));
    }
    // In a cluster the producer's coordinator may be another broker: the leader asked it
    // before appending (KIP-890), unless verification is off, when the write is taken on
    // trust as Kafka did before KIP-890. The marker arrives by WriteTxnMarkers.
    if broker.config.cluster.is_some() && !broker.txns.coordinates_producer(batch.producer_id) {
        if !broker.config.transaction_partition_verification_enable {
            return Ok(());
        }
        return admit_verified(txns, batch.producer_id, request.verdict)
            .map_err(AppendError::Transaction);
    }
    let producer = ProducerRef {
        id: batch.producer_id,
        epoch: batch.producer_epoch,
    };
    broker
        .txns
        .check_produce(producer, partition.topic(), partition.index())
        .map_err(AppendError::Transaction)
}

/// The lock-held half of the verification: a batch is appended when its producer's
/// transaction is already open on the partition, or when the coordinator confirmed the
/// partition and no marker of the producer was written since (the guard is still current).
/// Anything else (an abort landed while the coordinator was asked, or a transaction that
/// ended after the request was looked at) is INVALID_TXN_STATE, as Kafka answers a
/// partition not in the transaction.
fn admit_verified(
    txns: &TxnIndex,
    producer_id: i64,
    verdict: Option<Verdict>,
) -> Result<(), ResponseError> {
    let guard = match verdict {
        Some(Verdict::Refused(error)) => return Err(error),
        Some(Verdict::Verified(guard)) => Some(guard),
        None => None,
    };
    if txns.admits(producer_id, guard) {
        Ok(())
    } else {
        Err(ResponseError::InvalidTxnState)
    }
}

/// The records that made a batch fail (KIP-467), so clients fail just those and retry or
/// fail the rest of the batch separately.
fn record_errors(error: &AppendError) -> Vec<BatchIndexAndErrorMessage> {
    let one = |index: i32, message: String| {
        BatchIndexAndErrorMessage::default()
            .with_batch_index(index)
            .with_batch_index_error_message(Some(StrBytes::from_string(message)))
    };
    match error {
        AppendError::KeylessRecords { records } => records
            .iter()
            .map(|&index| {
                one(
                    index,
                    "Compacted topic cannot accept message without key".into(),
                )
            })
            .collect(),
        AppendError::InvalidTimestamp { records } => records
            .iter()
            .map(|(index, reason)| one(*index, reason.clone()))
            .collect(),
        AppendError::Storage(StorageError::InvalidBatch {
            source: BatchError::InvalidRecord { index, reason },
            ..
        }) => vec![one(*index, reason.clone())],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_batch_is_admitted_only_while_its_guard_is_current() {
        let mut txns = TxnIndex::default();
        let guard = txns.start_verification(1).expect("verify");
        let verified = Some(Verdict::Verified(guard));
        assert_eq!(admit_verified(&txns, 1, verified), Ok(()));
        txns.on_marker(1, 10, false);
        assert_eq!(
            admit_verified(&txns, 1, verified),
            Err(ResponseError::InvalidTxnState),
            "aborted while the coordinator was asked"
        );
    }

    #[test]
    fn without_a_verification_only_an_open_transaction_admits() {
        let mut txns = TxnIndex::default();
        assert_eq!(
            admit_verified(&txns, 2, None),
            Err(ResponseError::InvalidTxnState)
        );
        txns.on_data(2, 0);
        assert_eq!(admit_verified(&txns, 2, None), Ok(()));
        txns.on_marker(2, 1, false);
        assert_eq!(
            admit_verified(&txns, 2, None),
            Err(ResponseError::InvalidTxnState),
            "the transaction ended after the request was looked at"
        );
        let refused = Some(Verdict::Refused(ResponseError::NotEnoughReplicas));
        txns.on_data(2, 2);
        assert_eq!(
            admit_verified(&txns, 2, refused),
            Err(ResponseError::NotEnoughReplicas),
            "a refusal stands"
        );
    }
}
