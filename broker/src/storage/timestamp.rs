//! ListOffsets by time: the first offset at or after a timestamp, and the offset of the
//! largest timestamp. Batch headers narrow the search; only the one batch that holds the
//! answer is decoded (with kafka-protocol, which handles compression).

use bytes::Bytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};

use super::batch::BatchHeaderInfo;
use super::error::{Result, StorageError};
use super::log::PartitionLog;
use super::segment::Segment;

impl PartitionLog {
    /// Earliest (offset, timestamp) of a record with timestamp >= `ts` at or after the log
    /// start (Kafka ListOffsets with a timestamp), or `None` when every record is older.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>> {
        let first = self.segment_index_for(self.log_start_offset);
        for segment in &self.segments[first..] {
            if segment.max_timestamp().0 < ts {
                continue;
            }
            let start = segment
                .time_index
                .lookup(ts)
                .map_or(0, |(_, offset)| segment.index.lookup(offset));
            let mut candidates = Vec::new();
            segment.scan_headers(u64::from(start), |h| {
                if h.max_timestamp >= ts && h.last_offset >= self.log_start_offset {
                    candidates.push(*h);
                    // One candidate is normally enough; keep a few in case a batch's max
                    // timestamp overstates its records.
                    return candidates.len() < 4;
                }
                true
            })?;
            for header in candidates {
                let found = self.first_record_matching(segment, &header, |r| r.timestamp >= ts)?;
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }

    /// (offset, timestamp) of the record with the largest timestamp (Kafka ListOffsets
    /// MAX_TIMESTAMP: the first such record), or `None` for an empty log.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let mut best: Option<&Segment> = None;
        for segment in self.segments.iter().filter(|s| !s.is_empty()) {
            if best.is_none_or(|b| segment.max_timestamp().0 > b.max_timestamp().0) {
                best = Some(segment);
            }
        }
        let Some(segment) = best else {
            return Ok(None);
        };
        let (ts, batch_last_offset) = segment.max_timestamp();
        let start = segment.index.lookup(batch_last_offset);
        let mut header = None;
        segment.scan_headers(u64::from(start), |h| {
            if h.max_timestamp == ts {
                header = Some(*h);
                return false;
            }
            true
        })?;
        let Some(header) = header else {
            return Ok(Some((batch_last_offset, ts)));
        };
        let found = self.first_record_matching(segment, &header, |r| r.timestamp == ts)?;
        Ok(Some(found.unwrap_or((header.last_offset, ts))))
    }

    /// Decodes one batch and returns the first record at or after the log start that matches,
    /// as (offset, timestamp). LogAppendTime batches give every record the batch timestamp.
    fn first_record_matching(
        &self,
        segment: &Segment,
        header: &BatchHeaderInfo,
        matches: impl Fn(&Record) -> bool,
    ) -> Result<Option<(i64, i64)>> {
        let bytes = segment.read_at(header.position, header.size as usize)?;
        let mut buf = Bytes::from(bytes);
        let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| StorageError::RecordDecode {
            offset: header.base_offset,
            reason: e.to_string(),
        })?;
        let log_append = header.is_log_append_time();
        for mut record in set.records {
            if log_append {
                record.timestamp = header.max_timestamp;
            }
            if record.offset >= self.log_start_offset && matches(&record) {
                return Ok(Some((record.offset, record.timestamp)));
            }
        }
        Ok(None)
    }
}
