//! Schema validation of a produce request, before anything is appended: each partition of a
//! validated topic whose batches hold a record that fails is refused whole.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::TopicProduceData;

use super::lookup::{LookupError, Schemas};
use super::{check_id, schema_id, Refusal, SchemaFacts, Side, Strategy, TopicRules};
use crate::broker::Broker;
use crate::storage::data_keys_values;
use bytes::Bytes;

/// Why a partition's batches are refused: the code, the message, and the records at fault
/// (index in the request's records for the partition, why) for KIP-467.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRefusal {
    /// INVALID_RECORD, or REQUEST_TIMED_OUT (retriable) while the registry cannot answer.
    pub code: ResponseError,
    /// The partition's error message.
    pub message: String,
    /// The failing records.
    pub records: Vec<(i32, String)>,
}

/// The rules of each topic of the request (by position) that validates anything.
pub fn request_rules(broker: &Broker, topics: &[TopicProduceData]) -> Vec<(usize, TopicRules)> {
    let image = broker.metadata.image();
    topics
        .iter()
        .enumerate()
        .filter_map(|(slot, topic)| {
            let rules = TopicRules::of(&image.topic(&topic.name)?.configs);
            rules.any().then_some((slot, rules))
        })
        .collect()
}

/// The refusals of the partitions of `topics` (by topic and partition position) whose
/// records `rules` refuse.
pub async fn refusals(
    broker: &Broker,
    topics: &[TopicProduceData],
    rules: &[(usize, TopicRules)],
) -> HashMap<(usize, usize), PartitionRefusal> {
    let mut out = HashMap::new();
    for (topic_slot, rules) in rules {
        let Some(topic) = topics.get(*topic_slot) else {
            continue;
        };
        for (partition_slot, data) in topic.partition_data.iter().enumerate() {
            let Some(records) = data.records.as_ref() else {
                continue;
            };
            if let Err(refusal) = check_partition(broker, &topic.name, *rules, records).await {
                out.insert((*topic_slot, partition_slot), refusal);
            }
        }
    }
    out
}

/// Checks every record of one partition's `records`.
async fn check_partition(
    broker: &Broker,
    topic: &str,
    rules: TopicRules,
    records: &Bytes,
) -> Result<(), PartitionRefusal> {
    let Some(decoded) = data_keys_values(records) else {
        return Err(PartitionRefusal {
            code: ResponseError::InvalidRecord,
            message: "the batch could not be decoded for schema validation".into(),
            records: Vec::new(),
        });
    };
    let mut failed = Vec::new();
    // The ids of this batch already asked about: a batch mostly repeats one id.
    let mut known = HashMap::new();
    for (index, record) in decoded.iter().enumerate() {
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        let sides = [
            (Side::Key, rules.key, record.key.as_deref()),
            (Side::Value, rules.value, record.value.as_deref()),
        ];
        for (side, strategy, payload) in sides {
            // A null key or value passes, as in Confluent Server (tombstones).
            let (Some(strategy), Some(payload)) = (strategy, payload) else {
                continue;
            };
            match check_payload(&broker.schemas, &mut known, topic, side, strategy, payload).await {
                Ok(()) => {}
                Err(Checked::Refused(refusal)) => {
                    failed.push((index, refusal));
                    break;
                }
                Err(Checked::Lookup(error)) => {
                    // A broker without a registry is misconfigured: retrying cannot help.
                    let code = match error {
                        LookupError::NoRegistry => ResponseError::InvalidRecord,
                        _ => ResponseError::RequestTimedOut,
                    };
                    return Err(PartitionRefusal {
                        code,
                        message: error.to_string(),
                        records: Vec::new(),
                    });
                }
            }
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    for (_, refusal) in &failed {
        broker
            .metrics
            .schema_refused_records
            .with_label_values(&[topic, refusal.metric_label()])
            .inc();
    }
    let message = format!(
        "schema validation refused {} record(s) of the batch: {}",
        failed.len(),
        failed
            .first()
            .map_or_else(String::new, |(i, r)| format!("record {i}: {r}"))
    );
    Err(PartitionRefusal {
        code: ResponseError::InvalidRecord,
        message,
        records: failed
            .into_iter()
            .map(|(i, r)| (i, r.to_string()))
            .collect(),
    })
}

/// Why a payload did not pass.
enum Checked {
    /// The payload is refused.
    Refused(Refusal),
    /// The registry gave no answer.
    Lookup(LookupError),
}

async fn check_payload(
    schemas: &Schemas,
    known: &mut HashMap<i32, Option<Arc<SchemaFacts>>>,
    topic: &str,
    side: Side,
    strategy: Strategy,
    payload: &[u8],
) -> Result<(), Checked> {
    let id = schema_id(payload, side).map_err(Checked::Refused)?;
    let facts = match known.get(&id) {
        Some(facts) => facts.clone(),
        None => {
            let facts = schemas.facts(id).await.map_err(Checked::Lookup)?;
            known.insert(id, facts.clone());
            facts
        }
    };
    check_id(strategy, topic, side, (id, payload), facts.as_deref()).map_err(Checked::Refused)
}
