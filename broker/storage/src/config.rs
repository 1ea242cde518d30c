//! Per-partition log configuration (the subset of Kafka topic configs storage acts on).

/// How the broker treats record timestamps (Kafka `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Keep the producer's timestamps.
    #[default]
    CreateTime,
    /// Overwrite each batch's max timestamp with the broker's clock at append.
    LogAppendTime,
}

/// Storage settings of one partition; defaults match Kafka's broker defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Roll to a new segment before this many bytes (Kafka `segment.bytes`).
    pub segment_bytes: u64,
    /// Roll when the active segment's first append is older than this (Kafka `segment.ms`).
    pub segment_ms: i64,
    /// Delete segments whose newest record is older than this; -1 keeps forever
    /// (Kafka `retention.ms`).
    pub retention_ms: i64,
    /// Delete oldest segments while the log is larger than this; -1 means unlimited
    /// (Kafka `retention.bytes`).
    pub retention_bytes: i64,
    /// Largest batch accepted, header included (Kafka `max.message.bytes`).
    pub max_message_bytes: u32,
    /// Bytes of log between two sparse index entries (Kafka `index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// Whether the broker stamps batches with its own clock.
    pub timestamp_type: TimestampType,
    /// How far in the past a CreateTime record timestamp may be (Kafka
    /// `message.timestamp.before.max.ms`, or the deprecated `difference.max.ms`).
    pub timestamp_before_max_ms: i64,
    /// How far in the future it may be (Kafka `message.timestamp.after.max.ms`).
    pub timestamp_after_max_ms: i64,
    /// What a compressed batch may expand to when produced, so a compression bomb is refused
    /// (broker setting `max.uncompressed.batch.bytes`).
    pub max_uncompressed_batch_bytes: u64,
    /// `cleanup.policy` has `delete`: retention by time and size removes old segments.
    pub delete: bool,
    /// `cleanup.policy` has `compact`: closed segments keep the latest record per key.
    pub compact: bool,
    /// How long tombstones survive compaction (Kafka `delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// Records younger than this are never compacted away (Kafka `min.compaction.lag.ms`),
    /// so consumers within it see every update.
    pub min_compaction_lag_ms: i64,
    /// The longest a record stays uncompactable in the active segment (Kafka
    /// `max.compaction.lag.ms`): a compacted log rolls at this age as at `segment.ms`, and a
    /// dirty segment this old is cleaned whatever the dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// Share of the log not yet cleaned at which a pass runs (Kafka
    /// `min.cleanable.dirty.ratio`), so big compacted logs are not reread on every roll.
    pub min_cleanable_dirty_ratio: f64,
    /// Unsynced records that force an fsync of writes no producer waits on (Kafka
    /// `flush.messages`); `i64::MAX` leaves them to the OS and to segment rolls.
    pub flush_messages: i64,
    /// Longest time such writes stay unsynced (Kafka `flush.ms`); `i64::MAX` for no limit.
    pub flush_ms: i64,
    /// The topic is tiered (Kafka `remote.storage.enable`, with the broker's
    /// `remote.log.storage.system.enable`): local retention deletes only uploaded segments,
    /// by the `local.retention.*` limits; `retention.*` bound the remote log.
    pub remote_storage: bool,
    /// Local part of the log kept by age when tiered (Kafka `local.retention.ms`; -2 means
    /// `retention.ms`).
    pub local_retention_ms: i64,
    /// Local part of the log kept by size when tiered (Kafka `local.retention.bytes`; -2
    /// means `retention.bytes`).
    pub local_retention_bytes: i64,
    /// Reserve a new segment's whole `segment.bytes` on disk at its first append (Kafka
    /// `preallocate`); otherwise segments reserve a small window ahead of their appends.
    pub preallocate: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        const WEEK_MS: i64 = 7 * 24 * 60 * 60 * 1000;
        Self {
            segment_bytes: 1 << 30,
            segment_ms: WEEK_MS,
            retention_ms: WEEK_MS,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            max_uncompressed_batch_bytes: 128 << 20,
            delete: true,
            compact: false,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            remote_storage: false,
            local_retention_ms: -2,
            local_retention_bytes: -2,
            preallocate: false,
        }
    }
}

impl LogConfig {
    /// Segment size limit clamped so file positions always fit the index's u32 and Kafka's
    /// i32 positions.
    pub(crate) fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, i32::MAX as u64)
    }

    /// What a segment reserves on disk at its first append when `preallocate` is on.
    pub(crate) fn preallocated_bytes(&self) -> Option<u64> {
        self.preallocate.then(|| self.effective_segment_bytes())
    }

    /// The limits local retention applies, (ms, bytes): `local.retention.*` on a tiered
    /// topic (-2 falling back to `retention.*`), else `retention.*`.
    pub(crate) fn local_retention(&self) -> (i64, i64) {
        if !self.remote_storage {
            return (self.retention_ms, self.retention_bytes);
        }
        let or_total = |local: i64, total: i64| if local == -2 { total } else { local };
        (
            or_total(self.local_retention_ms, self.retention_ms),
            or_total(self.local_retention_bytes, self.retention_bytes),
        )
    }

    /// The limits retention deletes segments by, (ms, bytes), -1 for none. With `delete`, the
    /// local ones ([`LogConfig::local_retention`]). A compacted-only log is bounded by
    /// compaction instead, and an empty `cleanup.policy` (Kafka 4, KIP-1161) keeps every
    /// segment, except that a tiered log still keeps only its local part on disk, as Kafka's
    /// `deleteOldSegments` does: the bucket holds the rest, for good.
    pub(crate) fn retention_limits(&self) -> (i64, i64) {
        if self.delete || (self.remote_storage && !self.compact) {
            self.local_retention()
        } else {
            (-1, -1)
        }
    }

    /// Age at which the active segment rolls: `segment.ms`, or `max.compaction.lag.ms` if
    /// sooner on a compacted log (only closed segments are compacted).
    pub(crate) fn roll_ms(&self) -> i64 {
        if self.compact {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
}
