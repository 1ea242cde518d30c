//! A coordinator's view of its internal topic (`__consumer_offsets` for groups,
//! `__transaction_state` for transactions): append key/value records as one RecordBatch v2 and
//! wait until it is committed, and read a partition back when loading. The [`CoordinatorLog`]
//! trait keeps the coordinators testable without real storage and free of the broker's types
//! (the broker implements it over its partitions).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use tributary_storage::ProducerRef;
use tributary_storage::StorageError;

/// The broker's own error behind a [`LogError`]: the coordinators only log it.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a coordinator's topic could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The broker is shutting down.
    #[error("the broker is shutting down")]
    Closed,
    /// The topic does not exist and could not be created.
    #[error("cannot create {topic}: {source}")]
    Create {
        topic: &'static str,
        #[source]
        source: Cause,
    },
    /// The partition does not exist.
    #[error("{topic} has no partition {partition}")]
    NoPartition { topic: &'static str, partition: i32 },
    /// The topic is being created; the client retries.
    #[error("{topic} is being created")]
    Creating { topic: &'static str },
    /// The partition refused the append (not its leader any more, fenced, storage failed).
    #[error("append to {topic} failed: {source}")]
    Append {
        topic: &'static str,
        #[source]
        source: Cause,
    },
    /// The batch is over the topic's size limit.
    #[error("append to {topic} failed: {source}")]
    TooLarge {
        topic: &'static str,
        #[source]
        source: Cause,
    },
    /// Reading the partition failed.
    #[error("reading {topic} failed: {source}")]
    Read {
        topic: &'static str,
        #[source]
        source: StorageError,
    },
    /// Records no longer needed could not be deleted.
    #[error("cannot delete old records of {topic}: {source}")]
    Delete {
        topic: &'static str,
        #[source]
        source: StorageError,
    },
    /// Records could not be encoded.
    #[error("cannot encode records: {0}")]
    Encode(String),
    /// The write did not become durable in time.
    #[error("the write was not durable within {0:?}")]
    Timeout(Duration),
    /// The append path refused the write, or it committed short of what was asked, for a
    /// reason it holds client writes to (min.insync.replicas, internal topics, no records);
    /// Kafka answers those COORDINATOR_NOT_AVAILABLE to a coordinator's clients.
    #[error("{topic} did not take the write: {source}")]
    NotTaken {
        topic: &'static str,
        #[source]
        source: Cause,
    },
}

impl LogError {
    /// The Kafka error a client sees when its coordinator write fails. Kafka's coordinators
    /// map storage failures of their topics to coordinator errors, which every client
    /// retries; a write not replicated in time is COORDINATOR_NOT_AVAILABLE, never
    /// REQUEST_TIMED_OUT, which the Java consumer's group heartbeat takes as fatal.
    pub fn code(&self) -> ResponseError {
        match self {
            LogError::TooLarge { .. } => ResponseError::InvalidCommitOffsetSize,
            LogError::Append { .. } | LogError::Read { .. } | LogError::Delete { .. } => {
                ResponseError::NotCoordinator
            }
            LogError::Timeout(_)
            | LogError::Closed
            | LogError::Create { .. }
            | LogError::NoPartition { .. }
            | LogError::Creating { .. }
            | LogError::NotTaken { .. } => ResponseError::CoordinatorNotAvailable,
            LogError::Encode(_) => ResponseError::UnknownServerError,
        }
    }

    /// The Kafka error a coordinator's own state write answers (the transaction and share
    /// coordinators), as Kafka maps them (`TransactionStateManager.appendTransactionToLog`):
    /// retriable coordinator errors, except for a record that cannot be stored, which is the
    /// broker's fault.
    pub fn state_write_code(&self) -> ResponseError {
        match self.code() {
            ResponseError::InvalidCommitOffsetSize | ResponseError::UnknownServerError => {
                ResponseError::UnknownServerError
            }
            code => code,
        }
    }
}

/// A key and value (`None` for a tombstone) to append.
pub type Entry = (Bytes, Option<Bytes>);

/// An append that happened; `durable` resolves once it survives a crash.
pub struct Appended {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Resolves when the records are durable (or that failed).
    pub durable: BoxFuture<'static, Result<(), LogError>>,
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Offset in the partition.
    pub offset: i64,
    /// Key (`None` for a transaction marker).
    pub key: Option<Bytes>,
    /// Value (`None` for a tombstone).
    pub value: Option<Bytes>,
    /// Whether the record belongs to a transaction, or ends one.
    pub txn: RecordTxn,
}

/// A record's part in a producer's transaction: the group coordinator writes the offsets of
/// TxnOffsetCommit as transactional records, which count only once the transaction
/// coordinator's COMMIT marker follows them (Kafka's pending transactional offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordTxn {
    /// An ordinary record, in effect at once.
    #[default]
    None,
    /// Written in `producer_id`'s open transaction.
    Data {
        /// The producer whose marker decides the record's fate.
        producer_id: i64,
    },
    /// The marker ending `producer_id`'s transaction: COMMIT (`commit`) or ABORT.
    Marker {
        /// The producer whose transaction ended.
        producer_id: i64,
        /// COMMIT or ABORT.
        commit: bool,
    },
}

/// A chunk read from a partition.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Records in offset order.
    pub records: Vec<LogRecord>,
    /// Where the next read starts.
    pub next_offset: i64,
    /// The read reached the end of what is committed.
    pub at_end: bool,
}

/// Storage of a coordinator's records: one internal topic, whose partition leaders are the
/// coordinators of the keys hashed to them.
pub trait CoordinatorLog: Send + Sync + 'static {
    /// Partition count of the topic, `None` while it does not exist or is still being created.
    fn partitions(&self) -> Option<i32>;
    /// Creates the topic with `partitions` unless it exists; returns its partition count.
    fn ensure_topic(&self, partitions: i32) -> Result<i32, LogError>;
    /// Appends `entries` to `partition` as one batch, now, in `txn`'s transaction if given;
    /// the returned future waits for durability for at most `timeout`.
    fn append(
        &self,
        partition: i32,
        entries: &[Entry],
        txn: Option<ProducerRef>,
        now_wall: i64,
        timeout: Duration,
    ) -> Result<Appended, LogError>;
    /// Reads records of `partition` from `offset`.
    fn read(&self, partition: i32, offset: i64) -> Result<Chunk, LogError>;
    /// The leader epoch of `partition` while this broker leads it (and so coordinates its
    /// keys), `None` otherwise.
    fn leader_epoch(&self, partition: i32) -> Option<i32>;
    /// The broker leading `partition` (the coordinator FindCoordinator names), if any.
    fn leader(&self, partition: i32) -> Option<i32>;
    /// Whether the cluster metadata names this broker `partition`'s leader (or, in a view
    /// behind the broker that sent the client, no leader yet) while its replica has not taken
    /// the role ([`CoordinatorLog::leader_epoch`] is still `None`): clients FindCoordinator
    /// sent here are told to wait, not to look elsewhere.
    fn taking_leadership(&self, partition: i32) -> bool;
    /// Deletes the records of `partition` below `offset`, which the coordinator no longer
    /// needs (the share coordinator prunes its topic so, as Kafka's does); returns the log
    /// start offset after.
    fn delete_before(&self, partition: i32, offset: i64) -> Result<i64, LogError>;
}

/// Encodes `entries` as one uncompressed RecordBatch v2 with base offset 0, a transactional
/// batch of `txn` if given (without a sequence, as Kafka's coordinators write them).
pub fn encode_batch(
    entries: &[Entry],
    txn: Option<ProducerRef>,
    now_wall: i64,
) -> Result<Bytes, LogError> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let offset = i64::try_from(i).unwrap_or(i64::MAX);
            Record {
                transactional: txn.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: txn.map_or(-1, |p| p.id),
                producer_epoch: txn.map_or(-1, |p| p.epoch),
                timestamp_type: TimestampType::Creation,
                offset,
                // offset - sequence stays constant so the encoder keeps one batch, whose base
                // sequence is then -1 (no sequence).
                sequence: i32::try_from(offset - 1).unwrap_or(i32::MAX),
                timestamp: now_wall,
                key: Some(key.clone()),
                value: value.clone(),
                headers: IndexMap::new(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::Encode(e.to_string()))?;
    Ok(buf.freeze())
}

/// Splits whole batches out of `data` and decodes their records (a transaction marker as a
/// record without key); a batch that does not decode is skipped with a warning (its offsets
/// are still passed). Returns the records and the offset after the last batch seen.
pub fn decode_batches(mut data: Bytes, mut next_offset: i64) -> (Vec<LogRecord>, i64) {
    const HEADER: usize = 8 + 4 + 4 + 1 + 4 + 2 + 4;
    let mut out = Vec::new();
    while data.len() >= HEADER {
        let base_offset = i64::from_be_bytes(data[0..8].try_into().unwrap_or_default());
        let length = i32::from_be_bytes(data[8..12].try_into().unwrap_or_default());
        let Some(total) = usize::try_from(length).ok().map(|l| l + 12) else {
            break;
        };
        if data.len() < total || total < HEADER {
            break;
        }
        let last_delta = i32::from_be_bytes(data[23..27].try_into().unwrap_or_default());
        let mut batch = data.split_to(total);
        // Saturating: these are bytes read back from disk, never trusted to be in range.
        next_offset = base_offset
            .saturating_add(i64::from(last_delta))
            .saturating_add(1);
        match RecordBatchDecoder::decode(&mut batch) {
            Ok(set) => out.extend(set.records.into_iter().filter_map(log_record)),
            Err(error) => {
                tracing::warn!(base_offset, %error, "skipping an undecodable coordinator batch")
            }
        }
    }
    (out, next_offset)
}

/// A decoded record as a coordinator replays it; `None` for a control record that is not a
/// transaction marker.
fn log_record(r: Record) -> Option<LogRecord> {
    let txn = if r.control {
        // A control record's key: version (int16), then type (int16): 0 ABORT, 1 COMMIT.
        let kind = r
            .key
            .as_ref()
            .filter(|k| k.len() >= 4)
            .map(|k| [k[2], k[3]]);
        match kind.map(i16::from_be_bytes) {
            Some(kind @ (0 | 1)) => RecordTxn::Marker {
                producer_id: r.producer_id,
                commit: kind == 1,
            },
            _ => return None,
        }
    } else if r.transactional {
        RecordTxn::Data {
            producer_id: r.producer_id,
        }
    } else {
        RecordTxn::None
    };
    let (key, value) = if r.control {
        (None, None)
    } else {
        (r.key, r.value)
    };
    Some(LogRecord {
        offset: r.offset,
        key,
        value,
        txn,
    })
}

/// An in-memory [`CoordinatorLog`] for tests: real batch encoding, offsets assigned on append,
/// instant durability (unless failures are injected).
#[cfg(any(test, feature = "test-support"))]
pub mod memory {
    use futures::FutureExt;
    use parking_lot::Mutex;

    use super::*;

    /// The topic name the memory log's errors give.
    const TEST_TOPIC: &str = "memory-log";

    /// Per partition: its batches and its end offset.
    type Partitions = Vec<(Vec<Bytes>, i64)>;

    /// Batches per partition, with their base offsets patched in.
    #[derive(Default)]
    pub struct MemoryLog {
        partitions: Mutex<Option<Partitions>>,
        /// When set, appends fail.
        pub fail_appends: std::sync::atomic::AtomicBool,
        /// Leadership per partition where a test set it; every partition is led (epoch 0)
        /// otherwise.
        leaders: Mutex<std::collections::HashMap<i32, Option<i32>>>,
        /// Partitions named led here whose replica has not taken the role yet.
        taking: Mutex<std::collections::HashSet<i32>>,
        /// Each partition's log start offset, where records were deleted below one.
        starts: Mutex<std::collections::HashMap<i32, i64>>,
    }

    impl MemoryLog {
        /// `partition`'s log start offset (0 until records are deleted).
        pub fn log_start(&self, partition: i32) -> i64 {
            self.starts.lock().get(&partition).copied().unwrap_or(0)
        }

        /// A log whose topic already exists with `n` partitions.
        pub fn with_partitions(n: i32) -> MemoryLog {
            let log = MemoryLog::default();
            *log.partitions.lock() = Some((0..n).map(|_| (Vec::new(), 0)).collect());
            log
        }

        /// Makes this broker lead `partition` at `epoch` (`None`: another broker leads it).
        pub fn set_leader(&self, partition: i32, epoch: Option<i32>) {
            self.leaders.lock().insert(partition, epoch);
        }

        /// Marks `partition` as named led here by the metadata while its replica has not
        /// taken the role (`false`: no longer), as between an election and the role change.
        pub fn set_taking(&self, partition: i32, taking: bool) {
            if taking {
                self.taking.lock().insert(partition);
            } else {
                self.taking.lock().remove(&partition);
            }
        }

        /// Appends the marker ending `producer`'s transaction to `partition`.
        pub fn append_marker(&self, partition: i32, producer: ProducerRef, commit: bool) {
            let mut guard = self.partitions.lock();
            let Some((batches, end)) = guard
                .as_mut()
                .and_then(|p| p.get_mut(usize::try_from(partition).ok()?))
            else {
                panic!("no partition {partition}");
            };
            let marker = tributary_storage::marker_batch(producer.id, producer.epoch, commit, 0, 0)
                .expect("a marker encodes");
            batches.push(at_offset(&marker, *end));
            *end += 1;
        }

        /// Every record of `partition`.
        pub fn records(&self, partition: i32) -> Vec<LogRecord> {
            let mut offset = 0;
            let mut out = Vec::new();
            while let Ok(chunk) = self.read(partition, offset) {
                out.extend(chunk.records);
                if chunk.at_end {
                    break;
                }
                offset = chunk.next_offset;
            }
            out
        }
    }

    /// `batch` with its base offset set to `offset`.
    fn at_offset(batch: &[u8], offset: i64) -> Bytes {
        let mut batch = BytesMut::from(batch);
        batch[0..8].copy_from_slice(&offset.to_be_bytes());
        batch.freeze()
    }

    impl CoordinatorLog for MemoryLog {
        fn partitions(&self) -> Option<i32> {
            self.partitions
                .lock()
                .as_ref()
                .and_then(|p| i32::try_from(p.len()).ok())
        }

        fn ensure_topic(&self, partitions: i32) -> Result<i32, LogError> {
            let mut guard = self.partitions.lock();
            let p = guard.get_or_insert_with(|| (0..partitions).map(|_| (Vec::new(), 0)).collect());
            Ok(i32::try_from(p.len()).unwrap_or(partitions))
        }

        fn append(
            &self,
            partition: i32,
            entries: &[Entry],
            txn: Option<ProducerRef>,
            now_wall: i64,
            _timeout: Duration,
        ) -> Result<Appended, LogError> {
            if self.fail_appends.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(LogError::NoPartition {
                    topic: TEST_TOPIC,
                    partition,
                });
            }
            let mut guard = self.partitions.lock();
            let (batches, end) = guard
                .as_mut()
                .and_then(|p| p.get_mut(usize::try_from(partition).ok()?))
                .ok_or(LogError::NoPartition {
                    topic: TEST_TOPIC,
                    partition,
                })?;
            let encoded = encode_batch(entries, txn, now_wall)?;
            let base_offset = *end;
            batches.push(at_offset(&encoded, base_offset));
            *end += i64::try_from(entries.len()).unwrap_or(0);
            Ok(Appended {
                base_offset,
                durable: futures::future::ready(Ok(())).boxed(),
            })
        }

        fn read(&self, partition: i32, offset: i64) -> Result<Chunk, LogError> {
            let guard = self.partitions.lock();
            let (batches, end) = guard
                .as_ref()
                .and_then(|p| p.get(usize::try_from(partition).ok()?))
                .ok_or(LogError::NoPartition {
                    topic: TEST_TOPIC,
                    partition,
                })?;
            let mut data = BytesMut::new();
            for b in batches {
                data.extend_from_slice(b);
            }
            let (records, next) = decode_batches(data.freeze(), offset);
            let from = offset.max(self.log_start(partition));
            Ok(Chunk {
                records: records.into_iter().filter(|r| r.offset >= from).collect(),
                next_offset: next,
                at_end: true,
            })
            .map(|mut c: Chunk| {
                c.at_end = c.next_offset >= *end;
                c
            })
        }

        fn leader(&self, partition: i32) -> Option<i32> {
            // The test broker is node 0; a partition led elsewhere is led by node 1.
            Some(
                if self.leader_epoch(partition).is_some() || self.taking_leadership(partition) {
                    0
                } else {
                    1
                },
            )
        }

        fn leader_epoch(&self, partition: i32) -> Option<i32> {
            if let Some(set) = self.leaders.lock().get(&partition) {
                return *set;
            }
            let guard = self.partitions.lock();
            let count = guard.as_ref().map_or(0, Vec::len);
            (usize::try_from(partition).is_ok_and(|p| p < count)).then_some(0)
        }

        fn delete_before(&self, partition: i32, offset: i64) -> Result<i64, LogError> {
            let mut starts = self.starts.lock();
            let start = starts.entry(partition).or_insert(0);
            *start = (*start).max(offset);
            Ok(*start)
        }

        fn taking_leadership(&self, partition: i32) -> bool {
            self.taking.lock().contains(&partition)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_coordinator_batches_are_skipped_never_panics() {
        use tributary_storage::hostile::{never_panics, seal_batch};
        let entries = vec![(Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1")))];
        let mut samples = tributary_storage::test_util::sample_batches();
        samples.push(encode_batch(&entries, None, 1234).expect("encode").to_vec());
        never_panics(samples, seal_batch, |bytes| {
            let _ = decode_batches(Bytes::copy_from_slice(bytes), 0);
            let _ = decode_batches(Bytes::copy_from_slice(bytes), i64::MAX);
        });
    }

    /// What Kafka's group coordinator answers for each way its write can fail
    /// (`GroupCoordinatorService.handleOperationException`): only retriable coordinator
    /// errors, never REQUEST_TIMED_OUT.
    #[test]
    fn failed_coordinator_writes_answer_retriable_coordinator_errors() {
        let cases = [
            (
                LogError::Timeout(Duration::from_secs(5)),
                ResponseError::CoordinatorNotAvailable,
            ),
            (LogError::Closed, ResponseError::CoordinatorNotAvailable),
            (
                LogError::Append {
                    topic: "__consumer_offsets",
                    source: std::io::Error::other("not the leader").into(),
                },
                ResponseError::NotCoordinator,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
            assert_eq!(error.state_write_code(), code, "{error}");
        }
    }

    #[test]
    fn one_batch_per_append_round_trips() {
        let entries = vec![
            (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
            (Bytes::from_static(b"k2"), None),
        ];
        let batch = encode_batch(&entries, None, 1234).unwrap();
        let infos = RecordBatchDecoder::decode_batch_info(&mut batch.clone()).unwrap();
        assert_eq!(infos.len(), 1, "a single batch");
        assert_eq!(infos[0].producer_id, -1);
        assert_eq!(infos[0].base_sequence, -1);
        let (records, next) = decode_batches(batch, 0);
        assert_eq!(next, 2);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].value, None, "tombstone keeps a null value");
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
    }

    #[test]
    fn corrupt_batches_are_skipped_but_offsets_advance() {
        let good = encode_batch(&[(Bytes::from_static(b"k"), None)], None, 0).unwrap();
        let mut bad = BytesMut::from(&good[..]);
        bad[0..8].copy_from_slice(&5i64.to_be_bytes());
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // breaks the CRC
        let mut data = BytesMut::from(&good[..]);
        data.extend_from_slice(&bad);
        let (records, next) = decode_batches(data.freeze(), 0);
        assert_eq!(records.len(), 1);
        assert_eq!(next, 6);
    }
}
