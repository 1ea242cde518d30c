//! ListOffsets: earliest, latest, max-timestamp and by-timestamp offsets, and the tiered
//! offsets (KIP-405's earliest-local, KIP-1005's latest-tiered, KIP-1023's earliest pending
//! upload), which without tiered storage are the local ones or none. On a tiered topic a lookup
//! by timestamp searches the remote log first, for at most the request's `timeout_ms` (KIP-1075,
//! v10), as Kafka's delayed remote ListOffsets do.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use tokio::time::Instant;

use super::{topic_lookup, RequestContext};
use crate::acl::Operation;
use crate::error_codes::storage_code;
use crate::partition::Partition;
use crate::tiered::{TieredError, TieredStorage};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
/// KIP-1005: the highest offset in tiered storage (-1 when nothing is uploaded yet); none
/// for topics that are not tiered.
const LATEST_TIERED: i64 = -5;
/// KIP-1023: the first offset not yet uploaded to tiered storage; none for topics that are not
/// tiered.
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// An offset found, with its record's timestamp (-1 for the special offsets), or none.
type Found = Option<(i64, i64)>;

/// Whether `version` may ask for `timestamp`: each special timestamp from the version that
/// introduced it, as Kafka's `timestampMinSupportedVersion` has it; other negative values never
/// (Kafka answers both UNSUPPORTED_VERSION).
fn supported(timestamp: i64, version: i16) -> bool {
    let since = match timestamp {
        ts if ts >= 0 => 0,
        LATEST | EARLIEST => 1,
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL => 8,
        LATEST_TIERED => 9,
        EARLIEST_PENDING_UPLOAD => 11,
        _ => return false,
    };
    version >= since
}

/// KIP-1023's earliest pending upload offset of a tiered partition (Kafka's
/// `UnifiedLog.fetchEarliestPendingUploadOffset`): the offset after the last one uploaded, not
/// below the log start; with nothing uploaded, the log start when the local log starts there
/// too (nothing ever was), else none (the remote log is not known here yet).
fn earliest_pending_upload(copied_end: Option<i64>, start: i64, local_start: i64) -> Found {
    match copied_end {
        Some(end) => Some((end.max(start), -1)),
        None if local_start == start => Some((start, -1)),
        None => None,
    }
}

/// What an answer other than latest, earliest and earliest-local is held to (Kafka's
/// `lastFetchableOffset` and `maybeOffsetsError`): nothing at or past the last offset the client
/// may read is reported, and a leader whose high watermark has not reached the start of its
/// epoch (KIP-207) says so rather than answer none.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    last_fetchable: i64,
    settling: bool,
}

impl Bounds {
    fn apply(self, found: Found) -> Result<Found, ResponseError> {
        match found {
            Some((offset, _)) if offset >= self.last_fetchable => self.apply(None),
            None if self.settling => Err(ResponseError::OffsetNotAvailable),
            found => Ok(found),
        }
    }
}

/// A lookup by timestamp on a tiered topic, searched in the bucket before the local log.
struct RemoteSearch {
    tiered: Arc<TieredStorage>,
    partition: Arc<Partition>,
    timestamp: i64,
    /// The log start (in the bucket or on disk).
    start: i64,
    local_start: i64,
}

impl RemoteSearch {
    /// The remote log's answer, or the local log's when the bucket holds none; REQUEST_TIMED_OUT
    /// past `deadline` (Kafka's expired DelayedRemoteListOffsets), KAFKA_STORAGE_ERROR when the
    /// bucket fails (retriable, as for a remote fetch).
    async fn run(&self, deadline: Instant) -> Result<Found, ResponseError> {
        let remote = async {
            self.tiered
                .offset_for_timestamp(
                    &self.partition,
                    self.timestamp,
                    self.start,
                    self.local_start,
                )
                .await
                .inspect_err(|error| {
                    tracing::warn!(partition = ?self.partition, %error, "ListOffsets by timestamp cannot read the remote log");
                })
        };
        match within(deadline, remote).await? {
            Some(found) => Ok(Some(found)),
            None => self
                .partition
                .with_log(|log| log.offset_for_timestamp(self.timestamp))
                .map_err(|e| storage_code(&e)),
        }
    }

    /// The epoch of what [`Self::run`] found.
    fn epoch_of(&self, found: &Result<Found, ResponseError>) -> i32 {
        written_in(&self.partition, found)
    }
}

/// What a remote search gave by `deadline`: its answer, REQUEST_TIMED_OUT past it, or
/// KAFKA_STORAGE_ERROR when the bucket failed.
async fn within<T>(
    deadline: Instant,
    search: impl std::future::Future<Output = Result<T, TieredError>>,
) -> Result<T, ResponseError> {
    match tokio::time::timeout_at(deadline, search).await {
        Err(_) => Err(ResponseError::RequestTimedOut),
        Ok(Err(_)) => Err(ResponseError::KafkaStorageError),
        Ok(Ok(found)) => Ok(found),
    }
}

/// The leader epoch an answer carries (v4+): the epoch its offset was written in (Kafka's
/// `epochForOffset`, so a consumer validating its position after a seek compares the right
/// epoch), -1 when the epoch cache does not reach it or nothing was found.
fn written_in(partition: &Partition, found: &Result<Found, ResponseError>) -> i32 {
    match found {
        Ok(Some((offset, _))) => partition
            .with_log(|log| log.epoch_for_offset(*offset))
            .unwrap_or(-1),
        _ => -1,
    }
}

/// One partition's answer as far as it is known without waiting.
enum Plan {
    /// Known, with its leader epoch.
    Answered(Result<Found, ResponseError>, i32),
    /// Known once the remote log is searched, then held to the bounds.
    Remote(RemoteSearch, Bounds),
}

/// Answers offset lookups for each partition asked about.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let version = ctx.version();
    let read_committed = request.isolation_level == 1;
    // v10's timeout; none (0, or an older version) is the broker's. Only tiered topics wait.
    let wait = u64::try_from(request.timeout_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    let deadline = Instant::now()
        + wait.unwrap_or_else(|| {
            ctx.broker
                .tiered
                .as_ref()
                .map_or(Duration::from_secs(30), |t| t.list_offsets_timeout())
        });
    let duplicates = duplicate_partitions(&request);
    let duplicates = &duplicates;
    let topics = request.topics.into_iter().map(|topic| {
        let allowed = ctx.check_topic(Operation::Describe, &topic.name);
        let plans: Vec<(i32, Plan)> = topic
            .partitions
            .iter()
            .map(|wanted| {
                let index = wanted.partition_index;
                let planned = allowed
                    .and_then(|()| unique(duplicates, &topic.name, index))
                    .and_then(|()| plan(&ctx, &topic.name, wanted, version, read_committed));
                (
                    index,
                    planned.unwrap_or_else(|code| Plan::Answered(Err(code), -1)),
                )
            })
            .collect();
        async move {
            let partitions = join_all(plans.into_iter().map(|(index, plan)| async move {
                let (found, epoch) = match plan {
                    Plan::Answered(found, epoch) => (found, epoch),
                    Plan::Remote(search, bounds) => {
                        let found = search.run(deadline).await.and_then(|f| bounds.apply(f));
                        let epoch = search.epoch_of(&found);
                        (found, epoch)
                    }
                };
                respond(index, epoch, found, version)
            }))
            .await;
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        }
    });
    ListOffsetsResponse::default().with_topics(join_all(topics).await)
}

/// What a partition answers: authorized by the caller, refused as Kafka refuses (a timestamp
/// the version cannot ask for, then leadership and epoch), else looked up.
fn plan(
    ctx: &RequestContext,
    topic: &str,
    wanted: &ListOffsetsPartition,
    version: i16,
    read_committed: bool,
) -> Result<Plan, ResponseError> {
    if !supported(wanted.timestamp, version) {
        return Err(ResponseError::UnsupportedVersion);
    }
    let p = topic_lookup::leader(&ctx.broker, topic, wanted.partition_index)?;
    topic_lookup::check_leader_epoch(&p, wanted.current_leader_epoch)?;
    let epoch = p.leader_epoch();
    let high_watermark = p.with_log(|log| log.high_watermark());
    let bounds = Bounds {
        // READ_COMMITTED readers see the log end as the last stable offset.
        last_fetchable: if read_committed {
            p.last_stable_offset()
        } else {
            high_watermark
        },
        // A new leader whose high watermark has not reached the start of its epoch does not
        // know the end yet (KIP-207).
        settling: p.epoch_start_offset() > high_watermark,
    };
    // Tiered topics: the log starts in the bucket.
    let tiered = ctx
        .broker
        .tiered
        .as_ref()
        .filter(|_| p.with_log(|log| log.config().remote_storage));
    let local_start = p.with_log(|log| log.log_start_offset());
    let start = tiered.map_or(local_start, |t| t.log_start_offset(&p, local_start));
    let copied_end = tiered.and_then(|t| t.copied_end(&p));
    let found = match wanted.timestamp {
        LATEST if bounds.settling => Err(ResponseError::OffsetNotAvailable),
        LATEST => Ok(Some((bounds.last_fetchable, -1))),
        EARLIEST => Ok(Some((start, -1))),
        EARLIEST_LOCAL => Ok(Some((local_start, -1))),
        LATEST_TIERED => Ok(copied_end.map(|end| (end - 1, -1))),
        EARLIEST_PENDING_UPLOAD if tiered.is_some() => {
            Ok(earliest_pending_upload(copied_end, start, local_start))
        }
        EARLIEST_PENDING_UPLOAD => Ok(None),
        MAX_TIMESTAMP => p
            .with_log(|log| log.max_timestamp())
            .map_err(|e| storage_code(&e)),
        timestamp => match tiered {
            Some(tiered) => {
                let search = RemoteSearch {
                    tiered: tiered.clone(),
                    partition: p,
                    timestamp,
                    start,
                    local_start,
                };
                return Ok(Plan::Remote(search, bounds));
            }
            None => p
                .with_log(|log| log.offset_for_timestamp(timestamp))
                .map_err(|e| storage_code(&e)),
        },
    };
    let found = match wanted.timestamp {
        LATEST | EARLIEST | EARLIEST_LOCAL => found,
        _ => found.and_then(|f| bounds.apply(f)),
    };
    // The latest offset carries the leader's epoch, as Kafka's `Partition` answers it.
    let epoch = match wanted.timestamp {
        LATEST => epoch,
        _ => written_in(&p, &found),
    };
    Ok(Plan::Answered(found, epoch))
}

/// The partitions a request names more than once, which Kafka answers INVALID_REQUEST
/// wherever they appear (`ListOffsetsRequest.duplicatePartitions`).
fn duplicate_partitions(request: &ListOffsetsRequest) -> HashSet<(String, i32)> {
    let mut seen = HashSet::new();
    let mut twice = HashSet::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let key = (topic.name.to_string(), p.partition_index);
            if seen.contains(&key) {
                twice.insert(key);
            } else {
                seen.insert(key);
            }
        }
    }
    twice
}

/// INVALID_REQUEST for a partition the request names more than once.
fn unique(
    duplicates: &HashSet<(String, i32)>,
    topic: &str,
    index: i32,
) -> Result<(), ResponseError> {
    // Almost every request names each partition once: no key to build then.
    if !duplicates.is_empty() && duplicates.contains(&(topic.to_owned(), index)) {
        Err(ResponseError::InvalidRequest)
    } else {
        Ok(())
    }
}

/// The partition's response at `version`: the offset with its timestamp and the leader epoch
/// (v4+), none (-1s), or the error, OFFSET_NOT_AVAILABLE being LEADER_NOT_AVAILABLE before v5
/// (KIP-207), as Kafka answers.
fn respond(
    index: i32,
    epoch: i32,
    found: Result<Found, ResponseError>,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let response = ListOffsetsPartitionResponse::default()
        .with_partition_index(index)
        .with_timestamp(-1)
        .with_offset(-1)
        .with_leader_epoch(-1);
    match found {
        Ok(Some((offset, timestamp))) => {
            let response = response.with_offset(offset).with_timestamp(timestamp);
            // leaderEpoch exists from v4 on.
            if version >= 4 {
                response.with_leader_epoch(epoch)
            } else {
                response
            }
        }
        Ok(None) => response,
        Err(ResponseError::OffsetNotAvailable) if version < 5 => {
            response.with_error_code(ResponseError::LeaderNotAvailable.code())
        }
        Err(code) => response.with_error_code(code.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_special_timestamp_needs_the_version_that_introduced_it() {
        for (timestamp, since) in [
            (EARLIEST, 1),
            (LATEST, 1),
            (MAX_TIMESTAMP, 7),
            (EARLIEST_LOCAL, 8),
            (LATEST_TIERED, 9),
            (EARLIEST_PENDING_UPLOAD, 11),
        ] {
            assert!(
                !supported(timestamp, since - 1),
                "{timestamp} at v{}",
                since - 1
            );
            assert!(supported(timestamp, since), "{timestamp} at v{since}");
        }
        assert!(supported(0, 1) && supported(1_700_000_000_000, 11));
        assert!(!supported(-7, 11) && !supported(i64::MIN, 11));
    }

    #[test]
    fn the_earliest_pending_upload_follows_the_upload_end_or_the_log_start() {
        // Uploaded up to 500 (exclusive).
        assert_eq!(earliest_pending_upload(Some(500), 0, 300), Some((500, -1)));
        // DeleteRecords moved the log start past what was uploaded.
        assert_eq!(
            earliest_pending_upload(Some(500), 700, 700),
            Some((700, -1))
        );
        // Nothing uploaded ever: the log start.
        assert_eq!(earliest_pending_upload(None, 40, 40), Some((40, -1)));
        // Nothing known uploaded, yet the local log starts above the log start.
        assert_eq!(earliest_pending_upload(None, 0, 300), None);
    }

    #[tokio::test]
    async fn a_remote_search_past_its_deadline_is_request_timed_out_and_a_failed_one_a_storage_error(
    ) {
        let soon = Instant::now() + Duration::from_millis(50);
        let silent = std::future::pending::<Result<Found, TieredError>>();
        assert_eq!(
            within(soon, silent).await,
            Err(ResponseError::RequestTimedOut)
        );
        let later = Instant::now() + Duration::from_secs(60);
        let failed = async { Err::<Found, _>(TieredError::Settings("down".into())) };
        assert_eq!(
            within(later, failed).await,
            Err(ResponseError::KafkaStorageError)
        );
        let answered = async { Ok::<Found, TieredError>(Some((3, 1_000))) };
        assert_eq!(within(later, answered).await, Ok(Some((3, 1_000))));
    }

    #[test]
    fn answers_at_or_past_the_last_fetchable_offset_are_none_or_not_available_yet() {
        let open = Bounds {
            last_fetchable: 100,
            settling: false,
        };
        assert_eq!(open.apply(Some((99, 5))), Ok(Some((99, 5))));
        assert_eq!(open.apply(Some((100, 5))), Ok(None));
        assert_eq!(open.apply(None), Ok(None));
        let settling = Bounds {
            settling: true,
            ..open
        };
        assert_eq!(settling.apply(Some((99, 5))), Ok(Some((99, 5))));
        assert_eq!(
            settling.apply(Some((100, 5))),
            Err(ResponseError::OffsetNotAvailable)
        );
        assert_eq!(settling.apply(None), Err(ResponseError::OffsetNotAvailable));
    }
}
