//! The Kafka side: the compacted `_schemas` topic (created when missing), a reader that
//! replays its committed records from the beginning into the shared state and keeps following
//! it, and a store that appends a write's records in one transaction ([`writer`]) and returns
//! once the reader has applied them, so a client reads its own write from any instance that
//! has caught up.

pub mod security;
pub mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::records::{Record, RecordKey};
use crate::service::{BoxFuture, Store, StoreError};
use crate::state::Registry;
use writer::TxnWriter;

/// How long the reader waits for a record before it looks at its position: the position moves
/// past transaction markers, which are never delivered as records.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// How the registry reaches its topic.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// The cluster's bootstrap servers.
    pub bootstrap: String,
    /// The topic, `_schemas` by default.
    pub topic: String,
    /// How long a write waits for its transaction and for the reader to apply it.
    pub write_timeout: Duration,
    /// How long the producer tries a record before giving it up (`message.timeout.ms`); the
    /// Lease elector needs it well inside its renew deadline, so that a writer that stops
    /// writing has nothing left in flight when another may take over.
    pub produce_timeout: Duration,
    /// How long start-up waits for the replay to reach the end of the topic.
    pub startup_timeout: Duration,
    /// The librdkafka security properties of the cluster listener
    /// ([`security::KafkaSecurity::properties`]).
    pub security: Vec<(&'static str, String)>,
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
    writer: TxnWriter,
    applied: watch::Receiver<i64>,
    write_timeout: Duration,
}

/// Creates the topic if missing, replays its committed records into `state` up to its last
/// stable offset, and returns the store once the state is current. The reader task keeps
/// following the topic. The store writes nothing until [`Store::catch_up`] starts a term.
pub async fn start(
    settings: &KafkaSettings,
    state: Arc<RwLock<Registry>>,
) -> Result<KafkaStore, KafkaStartError> {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", &settings.bootstrap);
    for (key, value) in &settings.security {
        base.set(*key, value);
    }

    ensure_topic(&base, &settings.topic).await?;

    let writer = TxnWriter::new(
        base.clone(),
        &settings.topic,
        settings.produce_timeout,
        settings.write_timeout,
    );

    let consumer: StreamConsumer = base
        .clone()
        .set("group.id", "tributary-schema-registry")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
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
    tokio::spawn(follow(consumer, settings.topic.clone(), state, applied_tx));

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
        writer,
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

/// Applies every committed record of the topic to the state, forever; publishes the next
/// offset to read (past transaction markers too, by the consumer's position, so that the last
/// stable offset is reached when the topic ends with a marker).
async fn follow(
    consumer: StreamConsumer,
    topic: String,
    state: Arc<RwLock<Registry>>,
    applied: watch::Sender<i64>,
) {
    loop {
        match tokio::time::timeout(IDLE_POLL, consumer.recv()).await {
            Ok(Ok(message)) => {
                let key = message.key().unwrap_or_default();
                if let Err(e) = state.write().apply_bytes(key, message.payload()) {
                    tracing::warn!(offset = message.offset(), error = %e, "skipped a record of the schemas topic");
                }
                applied.send_if_modified(|at| advance(at, message.offset() + 1));
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the schemas topic failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_idle) => {}
        }
        if let Some(next) = position(&consumer, &topic) {
            applied.send_if_modified(|at| advance(at, next));
        }
    }
}

/// The consumer's next offset on the topic's partition, when it has one.
fn position(consumer: &StreamConsumer, topic: &str) -> Option<i64> {
    let positions = consumer.position().ok()?;
    match positions.find_partition(topic, 0)?.offset() {
        Offset::Offset(next) => Some(next),
        _ => None,
    }
}

/// Moves the applied offset forward to `next`, never back; true if it moved.
fn advance(at: &mut i64, next: i64) -> bool {
    if next > *at {
        *at = next;
        true
    } else {
        false
    }
}

impl Store for KafkaStore {
    fn append(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let started = Instant::now();
            let last = self.writer.append(&records).await?;
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
            let last = self
                .writer
                .start_term(std::slice::from_ref(&marker))
                .await?;
            self.wait_reader(last, started).await?;
            Ok(last + 1)
        })
    }
}

impl KafkaStore {
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

#[cfg(test)]
mod tests {
    use super::advance;

    #[test]
    fn the_applied_offset_only_moves_forward() {
        let mut at = 5;
        assert!(advance(&mut at, 7));
        assert_eq!(at, 7);
        assert!(!advance(&mut at, 7));
        assert!(!advance(&mut at, 6));
        assert_eq!(at, 7);
    }
}
