//! How the coordinators reach the broker: a [`CoordinatorLog`] over an internal topic's
//! partitions (`__consumer_offsets` for groups, `__transaction_state` for transactions) and
//! the transaction markers of the transaction coordinator's [`crate::txn::TxnHost`], over the
//! broker's partitions and the append path. The broker is seen through [`CoordinatorHost`]:
//! the coordinators know neither the broker's type nor each other's beyond these traits.
//! And the other way, how a partition leader asks a transaction coordinator:
//! [`txn_verify`] (Kafka's `AddPartitionsToTxnManager`).

pub mod txn_verify;

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    write_txn_markers_request, ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::config::BrokerConfig;
use crate::coordinator::log::{
    decode_batches, encode_batch, Appended, Chunk, CoordinatorLog, Entry, LogError,
};
use crate::error_codes::append_code;
use crate::group::OFFSETS_TOPIC;
use crate::metadata::{MetadataSource, TopicSpec};
use crate::partition::{AppendError, CommitWaitError, Isolation, Partition, Role};
use crate::replica::append::{
    self, append_one, AppendRecordsError, Origin, PartitionData, WaitError, WriteWait,
};
use crate::replica::ReplicaHost;
use crate::security::peer::PeerSecurity;
use crate::share::records::SHARE_STATE_TOPIC;
use crate::storage::{BatchError, StorageError};
use crate::txn::{Marker, MarkerWrite, ProducerRef, MARKER_TIMEOUT, TRANSACTION_TOPIC};

/// What the coordinators' logs and the transaction markers need of the broker beyond the
/// append path's parts: where internal topics are created, and how other brokers are
/// reached. The broker implements it; a log holds it weakly, since the broker owns the
/// coordinators.
pub trait CoordinatorHost: ReplicaHost {
    /// Where topic changes go (creating an internal topic on first use).
    fn admin(&self) -> &dyn MetadataSource;

    /// How connections to other brokers are secured, for markers sent to a partition's
    /// leader.
    fn peer_security(&self) -> &Arc<PeerSecurity>;
}

/// An internal topic a coordinator keeps its state in, as it is created on demand.
#[derive(Debug, Clone)]
pub struct InternalTopic {
    /// Topic name.
    pub name: &'static str,
    /// Replication factor (-1 for the broker default).
    pub replication_factor: i16,
    /// Topic configs (compaction, segment size, ...).
    pub configs: BTreeMap<String, String>,
}

impl InternalTopic {
    /// `__consumer_offsets`, with Kafka's configs for it: one replica on a standalone broker,
    /// `offsets.topic.replication.factor` in cluster mode (not created while fewer brokers are
    /// registered, as in Kafka).
    pub fn offsets(config: &BrokerConfig) -> InternalTopic {
        InternalTopic {
            name: OFFSETS_TOPIC,
            replication_factor: if config.cluster.is_none() {
                1
            } else {
                config.offsets_topic_replication_factor
            },
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "producer".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
            ]),
        }
    }

    /// `__transaction_state`, with the configs Kafka enforces for it. A standalone broker
    /// is its only replica; in cluster mode Kafka's replication settings apply, and the topic
    /// is not created while fewer brokers are registered (the coordinator is not available
    /// until then, as in Kafka).
    pub fn transactions(config: &BrokerConfig) -> InternalTopic {
        let standalone = config.cluster.is_none();
        let replication_factor = if standalone {
            1
        } else {
            config.transaction_state_log_replication_factor
        };
        let min_isr = config
            .transaction_state_log_min_isr
            .min(i32::from(replication_factor));
        InternalTopic {
            name: TRANSACTION_TOPIC,
            replication_factor,
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "uncompressed".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
                ("min.insync.replicas".to_string(), min_isr.to_string()),
                (
                    "unclean.leader.election.enable".to_string(),
                    "false".to_string(),
                ),
            ]),
        }
    }

    /// `__share_group_state`, with Kafka's configs for it: not compacted, and kept until the
    /// share coordinator prunes it (a snapshot must never expire by time while it is a
    /// share-partition's latest). Its replication follows `__transaction_state`'s settings,
    /// whose defaults are Kafka's share coordinator defaults too (3 replicas, 2 in sync).
    pub fn share_state(config: &BrokerConfig) -> InternalTopic {
        let transactions = InternalTopic::transactions(config);
        let mut configs = transactions.configs;
        configs.insert("cleanup.policy".to_string(), "delete".to_string());
        configs.insert("retention.ms".to_string(), "-1".to_string());
        InternalTopic {
            name: SHARE_STATE_TOPIC,
            replication_factor: transactions.replication_factor,
            configs,
        }
    }
}

/// A coordinator's [`CoordinatorLog`] over the broker's partitions of one internal topic.
pub struct BrokerLog {
    broker: Weak<dyn CoordinatorHost>,
    topic: InternalTopic,
}

impl BrokerLog {
    /// A log of `topic` that reaches the broker through `broker` (weak: the broker owns the
    /// coordinator).
    pub fn new(broker: Weak<dyn CoordinatorHost>, topic: InternalTopic) -> BrokerLog {
        BrokerLog { broker, topic }
    }

    fn broker(&self) -> Result<Arc<dyn CoordinatorHost>, LogError> {
        self.broker.upgrade().ok_or(LogError::Closed)
    }

    fn partition(
        &self,
        broker: &dyn CoordinatorHost,
        index: i32,
    ) -> Result<Arc<Partition>, LogError> {
        broker
            .replicas()
            .get(self.topic.name, index)
            .ok_or(LogError::NoPartition {
                topic: self.topic.name,
                partition: index,
            })
    }
}

impl CoordinatorLog for BrokerLog {
    fn partitions(&self) -> Option<i32> {
        let broker = self.broker.upgrade()?;
        let image = broker.metadata().image();
        // None while its partitions are not all placed: keys hash by the final count only.
        Some(image.topic(self.topic.name)?.partition_count()).filter(|n| *n > 0)
    }

    fn ensure_topic(&self, partitions: i32) -> Result<i32, LogError> {
        if let Some(n) = self.partitions() {
            return Ok(n);
        }
        let broker = self.broker()?;
        let spec = TopicSpec {
            name: self.topic.name.to_string(),
            partitions,
            replication_factor: self.topic.replication_factor,
            configs: self.topic.configs.clone(),
            ..TopicSpec::default()
        };
        let topic = self.topic.name;
        match broker.admin().ensure_topic(spec) {
            Ok(Some(created)) => Ok(created.partition_count()),
            Ok(None) => Err(LogError::Creating { topic }),
            Err(source) => Err(LogError::Create {
                topic,
                source: Box::new(source),
            }),
        }
    }

    fn append(
        &self,
        partition: i32,
        entries: &[Entry],
        txn: Option<ProducerRef>,
        now_wall: i64,
        timeout: Duration,
    ) -> Result<Appended, LogError> {
        let broker = self.broker()?;
        let batch = encode_batch(entries, txn, now_wall)?;
        let topic = self.topic.name;
        let data = PartitionData {
            topic,
            index: partition,
            records: Some(&batch),
        };
        let accepted = append_one(&*broker, Origin::Coordinator, now_wall, data)
            .map_err(|error| coordinator_refusal(topic, partition, error))?;
        let write = accepted.wait;
        let durable = async move {
            append::wait(&write, Instant::now() + timeout)
                .await
                .map_err(|error| coordinator_uncommitted(topic, &write, error, timeout))
        }
        .boxed();
        Ok(Appended {
            base_offset: accepted.appended.base_offset,
            durable,
        })
    }

    fn leader(&self, partition: i32) -> Option<i32> {
        let broker = self.broker.upgrade()?;
        let image = broker.metadata().image();
        let state = image.partition(self.topic.name, partition)?;
        state.has_leader().then_some(state.leader)
    }

    fn leader_epoch(&self, partition: i32) -> Option<i32> {
        let broker = self.broker.upgrade()?;
        let replica = broker.replicas().get(self.topic.name, partition)?;
        (replica.acts_as_leader() && !replica.is_deleted()).then_some(replica.leader_epoch())
    }

    fn delete_before(&self, partition: i32, offset: i64) -> Result<i64, LogError> {
        let broker = self.broker()?;
        let replica = self.partition(&*broker, partition)?;
        replica
            .delete_records(offset)
            .map_err(|source| LogError::Delete {
                topic: self.topic.name,
                source,
            })
    }

    fn taking_leadership(&self, partition: i32) -> bool {
        let Some(broker) = self.broker.upgrade() else {
            return false;
        };
        may_be_named(self.leader(partition), broker.config().broker_id)
            && self.leader_epoch(partition).is_none()
    }

    fn read(&self, partition: i32, offset: i64) -> Result<Chunk, LogError> {
        const READ_BYTES: usize = 4 << 20;
        let broker = self.broker()?;
        let partition = self.partition(&*broker, partition)?;
        let (log_end, _) = partition.fetch_position();
        // A coordinator replays its partition from the start; records below the log start
        // were deleted as no longer needed (the share coordinator prunes its topic).
        let offset = offset.max(partition.with_log(|log| log.log_start_offset()));
        let data = partition
            .read(offset, READ_BYTES, true, Isolation::LogEnd)
            .map_err(|source| LogError::Read {
                topic: self.topic.name,
                source,
            })?;
        let (records, next_offset) = decode_batches(data.records, offset);
        Ok(Chunk {
            records,
            // Read to the log end, not the high watermark: a new leader's lags the records
            // the previous leader committed (and answered) until its followers fetch again.
            at_end: next_offset >= log_end || next_offset == offset,
            next_offset,
        })
    }
}

/// A coordinator's write the append path refused, as the coordinator's [`LogError`].
fn coordinator_refusal(topic: &'static str, partition: i32, error: AppendRecordsError) -> LogError {
    match error {
        AppendRecordsError::Append(
            source @ AppendError::Storage(StorageError::InvalidBatch {
                source: BatchError::BatchTooLarge { .. },
                ..
            }),
        ) => LogError::TooLarge {
            topic,
            source: Box::new(source),
        },
        AppendRecordsError::Append(source) => refused(topic, source),
        AppendRecordsError::NotLeader {
            role: Some(Role::Leader { .. }),
            ..
        } => refused(topic, AppendError::Fenced),
        AppendRecordsError::NotLeader {
            role: Some(role), ..
        } => refused(topic, AppendError::NotLeader { role }),
        AppendRecordsError::UnknownPartition { .. }
        | AppendRecordsError::NotLeader { role: None, .. } => {
            LogError::NoPartition { topic, partition }
        }
        error @ (AppendRecordsError::InternalTopic { .. }
        | AppendRecordsError::NotEnoughReplicas { .. }
        | AppendRecordsError::NoRecords { .. }) => LogError::NotTaken {
            topic,
            source: Box::new(error),
        },
    }
}

/// An append the partition refused, as the coordinator's [`LogError::Append`].
fn refused(topic: &'static str, source: AppendError) -> LogError {
    LogError::Append {
        topic,
        source: Box::new(source),
    }
}

/// A coordinator's write that was not committed in time or as asked, as its [`LogError`].
fn coordinator_uncommitted(
    topic: &'static str,
    write: &WriteWait,
    error: WaitError,
    timeout: Duration,
) -> LogError {
    let partition = write.partition();
    match error {
        WaitError::Commit(CommitWaitError::Gone) => LogError::NoPartition {
            topic,
            partition: partition.index(),
        },
        WaitError::Commit(CommitWaitError::TimedOut(_)) => LogError::Timeout(timeout),
        WaitError::Commit(CommitWaitError::NotLeader) => refused(
            topic,
            AppendError::NotLeader {
                role: partition.role(),
            },
        ),
        error @ WaitError::IsrShrank { .. } => LogError::NotTaken {
            topic,
            source: Box::new(error),
        },
    }
}

/// The transaction coordinator's [`crate::txn::TxnHost::append_marker`]: appends the
/// marker to the partition here when this broker leads it (or it is gone), and sends it to
/// the leader otherwise.
pub fn append_marker(
    broker: &dyn CoordinatorHost,
    topic: &str,
    partition: i32,
    marker: Marker,
    now_ms: i64,
) -> Result<Option<MarkerWrite>, ResponseError> {
    let image = broker.metadata().image();
    match broker.replicas().leader(&image, topic, partition) {
        Err(ResponseError::NotLeaderOrFollower) => forward_marker(broker, topic, partition, marker),
        _ => append_local_marker(broker, topic, partition, marker, now_ms),
    }
}

/// Appends the marker to a partition this broker leads (WriteTxnMarkers from a coordinator
/// lands here; it never forwards); `Ok(None)` when the partition is gone.
pub fn append_local_marker(
    broker: &dyn ReplicaHost,
    topic: &str,
    partition: i32,
    marker: Marker,
    now_ms: i64,
) -> Result<Option<MarkerWrite>, ResponseError> {
    let data = PartitionData {
        topic,
        index: partition,
        records: None,
    };
    let origin = Origin::TxnMarker(marker);
    match append_one(broker, origin, now_ms, data) {
        Ok(accepted) => {
            let write = accepted.wait;
            Ok(Some(MarkerWrite::local(Box::new(move |deadline| {
                async move {
                    append::wait(&write, deadline)
                        .await
                        .map_err(|error| error.code())
                }
                .boxed()
            }))))
        }
        Err(AppendRecordsError::UnknownPartition { .. }) => Ok(None),
        Err(AppendRecordsError::Append(error @ AppendError::Sequence(_))) => {
            tracing::info!(topic, partition, %error, "transaction marker refused");
            Err(append_code(&error))
        }
        Err(AppendRecordsError::Append(error)) => {
            tracing::error!(topic, partition, %error, "cannot write a transaction marker");
            Err(ResponseError::KafkaStorageError)
        }
        Err(error) => Err(error.code()),
    }
}

/// Sends the marker to the partition's leader with WriteTxnMarkers, as Kafka's coordinators
/// do; NOT_LEADER_OR_FOLLOWER when the partition has no leader now (the end is retried).
fn forward_marker(
    broker: &dyn CoordinatorHost,
    topic: &str,
    partition: i32,
    marker: Marker,
) -> Result<Option<MarkerWrite>, ResponseError> {
    let image = broker.metadata().image();
    let leader = image
        .partition(topic, partition)
        .map(|p| p.leader)
        .filter(|l| *l >= 0 && *l != broker.config().broker_id)
        .and_then(|l| image.broker(l))
        .ok_or(ResponseError::NotLeaderOrFollower)?;
    let address = format!("{}:{}", leader.host, leader.port);
    let security = broker.peer_security().clone();
    let request = WriteTxnMarkersRequest::default().with_markers(vec![
        write_txn_markers_request::WritableTxnMarker::default()
            .with_producer_id(ProducerId(marker.producer.id))
            .with_producer_epoch(marker.producer.epoch)
            .with_transaction_result(marker.commit)
            .with_coordinator_epoch(0)
            .with_transaction_version(marker.transaction_version)
            .with_topics(vec![
                write_txn_markers_request::WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partition_indexes(vec![partition]),
            ]),
    ]);
    let topic = topic.to_owned();
    let sent = tokio::spawn(async move {
        let answer: WriteTxnMarkersResponse = crate::peer::call(
            &address,
            security,
            ApiKey::WriteTxnMarkers,
            2,
            &request,
            MARKER_TIMEOUT,
        )
        .await
        .map_err(|error| {
            tracing::warn!(%error, topic, partition, "transaction marker not delivered");
            ResponseError::NotLeaderOrFollower
        })?;
        let code = answer
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .flat_map(|t| &t.partitions)
            .map(|p| p.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0);
        match ResponseError::try_from_code(code) {
            None => Ok(()),
            // The topic was deleted meanwhile: nothing is left to mark.
            Some(ResponseError::UnknownTopicOrPartition) => Ok(()),
            Some(error) => Err(error),
        }
    });
    Ok(Some(MarkerWrite::remote(sent)))
}

/// Whether the cluster metadata as this broker sees it may name broker `me` the leader a
/// client was sent to: it does, or it names no leader yet. Each broker watches the cluster's
/// objects on its own, so the broker whose FindCoordinator named this one may see a newer
/// election; the client is told to wait here then, not to look elsewhere.
fn may_be_named(leader: Option<i32>, me: i32) -> bool {
    leader.is_none_or(|leader| leader == me)
}

#[cfg(test)]
mod tests {
    use super::may_be_named;

    #[test]
    fn a_broker_waits_as_coordinator_unless_its_view_names_another_leader() {
        assert!(may_be_named(Some(1), 1), "named here");
        assert!(may_be_named(None, 1), "no leader in this view yet");
        assert!(!may_be_named(Some(2), 1), "another broker leads");
    }
}
