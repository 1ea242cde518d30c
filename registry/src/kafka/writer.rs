//! The writer's transactional producer: the cluster itself fences a deposed writer.
//!
//! Every instance that writes uses the same `transactional.id` for the topic. Each term starts
//! with `init_transactions`, which bumps the producer epoch, aborts whatever transaction the
//! previous writer left open and fences its producer: any later produce or commit of the old
//! one fails (PRODUCER_FENCED / INVALID_PRODUCER_EPOCH), however long it was frozen. Every
//! write is one transaction (begin, send, commit; abort on error) and the reader reads
//! committed records only, so a fenced writer's records are never applied.
//!
//! librdkafka's transactional calls block the calling thread (bounded by the timeout given):
//! they run on tokio's blocking pool, never on the async runtime.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::records::Record;
use crate::service::StoreError;

/// The `transactional.id` every writer of `topic` shares, so that each new writer fences the
/// one before it.
pub fn transactional_id(topic: &str) -> String {
    format!("tributary-schema-registry-{topic}")
}

/// Whether a broker or client error code says a newer producer with this transactional id
/// took over (this one's epoch is stale).
pub fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::Fenced
    )
}

/// The producer of the current term, if any: created and initialised by
/// [`TxnWriter::start_term`], dropped when fenced.
pub struct TxnWriter {
    config: ClientConfig,
    topic: String,
    /// Bounds `init_transactions`, `commit_transaction` and `abort_transaction`.
    timeout: Duration,
    /// Held across a whole transaction and a whole term start, so they never interleave.
    producer: tokio::sync::Mutex<Option<FutureProducer>>,
}

impl TxnWriter {
    /// A writer with no producer yet. `config` has the bootstrap servers; `message_timeout`
    /// is how long a record is tried (`message.timeout.ms`), `timeout` bounds a transaction.
    pub fn new(
        mut config: ClientConfig,
        topic: &str,
        message_timeout: Duration,
        timeout: Duration,
    ) -> Self {
        let timeout = timeout.max(Duration::from_secs(1));
        config
            .set("transactional.id", transactional_id(topic))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("transaction.timeout.ms", timeout.as_millis().to_string())
            .set(
                "message.timeout.ms",
                message_timeout.min(timeout).as_millis().max(1).to_string(),
            );
        TxnWriter {
            config,
            topic: topic.to_owned(),
            timeout,
            producer: tokio::sync::Mutex::new(None),
        }
    }

    /// Starts a term: drops the previous producer, creates a fresh one, initialises it
    /// (fencing every earlier writer) and appends `records` in its first transaction. Returns
    /// the last record's offset.
    pub async fn start_term(&self, records: &[Record]) -> Result<i64, StoreError> {
        let mut slot = self.producer.lock().await;
        if let Some(old) = slot.take() {
            dispose(old);
        }
        let producer: FutureProducer = self
            .config
            .create()
            .map_err(|e| StoreError::Produce(format!("creating the producer: {e}")))?;
        let timeout = self.timeout;
        let init = producer.clone();
        match blocking(move || init.init_transactions(timeout)).await {
            Ok(()) => {}
            Err(e) => {
                let fenced = fenced(&producer, &e);
                dispose(producer);
                return Err(failure(
                    fenced,
                    "initialising the transactional producer",
                    &e,
                ));
            }
        }
        match self.transact(&producer, records).await {
            Ok(last) => {
                *slot = Some(producer);
                Ok(last)
            }
            Err(e) => {
                dispose(producer);
                Err(e)
            }
        }
    }

    /// Appends `records` in one transaction with the current term's producer; the producer is
    /// dropped if it was fenced.
    pub async fn append(&self, records: &[Record]) -> Result<i64, StoreError> {
        let mut slot = self.producer.lock().await;
        let Some(producer) = slot.clone() else {
            return Err(StoreError::NotWriting);
        };
        let result = self.transact(&producer, records).await;
        if matches!(result, Err(StoreError::Fenced(_))) {
            // The slot's clone goes now; the last one is destroyed off the runtime.
            *slot = None;
            dispose(producer);
        }
        result
    }

    /// begin, send every record, commit; abort on any error.
    async fn transact(
        &self,
        producer: &FutureProducer,
        records: &[Record],
    ) -> Result<i64, StoreError> {
        let started = Instant::now();
        if let Err(e) = producer.begin_transaction() {
            return Err(failure(fenced(producer, &e), "beginning a transaction", &e));
        }
        let sent = self.send(producer, records).await;
        let outcome = match sent {
            Ok(last) => {
                let left = self
                    .timeout
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(100));
                let commit = producer.clone();
                match blocking(move || commit.commit_transaction(left)).await {
                    Ok(()) => return Ok(last),
                    Err(e) => failure(
                        fenced(producer, &e),
                        "committing the write's transaction",
                        &e,
                    ),
                }
            }
            Err(e) => e,
        };
        if matches!(outcome, StoreError::Fenced(_)) {
            return Err(outcome);
        }
        let abort = producer.clone();
        let timeout = self.timeout;
        match blocking(move || abort.abort_transaction(timeout)).await {
            Ok(()) => Err(outcome),
            Err(e) if fenced(producer, &e) => {
                Err(failure(true, "aborting the write's transaction", &e))
            }
            Err(e) => {
                tracing::warn!(error = %e, "aborting a failed write's transaction failed");
                Err(outcome)
            }
        }
    }

    /// Produces the records in order (all enqueued before any is awaited, so one message
    /// timeout bounds them all) and returns the last one's offset.
    async fn send(&self, producer: &FutureProducer, records: &[Record]) -> Result<i64, StoreError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let (key, value) = record.encode()?;
            let mut message = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .partition(0)
                .key(&key);
            if let Some(value) = &value {
                message = message.payload(value);
            }
            let delivery = producer
                .send_result(message)
                .map_err(|(e, _)| failure(fenced(producer, &e), "producing", &e))?;
            deliveries.push(delivery);
        }
        let mut last = -1;
        for delivery in deliveries {
            let delivered = delivery
                .await
                .map_err(|_| StoreError::Produce("the producer was dropped".to_owned()))?
                .map_err(|(e, _)| failure(fenced(producer, &e), "producing", &e))?;
            last = delivered.offset;
        }
        Ok(last)
    }
}

/// Whether `e` (or the producer's state) says this producer was fenced. A transactional
/// producer's fatal error is a fencing in practice: either way it can write no more.
fn fenced(producer: &FutureProducer, e: &KafkaError) -> bool {
    producer.client().fatal_error().is_some()
        || e.rdkafka_error_code().is_some_and(is_fencing)
        || matches!(e, KafkaError::Transaction(t) if t.is_fatal())
}

fn failure(fenced: bool, what: &str, e: &KafkaError) -> StoreError {
    if fenced {
        StoreError::Fenced(format!("{what}: {e}"))
    } else {
        StoreError::Produce(format!("{what}: {e}"))
    }
}

/// Runs a blocking librdkafka call on the blocking pool.
async fn blocking(
    call: impl FnOnce() -> Result<(), KafkaError> + Send + 'static,
) -> Result<(), KafkaError> {
    match tokio::task::spawn_blocking(call).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "a transactional call did not complete");
            Err(KafkaError::Canceled)
        }
    }
}

/// Drops a producer on the blocking pool (destroying a librdkafka client may wait for its
/// threads).
fn dispose(producer: FutureProducer) {
    drop(tokio::task::spawn_blocking(move || drop(producer)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writer_of_a_topic_shares_one_transactional_id() {
        assert_eq!(
            transactional_id("_schemas"),
            "tributary-schema-registry-_schemas"
        );
        assert_ne!(transactional_id("_schemas"), transactional_id("other"));
    }

    #[test]
    fn a_stale_epoch_is_a_fencing_and_other_errors_are_not() {
        assert!(is_fencing(RDKafkaErrorCode::ProducerFenced));
        assert!(is_fencing(RDKafkaErrorCode::InvalidProducerEpoch));
        assert!(is_fencing(RDKafkaErrorCode::Fenced));
        assert!(!is_fencing(RDKafkaErrorCode::RequestTimedOut));
        assert!(!is_fencing(RDKafkaErrorCode::NotLeaderForPartition));
        assert!(!is_fencing(RDKafkaErrorCode::MessageTimedOut));
    }
}
