//! Claims far beyond the bytes present, under random attribute bits: a record count or
//! lastOffsetDelta of up to 2^31-1 over a few records, a record, key, value or header length
//! running millions of bytes past the batch, a header count of millions. A broker that sizes
//! anything by a claim (one error entry per claimed record, one slot per claimed header)
//! before checking it against the bytes present dies of it, whichever attribute branch it took
//! first; so each claim comes with [`attributes::draw`]n bits, the codec's payload compressed
//! around the lie and the CRC recomputed, so neither the codec nor the checksum hides it.

use super::attributes;
use super::batch::{records_or_default, Intent, MutatedBatch};
use crate::codec::{self, Codec};
use crate::records::{encode_records, BatchHeader, RecordSpec};
use crate::rng::Rng;

/// What a claim lies about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// recordCount (lastOffsetDelta usually made to agree, as a careful liar would).
    RecordCount,
    /// lastOffsetDelta with an honest count.
    LastOffsetDelta,
    /// One record's length varint.
    RecordLength,
    /// One record's key length.
    KeyLength,
    /// One record's value length.
    ValueLength,
    /// One record's header count.
    HeaderCount,
    /// One record's first header key length.
    HeaderKeyLength,
    /// One record's first header value length.
    HeaderValueLength,
}

/// Every field, in the order claims draw them; record counts are the likeliest, because a
/// count is what brokers most often size a reservation or an error list by.
pub const DRAWN: [Field; 10] = [
    Field::RecordCount,
    Field::RecordCount,
    Field::RecordCount,
    Field::LastOffsetDelta,
    Field::RecordLength,
    Field::KeyLength,
    Field::ValueLength,
    Field::HeaderCount,
    Field::HeaderKeyLength,
    Field::HeaderValueLength,
];

/// The claims: far beyond any batch (2^31-1 and 2^31-2, as a lastOffsetDelta agreeing with a
/// count of 2^31-1 is), and beyond a small one. Raised past the bytes present when they are not.
pub const CLAIMS: [i32; 5] = [i32::MAX, i32::MAX - 1, 1 << 24, 65_536, 1_000];

/// A random claim about `records` under random attributes.
pub fn mutate(records: &[RecordSpec], timestamp: i64, rng: &mut Rng) -> MutatedBatch {
    let field = rng.pick(&DRAWN).copied().unwrap_or(Field::RecordCount);
    let attributes = attributes::draw(rng);
    claim(field, attributes, records, timestamp, rng)
}

/// A claim about `field` of `records` in a batch with `attributes`; the claimed value and the
/// record it is about come from `rng`. Always invalid: the claim exceeds what is present.
pub fn claim(
    field: Field,
    attributes: i16,
    records: &[RecordSpec],
    timestamp: i64,
    rng: &mut Rng,
) -> MutatedBatch {
    let mut records = records_or_default(records);
    let n = i32::try_from(records.len()).unwrap_or(i32::MAX);
    let present = i32::try_from(encode_records(&records).len()).unwrap_or(i32::MAX);
    let mut header = BatchHeader::plain(n, timestamp);
    header.attributes = attributes;
    let drawn = rng.pick(&CLAIMS).copied().unwrap_or(i32::MAX);
    let i = rng.below(records.len());
    let r = &mut records[i];
    let beyond = |floor: i32| drawn.max(floor.saturating_add(1));
    let what = match field {
        Field::RecordCount => {
            let count = beyond(n);
            header.record_count = count;
            if rng.chance(75) {
                header.last_offset_delta = count - 1;
            }
            format!(
                "recordCount {count} (lastOffsetDelta {}) over {n} records",
                header.last_offset_delta
            )
        }
        Field::LastOffsetDelta => {
            header.last_offset_delta = beyond(n);
            format!(
                "lastOffsetDelta {} over {n} records",
                header.last_offset_delta
            )
        }
        Field::RecordLength => lie(&mut r.length_lie, beyond(present), i, "length varint"),
        Field::KeyLength => lie(&mut r.key_length_lie, beyond(present), i, "key length"),
        Field::ValueLength => lie(&mut r.value_length_lie, beyond(present), i, "value length"),
        Field::HeaderCount => lie(&mut r.header_count_lie, beyond(present), i, "header count"),
        Field::HeaderKeyLength | Field::HeaderValueLength => {
            if r.headers.is_empty() {
                r.headers.push((b"fz-h".to_vec(), Some(b"v".to_vec())));
            }
            let (slot, name) = match field {
                Field::HeaderKeyLength => (&mut r.header_key_length_lie, "header key length"),
                _ => (&mut r.header_value_length_lie, "header value length"),
            };
            lie(slot, beyond(present), i, name)
        }
    };
    let raw = encode_records(&records);
    let payload = match Codec::from_attributes(attributes) {
        Some(c) => codec::compress(c, &raw).unwrap_or(raw),
        None => raw,
    };
    MutatedBatch {
        bytes: header.build(&payload),
        what: format!("{what}, attributes {}", attributes::describe(attributes)),
        intent: Intent::Invalid,
    }
}

fn lie(slot: &mut Option<i64>, value: i32, record: usize, field: &str) -> String {
    *slot = Some(i64::from(value));
    format!("record {record} {field} {value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::strict::{check_batch, Limits};
    use crate::mutate::batch::default_records;
    use crate::records::{crc_of, stored_crc};

    #[test]
    fn every_claim_under_every_attribute_bit_is_invalid_with_a_valid_crc() {
        let bits = [0x08, 0x10, 0x20, 0x40, 0x80, 0x100, 0x4000, i16::MIN];
        for field in DRAWN {
            for codec in 0..8i16 {
                for (k, bit) in bits.iter().enumerate() {
                    let attributes = codec | bit;
                    let mut rng = Rng::for_case(codec as u64, k as u64);
                    let m = claim(field, attributes, &default_records(), 0, &mut rng);
                    assert_eq!(stored_crc(&m.bytes), crc_of(&m.bytes), "{}", m.what);
                    assert_eq!(
                        crate::records::BatchHeader::parse(&m.bytes).map(|h| h.attributes),
                        Some(attributes)
                    );
                    assert!(
                        check_batch(&m.bytes, &Limits::default()).is_err(),
                        "{field:?}: {}",
                        m.what
                    );
                }
            }
        }
    }

    #[test]
    fn the_log_append_time_count_claim_is_among_the_first_cases() {
        // The claim that aborted a broker listing one error per claimed record: 2^31-1
        // records with an agreeing lastOffsetDelta, LogAppendTime set, not a control batch.
        let found = (0..200).find(|&case| {
            let m = mutate(&default_records(), 0, &mut Rng::for_case(1, case));
            let h = crate::records::BatchHeader::parse(&m.bytes);
            h.is_some_and(|h| {
                h.record_count == i32::MAX
                    && h.last_offset_delta == i32::MAX - 1
                    && h.attributes & attributes::LOG_APPEND_TIME != 0
                    && h.attributes & attributes::CONTROL == 0
            })
        });
        assert!(found.is_some());
    }
}
