//! Schema validation of a produce request, before anything is appended: each partition of a
//! validated topic whose batches hold a record that fails is refused whole.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::TopicProduceData;
use prometheus::IntCounterVec;

use super::lookup::{LookupError, Schemas};
use super::{check_id, schema_id, RecordNames, Refusal, SchemaFacts, Side, Strategy, TopicRules};
use crate::metadata::ClusterImage;
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
pub fn request_rules(
    image: &ClusterImage,
    topics: &[TopicProduceData],
) -> Vec<(usize, TopicRules)> {
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
/// records `rules` refuse, judged against the registry's `schemas`; each refused record is
/// counted in `refused` (by topic and reason).
pub async fn refusals(
    schemas: &Schemas,
    refused: &IntCounterVec,
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
            let checked = check_partition(schemas, refused, &topic.name, *rules, records).await;
            if let Err(refusal) = checked {
                out.insert((*topic_slot, partition_slot), refusal);
            }
        }
    }
    out
}

/// Checks every record of one partition's `records`.
async fn check_partition(
    schemas: &Schemas,
    refused: &IntCounterVec,
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
    let mut known = Known::default();
    let records = decoded.iter().flat_map(|batch| batch.iter());
    for (index, (key, value)) in records.enumerate() {
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        let sides = [
            (Side::Key, rules.key, key),
            (Side::Value, rules.value, value),
        ];
        for (side, strategy, payload) in sides {
            // A null key or value passes, as in Confluent Server (tombstones).
            let (Some(strategy), Some(payload)) = (strategy, payload) else {
                continue;
            };
            let checked = known.check(schemas, topic, (side, strategy), payload).await;
            match checked {
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
        refused
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

/// What one partition's check learned: the registry's facts of each id, and the verdicts
/// that depend on the id alone (a batch mostly repeats one id, so most records cost a
/// lookup in a list of one).
#[derive(Default)]
struct Known {
    facts: HashMap<i32, Option<Arc<SchemaFacts>>>,
    verdicts: Vec<((Side, i32), Result<(), Refusal>)>,
}

impl Known {
    async fn check(
        &mut self,
        schemas: &Schemas,
        topic: &str,
        (side, strategy): (Side, Strategy),
        payload: &[u8],
    ) -> Result<(), Checked> {
        let id = schema_id(payload, side).map_err(Checked::Refused)?;
        if let Some((_, verdict)) = self.verdicts.iter().find(|(k, _)| *k == (side, id)) {
            return verdict.clone().map_err(Checked::Refused);
        }
        let facts = match self.facts.get(&id) {
            Some(facts) => facts.clone(),
            None => {
                let facts = schemas.facts(id).await.map_err(Checked::Lookup)?;
                self.facts.insert(id, facts.clone());
                facts
            }
        };
        let verdict = check_id(strategy, topic, side, (id, payload), facts.as_deref());
        // A Protobuf payload names its message itself: under a record name strategy its
        // verdict is its own.
        let per_payload = strategy != Strategy::TopicName
            && facts
                .as_deref()
                .is_some_and(|f| matches!(f.names, RecordNames::Protobuf(_)));
        if !per_payload {
            self.verdicts.push(((side, id), verdict.clone()));
        }
        verdict.map_err(Checked::Refused)
    }
}
