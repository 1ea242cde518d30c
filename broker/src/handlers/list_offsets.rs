//! ListOffsets: earliest, latest, max-timestamp and by-timestamp offsets (and the tiered
//! offsets of KIP-1005, which without tiered storage are the local ones or none).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{topic_lookup, RequestContext};
use crate::acl::Operation;
use crate::error_codes::storage_code;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
/// KIP-1005: the highest offset in tiered storage (-1 when nothing is uploaded yet); none
/// for topics that are not tiered.
const LATEST_TIERED: i64 = -5;

/// Answers offset lookups for each partition asked about.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let allowed = ctx.check_topic(Operation::Describe, &topic.name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|wanted| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(wanted.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    let lookup = allowed
                        .and_then(|()| {
                            topic_lookup::leader(&ctx.broker, &topic.name, wanted.partition_index)
                        })
                        .and_then(|p| {
                            topic_lookup::check_leader_epoch(&p, wanted.current_leader_epoch)?;
                            Ok(p)
                        })
                        .and_then(|p| {
                            let epoch = p.leader_epoch();
                            // READ_COMMITTED readers see the log end as the last stable offset.
                            let latest = if read_committed {
                                p.last_stable_offset()
                            } else {
                                p.with_log(|log| log.high_watermark())
                            };
                            // A new leader whose high watermark has not reached the start
                            // of its epoch does not know the end yet (KIP-207).
                            let settling =
                                p.epoch_start_offset() > p.with_log(|log| log.high_watermark());
                            // Tiered topics: the log starts in the bucket; -5 is the
                            // highest uploaded offset (KIP-1005).
                            let tiered = ctx
                                .broker
                                .tiered
                                .as_ref()
                                .filter(|_| p.with_log(|log| log.config().remote_storage));
                            let copied_end = tiered.and_then(|t| t.copied_end(&p));
                            p.with_log(|log| match wanted.timestamp {
                                LATEST if settling => Err(ResponseError::OffsetNotAvailable),
                                LATEST => Ok(Some((latest, -1))),
                                EARLIEST => {
                                    let local = log.log_start_offset();
                                    let start =
                                        tiered.map_or(local, |t| t.log_start_offset(&p, local));
                                    Ok(Some((start, -1)))
                                }
                                EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                                LATEST_TIERED if tiered.is_some() => {
                                    Ok(Some((copied_end.map_or(-1, |end| end - 1), -1)))
                                }
                                MAX_TIMESTAMP => log.max_timestamp().map_err(|e| storage_code(&e)),
                                LATEST_TIERED => Ok(None),
                                ts if ts >= 0 => {
                                    log.offset_for_timestamp(ts).map_err(|e| storage_code(&e))
                                }
                                _ => Err(ResponseError::InvalidRequest),
                            })
                            .map(|found| (found, epoch))
                        });
                    match lookup {
                        Ok((Some((offset, timestamp)), epoch)) => {
                            let response = response.with_offset(offset).with_timestamp(timestamp);
                            // leaderEpoch exists from v4 on.
                            if ctx.version() >= 4 {
                                response.with_leader_epoch(epoch)
                            } else {
                                response
                            }
                        }
                        Ok((None, _)) => response,
                        Err(code) => response.with_error_code(code.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
