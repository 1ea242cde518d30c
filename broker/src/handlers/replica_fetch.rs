//! Fetch from a follower (a replica id in the request, Fetch v15+ `ReplicaState`): served by
//! the leader up to its log end rather than the high watermark, without client quotas or
//! isolation but with the leader's replication throttle for listed replicas outside the ISR, with the divergence check of KIP-595 (`DivergingEpoch`), and recording the
//! follower's position, which moves the high watermark and may add it to the ISR. Long-polls
//! on the leader's log end.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fetch::{
    error_data, take_records, wait_for_data, wanted_topics, FetchAnswer, WantedTopic,
};
use super::{topic_lookup, RequestContext};
use crate::acl::Operation;
use crate::error_codes::storage_code;
use crate::frame_parts::FileRecords;
use crate::metadata::ClusterImage;
use crate::partition::{Partition, ReplicaFetch, ReplicaRead};
use crate::quotas::replication::{
    is_throttled, ReplicationQuota, LEADER_RATE_KEY, LEADER_REPLICAS_KEY,
};
use crate::storage::{ReadPlan, StorageError};

/// The follower a fetch comes from: its broker id and process incarnation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FollowerId {
    pub broker: i32,
    pub incarnation: i64,
}

/// The follower sending `request`, if a replica sent it.
pub(crate) fn follower_of(request: &FetchRequest, version: i16) -> Option<FollowerId> {
    let (broker, incarnation) = if version >= 15 {
        (
            request.replica_state.replica_id.0,
            request.replica_state.replica_epoch,
        )
    } else {
        (request.replica_id.0, -1)
    };
    (broker >= 0).then_some(FollowerId {
        broker,
        incarnation,
    })
}

/// Serves a follower's fetch.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: FetchRequest,
    follower: FollowerId,
) -> FetchAnswer {
    let registered = ctx
        .broker
        .metadata
        .image()
        .broker(follower.broker)
        .map(|b| b.incarnation);
    let member = ctx.may_on_cluster(Operation::ClusterAction);
    let wanted = wanted_topics(&ctx, request.topics, |_| member);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    let min_bytes = usize::try_from(request.min_bytes)
        .unwrap_or(0)
        .min(max_bytes);
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + max_wait;
    let mut watchers: Vec<watch::Receiver<i64>> = wanted
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|(_, replica)| replica.as_ref().ok())
        .map(|p| p.watch_log_end())
        .collect();
    loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let (responses, files, bytes, answer_now) =
            read_all(&ctx, &wanted, follower, registered, max_bytes);
        if bytes >= min_bytes || answer_now || Instant::now() >= deadline {
            return FetchAnswer {
                response: FetchResponse::default()
                    .with_session_id(0)
                    .with_responses(responses),
                files,
            };
        }
        wait_for_data(&mut watchers, deadline).await;
    }
}

/// Reads every partition for the follower; returns the responses, the record sets left in
/// their files, the bytes read, and whether to answer at once (an error or a divergence).
fn read_all(
    ctx: &RequestContext,
    wanted: &[WantedTopic],
    follower: FollowerId,
    registered: Option<i64>,
    max_bytes: usize,
) -> (Vec<FetchableTopicResponse>, FileRecords, usize, bool) {
    let reader = FollowerReader::new(ctx, follower, registered);
    let mut remaining = max_bytes;
    let mut total = 0;
    let mut answer_now = false;
    let mut files: FileRecords = Vec::with_capacity(wanted.len());
    let responses = wanted
        .iter()
        .map(|t| {
            let mut topic_files = Vec::with_capacity(t.partitions.len());
            let partitions = t
                .partitions
                .iter()
                .map(|(p, replica)| {
                    let limit = usize::try_from(p.partition_max_bytes)
                        .unwrap_or(0)
                        .min(remaining);
                    let served = reader.read(&t.name, p, replica, limit);
                    remaining = remaining.saturating_sub(served.bytes);
                    total += served.bytes;
                    answer_now |= served.answer_now;
                    topic_files.push(served.file);
                    served.data
                })
                .collect();
            files.push(topic_files);
            FetchableTopicResponse::default()
                .with_topic(t.name.clone())
                .with_topic_id(t.id)
                .with_partitions(partitions)
        })
        .collect();
    (responses, files, total, answer_now)
}

/// One partition's answer to the follower.
struct Served {
    data: PartitionData,
    /// Its record set, when it is sent from its file (`data` then has empty records).
    file: Option<ReadPlan>,
    /// The record bytes it carries.
    bytes: usize,
    /// Whether the fetch is answered without waiting for more (an error or a divergence).
    answer_now: bool,
}

impl Served {
    /// An answer that ends the wait: an error or a divergence, without records.
    fn at_once(data: PartitionData) -> Served {
        Served {
            data,
            file: None,
            bytes: 0,
            answer_now: true,
        }
    }
}

/// What one follower fetch reads each partition with: the same image, clock and leader
/// throttle for all of them.
struct FollowerReader<'a> {
    ctx: &'a RequestContext,
    follower: FollowerId,
    /// The follower's incarnation as registered, if it is.
    registered: Option<i64>,
    image: Arc<ClusterImage>,
    now_ms: i64,
    /// The leader's replication throttle.
    quota: &'a ReplicationQuota,
    /// Its rate, if one is set.
    bound: Option<u64>,
}

impl<'a> FollowerReader<'a> {
    fn new(ctx: &'a RequestContext, follower: FollowerId, registered: Option<i64>) -> Self {
        let now_ms = crate::clock::now_ms();
        FollowerReader {
            ctx,
            follower,
            registered,
            image: ctx.broker.metadata.image(),
            now_ms,
            quota: &ctx.broker.replication_quotas.leader,
            bound: ctx.broker.config.dynamic.replication_rate(LEADER_RATE_KEY),
        }
    }

    /// Reads partition `p` of `topic` for the follower, at most `limit` bytes, recording its
    /// position (and submitting the ISR change that may make).
    fn read(
        &self,
        topic: &str,
        p: &FetchPartition,
        replica: &Result<Arc<Partition>, ResponseError>,
        limit: usize,
    ) -> Served {
        let partition = match servable(replica, p.current_leader_epoch) {
            Ok(partition) => partition,
            Err(code) => return Served::at_once(error_data(p.partition, code, None)),
        };
        // A throttled replica over the leader's rate gets nothing this time; its fetch still
        // reports its position (Kafka's shouldLeaderThrottle).
        let throttled = self.throttled(topic, p.partition, partition);
        let held = throttled && self.quota.exceeded(self.bound, self.now_ms);
        let max_bytes = if held { 0 } else { limit };
        let from_files = self.ctx.client.sends_files();
        let read = partition
            .plan_for_follower(self.fetch_of(p), max_bytes, self.now_ms)
            .and_then(|(read, proposal)| Ok((take(partition, read, from_files)?, proposal)));
        match read {
            Ok(((mut read, mut file), proposal)) => {
                self.apply_throttle(&mut read, &mut file, held, throttled);
                if let Some(proposal) = proposal {
                    self.ctx
                        .broker
                        .replicas
                        .submit_isr_change(partition.clone(), proposal);
                }
                served(p.partition, read, file)
            }
            Err(error) => {
                let code = match &error {
                    StorageError::OffsetOutOfRange { .. } => {
                        self.out_of_local_range(partition, p.fetch_offset)
                    }
                    _ => storage_code(&error),
                };
                // The answer carries the leader's local log start, where a follower sent to
                // the remote log restarts.
                Served::at_once(error_data(p.partition, code, Some(partition)))
            }
        }
    }

    /// The error for a fetch outside the leader's local log: OFFSET_MOVED_TO_TIERED_STORAGE
    /// when the remote log holds the offset (KIP-405), else OFFSET_OUT_OF_RANGE.
    fn out_of_local_range(&self, partition: &Partition, fetch_offset: i64) -> ResponseError {
        let (tiered_topic, local_start) =
            partition.with_log(|log| (log.config().remote_storage, log.log_start_offset()));
        let remote_start = match &self.ctx.broker.tiered {
            Some(tiered) if tiered_topic => tiered.remote_log_start(partition),
            _ => None,
        };
        crate::tiered::plan::follower_out_of_range(fetch_offset, local_start, remote_start)
    }

    /// The follower's fetch of `p`, as the partition records it.
    fn fetch_of(&self, p: &FetchPartition) -> ReplicaFetch {
        ReplicaFetch {
            broker: self.follower.broker,
            incarnation: self.follower.incarnation,
            fetch_offset: p.fetch_offset,
            last_fetched_epoch: p.last_fetched_epoch,
            registered_incarnation: self.registered,
        }
    }

    /// Whether the leader throttles the follower's replica of `topic`'s `index`: a rate is
    /// set, the topic lists the replica, and it is out of the ISR.
    fn throttled(&self, topic: &str, index: i32, partition: &Partition) -> bool {
        self.bound.is_some()
            && self.image.topic(topic).is_some_and(|topic| {
                is_throttled(
                    &topic.configs,
                    LEADER_REPLICAS_KEY,
                    index,
                    self.ctx.broker.config.broker_id,
                    || partition.is_in_sync(self.follower.broker),
                )
            })
    }

    /// Empties the records of a `held` read (in memory or in `file`); counts those of a
    /// `throttled` one against the leader's rate.
    fn apply_throttle(
        &self,
        read: &mut ReplicaRead,
        file: &mut Option<ReadPlan>,
        held: bool,
        throttled: bool,
    ) {
        if let ReplicaRead::Data(data) = read {
            if held {
                data.records = Bytes::new();
                *file = None;
            } else if throttled {
                let len = data.records.len() + file.as_ref().map_or(0, |plan| plan.length);
                self.quota.record(len, self.now_ms);
            }
        }
    }
}

/// The partition behind `replica` if it may be read: it exists, is not deleted, and the
/// follower's leader epoch is current.
fn servable(
    replica: &Result<Arc<Partition>, ResponseError>,
    leader_epoch: i32,
) -> Result<&Arc<Partition>, ResponseError> {
    let partition = replica.as_ref().map_err(|code| *code)?;
    if partition.is_deleted() {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    topic_lookup::check_leader_epoch(partition, leader_epoch)?;
    Ok(partition)
}

/// What the leader planned for the follower, its records read into memory, or left in their
/// file (returned beside) for a connection that sends from files.
fn take(
    partition: &Partition,
    read: ReplicaRead<ReadPlan>,
    from_files: bool,
) -> Result<(ReplicaRead, Option<ReadPlan>), StorageError> {
    Ok(match read {
        ReplicaRead::Data(planned) => {
            let (data, file) = take_records(partition, planned, from_files)?;
            (ReplicaRead::Data(data), file)
        }
        ReplicaRead::Diverging {
            epoch,
            end_offset,
            high_watermark,
            log_start_offset,
        } => (
            ReplicaRead::Diverging {
                epoch,
                end_offset,
                high_watermark,
                log_start_offset,
            },
            None,
        ),
    })
}

/// Partition `index`'s answer from what the leader read for the follower (its record set in
/// `file` when it is sent from there).
fn served(index: i32, read: ReplicaRead, file: Option<ReadPlan>) -> Served {
    match read {
        ReplicaRead::Data(data) => Served {
            bytes: data.records.len() + file.as_ref().map_or(0, |plan| plan.length),
            file,
            answer_now: false,
            data: PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(data.high_watermark)
                .with_last_stable_offset(data.last_stable_offset)
                .with_log_start_offset(data.log_start_offset)
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(data.records)),
        },
        ReplicaRead::Diverging {
            epoch,
            end_offset,
            high_watermark,
            log_start_offset,
        } => Served::at_once(
            PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(high_watermark)
                .with_log_start_offset(log_start_offset)
                .with_diverging_epoch(
                    EpochEndOffset::default()
                        .with_epoch(epoch)
                        .with_end_offset(end_offset),
                )
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(Bytes::new())),
        ),
    }
}
