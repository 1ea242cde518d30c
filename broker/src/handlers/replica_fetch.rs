//! Fetch from a follower (a replica id in the request, Fetch v15+ `ReplicaState`): served by
//! the leader up to its log end rather than the high watermark, without client quotas or
//! isolation but with the leader's replication throttle for listed replicas outside the ISR, with the divergence check of KIP-595 (`DivergingEpoch`), and recording the
//! follower's position, which moves the high watermark and may add it to the ISR. Long-polls
//! on the leader's log end.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fetch::{error_data, wait_for_data, wanted_topics, WantedTopic};
use super::{topic_lookup, RequestContext};
use crate::acl::Operation;
use crate::error_codes::storage_code;
use crate::partition::{ReplicaFetch, ReplicaRead};
use crate::quotas::replication::{is_throttled, LEADER_RATE_KEY, LEADER_REPLICAS_KEY};

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
) -> FetchResponse {
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
        let (responses, bytes, answer_now) =
            read_all(&ctx, &wanted, follower, registered, max_bytes);
        if bytes >= min_bytes || answer_now || Instant::now() >= deadline {
            return FetchResponse::default()
                .with_session_id(0)
                .with_responses(responses);
        }
        wait_for_data(&mut watchers, deadline).await;
    }
}

/// Reads every partition for the follower; returns the responses, the bytes read, and
/// whether to answer at once (an error or a divergence).
fn read_all(
    ctx: &RequestContext,
    wanted: &[WantedTopic],
    follower: FollowerId,
    registered: Option<i64>,
    max_bytes: usize,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0;
    let mut answer_now = false;
    let now_ms = crate::clock::now_ms();
    let image = ctx.broker.metadata.image();
    let me = ctx.broker.config.broker_id;
    let quota = &ctx.broker.replication_quotas.leader;
    let bound = ctx.broker.config.dynamic.replication_rate(LEADER_RATE_KEY);
    let responses = wanted
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|(p, replica)| {
                    let checked = replica
                        .as_ref()
                        .map_err(|code| *code)
                        .and_then(|partition| {
                            if partition.is_deleted() {
                                return Err(ResponseError::UnknownTopicOrPartition);
                            }
                            topic_lookup::check_leader_epoch(partition, p.current_leader_epoch)?;
                            Ok(partition)
                        });
                    let partition = match checked {
                        Ok(partition) => partition,
                        Err(code) => {
                            answer_now = true;
                            return error_data(p.partition, code, None);
                        }
                    };
                    let fetch = ReplicaFetch {
                        broker: follower.broker,
                        incarnation: follower.incarnation,
                        fetch_offset: p.fetch_offset,
                        last_fetched_epoch: p.last_fetched_epoch,
                        registered_incarnation: registered,
                    };
                    let limit = usize::try_from(p.partition_max_bytes)
                        .unwrap_or(0)
                        .min(remaining);
                    // A throttled replica over the leader's rate gets nothing this time; its
                    // fetch still reports its position (Kafka's shouldLeaderThrottle).
                    let throttled = bound.is_some()
                        && image.topic(&t.name).is_some_and(|topic| {
                            is_throttled(
                                &topic.configs,
                                LEADER_REPLICAS_KEY,
                                p.partition,
                                me,
                                || partition.is_in_sync(follower.broker),
                            )
                        });
                    let held = throttled && quota.exceeded(bound, now_ms);
                    match partition.read_for_follower(fetch, if held { 0 } else { limit }, now_ms) {
                        Ok((mut read, proposal)) => {
                            if let ReplicaRead::Data(data) = &mut read {
                                if held {
                                    data.records = Bytes::new();
                                } else if throttled {
                                    quota.record(data.records.len(), now_ms);
                                }
                            }
                            if let Some(proposal) = proposal {
                                ctx.broker
                                    .replicas
                                    .submit_isr_change(partition.clone(), proposal);
                            }
                            match read {
                                ReplicaRead::Data(data) => {
                                    remaining = remaining.saturating_sub(data.records.len());
                                    total += data.records.len();
                                    PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_high_watermark(data.high_watermark)
                                        .with_last_stable_offset(data.last_stable_offset)
                                        .with_log_start_offset(data.log_start_offset)
                                        .with_preferred_read_replica(BrokerId(-1))
                                        .with_records(Some(data.records))
                                }
                                ReplicaRead::Diverging {
                                    epoch,
                                    end_offset,
                                    high_watermark,
                                    log_start_offset,
                                } => {
                                    answer_now = true;
                                    PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_high_watermark(high_watermark)
                                        .with_log_start_offset(log_start_offset)
                                        .with_diverging_epoch(
                                            EpochEndOffset::default()
                                                .with_epoch(epoch)
                                                .with_end_offset(end_offset),
                                        )
                                        .with_preferred_read_replica(BrokerId(-1))
                                        .with_records(Some(Bytes::new()))
                                }
                            }
                        }
                        Err(error) => {
                            answer_now = true;
                            error_data(p.partition, storage_code(&error), Some(partition))
                        }
                    }
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.name.clone())
                .with_topic_id(t.id)
                .with_partitions(partitions)
        })
        .collect();
    (responses, total, answer_now)
}
