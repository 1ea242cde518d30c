//! Fetch: whole record batches from the requested offsets, long-polling until `min_bytes` are
//! available or `max_wait_ms` passes. Fetch sessions (KIP-227) are declined by answering
//! session id 0, which makes clients send full requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{encode_or_log, topic_lookup, Client, Reply, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::error_codes::storage_code;
use crate::frame_parts::{encode_fetch, EncodedFetch, FileRecords, RecordSets};
use crate::partition::{FetchedData, Isolation, Partition};
use crate::quotas::entity::CONSUMER_BYTE_RATE;
use crate::storage::{ReadPlan, StorageError};

/// A response (Fetch's, or ShareFetch's) and the record sets it sends from their segment files
/// (a plaintext connection's, [`crate::frame_parts`]); those partitions' `records` are empty
/// until encoded.
pub(crate) struct FileAnswer<R> {
    pub(crate) response: R,
    pub(crate) files: FileRecords,
}

/// A Fetch response and the record sets it sends from their files.
pub(crate) type FetchAnswer = FileAnswer<FetchResponse>;

impl<R: RecordSets> FileAnswer<R> {
    /// `response`, every record set in it.
    pub(crate) fn in_memory(response: R) -> FileAnswer<R> {
        FileAnswer {
            response,
            files: Vec::new(),
        }
    }

    /// The reply answering request `correlation_id` at `version`: a frame of encoded bytes
    /// and file ranges when record sets are sent from files, else one encoded frame. Should
    /// the parts not be cut (which would be a bug), the record sets are read and the frame
    /// encoded whole, as the copy path does.
    pub(crate) fn encode(self, correlation_id: i32, version: i16) -> Reply {
        let FileAnswer {
            mut response,
            files,
        } = self;
        match encode_fetch(correlation_id, version, &mut response, &files) {
            Ok(EncodedFetch::Frame(frame)) => return Reply::Frame(frame),
            Ok(EncodedFetch::Parts(parts)) => return Reply::Parts(parts),
            Err(error) if files.iter().flatten().all(Option::is_none) => {
                tracing::error!(correlation_id, version, %error, "cannot encode response; closing");
                return Reply::Close;
            }
            Err(error) => {
                tracing::warn!(correlation_id, version, %error, "cannot send record sets from their files; copying them");
            }
        }
        for (t, partitions) in files.iter().enumerate() {
            for (p, file) in partitions.iter().enumerate() {
                let (Some(plan), Some(slot)) = (file, response.records_mut(t, p)) else {
                    continue;
                };
                match plan.load() {
                    Ok(records) => *slot = Some(records),
                    Err(error) => {
                        tracing::warn!(correlation_id, %error, "cannot read a planned record set; closing");
                        return Reply::Close;
                    }
                }
            }
        }
        encode_or_log(correlation_id, version, &response)
    }
}

/// The records `planned` names: read into memory, or for a client that sends from files (and
/// a range that is not empty) left in the file and returned beside empty records.
pub(super) fn take_records(
    partition: &Partition,
    planned: FetchedData<ReadPlan>,
    from_files: bool,
) -> Result<(FetchedData, Option<ReadPlan>), StorageError> {
    if !from_files || planned.records.is_empty() {
        return Ok((partition.load(planned)?, None));
    }
    let FetchedData {
        records,
        high_watermark,
        log_start_offset,
        last_stable_offset,
        aborted,
    } = planned;
    let data = FetchedData {
        records: Bytes::new(),
        high_watermark,
        log_start_offset,
        last_stable_offset,
        aborted,
    };
    Ok((data, Some(records)))
}

/// Bytes of a record set, wherever it is.
fn records_len(data: &PartitionData, file: Option<&ReadPlan>) -> usize {
    data.records.as_ref().map_or(0, Bytes::len) + file.map_or(0, |plan| plan.length)
}

/// Topic of one fetch entry, its partitions resolved to the replicas this broker leads once
/// per request.
pub(super) struct WantedTopic {
    pub(super) name: TopicName,
    pub(super) id: uuid::Uuid,
    pub(super) partitions: Vec<(FetchPartition, Result<Arc<Partition>, ResponseError>)>,
}

/// Resolves each fetched topic (by id from v13, else by name) and its partitions to the
/// replicas this broker leads.
pub(super) fn wanted_topics(
    ctx: &RequestContext,
    topics: Vec<FetchTopic>,
    allowed: impl Fn(&str) -> bool,
) -> Vec<WantedTopic> {
    let version = ctx.version();
    let image = ctx.broker.metadata.image();
    topics
        .into_iter()
        .map(|t| {
            let topic = if version >= 13 {
                topic_lookup::by_id(&image, &t.topic_id).and_then(|found| {
                    allowed(&found.name)
                        .then_some(found)
                        .ok_or(ResponseError::TopicAuthorizationFailed)
                })
            } else if !allowed(&t.topic) {
                Err(ResponseError::TopicAuthorizationFailed)
            } else {
                image
                    .topic(&t.topic)
                    .ok_or(ResponseError::UnknownTopicOrPartition)
            };
            let name = match &topic {
                Ok(found) if version >= 13 => TopicName(StrBytes::from_string(found.name.clone())),
                _ => t.topic,
            };
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let replica = topic.and_then(|found| {
                        topic_lookup::leader(&ctx.broker, &found.name, p.partition)
                    });
                    (p, replica)
                })
                .collect();
            WantedTopic {
                name,
                id: t.topic_id,
                partitions,
            }
        })
        .collect()
}

/// Serves a fetch, waiting for data as the request allows.
pub(crate) async fn handle(ctx: RequestContext, request: FetchRequest) -> FetchAnswer {
    let version = ctx.version();
    if request.session_id != 0 {
        return FetchAnswer::in_memory(
            FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code())
                .with_session_id(0),
        );
    }
    if let Some(follower) = super::replica_fetch::follower_of(&request, version) {
        return super::replica_fetch::handle(ctx, request, follower).await;
    }
    let wanted = wanted_topics(&ctx, request.topics, |topic| {
        ctx.may(Operation::Read, ResourceType::Topic, topic)
    });
    let mut max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    if version >= 3 {
        let quota_window = ctx.broker.quotas.max_in_window(
            &ctx.client.principal().name,
            Client::id(&ctx.header),
            CONSUMER_BYTE_RATE,
        );
        max_bytes = max_bytes.min(quota_window.unwrap_or(usize::MAX));
    }
    let min_bytes = usize::try_from(request.min_bytes)
        .unwrap_or(0)
        .min(max_bytes);
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + max_wait;
    let isolation = if request.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let read = Read {
        max_bytes,
        version,
        isolation,
        from_files: ctx.client.sends_files(),
    };
    let mut watchers: Vec<watch::Receiver<i64>> = wanted
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|(_, replica)| replica.as_ref().ok())
        .map(|p| p.watch_high_watermark())
        .collect();
    loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let (mut responses, files, mut bytes, failed) = read_all(&wanted, read);
        if ctx.broker.tiered.is_some() {
            let budget = RemoteBudget {
                remaining: max_bytes.saturating_sub(bytes),
                any: bytes > 0,
            };
            bytes += read_remote(&ctx, &wanted, &mut responses, isolation, budget).await;
        }
        if bytes >= min_bytes || failed || Instant::now() >= deadline {
            return answer(&ctx, responses, files);
        }
        wait_for_data(&mut watchers, deadline).await;
    }
}

/// What a fetch's local reads left of its byte budget for its remote reads.
#[derive(Debug, Clone, Copy)]
struct RemoteBudget {
    /// Bytes the response may still carry (`max_bytes` less what local reads returned).
    remaining: usize,
    /// Whether some partition already returned records: then no remote one may pass the
    /// budget, not even by one batch.
    any: bool,
}

/// Answers from tiered storage the partitions whose fetch offset lies below the local log
/// start but within the remote log (KIP-405); the rest keep their OFFSET_OUT_OF_RANGE. A
/// bucket that fails or does not answer within `remote.fetch.max.wait.ms`, or an object that
/// is corrupt, gives KAFKA_STORAGE_ERROR, which clients retry (Kafka answers a failed remote
/// read UNKNOWN_SERVER_ERROR, which librdkafka reports to the application). Tiered
/// partitions report the remote log start as their log start. Remote bytes count against
/// the fetch's `max_bytes` and each partition's `partition_max_bytes` as local ones do:
/// only the first partition with records may exceed them, by one whole batch; a partition
/// the budget leaves nothing for is answered with no records (and no error: it is read on
/// the next fetch). Returns the bytes read.
async fn read_remote(
    ctx: &RequestContext,
    wanted: &[WantedTopic],
    responses: &mut [FetchableTopicResponse],
    isolation: Isolation,
    mut budget: RemoteBudget,
) -> usize {
    let Some(tiered) = &ctx.broker.tiered else {
        return 0;
    };
    let mut read = 0usize;
    let out_of_range = ResponseError::OffsetOutOfRange.code();
    for (t, response) in wanted.iter().zip(responses.iter_mut()) {
        for ((p, replica), data) in t.partitions.iter().zip(response.partitions.iter_mut()) {
            let Ok(partition) = replica else { continue };
            let (tiered_topic, local_start) =
                partition.with_log(|log| (log.config().remote_storage, log.log_start_offset()));
            if !tiered_topic {
                continue;
            }
            // The log starts in the bucket, as ListOffsets earliest says.
            if ctx.version() >= 5 && data.log_start_offset >= 0 {
                data.log_start_offset = tiered.log_start_offset(partition, local_start);
            }
            if data.error_code != out_of_range || p.fetch_offset >= local_start {
                continue;
            }
            let max_bytes = usize::try_from(p.partition_max_bytes)
                .unwrap_or(0)
                .min(budget.remaining);
            let min_one = !budget.any;
            match tiered
                .fetch(partition, p.fetch_offset, max_bytes, min_one)
                .await
            {
                Ok(None) => {}
                Ok(Some(remote)) => {
                    let len = remote.records.len();
                    budget.remaining = budget.remaining.saturating_sub(len);
                    budget.any |= len > 0;
                    read += len;
                    let aborted = remote
                        .aborted
                        .iter()
                        .map(|a| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(a.producer_id))
                                .with_first_offset(a.first_offset)
                        })
                        .collect();
                    data.error_code = 0;
                    data.high_watermark = partition.with_log(|log| log.high_watermark());
                    data.last_stable_offset = partition.last_stable_offset();
                    if ctx.version() >= 5 {
                        data.log_start_offset = remote.log_start_offset;
                    }
                    data.aborted_transactions =
                        (isolation == Isolation::ReadCommitted).then_some(aborted);
                    data.records = Some(remote.records);
                }
                Err(error) => {
                    tracing::warn!(?partition, offset = p.fetch_offset, %error, "remote fetch failed");
                    data.error_code = ResponseError::KafkaStorageError.code();
                }
            }
        }
    }
    read
}

/// The response carrying `responses` (and the record sets `files` sends from their files),
/// unless sending them puts the client over its fetch quota: then, as in Kafka, an empty
/// response with the throttle time.
fn answer(
    ctx: &RequestContext,
    responses: Vec<FetchableTopicResponse>,
    files: FileRecords,
) -> FetchAnswer {
    let sizes: Vec<usize> = responses
        .iter()
        .enumerate()
        .map(|(t, topic)| {
            topic
                .partitions
                .iter()
                .enumerate()
                .map(|(p, data)| {
                    let file = files.get(t).and_then(|f| f.get(p)).and_then(Option::as_ref);
                    records_len(data, file)
                })
                .sum()
        })
        .collect();
    let total = sizes.iter().sum();
    let throttle_time_ms = ctx.charge(CONSUMER_BYTE_RATE, total);
    let response = FetchResponse::default()
        .with_session_id(0)
        .with_throttle_time_ms(throttle_time_ms);
    if throttle_time_ms > 0 {
        ctx.refund(CONSUMER_BYTE_RATE, total);
        return FetchAnswer::in_memory(response);
    }
    let mut responses = responses;
    let response = if ctx.version() >= 16 {
        response.with_node_endpoints(add_leader_hints(ctx, &mut responses))
    } else {
        response
    };
    for (topic, &bytes) in responses.iter().zip(&sizes) {
        if bytes > 0 {
            ctx.broker
                .metrics
                .bytes_out
                .with_label_values(&[topic.topic.as_str()])
                .inc_by(bytes as u64);
        }
    }
    FetchAnswer {
        response: response.with_responses(responses),
        files,
    }
}

/// Tells clients refused with NOT_LEADER_OR_FOLLOWER where each partition is led now
/// (KIP-951, Fetch v16+): the leader and epoch per partition, and the leaders' endpoints.
fn add_leader_hints(
    ctx: &RequestContext,
    responses: &mut [FetchableTopicResponse],
) -> Vec<NodeEndpoint> {
    let image = ctx.broker.metadata.image();
    let mut endpoints: BTreeMap<i32, NodeEndpoint> = BTreeMap::new();
    for topic in responses {
        let name = match image.topic_by_id(&topic.topic_id) {
            Some(found) => found.name.clone(),
            None => topic.topic.to_string(),
        };
        for partition in &mut topic.partitions {
            if partition.error_code != ResponseError::NotLeaderOrFollower.code() {
                continue;
            }
            let Some(hint) =
                topic_lookup::leader_hint(&ctx.broker, &name, partition.partition_index)
            else {
                continue;
            };
            partition.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(hint.leader))
                .with_leader_epoch(hint.epoch);
            let info = hint.endpoint;
            // Once per leader, and only a leader the client's listener reaches.
            let (std::collections::btree_map::Entry::Vacant(slot), Some((host, port))) = (
                endpoints.entry(info.id),
                info.endpoint(&ctx.client.listener),
            ) else {
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

/// Waits until any watched offset moves, or the deadline.
pub(super) async fn wait_for_data(watchers: &mut [watch::Receiver<i64>], deadline: Instant) {
    if watchers.is_empty() {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    let changed = select_all(watchers.iter_mut().map(|w| w.changed().boxed()));
    let _ = tokio::time::timeout_at(deadline, changed).await;
}

/// How a fetch reads its partitions.
#[derive(Debug, Clone, Copy)]
struct Read {
    /// The response's byte budget.
    max_bytes: usize,
    /// The request's version.
    version: i16,
    isolation: Isolation,
    /// Whether record sets stay in their files, to be sent from them.
    from_files: bool,
}

/// Reads every requested partition within the byte budget; returns the responses, the record
/// sets left in their files, the bytes read and whether any partition failed (an error
/// answers at once, as in Kafka).
fn read_all(
    wanted: &[WantedTopic],
    read: Read,
) -> (Vec<FetchableTopicResponse>, FileRecords, usize, bool) {
    let Read {
        max_bytes,
        version,
        isolation,
        from_files,
    } = read;
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut failed = false;
    let mut files: FileRecords = Vec::with_capacity(wanted.len());
    let responses = wanted
        .iter()
        .map(|t| {
            let mut topic_files = Vec::with_capacity(t.partitions.len());
            let partitions = t
                .partitions
                .iter()
                .map(|(p, replica)| {
                    let data = match replica {
                        Err(code) => Err((*code, None)),
                        Ok(partition) if partition.is_deleted() => {
                            Err((ResponseError::UnknownTopicOrPartition, None))
                        }
                        Ok(partition) => {
                            match topic_lookup::check_leader_epoch(
                                partition,
                                p.current_leader_epoch,
                            ) {
                                Err(code) => Err((code, Some(partition.clone()))),
                                Ok(()) => read_one(
                                    partition,
                                    p,
                                    &mut remaining,
                                    total == 0,
                                    isolation,
                                    from_files,
                                ),
                            }
                        }
                    };
                    match data {
                        // logStartOffset exists from v5 on.
                        Ok((data, file)) if version < 5 => {
                            total += records_len(&data, file.as_ref());
                            topic_files.push(file);
                            data.with_log_start_offset(-1)
                        }
                        Ok((data, file)) => {
                            total += records_len(&data, file.as_ref());
                            topic_files.push(file);
                            data
                        }
                        Err((code, partition)) => {
                            topic_files.push(None);
                            failed = true;
                            let data = error_data(p.partition, code, partition.as_deref());
                            if version >= 5 {
                                data
                            } else {
                                data.with_log_start_offset(-1)
                            }
                        }
                    }
                })
                .collect();
            files.push(topic_files);
            FetchableTopicResponse::default()
                .with_topic(t.name.clone())
                .with_topic_id(t.id)
                .with_partitions(partitions)
        })
        .collect();
    (responses, files, total, failed)
}

type ReadError = (ResponseError, Option<Arc<Partition>>);

/// Reads one partition within what is left of the budget; its records are in the answer, or
/// left in their file for `from_files`.
fn read_one(
    partition: &Arc<Partition>,
    wanted: &FetchPartition,
    remaining: &mut usize,
    first: bool,
    isolation: Isolation,
    from_files: bool,
) -> Result<(PartitionData, Option<ReadPlan>), ReadError> {
    let limit = usize::try_from(wanted.partition_max_bytes)
        .unwrap_or(0)
        .min(*remaining);
    let (data, file) = partition
        .plan_read(wanted.fetch_offset, limit, first, isolation)
        .and_then(|planned| take_records(partition, planned, from_files))
        .map_err(|e| (storage_code(&e), Some(partition.clone())))?;
    let len = data.records.len() + file.as_ref().map_or(0, |plan| plan.length);
    *remaining = remaining.saturating_sub(len);
    let data = PartitionData::default()
        .with_partition_index(wanted.partition)
        .with_high_watermark(data.high_watermark)
        .with_last_stable_offset(data.last_stable_offset)
        .with_log_start_offset(data.log_start_offset)
        .with_aborted_transactions((isolation == Isolation::ReadCommitted).then(|| {
            data.aborted
                .iter()
                .map(|a| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(a.producer_id))
                        .with_first_offset(a.first_offset)
                })
                .collect()
        }))
        .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
        .with_records(Some(data.records));
    Ok((data, file))
}

pub(super) fn error_data(
    index: i32,
    code: ResponseError,
    partition: Option<&Partition>,
) -> PartitionData {
    let (hw, start) = partition.map_or((-1, -1), |p| {
        p.with_log(|log| (log.high_watermark(), log.log_start_offset()))
    });
    let lso = partition.map_or(-1, Partition::last_stable_offset);
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code.code())
        .with_high_watermark(hw)
        .with_last_stable_offset(lso)
        .with_log_start_offset(start)
        .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
        .with_records(Some(Bytes::new()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn empty_record_sets_are_encoded_as_empty_not_null() {
        use kafka_protocol::protocol::Encodable;
        let data = super::error_data(
            0,
            kafka_protocol::error::ResponseError::OffsetOutOfRange,
            None,
        );
        assert_eq!(data.records.as_ref().map(|r| r.len()), Some(0));
        let mut buf = bytes::BytesMut::new();
        data.encode(&mut buf, 11).unwrap();
        // v11 (non-flexible) ends with the records as INT32 length 0, not -1 (null).
        assert_eq!(&buf[buf.len() - 4..], &[0, 0, 0, 0]);
    }
}
