//! Produce, the request-level half of a write: authorization, the quota charge, KIP-890
//! verification, and the answer. The partition-level half (leader and min.insync.replicas
//! checks, the append, what the answer waits for) is [`append_records`], the path the
//! coordinators' writes take too.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::{topic_lookup, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::coordinator_host::txn_verify::{self, Verdict, Verdicts};
use crate::partition::{AppendError, CommitWaitError, Partition};
use crate::producer::{BatchIdentity, TxnIndex};
use crate::quotas::entity::PRODUCER_BYTE_RATE;
use crate::replica::append::{
    self, append_records, Accepted, Acks, AppendRecordsError, AppendRequest, Origin, PartitionData,
    TxnCheck, WaitError, WriteWait,
};
use crate::schema_validation::request::{
    refusals as schema_refusals, request_rules, PartitionRefusal,
};
use crate::storage::{BatchError, StorageError};
use crate::txn::ProducerRef;

/// The future of a produce response (`None` for acks=0, which Kafka never answers).
pub(crate) type PendingProduce = BoxFuture<'static, Option<ProduceResponse>>;

/// A produce request once handled: appended, or still verifying before it may append.
pub(crate) enum Produce {
    /// Every partition's batches are appended (or refused); only the answer is pending.
    Appended(PendingProduce),
    /// Its transactional batches wait for their coordinator's verification (KIP-890) and are
    /// appended when this resolves. The connection reads no further request meanwhile: the
    /// next batch of the same producer must not be checked before this one is appended.
    Verifying(BoxFuture<'static, PendingProduce>),
}

/// Appends every partition's batches now, and returns the future of the response. In cluster
/// mode, transactional batches whose producer's transaction the partition has not seen yet
/// are first verified with the producer's transaction coordinator ([`txn_verify`], KIP-890);
/// the appends then happen once that answer is in ([`Produce::Verifying`]).
pub(crate) fn handle(ctx: RequestContext, mut request: ProduceRequest) -> Produce {
    let unknown_topics = name_topics(&ctx, &mut request.topic_data);
    let txn_denied = request
        .transactional_id
        .as_deref()
        .is_some_and(|id| !ctx.may(Operation::Write, ResourceType::TransactionalId, id));
    let refusals = Refusals {
        txn_denied,
        unknown_topics,
        schemas: HashMap::new(),
    };
    let rules = request_rules(&ctx.broker.metadata.image(), &request.topic_data);
    if !rules.is_empty() {
        // The registry is asked before anything is appended, outside any partition lock.
        return Produce::Verifying(
            async move {
                let mut refusals = refusals;
                let (schemas, refused) = (
                    &ctx.broker.schemas,
                    &ctx.broker.metrics.schema_refused_records,
                );
                refusals.schemas =
                    schema_refusals(schemas, refused, &request.topic_data, &rules).await;
                let verification = if txn_denied {
                    None
                } else {
                    txn_verify::start(&ctx.broker, &request, ctx.version())
                };
                let verdicts = match verification {
                    None => Verdicts::new(),
                    Some(pending) => pending.await,
                };
                (ctx, request, refusals, verdicts)
            }
            .map(|(ctx, request, refusals, verdicts)| {
                append(ctx, request, refusals, verdicts).boxed()
            })
            .boxed(),
        );
    }
    let verification = if txn_denied {
        None
    } else {
        txn_verify::start(&ctx.broker, &request, ctx.version())
    };
    match verification {
        None => Produce::Appended(append(ctx, request, refusals, Verdicts::new()).boxed()),
        Some(pending) => Produce::Verifying(
            pending
                .map(move |verdicts| append(ctx, request, refusals, verdicts).boxed())
                .boxed(),
        ),
    }
}

/// Names the topics of a Produce v13+ request, which carries topic ids only (KIP-516), so that
/// everything after (verification, ACLs, the append, leader hints, metrics) goes by name as for
/// earlier versions. Returns, by topic position, the refusal of a topic whose id the cluster
/// does not know (UNKNOWN_TOPIC_ID; its name stays empty).
fn name_topics(
    ctx: &RequestContext,
    topics: &mut [TopicProduceData],
) -> Vec<Option<ResponseError>> {
    let by_id = ctx.version() >= 13;
    let image = ctx.broker.metadata.image();
    topics
        .iter_mut()
        .map(|topic| {
            match topic_lookup::request_topic_name(&image, by_id, &topic.name, &topic.topic_id) {
                Ok(name) => {
                    topic.name = name;
                    None
                }
                Err(error) => Some(error),
            }
        })
        .collect()
}

/// What refuses parts of a request before anything is appended.
struct Refusals {
    /// The client may not write the request's transactional id: every partition is refused.
    txn_denied: bool,
    /// By topic position, why a topic is refused whole (a topic id the cluster does not know).
    unknown_topics: Vec<Option<ResponseError>>,
    /// By (topic, partition) position, the partitions schema validation refused.
    schemas: HashMap<Slot, PartitionRefusal>,
}

/// Where a partition's answer sits in the response: (topic, partition) positions.
type Slot = (usize, usize);

/// A partition of the request that passed the request-level checks, to be appended.
struct Write {
    slot: Slot,
    topic: StrBytes,
    index: i32,
    records: Option<Bytes>,
}

/// Appends every partition's batches now, transactional ones as `verdicts` allow, all but
/// those `refusals` refuses, and returns the future of the response.
fn append(
    ctx: RequestContext,
    request: ProduceRequest,
    refusals: Refusals,
    verdicts: Verdicts,
) -> impl Future<Output = Option<ProduceResponse>> + Send + 'static {
    let broker = ctx.broker.clone();
    let version = ctx.version();
    let now = now_ms();
    let (wire_acks, timeout_ms) = (request.acks, request.timeout_ms);
    let acks = Acks::from_wire(wire_acks);
    let throttle_time_ms = ctx.charge(PRODUCER_BYTE_RATE, request_bytes(&request));
    let txns = RequestTxns {
        broker: &broker,
        has_transactional_id: request.transactional_id.is_some(),
        verdicts: &verdicts,
    };
    let (mut responses, writes) = admit(&ctx, request.topic_data, &refusals, acks.is_some());
    let results = match acks {
        Some(acks) => {
            let origin = Origin::Client { acks, txn: &txns };
            append_writes(&broker, origin, now, &writes)
        }
        None => Vec::new(),
    };
    let waits = answer_appends(&broker, results, &writes, &mut responses, version);
    let node_endpoints = if version >= 10 {
        add_leader_hints(&broker, &ctx.client.listener, &mut responses)
    } else {
        Vec::new()
    };
    let deadline = deadline(timeout_ms);
    async move {
        for (slot, error) in wait_all(waits, deadline).await {
            if let Some(response) = slot_mut(&mut responses, slot) {
                answer_uncommitted(response, error, version);
            }
        }
        (wire_acks != 0).then(|| {
            ProduceResponse::default()
                .with_responses(responses)
                .with_throttle_time_ms(throttle_time_ms)
                .with_node_endpoints(node_endpoints)
        })
    }
}

/// The bytes of record batches the request carries, which the producer quota is charged.
fn request_bytes(request: &ProduceRequest) -> usize {
    request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_ref())
        .map(|r| r.len())
        .sum()
}

/// The response's skeleton, the request-level refusals answered in it (a topic id the cluster
/// does not know, acks Kafka does not know, a transactional id or topic the client may not
/// write), and the partitions left to append. The response echoes each topic's id (v13+).
fn admit(
    ctx: &RequestContext,
    topics: Vec<TopicProduceData>,
    refusals: &Refusals,
    valid_acks: bool,
) -> (Vec<TopicProduceResponse>, Vec<Write>) {
    let mut responses = Vec::with_capacity(topics.len());
    let mut writes = Vec::new();
    for (topic_slot, topic) in topics.into_iter().enumerate() {
        let unknown = refusals.unknown_topics.get(topic_slot).copied().flatten();
        let refusal = unknown.or_else(|| {
            if valid_acks {
                denial(ctx, &topic.name, refusals.txn_denied)
            } else {
                Some(ResponseError::InvalidRequiredAcks)
            }
        });
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (partition_slot, data) in topic.partition_data.into_iter().enumerate() {
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let schema = refusals.schemas.get(&(topic_slot, partition_slot));
            match (refusal, schema) {
                (Some(code), _) => partitions.push(response.with_error_code(code.code())),
                (None, Some(schema)) => {
                    partitions.push(answer_schema_refusal(response, schema, ctx.version()));
                }
                (None, None) => {
                    partitions.push(response);
                    writes.push(Write {
                        slot: (topic_slot, partition_slot),
                        topic: topic.name.0.clone(),
                        index: data.index,
                        records: data.records,
                    });
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    (responses, writes)
}

/// A partition schema validation refused: the code, and from Produce v8 the message and the
/// records at fault (KIP-467).
fn answer_schema_refusal(
    response: PartitionProduceResponse,
    refusal: &PartitionRefusal,
    version: i16,
) -> PartitionProduceResponse {
    let response = response.with_error_code(refusal.code.code());
    if version < 8 {
        return response;
    }
    let records = refusal
        .records
        .iter()
        .map(|(index, message)| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(*index)
                .with_batch_index_error_message(Some(StrBytes::from_string(message.clone())))
        })
        .collect();
    response
        .with_error_message(Some(StrBytes::from_string(refusal.message.clone())))
        .with_record_errors(records)
}

/// Why the client may not write `topic`, if it may not: its transactional id was refused
/// (`txn_denied`), or it lacks WRITE on the topic.
fn denial(ctx: &RequestContext, topic: &str, txn_denied: bool) -> Option<ResponseError> {
    if txn_denied {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else {
        (!ctx.may(Operation::Write, ResourceType::Topic, topic))
            .then_some(ResponseError::TopicAuthorizationFailed)
    }
}

/// Appends the admitted partitions through the one append path.
fn append_writes(
    broker: &Broker,
    origin: Origin<'_>,
    now_ms: i64,
    writes: &[Write],
) -> Vec<append::PartitionResult> {
    let partitions = writes
        .iter()
        .map(|w| PartitionData {
            topic: &w.topic,
            index: w.index,
            records: w.records.as_ref(),
        })
        .collect();
    let request = AppendRequest {
        origin,
        now_ms,
        partitions,
    };
    append_records(broker, request)
}

/// Writes each partition's outcome into its answer and counts it; returns the waits of the
/// accepted writes.
fn answer_appends(
    broker: &Broker,
    results: Vec<append::PartitionResult>,
    writes: &[Write],
    responses: &mut [TopicProduceResponse],
    version: i16,
) -> Vec<(Slot, WriteWait)> {
    let mut waits = Vec::with_capacity(results.len());
    for (write, result) in writes.iter().zip(results) {
        let Some(response) = slot_mut(responses, write.slot) else {
            continue;
        };
        match result {
            Ok(accepted) => {
                count_in(broker, write, &accepted);
                answer_appended(response, &accepted, version);
                waits.push((write.slot, accepted.wait));
            }
            Err(error) => answer_refused(broker, response, write, &error, version),
        }
    }
    waits
}

/// The answer of the partition at `slot`.
fn slot_mut(
    responses: &mut [TopicProduceResponse],
    slot: Slot,
) -> Option<&mut PartitionProduceResponse> {
    responses
        .get_mut(slot.0)?
        .partition_responses
        .get_mut(slot.1)
}

/// Counts an accepted write in the topic's bytes-in and messages-in.
fn count_in(broker: &Broker, write: &Write, accepted: &Accepted) {
    let m = &broker.metrics;
    let labels = [accepted.wait.partition().topic()];
    let bytes = write.records.as_ref().map_or(0, |r| r.len());
    m.bytes_in.with_label_values(&labels).inc_by(bytes as u64);
    m.messages_in
        .with_label_values(&labels)
        .inc_by(u64::try_from(accepted.appended.records).unwrap_or(0));
}

/// Where an accepted write landed (the log start offset from Produce v5).
fn answer_appended(response: &mut PartitionProduceResponse, accepted: &Accepted, version: i16) {
    let appended = &accepted.appended;
    response.base_offset = appended.base_offset;
    response.log_append_time_ms = appended.log_append_time;
    response.log_start_offset = if version >= 5 {
        appended.log_start_offset
    } else {
        -1
    };
}

/// Why a partition refused the write. A refusal of the batches themselves is counted and
/// logged, and from Produce v8 explained, with the records at fault (KIP-467).
fn answer_refused(
    broker: &Broker,
    response: &mut PartitionProduceResponse,
    write: &Write,
    error: &AppendRecordsError,
    version: i16,
) {
    let knows_abortable = version >= txn_verify::PRODUCE_ABORTABLE_VERSION;
    let code = txn_verify::for_client(error.code(), knows_abortable);
    response.error_code = code.code();
    let AppendRecordsError::Append(error) = error else {
        return;
    };
    let topic: &str = &write.topic;
    broker
        .metrics
        .failed_produce
        .with_label_values(&[topic, &format!("{code:?}")])
        .inc();
    // A disk that failed the write (full, or broken) is the operator's to fix; a refused
    // batch is the client's.
    if code == ResponseError::KafkaStorageError {
        tracing::warn!(topic, partition = write.index, %error, "produce refused: storage failed");
    } else {
        tracing::info!(topic, partition = write.index, %error, "produce refused");
    }
    if version >= 8 {
        response.error_message = Some(StrBytes::from_string(error.to_string()));
        response.record_errors = record_errors(error);
    }
}

/// When the waits give up: the request's timeout from now (at least a millisecond).
fn deadline(timeout_ms: i32) -> Instant {
    let timeout = Duration::from_millis(u64::try_from(timeout_ms.max(0)).unwrap_or(0));
    Instant::now() + timeout.max(Duration::from_millis(1))
}

/// Waits for every accepted write at once, each judged the moment its own write commits, as
/// Kafka does: an ISR that shrinks while another partition of the request still waits does
/// not fail a write that committed with enough replicas. Returns the writes that failed.
async fn wait_all(waits: Vec<(Slot, WriteWait)>, deadline: Instant) -> Vec<(Slot, WaitError)> {
    let outcomes = futures::future::join_all(
        waits
            .into_iter()
            .map(|(slot, write)| async move { (slot, append::wait(&write, deadline).await) }),
    )
    .await;
    outcomes
        .into_iter()
        .filter_map(|(slot, outcome)| Some((slot, outcome.err()?)))
        .collect()
}

/// Why an accepted write's answer fails after all (the message from Produce v8).
fn answer_uncommitted(response: &mut PartitionProduceResponse, error: WaitError, version: i16) {
    response.error_code = error.code().code();
    if version >= 8 {
        let message = match error {
            WaitError::IsrShrank { .. } => {
                "the write is committed, but the ISR shrank below min.insync.replicas"
            }
            WaitError::Commit(CommitWaitError::Gone) => {
                "the topic was deleted before the write was committed"
            }
            WaitError::Commit(CommitWaitError::TimedOut(_)) => {
                "the write was not committed within the request timeout"
            }
            WaitError::Commit(CommitWaitError::NotLeader) => {
                "leadership moved before the write was committed"
            }
        };
        response.error_message = Some(StrBytes::from_static_str(message));
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

/// What the produce request says of a transactional batch beyond the batch itself.
#[derive(Debug, Clone, Copy)]
struct TxnRequest {
    /// The request names a transactional id (Kafka refuses transactional data without one).
    has_transactional_id: bool,
    /// The verification with the producer's coordinator, if one was needed ([`txn_verify`]).
    verdict: Option<Verdict>,
}

/// The request's [`TxnCheck`]: its transactional id and the verdicts of its verification,
/// applied by [`verify_transactional`] to each transactional batch.
struct RequestTxns<'a> {
    broker: &'a Broker,
    has_transactional_id: bool,
    verdicts: &'a Verdicts,
}

impl TxnCheck for RequestTxns<'_> {
    fn check(
        &self,
        partition: &Partition,
        batch: &BatchIdentity,
        txns: &TxnIndex,
    ) -> Result<(), AppendError> {
        let key = (partition.topic().to_string(), partition.index());
        let request = TxnRequest {
            has_transactional_id: self.has_transactional_id,
            verdict: self.verdicts.get(&key).copied(),
        };
        verify_transactional(self.broker, partition, batch, txns, request)
    }
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
    if let Some(Verdict::Refused(error)) = request.verdict {
        // The coordinator refused to add or verify the partition (or the request names two
        // producers).
        return Err(AppendError::Transaction(error));
    }
    if broker.config.cluster.is_some() && !broker.txns.coordinates_producer(batch.producer_id) {
        if !broker.config.transaction_partition_verification_enable && request.verdict.is_none() {
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
    use super::super::group_wire_tests::broker;
    use super::super::topic_id_wire_tests::{produce_at, produce_request};
    use super::*;
    use crate::partition::Role;

    /// The error code of partition `index` of `t` answering a Produce at `version` (by topic
    /// id from v13) with `acks`.
    async fn produce(b: &std::sync::Arc<Broker>, version: i16, acks: i16, index: i32) -> i16 {
        let id = crate::test_support::topic(b, "t").expect("topic t").id;
        let mut request = produce_request(version, "t", id, index, 1);
        request.acks = acks;
        let response = produce_at(b, version, &request).await;
        response.responses[0].partition_responses[0].error_code
    }

    /// A topic named by id (v13) meets the same append path as one named by name (v9).
    #[tokio::test]
    async fn the_append_paths_refusals_reach_the_client_as_kafkas_codes() {
        for v in [9, 13] {
            let dir = tempfile::tempdir().expect("tempdir");
            let b = broker(dir.path()).await;
            let configs = [("min.insync.replicas".to_string(), "2".to_string())].into();
            crate::test_support::set_configs(&b, "t", configs);
            assert_eq!(
                produce(&b, v, -1, 0).await,
                ResponseError::NotEnoughReplicas.code(),
                "v{v}: acks=all with one in-sync replica of two required"
            );
            assert_eq!(
                produce(&b, v, 1, 0).await,
                0,
                "v{v}: acks=1 takes the short ISR"
            );
            let follower = Role::Follower {
                leader: 2,
                epoch: 1,
            };
            crate::test_support::partition(&b, "t", 1).set_role(follower);
            assert_eq!(
                produce(&b, v, 1, 1).await,
                ResponseError::NotLeaderOrFollower.code(),
                "v{v}"
            );
            assert_eq!(
                produce(&b, v, 1, 7).await,
                ResponseError::UnknownTopicOrPartition.code(),
                "v{v}"
            );
            assert_eq!(
                produce(&b, v, 5, 0).await,
                ResponseError::InvalidRequiredAcks.code(),
                "v{v}"
            );
        }
    }

    /// A validated topic refuses records that are not in the registry wire format with
    /// INVALID_RECORD, naming them (KIP-467), before any registry is asked; nothing is stored.
    #[tokio::test]
    async fn schema_validation_refuses_raw_records_whole_and_stores_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = broker(dir.path()).await;
        let on = [(
            "confluent.value.schema.validation".to_string(),
            "true".to_string(),
        )];
        crate::test_support::set_configs(&b, "t", on.into());
        let id = crate::test_support::topic(&b, "t").expect("topic t").id;
        let request = produce_request(9, "t", id, 0, 3);
        let response = produce_at(&b, 9, &request).await;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, ResponseError::InvalidRecord.code());
        let indexes: Vec<i32> = partition
            .record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect();
        assert_eq!(indexes, [0, 1, 2]);
        assert!(partition
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("wire format")));
        crate::test_support::set_configs(&b, "t", BTreeMap::new());
        let response = produce_at(&b, 9, &request).await;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(
            (partition.error_code, partition.base_offset),
            (0, 0),
            "the refused batch left nothing behind"
        );
    }

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
