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

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use crate::test_util::{append, batch, open, simple, small_config, BatchSpec, NOW};
    use crate::{LogConfig, TimestampType};

    fn spec(timestamps: &[i64], compression: Compression) -> BatchSpec {
        BatchSpec {
            timestamps: timestamps.to_vec(),
            compression,
            ..BatchSpec::default()
        }
    }

    #[test]
    fn offset_for_timestamp_finds_the_first_record_at_or_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        for i in 0..30 {
            append(&mut log, simple(2, 1_000 + i * 10));
        }
        // Out-of-order timestamps inside a compressed batch: offsets 60, 61, 62.
        append(
            &mut log,
            batch(&spec(&[5_000, 4_000, 6_000], Compression::Gzip)),
        );
        append(&mut log, batch(&spec(&[4_500, 7_000], Compression::Lz4)));
        assert!(log.segment_count() > 1);
        assert_eq!(
            log.offset_for_timestamp(0).expect("lookup"),
            Some((0, 1_000))
        );
        assert_eq!(
            log.offset_for_timestamp(1_001).expect("lookup"),
            Some((1, 1_001))
        );
        assert_eq!(
            log.offset_for_timestamp(1_105).expect("lookup"),
            Some((22, 1_110))
        );
        assert_eq!(
            log.offset_for_timestamp(4_000).expect("lookup"),
            Some((60, 5_000))
        );
        assert_eq!(
            log.offset_for_timestamp(5_500).expect("lookup"),
            Some((62, 6_000))
        );
        assert_eq!(
            log.offset_for_timestamp(6_500).expect("lookup"),
            Some((64, 7_000))
        );
        assert_eq!(log.offset_for_timestamp(7_001).expect("lookup"), None);
    }

    #[test]
    fn max_timestamp_points_at_the_record_holding_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), small_config());
        assert_eq!(log.max_timestamp().expect("empty"), None);
        for i in 0..20 {
            append(&mut log, simple(2, 1_000 + i));
        }
        append(
            &mut log,
            batch(&spec(&[3_000, 9_000, 9_000, 2_000], Compression::Snappy)),
        );
        for i in 0..20 {
            append(&mut log, simple(2, 2_000 + i));
        }
        assert_eq!(log.max_timestamp().expect("lookup"), Some((41, 9_000)));
    }

    #[test]
    fn log_append_time_batches_use_the_batch_timestamp_for_every_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        log.append(&mut simple(3, 5), 0, NOW).expect("append");
        log.append(&mut simple(3, 5), 0, NOW + 10).expect("append");
        assert_eq!(
            log.offset_for_timestamp(NOW + 1).expect("lookup"),
            Some((3, NOW + 10))
        );
        assert_eq!(log.max_timestamp().expect("lookup"), Some((3, NOW + 10)));
    }
}
