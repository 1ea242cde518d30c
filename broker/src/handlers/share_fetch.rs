//! ShareFetch (KIP-932, v1-2): a share group member's session moves on (opened at epoch 0,
//! continued at the epoch the broker expects, closed at -1), the acknowledgements it carries
//! are applied and made durable, then records of the session's partitions are acquired for
//! the member under their acquisition locks, waiting up to MaxWaitMs for records to arrive.
//! v2 chooses how the record count limits acquisition (KIP-1206: whole batches, or exactly
//! MaxRecords) and may carry RENEW acknowledgements (KIP-1222), with which nothing is fetched.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, NodeEndpoint, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{ShareFetchRequest, ShareFetchResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::fetch::FileAnswer;
use super::refuse::Refuse;
use super::share_requests::{
    ack_ranges, acknowledge_all, current_leader, endpoints, member, node_endpoint,
    readable_partition, release_member, settings, share_key, SharedPartition,
};
use super::RequestContext;
use crate::share::manager::{FetchAsk, ShareFetched, ShareRecords};
use crate::share::partition::AcquireMode;
use crate::share::session::{FetchSession, SessionError, SessionKey};
use crate::storage::ReadPlan;

/// Records acquired per fetch when the request names no limit (the Java client's
/// `max.poll.records` default).
const DEFAULT_MAX_RECORDS: usize = 500;
/// How soon a fetch looks again at a share-partition whose state is loading.
const LOADING_RETRY: Duration = Duration::from_millis(50);

/// What one partition's fetch came to.
#[derive(Default)]
struct Answer {
    error: Option<ResponseError>,
    acknowledge_error: i16,
    fetched: ShareFetched,
}

/// Answers a ShareFetch.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ShareFetchRequest,
) -> FileAnswer<ShareFetchResponse> {
    let deadline =
        Instant::now() + Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let key = match member(&ctx, request.group_id.as_ref(), request.member_id.as_ref()) {
        Ok(key) => key,
        Err(error) => return FileAnswer::in_memory(request.refuse(error)),
    };
    let mode = match fetch_mode(&request) {
        Ok(mode) => mode,
        Err(error) => return FileAnswer::in_memory(request.refuse(error)),
    };
    let mut acks = BTreeMap::new();
    let mut added = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            added.push((topic.topic_id, p.partition_index));
            if !p.acknowledgement_batches.is_empty() {
                let batches = p.acknowledgement_batches.iter().map(|b| {
                    (
                        b.first_offset,
                        b.last_offset,
                        b.acknowledge_types.as_slice(),
                    )
                });
                let ranges = ack_ranges(batches, request.is_renew_ack);
                acks.insert((topic.topic_id, p.partition_index), ranges);
            }
        }
    }
    let forgotten: Vec<SharedPartition> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    let session = FetchSession {
        epoch: request.share_session_epoch,
        added,
        forgotten,
        acknowledges: !acks.is_empty(),
    };
    let granted =
        ctx.broker
            .share_sessions
            .lock()
            .fetch(&key, ctx.client.connection_id(), &session);
    let granted = match granted {
        Ok(granted) => granted,
        Err(error) => {
            if error == SessionError::LimitReached {
                // Kafka answers this after MaxWaitMs, so clients do not spin.
                tokio::time::sleep_until(deadline).await;
            }
            tracing::debug!(group = %key.group, member = %key.member, %error, "share session refused");
            return FileAnswer::in_memory(request.refuse(error.code()));
        }
    };
    let acknowledged = acknowledge_all(&ctx, &key, acks).await;
    let mut answers: BTreeMap<SharedPartition, Answer> = BTreeMap::new();
    if granted.closed {
        release_member(&ctx.broker, &key).await;
    } else if let Some(mode) = mode {
        let ask = FetchAsk {
            mode,
            max_records: usize::try_from(request.max_records)
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_MAX_RECORDS),
            max_bytes: usize::try_from(request.max_bytes).unwrap_or(0),
            from_file: ctx.client.sends_files(),
        };
        answers = fetch_until(&ctx, &key, &granted.partitions, ask, deadline).await;
    }
    for (partition, code) in acknowledged {
        answers.entry(partition).or_default().acknowledge_error = code;
    }
    let lock_ms = settings(&ctx.broker, &key.group).limits.lock_duration_ms;
    response(&ctx, answers, lock_ms)
}

/// How the request acquires records: `None` for a renewal, which fetches nothing and must ask
/// for nothing (INVALID_REQUEST otherwise, as for an unknown acquire mode).
fn fetch_mode(request: &ShareFetchRequest) -> Result<Option<AcquireMode>, ResponseError> {
    if request.is_renew_ack {
        let limits = [
            request.max_wait_ms,
            request.min_bytes,
            request.max_bytes,
            request.max_records,
            request.batch_size,
        ];
        return if limits.iter().all(|l| *l == 0) {
            Ok(None)
        } else {
            Err(ResponseError::InvalidRequest)
        };
    }
    match request.share_acquire_mode {
        0 => Ok(Some(AcquireMode::BatchOptimized)),
        1 => Ok(Some(AcquireMode::RecordLimit)),
        _ => Err(ResponseError::InvalidRequest),
    }
}

/// Acquires records of `partitions` for the member, again as records arrive, until some are
/// acquired, a partition fails, or `deadline` passes.
async fn fetch_until(
    ctx: &RequestContext,
    key: &SessionKey,
    partitions: &[SharedPartition],
    ask: FetchAsk,
    deadline: Instant,
) -> BTreeMap<SharedPartition, Answer> {
    let mut watchers: Vec<watch::Receiver<i64>> = partitions
        .iter()
        .filter_map(|&(topic, index)| {
            let name = readable_partition(ctx, topic, index).ok()?;
            let replica = ctx.broker.replicas.get(&name, index)?;
            Some(replica.watch_high_watermark())
        })
        .collect();
    loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let (answers, loading) = fetch_once(ctx, key, partitions, ask).await;
        let done = answers
            .values()
            .any(|a| a.error.is_some() || !a.fetched.acquired.is_empty());
        if done || Instant::now() >= deadline {
            return answers;
        }
        if loading {
            // A share-partition's state is still being read or created: look again soon.
            tokio::time::sleep_until(deadline.min(Instant::now() + LOADING_RETRY)).await;
        } else {
            super::fetch::wait_for_data(&mut watchers, deadline).await;
        }
    }
}

/// Errors of a share-partition whose durable state is not reachable yet (the share
/// coordinator loads or creates its topic): the fetch waits on, and answers no records
/// rather than an error if the wait ends first.
fn is_loading(error: ResponseError) -> bool {
    matches!(
        error,
        ResponseError::CoordinatorLoadInProgress
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::NotCoordinator
            | ResponseError::RequestTimedOut
    )
}

/// One pass over the session's partitions; also whether some partition's state is still
/// loading.
async fn fetch_once(
    ctx: &RequestContext,
    key: &SessionKey,
    partitions: &[SharedPartition],
    ask: FetchAsk,
) -> (BTreeMap<SharedPartition, Answer>, bool) {
    let settings = settings(&ctx.broker, &key.group);
    let mut loading = false;
    let mut answers = BTreeMap::new();
    let mut remaining = ask.max_records;
    let mut bytes = ask.max_bytes;
    for &(topic, partition) in partitions {
        let mut answer = Answer::default();
        if let Err(error) = readable_partition(ctx, topic, partition) {
            answer.error = Some(error);
        } else if remaining > 0 && bytes > 0 {
            let this = FetchAsk {
                max_records: remaining,
                max_bytes: bytes,
                ..ask
            };
            let now = crate::clock::now_ms();
            let manager = &ctx.broker.share_partitions;
            let sp = share_key(key, topic, partition);
            match manager.fetch(&sp, &key.member, &settings, this, now).await {
                Ok(fetched) => {
                    let count: i64 = fetched.acquired.iter().map(|a| a.last - a.first + 1).sum();
                    remaining = remaining.saturating_sub(usize::try_from(count).unwrap_or(0));
                    bytes = bytes.saturating_sub(fetched.records.len());
                    answer.fetched = fetched;
                }
                Err(error) if is_loading(error) => loading = true,
                Err(error) => answer.error = Some(error),
            }
        }
        answers.insert((topic, partition), answer);
    }
    (answers, loading)
}

/// The response: every partition answered, grouped by topic, with the leaders of those
/// answered NOT_LEADER_OR_FOLLOWER; the record sets left in their files go beside it.
fn response(
    ctx: &RequestContext,
    answers: BTreeMap<SharedPartition, Answer>,
    lock_ms: i64,
) -> FileAnswer<ShareFetchResponse> {
    let mut topics: BTreeMap<uuid::Uuid, Vec<PartitionData>> = BTreeMap::new();
    let mut files: BTreeMap<uuid::Uuid, Vec<Option<ReadPlan>>> = BTreeMap::new();
    let mut leaders = BTreeSet::new();
    for ((topic, partition), answer) in answers {
        let mut data = PartitionData::default()
            .with_partition_index(partition)
            .with_error_code(answer.error.map_or(0, |e| e.code()))
            .with_acknowledge_error_code(answer.acknowledge_error);
        if answer.error == Some(ResponseError::NotLeaderOrFollower) {
            let (leader, epoch) = current_leader(&ctx.broker, topic, partition);
            leaders.insert(leader);
            data = data.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(leader)
                    .with_leader_epoch(epoch),
            );
        } else {
            data = data.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(-1)
                    .with_leader_epoch(-1),
            );
        }
        let mut file = None;
        if !answer.fetched.acquired.is_empty() {
            let acquired = answer
                .fetched
                .acquired
                .iter()
                .map(|a| {
                    AcquiredRecords::default()
                        .with_first_offset(a.first)
                        .with_last_offset(a.last)
                        .with_delivery_count(i16::try_from(a.delivery_count).unwrap_or(i16::MAX))
                })
                .collect();
            let records = match answer.fetched.records {
                ShareRecords::Memory(bytes) => bytes,
                ShareRecords::File(plan) => {
                    file = Some(plan);
                    Bytes::new()
                }
            };
            data = data
                .with_records(Some(records))
                .with_acquired_records(acquired);
        }
        topics.entry(topic).or_default().push(data);
        files.entry(topic).or_default().push(file);
    }
    let node_endpoints = endpoints(ctx, leaders)
        .into_iter()
        .map(node_endpoint!(NodeEndpoint))
        .collect();
    let response = ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(i32::try_from(lock_ms).unwrap_or(i32::MAX))
        .with_responses(
            topics
                .into_iter()
                .map(|(topic_id, partitions)| {
                    ShareFetchableTopicResponse::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_node_endpoints(node_endpoints);
    FileAnswer {
        response,
        files: files.into_values().collect(),
    }
}

impl Refuse for ShareFetchRequest {
    type Response = ShareFetchResponse;
    fn refuse(self, error: ResponseError) -> ShareFetchResponse {
        ShareFetchResponse::default().with_error_code(error.code())
    }
}
