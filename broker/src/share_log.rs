//! The share-partition manager's view of this broker's replicas ([`ShareLog`]): a
//! share-partition is served where its partition is led, reads whole batches up to the high
//! watermark (or the last stable offset under read_committed, with aborted transactions'
//! batches flagged so they are archived, never handed out), and finds a start offset by time
//! for `share.auto.offset.reset=by_duration`.

use std::sync::{Arc, Weak};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::partition::{Isolation, Partition};
use crate::replica::append::AppendHost;
use crate::share::manager::{LogChunk, ShareLog, ShareRecords};
use crate::share::partition::FetchedBatch;
use crate::storage::batch::BatchView;
use crate::storage::{AbortedRange, StorageError};

/// The broker's replicas as share fetches read them (weak: the broker owns the manager).
pub struct ReplicaShareLog {
    broker: Weak<dyn AppendHost>,
}

impl ReplicaShareLog {
    /// Reads through `broker`.
    pub fn new(broker: Weak<dyn AppendHost>) -> ReplicaShareLog {
        ReplicaShareLog { broker }
    }

    /// Partition `index` of the topic with id `topic`, hosted here.
    fn replica(&self, topic: Uuid, index: i32) -> Option<Arc<Partition>> {
        let broker = self.broker.upgrade()?;
        let image = broker.metadata().image();
        let name = &image.topic_by_id(&topic)?.name;
        broker.replicas().get(name, index)
    }

    /// The replica if this broker leads it.
    fn led(&self, topic: Uuid, index: i32) -> Option<Arc<Partition>> {
        self.replica(topic, index)
            .filter(|p| p.acts_as_leader() && !p.is_deleted())
    }
}

impl ShareLog for ReplicaShareLog {
    fn leader_epoch(&self, topic: Uuid, partition: i32) -> Option<i32> {
        self.led(topic, partition).map(|p| p.leader_epoch())
    }

    fn bounds(&self, topic: Uuid, partition: i32, read_committed: bool) -> Option<(i64, i64)> {
        let p = self.led(topic, partition)?;
        let end = if read_committed {
            p.last_stable_offset()
        } else {
            p.with_log(|log| log.high_watermark())
        };
        Some((p.with_log(|log| log.log_start_offset()), end))
    }

    fn read(
        &self,
        topic: Uuid,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
        from_file: bool,
    ) -> Result<LogChunk, ResponseError> {
        let p = self
            .led(topic, partition)
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        let isolation = if read_committed {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        };
        let refused = |error: StorageError| {
            tracing::debug!(?p, %error, offset, "share fetch read refused");
            crate::error_codes::storage_code(&error)
        };
        let planned = p
            .plan_read(offset, max_bytes, true, isolation)
            .map_err(refused)?;
        if from_file {
            // The offsets come from the batches' headers; their bytes go from the file.
            let batches = planned
                .records
                .batch_headers(|view| fetched_batch(view, &planned.aborted))
                .map_err(|source| refused(p.read_error(source)))?;
            return Ok(LogChunk {
                records: ShareRecords::File(planned.records),
                batches,
            });
        }
        let data = p.load(planned).map_err(refused)?;
        Ok(LogChunk {
            batches: batches_in(&data.records, &data.aborted),
            records: ShareRecords::Memory(data.records),
        })
    }

    fn offset_for_time(&self, topic: Uuid, partition: i32, timestamp_ms: i64) -> Option<i64> {
        let p = self.led(topic, partition)?;
        p.with_log(|log| match log.offset_for_timestamp(timestamp_ms) {
            Ok(Some((offset, _))) => Some(offset),
            Ok(None) => Some(log.high_watermark()),
            Err(_) => None,
        })
    }
}

/// The offsets of each whole batch in `records`; a transactional batch inside one of the
/// `aborted` transactions (read_committed) is flagged.
fn batches_in(records: &[u8], aborted: &[AbortedRange]) -> Vec<FetchedBatch> {
    let mut batches = Vec::new();
    let mut pos = 0;
    while let Some(view) = records.get(pos..).and_then(|rest| {
        BatchView::header(rest)
            .ok()
            .filter(|v| v.size() <= rest.len())
    }) {
        batches.push(fetched_batch(&view, aborted));
        pos += view.size();
    }
    batches
}

/// The batch `view` heads, flagged when it is inside one of the `aborted` transactions.
fn fetched_batch(view: &BatchView<'_>, aborted: &[AbortedRange]) -> FetchedBatch {
    let (first, last) = (view.base_offset(), view.last_offset());
    let aborted = view.is_transactional()
        && !view.is_control()
        && aborted.iter().any(|a| {
            a.producer_id == view.producer_id() && a.first_offset <= first && first < a.last_offset
        });
    FetchedBatch {
        first,
        last,
        aborted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::simple;

    #[test]
    fn every_whole_batch_is_listed_and_aborted_transactions_flagged() {
        let mut records = Vec::new();
        let mut first = simple(2, 0).to_vec();
        first[..8].copy_from_slice(&10i64.to_be_bytes());
        records.extend_from_slice(&first);
        let mut second = simple(3, 0).to_vec();
        second[..8].copy_from_slice(&12i64.to_be_bytes());
        records.extend_from_slice(&second);
        let listed = batches_in(&records, &[]);
        assert_eq!(
            listed,
            [
                FetchedBatch {
                    first: 10,
                    last: 11,
                    aborted: false
                },
                FetchedBatch {
                    first: 12,
                    last: 14,
                    aborted: false
                }
            ]
        );
        // A truncated tail (a partial batch) is not listed.
        assert_eq!(batches_in(&records[..records.len() - 1], &[]).len(), 1);

        // The second batch made transactional (attributes bit 4) by producer 9, whose
        // transaction from 12 was aborted by a marker at 15.
        let at = first.len();
        records[at + 22] |= 0x10;
        records[at + 43..at + 51].copy_from_slice(&9i64.to_be_bytes());
        let abort = |producer_id| AbortedRange {
            producer_id,
            first_offset: 12,
            last_offset: 15,
        };
        let flagged: Vec<bool> = batches_in(&records, &[abort(9)])
            .iter()
            .map(|b| b.aborted)
            .collect();
        assert_eq!(flagged, [false, true]);
        let other: Vec<bool> = batches_in(&records, &[abort(8)])
            .iter()
            .map(|b| b.aborted)
            .collect();
        assert_eq!(other, [false, false], "another producer's abort");
    }
}
