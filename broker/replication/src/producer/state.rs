//! Per-partition producer state (Kafka's ProducerStateManager): the last sequences of each
//! producer, so retried batches are answered with their original offsets and gaps are refused.

use std::collections::{HashMap, VecDeque};

use super::snapshot::{SnapshotBatch, SnapshotProducer};

/// How many recent batches per producer are remembered for duplicate detection; Kafka allows at
/// most five in-flight requests per connection for idempotent producers.
const REMEMBERED_BATCHES: usize = 5;

/// The idempotence fields of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIdentity {
    /// Producer id (-1 when not idempotent).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub base_sequence: i32,
    /// Records in the batch minus one.
    pub last_offset_delta: i32,
    /// The batch's max timestamp (what DescribeProducers reports as the last one).
    pub max_timestamp: i64,
}

impl BatchIdentity {
    /// The identity a batch header carries.
    pub fn of(view: &tributary_storage::BatchView<'_>) -> Self {
        Self {
            producer_id: view.producer_id(),
            producer_epoch: view.producer_epoch(),
            base_sequence: view.base_sequence(),
            last_offset_delta: view.last_offset_delta(),
            max_timestamp: view.max_timestamp(),
        }
    }

    /// Whether the batch takes part in idempotence.
    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0 && self.base_sequence >= 0
    }

    fn last_sequence(&self) -> i32 {
        wrapping_add(self.base_sequence, self.last_offset_delta)
    }
}

/// Outcome of checking a batch against the producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// A new batch in sequence: append it.
    Append,
    /// A retry of a batch already in the log at this base offset: answer with it, append nothing.
    Duplicate { base_offset: i64 },
}

/// Reasons a batch is refused, mapped to Kafka error codes by the produce handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The epoch is older than the producer's current one (INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    StaleEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// A transactions v2 marker at or below the producer's current epoch: every v2 end bumps
    /// the epoch, so such a marker is a late copy of an earlier end and must not end the
    /// transaction now open at that epoch (KIP-1228; INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id}: a transactions v2 marker at epoch {epoch} is not above the current epoch {current}")]
    MarkerNotBumped {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// The sequence does not follow the last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("producer {producer_id}: sequence {found} does not follow {last}")]
    OutOfOrder {
        producer_id: i64,
        found: i32,
        last: i32,
    },
}

#[derive(Debug, Clone, Copy)]
struct BatchRecord {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchRecord>,
    /// Max timestamp of the producer's last batch here (-1 unknown).
    last_timestamp: i64,
}

/// One producer's state in a partition, as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSummary {
    /// Producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub epoch: i16,
    /// Sequence of its last record here (-1 none).
    pub last_sequence: i32,
    /// Max timestamp of its last batch here (-1 unknown).
    pub last_timestamp: i64,
}

/// How long a refused first batch holds back the producer's later ones: Kafka producers'
/// default `delivery.timeout.ms`, after which the batch was given up (and its producer moved
/// to a new epoch, to which the mark does not apply).
const REFUSED_START_MS: i64 = 120_000;
/// At most this many refused first batches are remembered per partition.
const REFUSED_STARTS: usize = 10_000;

/// The first batch of a producer unknown here, refused before it could be appended.
#[derive(Debug, Clone, Copy)]
struct RefusedStart {
    epoch: i16,
    first_seq: i32,
    at_ms: i64,
}

/// The producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    /// Producers unknown here whose batch was refused before its sequence was checked (too
    /// few in-sync replicas, say): until it is appended, their later in-flight batches are
    /// out of order. Kafka accepts any first sequence of an unknown producer, so without this
    /// a later batch could land first and every retry of the refused one would then be out of
    /// order for good.
    refused: HashMap<i64, RefusedStart>,
}

impl ProducerStateTable {
    /// Remembers that `batch` was refused before it could be appended (see `refused`), if its
    /// producer is unknown here; the lowest refused sequence of the producer's epoch counts.
    pub fn note_refused(&mut self, batch: &BatchIdentity, now_ms: i64) {
        if !batch.is_idempotent() || self.producers.contains_key(&batch.producer_id) {
            return;
        }
        if self.refused.len() >= REFUSED_STARTS {
            self.refused
                .retain(|_, r| now_ms.saturating_sub(r.at_ms) < REFUSED_START_MS);
            if self.refused.len() >= REFUSED_STARTS {
                return;
            }
        }
        let mark = RefusedStart {
            epoch: batch.producer_epoch,
            first_seq: batch.base_sequence,
            at_ms: now_ms,
        };
        self.refused
            .entry(batch.producer_id)
            .and_modify(|r| {
                if r.epoch != mark.epoch || mark.first_seq <= r.first_seq {
                    *r = mark;
                }
            })
            .or_insert(mark);
    }

    /// Decides whether `batch` is appended, answered as a duplicate, or refused.
    pub fn check(
        &self,
        batch: &BatchIdentity,
        now_ms: i64,
    ) -> Result<SequenceCheck, SequenceError> {
        if !batch.is_idempotent() {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            // Unknown producer (new, or its records were removed by retention): accept any
            // sequence, as Kafka does when no epoch is known, unless an earlier batch of the
            // same epoch was refused and is still being retried.
            return match self.refused.get(&batch.producer_id) {
                Some(r)
                    if r.epoch == batch.producer_epoch
                        && batch.base_sequence > r.first_seq
                        && now_ms.saturating_sub(r.at_ms) < REFUSED_START_MS =>
                {
                    Err(SequenceError::OutOfOrder {
                        producer_id: batch.producer_id,
                        found: batch.base_sequence,
                        last: r.first_seq.wrapping_sub(1),
                    })
                }
                _ => Ok(SequenceCheck::Append),
            };
        };
        if batch.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id: batch.producer_id,
                epoch: batch.producer_epoch,
                current: entry.epoch,
            });
        }
        if batch.producer_epoch > entry.epoch {
            return if batch.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrder {
                    producer_id: batch.producer_id,
                    found: batch.base_sequence,
                    last: -1,
                })
            };
        }
        let last_seq = batch.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == batch.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.base_offset,
            });
        }
        let last = entry.batches.back().map_or(-1, |b| b.last_seq);
        let in_sequence = batch.base_sequence == wrapping_add(last, 1)
            || (entry.batches.is_empty() && batch.base_sequence == 0);
        if in_sequence {
            Ok(SequenceCheck::Append)
        } else {
            Err(SequenceError::OutOfOrder {
                producer_id: batch.producer_id,
                found: batch.base_sequence,
                last,
            })
        }
    }

    /// Records an appended batch (also used to rebuild state from the log at start-up).
    pub fn record(&mut self, batch: &BatchIdentity, base_offset: i64) {
        if !batch.is_idempotent() {
            return;
        }
        self.refused.remove(&batch.producer_id);
        let entry = self.producers.entry(batch.producer_id).or_default();
        if batch.producer_epoch != entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
        }
        if entry
            .batches
            .iter()
            .any(|b| b.base_offset == base_offset && b.first_seq == batch.base_sequence)
        {
            // Already remembered (a follower fetching again what its snapshot covers).
            return;
        }
        if entry.batches.len() == REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchRecord {
            first_seq: batch.base_sequence,
            last_seq: batch.last_sequence(),
            base_offset,
        });
        entry.last_timestamp = batch.max_timestamp;
    }

    /// Every producer known here, by producer id.
    pub fn summaries(&self) -> Vec<ProducerSummary> {
        let mut all: Vec<ProducerSummary> = self
            .producers
            .iter()
            .map(|(&producer_id, e)| ProducerSummary {
                producer_id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: if e.last_timestamp > 0 {
                    e.last_timestamp
                } else {
                    -1
                },
            })
            .collect();
        all.sort_unstable_by_key(|p| p.producer_id);
        all
    }

    /// Applies a transaction marker's epoch: a newer epoch fences the producer's older
    /// instances, whose later batches are refused as stale.
    pub fn fence(&mut self, producer_id: i64, epoch: i16) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
    }

    /// The producer's current epoch here, if it wrote to this partition.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    /// Forgets producers whose last batch here is at least `expiration_ms` older than
    /// `now_ms` (Kafka's `producer.id.expiration.ms`), except those `keep` names (an open
    /// transaction); returns how many were forgotten. A retry from a forgotten producer is
    /// appended again, as in Kafka.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64, keep: impl Fn(i64) -> bool) -> usize {
        let before = self.producers.len();
        self.producers.retain(|&producer_id, entry| {
            now_ms.saturating_sub(entry.last_timestamp) < expiration_ms || keep(producer_id)
        });
        before - self.producers.len()
    }

    /// Every producer's state, by producer id, for a snapshot.
    pub fn entries(&self) -> Vec<SnapshotProducer> {
        let mut all: Vec<SnapshotProducer> = self
            .producers
            .iter()
            .map(|(&producer_id, e)| SnapshotProducer {
                producer_id,
                epoch: e.epoch,
                last_timestamp: e.last_timestamp,
                batches: e
                    .batches
                    .iter()
                    .map(|b| SnapshotBatch {
                        first_sequence: b.first_seq,
                        last_sequence: b.last_seq,
                        base_offset: b.base_offset,
                    })
                    .collect(),
            })
            .collect();
        all.sort_unstable_by_key(|p| p.producer_id);
        all
    }

    /// The table a snapshot's entries describe (the last [`REMEMBERED_BATCHES`] of each).
    pub fn from_entries(entries: &[SnapshotProducer]) -> ProducerStateTable {
        let producers = entries
            .iter()
            .map(|p| {
                let skip = p.batches.len().saturating_sub(REMEMBERED_BATCHES);
                let batches = p.batches[skip..]
                    .iter()
                    .map(|b| BatchRecord {
                        first_seq: b.first_sequence,
                        last_seq: b.last_sequence,
                        base_offset: b.base_offset,
                    })
                    .collect();
                let entry = ProducerEntry {
                    epoch: p.epoch,
                    batches,
                    last_timestamp: p.last_timestamp,
                };
                (p.producer_id, entry)
            })
            .collect();
        ProducerStateTable {
            producers,
            refused: HashMap::new(),
        }
    }

    /// Forgets every producer (after the log was truncated or deleted).
    pub fn clear(&mut self) {
        self.producers.clear();
        self.refused.clear();
    }
}

fn wrapping_add(seq: i32, delta: i32) -> i32 {
    // Kafka sequences wrap from i32::MAX back to 0.
    let sum = i64::from(seq) + i64::from(delta);
    if sum > i64::from(i32::MAX) {
        (sum - i64::from(i32::MAX) - 1) as i32
    } else {
        sum as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchIdentity {
        BatchIdentity {
            max_timestamp: 1_000,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            last_offset_delta: records - 1,
        }
    }

    #[test]
    fn idle_producers_expire_unless_kept() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(1, 0, 0, 1), 0); // last timestamp 1_000
        table.record(
            &BatchIdentity {
                max_timestamp: 5_000,
                ..batch(2, 0, 0, 1)
            },
            1,
        );
        table.record(&batch(3, 0, 0, 1), 2);
        assert_eq!(
            table.expire(4_999, 4_000, |_| false),
            0,
            "not idle long enough"
        );
        assert_eq!(table.expire(5_000, 4_000, |pid| pid == 3), 1);
        assert_eq!(table.epoch(1), None, "forgotten");
        assert_eq!(table.epoch(3), Some(0), "kept: its transaction is open");
        assert_eq!(
            table.check(&batch(1, 0, 0, 1), 0),
            Ok(SequenceCheck::Append),
            "a forgotten producer starts afresh"
        );
        assert_eq!(table.summaries().len(), 2);
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut table = ProducerStateTable::default();
        let first = batch(7, 0, 0, 3);
        assert_eq!(table.check(&first, 0), Ok(SequenceCheck::Append));
        table.record(&first, 100);
        let second = batch(7, 0, 3, 2);
        assert_eq!(table.check(&second, 0), Ok(SequenceCheck::Append));
        table.record(&second, 103);
        assert_eq!(
            table.check(&first, 0),
            Ok(SequenceCheck::Duplicate { base_offset: 100 })
        );
        assert_eq!(
            table.check(&second, 0),
            Ok(SequenceCheck::Duplicate { base_offset: 103 })
        );
    }

    #[test]
    fn gaps_are_out_of_order_and_old_epochs_are_fenced() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(7, 1, 0, 3), 0);
        assert!(matches!(
            table.check(&batch(7, 1, 5, 1), 0),
            Err(SequenceError::OutOfOrder {
                found: 5,
                last: 2,
                ..
            })
        ));
        assert!(matches!(
            table.check(&batch(7, 0, 3, 1), 0),
            Err(SequenceError::StaleEpoch { .. })
        ));
        assert_eq!(
            table.check(&batch(7, 2, 0, 1), 0),
            Ok(SequenceCheck::Append)
        );
        assert!(table.check(&batch(7, 2, 4, 1), 0).is_err());
    }

    #[test]
    fn unknown_producers_and_plain_batches_are_accepted() {
        let table = ProducerStateTable::default();
        assert_eq!(
            table.check(&batch(9, 0, 42, 1), 0),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            table.check(&batch(-1, -1, -1, 1), 0),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut table = ProducerStateTable::default();
        for i in 0..6 {
            table.record(&batch(1, 0, i, 1), i64::from(i));
        }
        assert!(table.check(&batch(1, 0, 0, 1), 0).is_err());
        assert_eq!(
            table.check(&batch(1, 0, 1, 1), 0),
            Ok(SequenceCheck::Duplicate { base_offset: 1 })
        );
        let mut table = ProducerStateTable::default();
        table.record(&batch(2, 0, i32::MAX - 1, 2), 0);
        assert_eq!(
            table.check(&batch(2, 0, 0, 1), 0),
            Ok(SequenceCheck::Append)
        );
    }
}

#[cfg(test)]
mod refused_start_tests {
    use super::*;

    fn batch(producer_id: i64, epoch: i16, seq: i32) -> BatchIdentity {
        BatchIdentity {
            producer_id,
            producer_epoch: epoch,
            base_sequence: seq,
            last_offset_delta: 9,
            max_timestamp: 1,
        }
    }

    #[test]
    fn a_refused_first_batch_holds_back_the_later_in_flight_ones_until_it_lands() {
        let mut table = ProducerStateTable::default();
        // Sequence 0 is refused (too few in-sync replicas); 10 and 20 were sent behind it.
        table.note_refused(&batch(7, 0, 0), 1_000);
        assert!(matches!(
            table.check(&batch(7, 0, 10), 1_001),
            Err(SequenceError::OutOfOrder {
                found: 10,
                last: -1,
                ..
            })
        ));
        // The retry of 0 lands, and the others follow in order.
        assert_eq!(
            table.check(&batch(7, 0, 0), 1_002),
            Ok(SequenceCheck::Append)
        );
        table.record(&batch(7, 0, 0), 0);
        assert_eq!(
            table.check(&batch(7, 0, 10), 1_003),
            Ok(SequenceCheck::Append)
        );
        table.record(&batch(7, 0, 10), 10);
        // A refusal of a producer known here changes nothing: its sequences already rule.
        table.note_refused(&batch(7, 0, 20), 1_004);
        assert_eq!(
            table.check(&batch(7, 0, 20), 1_005),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn the_mark_keeps_the_lowest_sequence_and_lapses_with_a_new_epoch_or_in_time() {
        let mut table = ProducerStateTable::default();
        table.note_refused(&batch(7, 0, 10), 1_000);
        table.note_refused(&batch(7, 0, 0), 1_000);
        table.note_refused(&batch(7, 0, 20), 1_000);
        assert!(table.check(&batch(7, 0, 10), 1_000).is_err());
        assert_eq!(
            table.check(&batch(7, 0, 0), 1_000),
            Ok(SequenceCheck::Append)
        );
        // A producer that gave up moves to a new epoch and starts again at 0.
        assert_eq!(
            table.check(&batch(7, 1, 0), 1_000),
            Ok(SequenceCheck::Append)
        );
        // Other producers are not concerned; the mark lapses with the delivery timeout.
        assert_eq!(
            table.check(&batch(8, 0, 10), 1_000),
            Ok(SequenceCheck::Append)
        );
        assert_eq!(
            table.check(&batch(7, 0, 10), 1_000 + REFUSED_START_MS),
            Ok(SequenceCheck::Append)
        );
        table.clear();
        assert_eq!(
            table.check(&batch(7, 0, 10), 1_000),
            Ok(SequenceCheck::Append)
        );
    }
}
