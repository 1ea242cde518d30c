//! Turning a corpus entry into a fuzz case, deterministically from `(seed, case index)`: the
//! strategy, the entry and every choice inside come from that case's own random stream, so a
//! failing case is reproduced from its seed and index (or its frame hex) alone.

pub mod attributes;
pub mod batch;
pub mod bomb;
pub mod claims;
pub mod frame;
pub mod primitive;
pub mod typed;
pub mod values;

use kafka_protocol::messages::{ApiKey, RequestKind};

use crate::corpus::widen::Served;
use crate::corpus::Entry;
use crate::rng::Rng;
use crate::wire;

/// One frame to send, and how it came to be.
#[derive(Debug, Clone)]
pub struct Case {
    /// Its index in the run (with the seed, enough to regenerate it).
    pub index: u64,
    /// The whole frame as sent.
    pub frame: Vec<u8>,
    /// The corpus entry it came from.
    pub origin: String,
    /// What was done to it.
    pub mutation: String,
    /// Send it on a new connection rather than a reused one.
    pub fresh_connection: bool,
}

/// Everything a case is made from.
pub struct Mutator<'a> {
    /// The run's seed.
    pub seed: u64,
    /// The widened corpus.
    pub corpus: &'a [Entry],
    /// Served APIs and versions.
    pub served: &'a Served,
    /// Names for typed mutation.
    pub vocab: &'a typed::Vocabulary,
    /// Compression bombs (None: no bombs in this run).
    pub arsenal: Option<&'a bomb::Arsenal>,
}

impl Mutator<'_> {
    /// Case number `index`.
    pub fn case(&self, index: u64) -> Case {
        let mut rng = Rng::for_case(self.seed, index);
        let roll = rng.below(100);
        let produce: Vec<&Entry> = self
            .corpus
            .iter()
            .filter(|e| e.api_key == ApiKey::Produce as i16)
            .collect();
        let entry = if (60..100).contains(&roll) && !produce.is_empty() {
            produce[rng.below(produce.len())]
        } else {
            &self.corpus[rng.below(self.corpus.len())]
        };
        let mut frame = entry.frame.clone();
        wire::set_correlation_id(&mut frame, (index % i32::MAX as u64) as i32);
        let mutation = match roll {
            0..=4 => "none".to_string(),
            5..=19 => frame::mutate(&mut frame, &mut rng, self.served),
            20..=34 => {
                let start = body_start(&frame);
                primitive::mutate(&mut frame, start, &mut rng)
            }
            35..=59 => self.typed(&mut frame, &mut rng),
            60..=96 => self.batch(&mut frame, &mut rng, false),
            _ => self.batch(&mut frame, &mut rng, true),
        };
        Case {
            index,
            frame,
            origin: format!(
                "{:?} v{} from {}",
                api_name(entry.api_key),
                entry.api_version,
                entry.source
            ),
            mutation,
            fresh_connection: rng.chance(30),
        }
    }

    fn typed(&self, frame: &mut Vec<u8>, rng: &mut Rng) -> String {
        let Some((api, header, mut request)) = wire::decode_request(frame) else {
            return primitive::mutate(frame, body_start(frame), rng);
        };
        let Some(what) = typed::mutate(&mut request, rng, self.vocab) else {
            return primitive::mutate(frame, body_start(frame), rng);
        };
        match wire::encode_with_header(api, &header, &request) {
            Ok(encoded) => {
                *frame = encoded;
                what
            }
            Err(e) => format!(
                "{} (typed mutation did not encode: {e})",
                primitive::mutate(frame, body_start(frame), rng)
            ),
        }
    }

    /// Replaces the records of the request's first partition with a mutated batch or a bomb,
    /// usually as a plain acks=1 producer so the batch reaches the log (or its validation).
    fn batch(&self, frame: &mut Vec<u8>, rng: &mut Rng, bomb: bool) -> String {
        let Some((api, header, RequestKind::Produce(mut request))) = wire::decode_request(frame)
        else {
            return primitive::mutate(frame, body_start(frame), rng);
        };
        let Some(topic) = request.topic_data.first_mut() else {
            return "produce without topics, unmutated".into();
        };
        topic.partition_data.truncate(1);
        let Some(partition) = topic.partition_data.first_mut() else {
            return "produce without partitions, unmutated".into();
        };
        let original = partition.records.clone().unwrap_or_default();
        let picked = match (bomb, self.arsenal) {
            (true, Some(arsenal)) => arsenal.pick(rng),
            _ => None,
        };
        let (bytes, what) = match picked {
            Some(b) => (b.batch.to_vec(), b.what.clone()),
            None => {
                let records = batch::records_of(&original)
                    .map(|(_, r)| r)
                    .unwrap_or_default();
                let m = batch::mutate(&records, 1_700_000_000_000 + rng.below(1 << 30) as i64, rng);
                (m.bytes, m.what)
            }
        };
        partition.records = Some(bytes.into());
        request.topic_data.truncate(1);
        if rng.chance(80) {
            request.transactional_id = None;
            request.acks = if rng.chance(50) { 1 } else { -1 };
        }
        match wire::encode_with_header(api, &header, &RequestKind::Produce(request)) {
            Ok(encoded) => {
                *frame = encoded;
                what
            }
            Err(e) => format!("batch mutation did not encode ({e}); unmutated"),
        }
    }
}

/// Where the body of a frame starts (after its header), or just after the fixed prefix.
pub fn body_start(frame: &[u8]) -> usize {
    wire::split(frame).map_or(12.min(frame.len()), |s| frame.len() - s.body.len())
}

/// The API's name, or the number for an unknown key.
pub fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("api{key}"), |a| format!("{a:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ProduceRequest;

    fn corpus() -> Vec<Entry> {
        let rec =
            batch::mutate_kind(15, &batch::default_records(), 0, &mut Rng::for_case(0, 0)).bytes;
        let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            kafka_protocol::messages::produce_request::TopicProduceData::default()
                .with_name(kafka_protocol::messages::TopicName("t".into()))
                .with_partition_data(vec![
                    kafka_protocol::messages::produce_request::PartitionProduceData::default()
                        .with_records(Some(rec.into())),
                ]),
        ]);
        let frame = wire::encode_request(ApiKey::Produce, 9, 0, "java", &RequestKind::Produce(req))
            .unwrap();
        vec![Entry {
            api_key: 0,
            api_version: 9,
            source: "java".into(),
            frame,
        }]
    }

    fn produce_served() -> Served {
        vec![(ApiKey::Produce, 3, 11)]
    }

    fn mutator<'a>(
        seed: u64,
        corpus: &'a [Entry],
        served: &'a Served,
        vocab: &'a typed::Vocabulary,
    ) -> Mutator<'a> {
        Mutator {
            seed,
            corpus,
            served,
            vocab,
            arsenal: None,
        }
    }

    #[test]
    fn a_case_is_the_same_for_the_same_seed_and_index() {
        let (c, served, vocab) = (corpus(), produce_served(), typed::Vocabulary::default());
        let m = mutator(9, &c, &served, &vocab);
        for i in 0..50 {
            let (a, b) = (m.case(i), m.case(i));
            assert_eq!((a.frame, a.mutation), (b.frame, b.mutation));
        }
    }

    #[test]
    fn the_regression_seeds_mutate_and_check_without_a_panic() {
        use crate::checks::ledger::sent_batches;
        use crate::checks::strict::Limits;
        let seeds = crate::corpus::regression::seeds().unwrap().seeds;
        for s in &seeds {
            sent_batches(&s.frame, &Limits::default());
        }
        let (served, vocab) = (produce_served(), typed::Vocabulary::default());
        let m = mutator(1, &seeds, &served, &vocab);
        for i in 0..300 {
            m.case(i);
        }
    }

    #[test]
    fn claims_under_attribute_bits_are_a_share_of_the_cases() {
        let (c, served, vocab) = (corpus(), produce_served(), typed::Vocabulary::default());
        let m = mutator(1, &c, &served, &vocab);
        let claims = (0..1000)
            .filter(|&i| m.case(i).mutation.contains(", attributes 0x"))
            .count();
        assert!((40..200).contains(&claims), "{claims} of 1000");
    }

    #[test]
    fn batch_mutations_stay_valid_produce_requests() {
        let (c, served, vocab) = (corpus(), produce_served(), typed::Vocabulary::default());
        let m = mutator(1, &c, &served, &vocab);
        let mut produced = 0;
        for i in 0..200 {
            let case = m.case(i);
            if (60..97).contains(&Rng::for_case(1, i).below(100)) {
                assert!(
                    wire::decode_request(&case.frame).is_some(),
                    "{}",
                    case.mutation
                );
                produced += 1;
            }
        }
        assert!(produced > 50);
    }
}
