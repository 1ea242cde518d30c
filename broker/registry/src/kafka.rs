//! The Kafka side: the compacted `_schemas` topic (created when missing), a reader that
//! replays it from the beginning into the shared state and keeps following it, and a store
//! that produces a write's records (acks=all, idempotent) and returns once the reader has
//! applied them, so a client reads its own write from any instance that has caught up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::records::{Record, RecordKey};
use crate::service::{BoxFuture, Store, StoreError};
use crate::state::Registry;

/// How the registry reaches its topic.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// The cluster's bootstrap servers.
    pub bootstrap: String,
    /// The topic, `_schemas` by default.
    pub topic: String,
    /// How long a write waits for the produce and for the reader to apply it.
    pub write_timeout: Duration,
    /// How long the producer tries a record before giving it up (`message.timeout.ms`); the
    /// Lease elector needs it well inside its renew deadline, so that a writer that stops
    /// writing has nothing left in flight when another may take over.
    pub produce_timeout: Duration,
    /// How long start-up waits for the replay to reach the end of the topic.
    pub startup_timeout: Duration,
}

/// Why the Kafka side could not start.
#[derive(Debug, thiserror::Error)]
pub enum KafkaStartError {
    /// A client could not be created or a call failed.
    #[error("Kafka client error ({what}): {source}")]
    Client {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The topic could not be created.
    #[error("cannot create topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// The replay did not reach the end of the topic in time.
    #[error("replaying {topic} did not reach offset {high} within {waited:?} (at {reached})")]
    Replay {
        /// The topic.
        topic: String,
        /// The end offset at start-up.
        high: i64,
        /// Where the replay got to.
        reached: i64,
        /// How long start-up waited.
        waited: Duration,
    },
}

fn client(what: &'static str) -> impl FnOnce(KafkaError) -> KafkaStartError {
    move |source| KafkaStartError::Client { what, source }
}

/// The store producing to the topic; the reader it started keeps the state current.
pub struct KafkaStore {
    producer: FutureProducer,
    topic: String,
    applied: watch::Receiver<i64>,
    write_timeout: Duration,
}

/// Creates the topic if missing, replays it into `state` up to its current end, and returns
/// the store once the state is current. The reader task keeps following the topic.
pub async fn start(
    settings: &KafkaSettings,
    state: Arc<RwLock<Registry>>,
) -> Result<KafkaStore, KafkaStartError> {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", &settings.bootstrap);

    ensure_topic(&base, &settings.topic).await?;

    let producer: FutureProducer = base
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings
                .produce_timeout
                .min(settings.write_timeout)
                .as_millis()
                .max(1)
                .to_string(),
        )
        .create()
        .map_err(client("creating the producer"))?;

    let consumer: StreamConsumer = base
        .clone()
        .set("group.id", "tributary-schema-registry")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(client("creating the consumer"))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&settings.topic, 0, Offset::Beginning)
        .map_err(client("assigning the topic"))?;
    consumer
        .assign(&assignment)
        .map_err(client("assigning the topic"))?;

    let (low, high) = consumer
        .fetch_watermarks(&settings.topic, 0, settings.startup_timeout)
        .map_err(client("reading the topic's end offset"))?;
    let (applied_tx, applied) = watch::channel(low.max(0));
    tokio::spawn(follow(consumer, state, applied_tx));

    let mut wait = applied.clone();
    let started = Instant::now();
    let reached = matches!(
        tokio::time::timeout(settings.startup_timeout, wait.wait_for(|at| *at >= high)).await,
        Ok(Ok(_))
    );
    if !reached {
        return Err(KafkaStartError::Replay {
            topic: settings.topic.clone(),
            high,
            reached: *applied.borrow(),
            waited: started.elapsed(),
        });
    }
    tracing::info!(topic = %settings.topic, records_end = high, "replayed the schemas topic");
    Ok(KafkaStore {
        producer,
        topic: settings.topic.clone(),
        applied,
        write_timeout: settings.write_timeout,
    })
}

/// Creates the topic (1 partition, compacted, replication min(3, brokers)) unless it exists.
async fn ensure_topic(base: &ClientConfig, topic: &str) -> Result<(), KafkaStartError> {
    let admin: AdminClient<DefaultClientContext> =
        base.create().map_err(client("creating the admin client"))?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .map_err(client("reading cluster metadata"))?;
    if metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none())
    {
        return Ok(());
    }
    let replication = i32::try_from(metadata.brokers().len().clamp(1, 3)).unwrap_or(1);
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication))
        .set("cleanup.policy", "compact");
    let results = admin
        .create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(client("creating the topic"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaStartError::CreateTopic { topic, code }),
        }
    }
    tracing::info!(topic, replication, "created the schemas topic");
    Ok(())
}

/// Applies every record of the topic to the state, forever; publishes the next offset to read.
async fn follow(
    consumer: StreamConsumer,
    state: Arc<RwLock<Registry>>,
    applied: watch::Sender<i64>,
) {
    loop {
        match consumer.recv().await {
            Ok(message) => {
                let key = message.key().unwrap_or_default();
                if let Err(e) = state.write().apply_bytes(key, message.payload()) {
                    tracing::warn!(offset = message.offset(), error = %e, "skipped a record of the schemas topic");
                }
                applied.send_replace(message.offset() + 1);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the schemas topic failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl Store for KafkaStore {
    fn append(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let started = Instant::now();
            let last = self.produce(&records).await?;
            self.wait_reader(last, started).await
        })
    }

    fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    fn wait_applied(&self, offset: i64, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let mut applied = self.applied.clone();
            let reached = matches!(
                tokio::time::timeout(timeout, applied.wait_for(|at| *at >= offset)).await,
                Ok(Ok(_))
            );
            reached
        })
    }

    fn catch_up(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            let started = Instant::now();
            let marker = Record {
                key: RecordKey::Noop { magic: 0 },
                value: None,
            };
            let last = self.produce(std::slice::from_ref(&marker)).await?;
            self.wait_reader(last, started).await?;
            Ok(last + 1)
        })
    }
}

impl KafkaStore {
    /// Produces the records in order (all enqueued before any is awaited, so one produce
    /// timeout bounds them all) and returns the last one's offset.
    async fn produce(&self, records: &[Record]) -> Result<i64, StoreError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let (key, value) = record.encode()?;
            let mut message = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .partition(0)
                .key(&key);
            if let Some(value) = &value {
                message = message.payload(value);
            }
            let delivery = self
                .producer
                .send_result(message)
                .map_err(|(e, _)| StoreError::Produce(e.to_string()))?;
            deliveries.push(delivery);
        }
        let mut last = -1;
        for delivery in deliveries {
            let delivered = delivery
                .await
                .map_err(|_| StoreError::Produce("the producer was dropped".to_owned()))?
                .map_err(|(e, _)| StoreError::Produce(e.to_string()))?;
            last = delivered.offset;
        }
        Ok(last)
    }

    /// Waits until the reader applied `offset`, within the write timeout counted from
    /// `started`.
    async fn wait_reader(&self, offset: i64, started: Instant) -> Result<(), StoreError> {
        let left = self.write_timeout.saturating_sub(started.elapsed());
        let mut applied = self.applied.clone();
        let reached = matches!(
            tokio::time::timeout(left, applied.wait_for(|at| *at > offset)).await,
            Ok(Ok(_))
        );
        if reached {
            Ok(())
        } else {
            Err(StoreError::ReadTimeout {
                offset,
                waited_ms: started.elapsed().as_millis(),
            })
        }
    }
}
