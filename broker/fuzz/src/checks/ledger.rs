//! The ack ledger: every (topic, partition, base offset) a Produce response acknowledged with
//! error 0, with the strict decoder's verdict on the batch that was sent. An acknowledged
//! invalid batch is a failure on the spot; the ledger also tells the read-back which
//! partitions to read and which request put a bad batch where it found one.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{ProduceResponse, RequestKind};

use super::strict::{check_record_set, Limits, Origin};
use super::{CaseRef, Failure};
use crate::wire;

/// One acknowledged batch.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The request that carried it.
    pub case: CaseRef,
    /// The strict verdict on what was sent (Err: the defect).
    pub verdict: Result<(), String>,
}

/// All acknowledgements of a run.
#[derive(Debug, Default)]
pub struct Ledger {
    acks: BTreeMap<(String, i32, i64), Ack>,
    /// Acks of batches the strict decoder accepted.
    pub valid_acks: u64,
    /// Acks of batches it refused.
    pub invalid_acks: u64,
}

/// What a Produce request sent to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The strict verdict on its record set.
    pub verdict: Result<(), String>,
}

/// What a Produce frame sends, partition by partition in request order (empty if the frame
/// is not a decodable Produce request with an honest size prefix).
pub fn sent_batches(frame: &[u8], limits: &Limits) -> Vec<Sent> {
    let declared = frame
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64);
    if declared != Some(frame.len() as i64 - 4) {
        return Vec::new();
    }
    let Some((_, _, RequestKind::Produce(r))) = wire::decode_request(frame) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in &r.topic_data {
        for p in &t.partition_data {
            let verdict = match &p.records {
                None => Err("null record set".to_string()),
                Some(records) => check_record_set(records, limits, Origin::Produced)
                    .into_iter()
                    .find_map(|b| b.err())
                    .map_or(Ok(()), |(_, d)| Err(d.to_string())),
            };
            out.push(Sent {
                topic: t.name.0.to_string(),
                partition: p.index,
                verdict,
            });
        }
    }
    out
}

impl Ledger {
    /// Records a Produce response to `sent`; returns a failure per invalid batch it acknowledged.
    pub fn record(
        &mut self,
        case: &CaseRef,
        sent: &[Sent],
        response: &ProduceResponse,
    ) -> Vec<Failure> {
        // The i-th occurrence of a partition in the response answers its i-th occurrence in
        // the request (a request may name a partition twice).
        let mut pending: BTreeMap<(String, i32), Vec<&Sent>> = BTreeMap::new();
        for s in sent.iter().rev() {
            pending
                .entry((s.topic.clone(), s.partition))
                .or_default()
                .push(s);
        }
        let mut failures = Vec::new();
        for t in &response.responses {
            for p in &t.partition_responses {
                let key = (t.name.0.to_string(), p.index);
                let Some(s) = pending.get_mut(&key).and_then(|v| v.pop()) else {
                    continue;
                };
                if p.error_code != 0
                    || s.verdict
                        .as_ref()
                        .err()
                        .is_some_and(|d| d == "null record set")
                {
                    continue;
                }
                match &s.verdict {
                    Ok(()) => self.valid_acks += 1,
                    Err(defect) => {
                        self.invalid_acks += 1;
                        failures.push(Failure::InvalidAck {
                            topic: key.0.clone(),
                            partition: key.1,
                            base_offset: p.base_offset,
                            defect: defect.clone(),
                            case: case.clone(),
                        });
                    }
                }
                self.acks.insert(
                    (key.0, key.1, p.base_offset),
                    Ack {
                        case: case.clone(),
                        verdict: s.verdict.clone(),
                    },
                );
            }
        }
        failures
    }

    /// Every partition with at least one acknowledgement.
    pub fn touched(&self) -> BTreeSet<(String, i32)> {
        self.acks.keys().map(|(t, p, _)| (t.clone(), *p)).collect()
    }

    /// The acknowledgement at exactly this offset, if any.
    pub fn at(&self, topic: &str, partition: i32, offset: i64) -> Option<&Ack> {
        self.acks.get(&(topic.to_string(), partition, offset))
    }

    /// Number of acknowledgements.
    pub fn len(&self) -> usize {
        self.acks.len()
    }

    /// Whether nothing was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::batch::{default_records, mutate_kind};
    use crate::rng::Rng;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName};

    fn produce_frame(batches: &[Vec<u8>]) -> Vec<u8> {
        let parts = batches
            .iter()
            .map(|b| {
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(b.clone().into()))
            })
            .collect();
        let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName("t".into()))
                .with_partition_data(parts),
        ]);
        wire::encode_request(ApiKey::Produce, 9, 1, "x", &RequestKind::Produce(req)).unwrap()
    }

    fn response(offsets_and_errors: &[(i64, i16)]) -> ProduceResponse {
        ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_name(TopicName("t".into()))
            .with_partition_responses(
                offsets_and_errors
                    .iter()
                    .map(|&(o, e)| {
                        PartitionProduceResponse::default()
                            .with_index(0)
                            .with_base_offset(o)
                            .with_error_code(e)
                    })
                    .collect(),
            )])
    }

    fn case(frame: Vec<u8>) -> CaseRef {
        CaseRef {
            seed: 1,
            index: 2,
            origin: "test".into(),
            mutation: "m".into(),
            frame_len: frame.len(),
            frame,
        }
    }

    #[test]
    fn an_acknowledged_invalid_batch_is_a_failure_and_a_refused_one_is_not() {
        let bad = mutate_kind(9, &default_records(), 0, &mut Rng::for_case(0, 0)).bytes; // garbage payload
        let good = mutate_kind(15, &default_records(), 0, &mut Rng::for_case(0, 0)).bytes;
        let frame = produce_frame(&[good, bad]);
        let sent = sent_batches(&frame, &Limits::default());
        assert!(sent[0].verdict.is_ok() && sent[1].verdict.is_err());
        let mut ledger = Ledger::default();
        let failures = ledger.record(&case(frame.clone()), &sent, &response(&[(0, 0), (3, 0)]));
        assert_eq!(failures.len(), 1);
        assert!(matches!(
            &failures[0],
            Failure::InvalidAck { base_offset: 3, .. }
        ));
        assert_eq!((ledger.valid_acks, ledger.invalid_acks), (1, 1));
        assert!(ledger.at("t", 0, 3).is_some_and(|a| a.verdict.is_err()));

        let mut refused = Ledger::default();
        assert!(refused
            .record(&case(frame), &sent, &response(&[(0, 0), (-1, 2)]))
            .is_empty());
        assert_eq!(refused.touched().len(), 1);
    }

    #[test]
    fn a_frame_with_a_lying_size_prefix_sends_nothing_the_ledger_counts() {
        let good = mutate_kind(15, &default_records(), 0, &mut Rng::for_case(0, 0)).bytes;
        let mut frame = produce_frame(&[good]);
        frame[3] = frame[3].wrapping_add(1);
        assert!(sent_batches(&frame, &Limits::default()).is_empty());
    }
}
