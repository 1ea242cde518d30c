//! How the coordinators reach the broker: the group coordinator's [`OffsetsLog`] and the
//! transaction coordinator's [`TxnHost`] implemented over the broker's partitions, flusher
//! and producer ids. The coordinators themselves know neither [`Broker`] nor each other's
//! types beyond these traits.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::group::coordinator::CommitOffset;
use crate::group::log::{
    decode_batches, encode_batch, Appended, Chunk, Entry, LogError, OffsetsLog,
};
use crate::group::OFFSETS_TOPIC;
use crate::handlers::errors::append_code;
use crate::metadata::TopicSpec;
use crate::partition::{AppendError, CommitWaitError, Durability, Isolation, Partition};
use crate::txn::{MarkerWrite, ProducerRef, TxnHost};

/// The group coordinator's [`OffsetsLog`] over the broker's `__consumer_offsets` partitions.
pub struct BrokerLog {
    broker: Weak<Broker>,
}

impl BrokerLog {
    /// A log that reaches the broker through `broker` (weak: the broker owns the coordinator).
    pub fn new(broker: Weak<Broker>) -> BrokerLog {
        BrokerLog { broker }
    }

    fn broker(&self) -> Result<Arc<Broker>, LogError> {
        self.broker.upgrade().ok_or(LogError::Closed)
    }

    fn partition(&self, broker: &Broker, index: i32) -> Result<Arc<Partition>, LogError> {
        broker
            .replicas
            .get(OFFSETS_TOPIC, index)
            .ok_or(LogError::NoPartition(index))
    }
}

/// Topic configs of `__consumer_offsets` (Kafka's defaults for it).
fn offsets_topic_configs() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("compression.type".to_string(), "producer".to_string()),
        ("segment.bytes".to_string(), "104857600".to_string()),
    ])
}

impl OffsetsLog for BrokerLog {
    fn partitions(&self) -> Option<i32> {
        let broker = self.broker.upgrade()?;
        let image = broker.metadata.image();
        Some(image.topic(OFFSETS_TOPIC)?.partition_count())
    }

    fn ensure_topic(&self, partitions: i32) -> Result<i32, LogError> {
        if let Some(n) = self.partitions() {
            return Ok(n);
        }
        let broker = self.broker()?;
        let spec = TopicSpec {
            name: OFFSETS_TOPIC.to_string(),
            partitions,
            replication_factor: -1,
            configs: offsets_topic_configs(),
            ..TopicSpec::default()
        };
        match broker.admin.ensure_topic(spec) {
            Ok(Some(topic)) => Ok(topic.partition_count()),
            Ok(None) => Err(LogError::Creating),
            Err(error) => Err(LogError::Create(error)),
        }
    }

    fn append(
        &self,
        partition: i32,
        entries: &[Entry],
        now_wall: i64,
        timeout: Duration,
    ) -> Result<Appended, LogError> {
        let broker = self.broker()?;
        let partition = self.partition(&broker, partition)?;
        let batch = encode_batch(entries, now_wall)?;
        let appended = partition
            .append(&batch, now_wall)
            .map_err(LogError::Append)?;
        broker.flusher.request_sync(&partition);
        let durability = if broker.config.fsync_acks_all {
            Durability::Synced
        } else {
            Durability::Written
        };
        let end = appended.end_offset;
        let durable = async move {
            partition
                .wait_committed(end, durability, timeout)
                .await
                .map_err(|error| match error {
                    CommitWaitError::Gone => LogError::NoPartition(partition.index()),
                    CommitWaitError::TimedOut(_) => LogError::Timeout(timeout),
                })
        }
        .boxed();
        Ok(Appended {
            base_offset: appended.base_offset,
            durable,
        })
    }

    fn leader(&self, partition: i32) -> Option<i32> {
        let broker = self.broker.upgrade()?;
        let image = broker.metadata.image();
        let state = image.partition(OFFSETS_TOPIC, partition)?;
        state.has_leader().then_some(state.leader)
    }

    fn leader_epoch(&self, partition: i32) -> Option<i32> {
        let broker = self.broker.upgrade()?;
        let replica = broker.replicas.get(OFFSETS_TOPIC, partition)?;
        (replica.acts_as_leader() && !replica.is_deleted()).then_some(replica.leader_epoch())
    }

    fn read(&self, partition: i32, offset: i64) -> Result<Chunk, LogError> {
        const READ_BYTES: usize = 4 << 20;
        let broker = self.broker()?;
        let partition = self.partition(&broker, partition)?;
        let data = partition
            .read(offset, READ_BYTES, true, Isolation::ReadUncommitted)
            .map_err(LogError::Read)?;
        let (records, next_offset) = decode_batches(data.records, offset);
        Ok(Chunk {
            records,
            at_end: next_offset >= data.high_watermark || next_offset == offset,
            next_offset,
        })
    }
}

impl TxnHost for Broker {
    fn next_producer_id(&self) -> BoxFuture<'_, Result<i64, ResponseError>> {
        async move {
            self.producer_ids.next_id().await.map_err(|error| {
                tracing::error!(%error, "cannot allocate a producer id");
                ResponseError::KafkaStorageError
            })
        }
        .boxed()
    }

    fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        producer: ProducerRef,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<MarkerWrite>, ResponseError> {
        let partition = match crate::handlers::topic_lookup::leader(self, topic, partition) {
            Ok(partition) => partition,
            Err(ResponseError::UnknownTopicOrPartition) => return Ok(None),
            Err(code) => return Err(code),
        };
        match partition.append_marker(producer.id, producer.epoch, commit, now_ms) {
            Ok(end_offset) => {
                self.flusher.request_sync(&partition);
                Ok(Some(MarkerWrite::new(partition, end_offset)))
            }
            Err(error @ AppendError::Sequence(_)) => {
                tracing::info!(?partition, %error, "transaction marker refused");
                Err(append_code(&error))
            }
            Err(error) => {
                tracing::error!(?partition, %error, "cannot write a transaction marker");
                Err(ResponseError::KafkaStorageError)
            }
        }
    }

    fn commit_offsets<'a>(
        &'a self,
        group: &'a str,
        offsets: Vec<CommitOffset>,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        async move {
            let results = self.groups.commit_transactional(group, offsets).await;
            match results.into_iter().find_map(Result::err) {
                Some(error) => {
                    tracing::warn!(group, ?error, "transactional offsets not committed");
                    Err(error)
                }
                None => Ok(()),
            }
        }
        .boxed()
    }
}
