//! The one append path, Kafka's `ReplicaManager.appendRecords`: client data, coordinator
//! state and transaction markers are all written through [`append_records`]. Per partition
//! it checks that this broker leads it, holds acks=all client writes to
//! `min.insync.replicas` (read once), appends with the checks the writer's [`Origin`] calls
//! for, starts the fsyncs, and hands back what the answer must wait for ([`WriteWait`]);
//! [`wait`] is that wait. Request-level work (authorization, quotas, the answer itself) stays
//! with the callers.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::time::Instant;

use tributary_storage::FlushDue;

use crate::error_codes::append_code;
use crate::flusher::Flusher;
use crate::metadata::{ClusterImage, MetadataCache, TopicImage};
use crate::partition::{AppendError, Appended, CommitWaitError, Durability, Partition, Role};
use crate::producer::{BatchIdentity, Marker, TxnIndex};
use crate::replicas::ReplicaManager;

/// What the append path needs of the broker around it: the cluster as it sees it, the
/// partitions it hosts, its group-commit flusher and its fsync settings. The broker
/// implements it, so this floor depends on no broker type.
pub trait AppendHost: Send + Sync {
    /// The cluster as this broker sees it: which partitions exist, and their ISRs.
    fn metadata(&self) -> &MetadataCache;

    /// The partitions this broker hosts.
    fn replicas(&self) -> &ReplicaManager;

    /// The group-commit fsync queue the writes are made durable through.
    fn flusher(&self) -> &Flusher;

    /// Whether producers' acknowledged writes wait for an fsync (or the commit journal).
    fn ack_durability(&self) -> AckDurability;
}

/// A shared host is a host: callers holding the broker in an `Arc` pass it as it is.
impl<T: AppendHost + ?Sized> AppendHost for Arc<T> {
    fn metadata(&self) -> &MetadataCache {
        (**self).metadata()
    }

    fn replicas(&self) -> &ReplicaManager {
        (**self).replicas()
    }

    fn flusher(&self) -> &Flusher {
        (**self).flusher()
    }

    fn ack_durability(&self) -> AckDurability {
        (**self).ack_durability()
    }
}

/// The broker's fsync settings for producers' writes, which decide what their answers wait
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckDurability {
    /// acks=all writes are fsynced (or journaled) before they are answered.
    pub fsync_acks_all: bool,
    /// acks=1 writes are fsynced (or journaled) on the leader before they are answered.
    pub fsync_acks_one: bool,
}

/// How many acknowledgements a producer asked for (the Produce request's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: the producer wants no answer.
    Zero,
    /// acks=1: the leader's write is enough.
    One,
    /// acks=all (-1): every in-sync replica, and at least `min.insync.replicas` of them.
    All,
}

impl Acks {
    /// What a request's `acks` asks for; `None` for the values Kafka refuses with
    /// INVALID_REQUIRED_ACKS.
    pub fn from_wire(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::Zero),
            1 => Some(Acks::One),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// Judges a client's transactional batch under the partition lock, against the partition's
/// open transactions (the transaction coordinator's check, or KIP-890's verification). The
/// produce handler implements it: only the request knows its transactional id and the
/// verdicts of its verification.
pub trait TxnCheck {
    /// Whether `batch` may be appended to `partition`, whose open transactions are `txns`.
    fn check(
        &self,
        partition: &Partition,
        batch: &BatchIdentity,
        txns: &TxnIndex,
    ) -> Result<(), AppendError>;
}

/// Who writes (Kafka's `AppendOrigin`): decides the checks a write passes and what its
/// answer waits for.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    /// A producer's Produce request: Kafka's rules for client batches, no internal topics,
    /// acks=all held to `min.insync.replicas`, transactional batches judged by `txn`.
    Client {
        /// What the answer waits for.
        acks: Acks,
        /// The request's check of its transactional batches.
        txn: &'a dyn TxnCheck,
    },
    /// A coordinator's own records in its internal topic (group metadata, offsets,
    /// transaction state): batches it encoded, checked for headers and CRCs only. Answered
    /// once committed, like acks=all, but not held to `min.insync.replicas`.
    Coordinator,
    /// The COMMIT or ABORT marker ending `producer`'s transaction (from the transaction
    /// coordinator or WriteTxnMarkers): answered once committed and fsynced, whatever the
    /// fsync settings for producers say, and not held to `min.insync.replicas`.
    TxnMarker(Marker),
}

impl Origin<'_> {
    /// The acks=all client writes, the only ones `min.insync.replicas` applies to.
    fn holds_to_min_isr(&self) -> bool {
        matches!(
            self,
            Origin::Client {
                acks: Acks::All,
                ..
            }
        )
    }
}

/// One partition an append names, with its data.
#[derive(Debug, Clone, Copy)]
pub struct PartitionData<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition index.
    pub index: i32,
    /// The record batches (`None`: the client sent none). Ignored for
    /// [`Origin::TxnMarker`], whose batch the partition builds.
    pub records: Option<&'a Bytes>,
}

/// One append of one writer to some partitions.
pub struct AppendRequest<'a> {
    /// Who writes.
    pub origin: Origin<'a>,
    /// The broker's clock at the request, stamped on LogAppendTime batches.
    pub now_ms: i64,
    /// The partitions, appended in this order.
    pub partitions: Vec<PartitionData<'a>>,
}

/// Why a partition did not take a write. [`AppendRecordsError::code`] is the Kafka error
/// a writer answering a client sends.
#[derive(Debug, thiserror::Error)]
pub enum AppendRecordsError {
    /// The cluster has no such partition, or it was deleted under the request.
    #[error("{topic}-{index} does not exist (it may have been deleted); refresh the metadata")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        index: i32,
    },
    /// Another broker leads the partition, or this one may not act as leader now (fenced).
    #[error(
        "this broker does not lead {topic}-{index} now; write to the leader the metadata names"
    )]
    NotLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        index: i32,
        /// This broker's role for the partition, `None` when it hosts no replica of it.
        role: Option<Role>,
    },
    /// Clients may not write internal topics; only their coordinators do.
    #[error("clients may not write the internal topic {topic}")]
    InternalTopic {
        /// Topic name.
        topic: String,
    },
    /// acks=all while the ISR is smaller than `min.insync.replicas`: nothing was written.
    #[error(
        "{topic}-{index} has {isr} in-sync replicas, fewer than min.insync.replicas={min_isr}; \
         retry once the ISR has grown"
    )]
    NotEnoughReplicas {
        /// Topic name.
        topic: String,
        /// Partition index.
        index: i32,
        /// The ISR's size in the metadata.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min_isr: usize,
    },
    /// A client's partition data held no record batch.
    #[error("the request holds no record batches for {topic}-{index}")]
    NoRecords {
        /// Topic name.
        topic: String,
        /// Partition index.
        index: i32,
    },
    /// The partition refused the batches (invalid, out of sequence, outside a transaction,
    /// a disk failure, or leadership lost at the last moment).
    #[error(transparent)]
    Append(#[from] AppendError),
}

impl AppendRecordsError {
    /// The Kafka error for this refusal.
    pub fn code(&self) -> ResponseError {
        match self {
            AppendRecordsError::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
            AppendRecordsError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
            AppendRecordsError::InternalTopic { .. } => ResponseError::InvalidTopicException,
            AppendRecordsError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            AppendRecordsError::NoRecords { .. } => ResponseError::CorruptMessage,
            AppendRecordsError::Append(error) => append_code(error),
        }
    }
}

/// What the answer to an accepted write waits for (Kafka's delayed produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// Nothing: it is answered at once (acks=0, and acks=1 without `fsync_acks_one`).
    Nothing,
    /// Everything below the write durable on this broker, whatever the followers have
    /// (acks=1 with `fsync_acks_one`).
    Local,
    /// Committed: below the high watermark (every in-sync replica has it) and, with
    /// [`Durability::Synced`], durable here. With `min_isr` (acks=all), the ISR must still
    /// have that many members then.
    Committed {
        /// Whether the write must also be fsynced or journaled here.
        durability: Durability,
        /// The `min.insync.replicas` the write is held to once committed.
        min_isr: Option<usize>,
    },
}

/// An accepted write's wait, for [`wait`].
#[derive(Debug, Clone)]
pub struct WriteWait {
    partition: Arc<Partition>,
    /// The offset after the write: what must be committed.
    end_offset: i64,
    wait_for: WaitFor,
}

impl WriteWait {
    /// The partition written.
    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// What the wait waits for.
    pub fn wait_for(&self) -> WaitFor {
        self.wait_for
    }

    /// The offset after the write: what must be committed.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// The same partition's wait for another end offset and condition, for the broker's
    /// tests of [`wait`] on a real partition.
    #[cfg(feature = "test-support")]
    pub fn retargeted(&self, end_offset: i64, wait_for: WaitFor) -> WriteWait {
        WriteWait {
            partition: Arc::clone(&self.partition),
            end_offset,
            wait_for,
        }
    }
}

/// A write a partition took.
#[derive(Debug)]
pub struct Accepted {
    /// Where it landed. A marker reports only its offsets (its base offset is the one before
    /// its end; no append time or log start offset).
    pub appended: Appended,
    /// What its answer waits for.
    pub wait: WriteWait,
}

/// One partition's outcome of [`append_records`].
pub type PartitionResult = Result<Accepted, AppendRecordsError>;

/// Why [`wait`] ended without the write being what its writer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// Not committed: the deadline passed, the partition was deleted, or leadership moved.
    #[error(transparent)]
    Commit(#[from] CommitWaitError),
    /// Committed, but the ISR shrank below `min.insync.replicas` meanwhile: the write may
    /// or may not survive, so the writer cannot count on it (Kafka's
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    #[error(
        "the write is committed, but the ISR shrank to {isr}, below min.insync.replicas={min_isr}"
    )]
    IsrShrank {
        /// The ISR's size when the write committed.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min_isr: usize,
    },
}

impl WaitError {
    /// The Kafka error for a write that was not committed as asked.
    pub fn code(&self) -> ResponseError {
        match self {
            WaitError::Commit(CommitWaitError::Gone) => ResponseError::UnknownTopicOrPartition,
            WaitError::Commit(CommitWaitError::TimedOut(_)) => ResponseError::RequestTimedOut,
            WaitError::Commit(CommitWaitError::NotLeader) => ResponseError::NotLeaderOrFollower,
            WaitError::IsrShrank { .. } => ResponseError::NotEnoughReplicasAfterAppend,
        }
    }
}

/// Appends each partition's data in order, then starts the fsyncs their answers wait for,
/// one group-commit round for the whole request; returns each partition's outcome in the
/// order of `request.partitions`.
pub fn append_records<H: AppendHost + ?Sized>(
    host: &H,
    request: AppendRequest<'_>,
) -> Vec<PartitionResult> {
    let policy = Policy::of(&request.origin, host.ack_durability());
    let journal = policy.journal && host.flusher().journal_ready();
    // One image for the whole request: every partition is judged against the same metadata.
    let image = host.metadata().image();
    let results: Vec<PartitionResult> = request
        .partitions
        .iter()
        .map(|data| append_partition(host, &image, &request, data, policy, journal))
        .collect();
    if policy.sync_now {
        start_syncs(host, &results);
    }
    results
}

/// [`append_records`] of one partition: the coordinators' writes, one record batch at a time.
pub fn append_one<H: AppendHost + ?Sized>(
    host: &H,
    origin: Origin<'_>,
    now_ms: i64,
    data: PartitionData<'_>,
) -> PartitionResult {
    let request = AppendRequest {
        origin,
        now_ms,
        partitions: vec![data],
    };
    // One outcome per partition: never empty.
    append_records(host, request).pop().unwrap_or_else(|| {
        Err(AppendRecordsError::UnknownPartition {
            topic: data.topic.to_string(),
            index: data.index,
        })
    })
}

/// Waits until `write` is what its writer asked for, at most until `deadline`. A write held
/// to `min.insync.replicas` is judged the moment it commits: an ISR that shrinks later does
/// not fail it.
pub async fn wait(write: &WriteWait, deadline: Instant) -> Result<(), WaitError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let partition = &write.partition;
    match write.wait_for {
        WaitFor::Nothing => Ok(()),
        WaitFor::Local => Ok(partition.wait_local(write.end_offset, left).await?),
        WaitFor::Committed {
            durability,
            min_isr,
        } => {
            partition
                .wait_committed(write.end_offset, durability, left)
                .await?;
            let isr = partition.isr_size();
            match min_isr {
                Some(min_isr) if isr < min_isr => Err(WaitError::IsrShrank { isr, min_isr }),
                _ => Ok(()),
            }
        }
    }
}

/// How an origin's writes are made durable and answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Policy {
    /// What the answer waits for (before `min.insync.replicas` is known).
    wait_for: WaitFor,
    /// The fsync is requested as soon as the appends are done (someone waits for it, or a
    /// coordinator wants its state on disk soon); otherwise the log's flush settings
    /// schedule it.
    sync_now: bool,
    /// The batches may go to the commit journal rather than wait for a segment fsync.
    journal: bool,
}

impl Policy {
    fn of(origin: &Origin<'_>, config: AckDurability) -> Policy {
        let durability = |fsync: bool| {
            if fsync {
                Durability::Synced
            } else {
                Durability::Written
            }
        };
        let committed = |durability| WaitFor::Committed {
            durability,
            min_isr: None,
        };
        match origin {
            Origin::Client {
                acks: Acks::All, ..
            } => {
                let synced = config.fsync_acks_all;
                Policy {
                    wait_for: committed(durability(synced)),
                    sync_now: synced,
                    journal: synced,
                }
            }
            Origin::Client {
                acks: Acks::One, ..
            } if config.fsync_acks_one => Policy {
                wait_for: WaitFor::Local,
                sync_now: true,
                journal: true,
            },
            Origin::Client { .. } => Policy {
                wait_for: WaitFor::Nothing,
                sync_now: false,
                journal: false,
            },
            Origin::Coordinator => Policy {
                wait_for: committed(durability(config.fsync_acks_all)),
                sync_now: true,
                journal: false,
            },
            Origin::TxnMarker(_) => Policy {
                wait_for: committed(Durability::Synced),
                sync_now: true,
                journal: false,
            },
        }
    }
}

/// One partition of [`append_records`]: leader check, the client-only refusals, the append,
/// and its wait.
fn append_partition<H: AppendHost + ?Sized>(
    host: &H,
    image: &ClusterImage,
    request: &AppendRequest<'_>,
    data: &PartitionData<'_>,
    policy: Policy,
    journal: bool,
) -> PartitionResult {
    let partition = leader(host, image, data)?;
    let min_isr = match request.origin {
        Origin::Client { .. } => admit_client(image, &partition, data, request)?,
        Origin::Coordinator | Origin::TxnMarker(_) => None,
    };
    let appended = write(&partition, &request.origin, data, request.now_ms, journal)?;
    if !policy.sync_now {
        host.flusher().after_write(&partition, appended.flush);
    }
    let wait_for = match policy.wait_for {
        WaitFor::Committed { durability, .. } => WaitFor::Committed {
            durability,
            min_isr,
        },
        other => other,
    };
    Ok(Accepted {
        wait: WriteWait {
            partition,
            end_offset: appended.end_offset,
            wait_for,
        },
        appended,
    })
}

/// The replica of the partition this broker leads.
fn leader<H: AppendHost + ?Sized>(
    host: &H,
    image: &ClusterImage,
    data: &PartitionData<'_>,
) -> Result<Arc<Partition>, AppendRecordsError> {
    let (topic, index) = (data.topic, data.index);
    let replicas = host.replicas();
    replicas
        .leader(image, topic, index)
        .map_err(|code| match code {
            ResponseError::NotLeaderOrFollower => AppendRecordsError::NotLeader {
                topic: topic.to_string(),
                index,
                role: replicas.get(topic, index).map(|p| p.role()),
            },
            _ => AppendRecordsError::UnknownPartition {
                topic: topic.to_string(),
                index,
            },
        })
}

/// The refusals only client writes meet before anything is appended; a refused batch is
/// remembered (see [`Partition::note_refused`]). Returns the `min.insync.replicas` an
/// acks=all write is held to once committed, read once.
fn admit_client(
    image: &ClusterImage,
    partition: &Partition,
    data: &PartitionData<'_>,
    request: &AppendRequest<'_>,
) -> Result<Option<usize>, AppendRecordsError> {
    let topic = image.topic(data.topic);
    let min_isr = request
        .origin
        .holds_to_min_isr()
        .then(|| partition.min_insync_replicas());
    let refusal = topic.and_then(|topic| refuse_client(topic, data.index, min_isr));
    match refusal {
        Some(refusal) => {
            if let Some(records) = data.records {
                partition.note_refused(records, request.now_ms);
            }
            Err(refusal)
        }
        None => Ok(min_isr),
    }
}

/// Topic-level reasons to refuse a client's write: clients may not write internal topics,
/// and acks=all (`min_isr` set) needs at least `min_isr` members in the partition's ISR.
fn refuse_client(
    topic: &TopicImage,
    index: i32,
    min_isr: Option<usize>,
) -> Option<AppendRecordsError> {
    if topic.is_internal() {
        return Some(AppendRecordsError::InternalTopic {
            topic: topic.name.clone(),
        });
    }
    let isr = topic.partition(index).map_or(0, |p| p.isr.len());
    let min_isr = min_isr.filter(|&min_isr| isr < min_isr)?;
    Some(AppendRecordsError::NotEnoughReplicas {
        topic: topic.name.clone(),
        index,
        isr,
        min_isr,
    })
}

/// The append itself, with the checks of its origin.
fn write(
    partition: &Partition,
    origin: &Origin<'_>,
    data: &PartitionData<'_>,
    now_ms: i64,
    journal: bool,
) -> Result<Appended, AppendRecordsError> {
    let no_records = || AppendRecordsError::NoRecords {
        topic: data.topic.to_string(),
        index: data.index,
    };
    match origin {
        Origin::Client { txn, .. } => {
            let records = data
                .records
                .filter(|r| !r.is_empty())
                .ok_or_else(no_records)?;
            let verify = |batch: &BatchIdentity, txns: &TxnIndex| txn.check(partition, batch, txns);
            Ok(partition.append_verified(records, now_ms, &verify, journal)?)
        }
        Origin::Coordinator => {
            let records = data.records.ok_or_else(no_records)?;
            Ok(partition.append(records, now_ms)?)
        }
        Origin::TxnMarker(marker) => {
            let end_offset = partition.append_marker(
                marker.producer.id,
                marker.producer.epoch,
                marker.commit,
                marker.transaction_version,
                now_ms,
            )?;
            Ok(marker_appended(end_offset))
        }
    }
}

/// What a marker (one control record) ending before `end_offset` reports of its append.
fn marker_appended(end_offset: i64) -> Appended {
    Appended {
        base_offset: end_offset - 1,
        end_offset,
        log_append_time: -1,
        log_start_offset: -1,
        records: 1,
        flush: FlushDue::Later,
        journaled: false,
    }
}

/// Starts the fsyncs (or journal rounds) of the accepted writes, all partitions in one
/// request to the flusher, so they share a round.
fn start_syncs<H: AppendHost + ?Sized>(host: &H, results: &[PartitionResult]) {
    let (journaled, fsynced): (Vec<&Accepted>, Vec<&Accepted>) =
        results.iter().flatten().partition(|a| a.appended.journaled);
    let flusher = host.flusher();
    flusher.request_journal_commits(journaled.into_iter().map(|a| &a.wait.partition));
    flusher.request_syncs(fsynced.into_iter().map(|a| &a.wait.partition));
}

#[cfg(test)]
mod tests;
