//! ListOffsets by timestamp over the remote log, as Kafka's `RemoteLogManager`
//! `findOffsetByTimestamp` searches it (KIP-405; bounded in time by KIP-1075's `timeout_ms`, which
//! the caller applies): the first finished segment holding offsets from the log start whose
//! largest timestamp reaches the target is searched from where its time and offset indexes
//! point, and within it the first batch reaching both the timestamp and the log start is
//! decoded for its first such record. A segment still on the local disk is searched there
//! instead (the same bytes, no download), and nothing found in the bucket leaves the search to
//! the local log, as Kafka's `UnifiedLog` falls back to it.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::cache::TIME_INDEX_PIECE;
use super::error::TieredError;
use super::manifest::RemoteSegment;
use super::read::{self, Window};
use super::store::LOG;
use super::{TieredStorage, INDEX_PIECE};
use tributary_replication::partition::Partition;
use tributary_storage::batch::HEADER_LEN;
use tributary_storage::BatchView;

/// Bytes of one time index entry: timestamp (i64) and offset relative to the base (u32).
const TIME_ENTRY: usize = 12;

/// The offset a segment's time index (Kafka's `.timeindex`: timestamp i64 and offset relative
/// to `base_offset` u32, big-endian, by growing timestamp) gives for `timestamp`: that of its
/// last entry at or below it, where no earlier record reaches it; the base without one.
pub fn time_index_offset(index: &[u8], base_offset: i64, timestamp: i64) -> i64 {
    let mut offset = base_offset;
    for entry in index.chunks_exact(TIME_ENTRY) {
        let (Some(ts), Some(relative)) = (
            entry.get(..8).and_then(|b| b.try_into().ok()),
            entry.get(8..).and_then(|b| b.try_into().ok()),
        ) else {
            break;
        };
        if i64::from_be_bytes(ts) > timestamp {
            break;
        }
        offset = base_offset + i64::from(u32::from_be_bytes(relative));
    }
    offset
}

/// The first whole batch of `window` (bytes of a segment from a batch boundary;
/// `to_segment_end` when it reaches the segment's end) whose largest timestamp reaches
/// `timestamp` and whose last offset reaches `start`, as Kafka's `lookupTimestamp` picks it,
/// or none in the segment. A corrupt batch header is an error, never a panic.
pub fn timestamp_batch(
    window: &Bytes,
    to_segment_end: bool,
    timestamp: i64,
    start: i64,
) -> Result<Window<Option<Bytes>>, String> {
    let mut position = 0usize;
    while position < window.len() {
        let rest = window.get(position..).unwrap_or_default();
        if rest.len() < HEADER_LEN {
            if to_segment_end {
                return Err(format!("truncated batch header at byte {position}"));
            }
            return Ok(Window::NeedBytes(position + HEADER_LEN));
        }
        let header =
            BatchView::header(rest).map_err(|e| format!("batch at byte {position}: {e}"))?;
        let end = position + header.size();
        let wanted = header.max_timestamp() >= timestamp && header.last_offset() >= start;
        if wanted {
            return match window.get(position..end) {
                Some(_) => Ok(Window::Found(Some(window.slice(position..end)))),
                None if to_segment_end => Err(format!(
                    "batch at byte {position} runs past the segment's end"
                )),
                None => Ok(Window::NeedBytes(end)),
            };
        }
        if end > window.len() {
            if to_segment_end {
                return Err(format!(
                    "batch at byte {position} runs past the segment's end"
                ));
            }
            return Ok(Window::NeedBytes(end + HEADER_LEN));
        }
        position = end;
    }
    Ok(Window::Found(None))
}

/// (offset, timestamp) of the first record of `batch` at or after `timestamp` and `start`,
/// every record of a LogAppendTime batch carrying the batch's timestamp.
pub fn first_record_at(
    batch: Bytes,
    timestamp: i64,
    start: i64,
) -> Result<Option<(i64, i64)>, String> {
    let header = BatchView::header(&batch).map_err(|e| e.to_string())?;
    let (log_append, batch_time) = (header.is_log_append_time(), header.max_timestamp());
    let mut buf = batch;
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| e.to_string())?;
    Ok(set
        .records
        .iter()
        .map(|r| (r.offset, if log_append { batch_time } else { r.timestamp }))
        .find(|&(offset, ts)| ts >= timestamp && offset >= start))
}

impl TieredStorage {
    /// How long a lookup by timestamp waits for the bucket when the request names no timeout
    /// (Kafka's `remote.list.offsets.request.timeout.ms`).
    pub fn list_offsets_timeout(&self) -> std::time::Duration {
        self.settings.list_offsets_timeout
    }

    /// The first record at or after `timestamp` from offset `start` (the log start) that the
    /// remote log alone holds, as (offset, timestamp); `Ok(None)` leaves the search to the
    /// local log from its start (`local_log_start`): the first segment that qualifies is
    /// still local, or holds no such record, or none qualifies. Bucket failures are errors,
    /// counted by kind.
    pub async fn offset_for_timestamp(
        &self,
        partition: &Partition,
        timestamp: i64,
        start: i64,
        local_log_start: i64,
    ) -> Result<Option<(i64, i64)>, TieredError> {
        let search = async {
            let manifest = self.manifest(partition).await?;
            let qualifies =
                |s: &&RemoteSegment| s.max_timestamp >= timestamp && s.end_offset > start;
            let Some(segment) = manifest.readable().find(qualifies) else {
                return Ok(None);
            };
            if segment.base_offset >= local_log_start {
                return Ok(None);
            }
            let at = self.path_of(partition);
            let time_index = self.piece(&at, segment, TIME_INDEX_PIECE).await?;
            let base = segment.base_offset;
            let indexed = time_index_offset(&time_index, base, timestamp).max(start);
            let index = self.piece(&at, segment, INDEX_PIECE).await?;
            let from = read::start_position(&index, base, indexed, segment.size_bytes);
            let want = self.settings.read_ahead_bytes.max(1);
            let batch = self
                .scan(&at, segment, from, want, |window, at_end| {
                    timestamp_batch(window, at_end, timestamp, start)
                })
                .await?;
            let Some(batch) = batch else {
                return Ok(None);
            };
            first_record_at(batch, timestamp, start).map_err(|reason| TieredError::Corrupt {
                path: at.segment(base, segment.id, LOG).to_string(),
                reason,
            })
        };
        let result = search.await;
        if let Err(error) = &result {
            self.count_error(error);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::*;
    use tributary_storage::test_util::{encode, record};

    /// One encoded batch of records at `base` with these timestamps.
    fn batch(base: i64, timestamps: &[i64], compression: Compression) -> Vec<u8> {
        let records: Vec<_> = (0..)
            .zip(timestamps)
            .map(|(i, &timestamp)| {
                let mut r = record(i, None, Some("v"));
                r.offset = base + i64::from(i);
                r.timestamp = timestamp;
                r
            })
            .collect();
        encode(&records, compression).to_vec()
    }

    /// Batches at 100 (times 1000, 1010), 102 (gzip: 1050, 1020, 1060) and 105 (1100).
    fn segment() -> Bytes {
        let mut s = batch(100, &[1_000, 1_010], Compression::None);
        s.extend(batch(102, &[1_050, 1_020, 1_060], Compression::Gzip));
        s.extend(batch(105, &[1_100], Compression::None));
        Bytes::from(s)
    }

    fn found(timestamp: i64, start: i64) -> Option<(i64, i64)> {
        match timestamp_batch(&segment(), true, timestamp, start).expect("segment") {
            Window::Found(Some(b)) => first_record_at(b, timestamp, start).expect("batch"),
            Window::Found(None) => None,
            Window::NeedBytes(n) => panic!("needs {n} bytes of a whole segment"),
        }
    }

    #[test]
    fn the_first_record_reaching_the_timestamp_and_the_start_is_found() {
        assert_eq!(found(0, 0), Some((100, 1_000)));
        assert_eq!(found(1_005, 0), Some((101, 1_010)));
        // Out of order inside a compressed batch: the first record reaching it, by offset.
        assert_eq!(found(1_015, 0), Some((102, 1_050)));
        assert_eq!(found(1_055, 0), Some((104, 1_060)));
        assert_eq!(found(1_061, 0), Some((105, 1_100)));
        assert_eq!(found(1_101, 0), None);
        // Nothing below the start counts.
        assert_eq!(found(0, 103), Some((103, 1_020)));
    }

    #[test]
    fn a_window_short_of_the_batch_asks_for_more() {
        let s = segment();
        let first = batch(100, &[1_000, 1_010], Compression::None).len();
        assert_eq!(
            timestamp_batch(&s.slice(..10), false, 1_050, 0),
            Ok(Window::NeedBytes(HEADER_LEN))
        );
        assert!(matches!(
            timestamp_batch(&s.slice(..first + HEADER_LEN), false, 1_050, 0),
            Ok(Window::NeedBytes(n)) if n > first + HEADER_LEN
        ));
        assert!(matches!(
            timestamp_batch(&s.slice(..first + 5), false, 1_050, 0),
            Ok(Window::NeedBytes(_))
        ));
        assert_eq!(timestamp_batch(&s, true, 5_000, 0), Ok(Window::Found(None)));
    }

    #[test]
    fn corrupt_segments_are_errors() {
        let s = segment();
        assert!(timestamp_batch(&s.slice(..30), true, 0, 0).is_err());
        let first = batch(100, &[1_000, 1_010], Compression::None).len();
        assert!(
            timestamp_batch(&s.slice(..first + HEADER_LEN + 5), true, 5_000, 0).is_err(),
            "a batch cut by the segment's end"
        );
        assert!(timestamp_batch(&Bytes::from(vec![0xff; 200]), false, 0, 0).is_err());
        let mut bad = s.to_vec();
        bad[70] ^= 0xff;
        if let Ok(Window::Found(Some(b))) = timestamp_batch(&Bytes::from(bad), true, 0, 0) {
            assert_eq!(b.len(), first);
            // A damaged record body decodes to an error or to some record, never a panic.
            let _ = first_record_at(b, 0, 0);
        }
    }

    #[test]
    fn the_time_index_points_at_its_last_entry_not_after_the_timestamp() {
        let mut index = Vec::new();
        for (ts, rel) in [(1_000i64, 0u32), (1_050, 2), (1_100, 5)] {
            index.extend_from_slice(&ts.to_be_bytes());
            index.extend_from_slice(&rel.to_be_bytes());
        }
        assert_eq!(time_index_offset(&index, 100, 999), 100);
        assert_eq!(time_index_offset(&index, 100, 1_049), 100);
        assert_eq!(time_index_offset(&index, 100, 1_050), 102);
        assert_eq!(time_index_offset(&index, 100, 9_999), 105);
        assert_eq!(time_index_offset(&[], 100, 9_999), 100);
        assert_eq!(
            time_index_offset(&index[..7], 100, 9_999),
            100,
            "a torn entry"
        );
    }
}
