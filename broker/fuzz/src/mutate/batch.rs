//! Record batches mutated inside: a field or a length made to lie, a codec swapped, a payload
//! garbled or cut, each with the CRC recomputed so the lie reaches the broker's validation
//! instead of its checksum test. Some mutations are deliberately valid (other codecs, extreme
//! timestamps and producer fields) so a broker that refuses too much shows up as well.

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::values::{i32_edge, i64_edge};
use crate::checks::strict::{check_record_set, Limits, Origin};
use crate::codec::{self, Codec};
use crate::records::{encode_records, BatchHeader, RecordSpec};
use crate::rng::Rng;

/// Whether a mutation means to produce a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Consumers can read it; a broker must accept it.
    Valid,
    /// Consumers would choke on it; a broker must refuse it.
    Invalid,
}

/// A mutated batch, what was done, and what was meant.
#[derive(Debug, Clone)]
pub struct MutatedBatch {
    /// The whole batch.
    pub bytes: Vec<u8>,
    /// What the mutation did, for the report.
    pub what: String,
    /// What it meant to produce.
    pub intent: Intent,
}

/// Number of distinct batch mutations [`mutate_kind`] knows.
pub const KINDS: usize = 26;
/// Kinds from here on are [`claims`](super::claims): a claim far beyond the bytes present
/// under random attribute bits (kinds 0-6 lie the same way with attributes 0).
pub const CLAIM_KINDS: usize = 20;

/// The records of a batch a client sent, re-indexed 0..n-1 (None unless it is one batch the
/// strict decoder accepts: kafka-protocol's decoder is not trusted with anything else).
pub fn records_of(batch: &[u8]) -> Option<(BatchHeader, Vec<RecordSpec>)> {
    let limits = Limits {
        max_decompressed: 16 << 20,
    };
    match check_record_set(batch, &limits, Origin::Produced)[..] {
        [Ok(_)] => {}
        _ => return None,
    }
    let header = BatchHeader::parse(batch)?;
    let codec = Codec::from_attributes(header.attributes)?;
    let payload =
        codec::decompress(codec, batch.get(crate::records::HEADER_LEN..)?, 16 << 20).ok()?;
    let payload = Bytes::from(payload);
    let decompress =
        move |_: &mut Bytes, _: Compression| -> anyhow::Result<Bytes> { Ok(payload.clone()) };
    // Decoded as placed at offset 0, as the strict decoder checked it.
    let mut placed = batch.to_vec();
    placed[..8].fill(0);
    let mut buf = Bytes::from(placed);
    let set =
        RecordBatchDecoder::decode_with_custom_compression(&mut buf, Some(decompress)).ok()?;
    let records = set
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| RecordSpec {
            timestamp_delta: r
                .timestamp
                .saturating_sub(header.base_timestamp)
                .clamp(0, 1 << 40),
            offset_delta: i as i64,
            key: r.key.as_ref().map(|k| k.to_vec()),
            value: r.value.as_ref().map(|v| v.to_vec()),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|v| v.to_vec())))
                .collect(),
            ..RecordSpec::default()
        })
        .collect();
    Some((header, records))
}

/// Three small records, for requests that carried none.
pub fn default_records() -> Vec<RecordSpec> {
    (0..3)
        .map(|i| RecordSpec::value(i, format!("fz-{i}").as_bytes()))
        .collect()
}

/// `records`, or [`default_records`] when there are none to mutate.
pub fn records_or_default(records: &[RecordSpec]) -> Vec<RecordSpec> {
    if records.is_empty() {
        default_records()
    } else {
        records.to_vec()
    }
}

/// Applies a random batch mutation to `records` (honestly indexed).
pub fn mutate(records: &[RecordSpec], timestamp: i64, rng: &mut Rng) -> MutatedBatch {
    let kind = rng.below(KINDS);
    mutate_kind(kind, records, timestamp, rng)
}

/// Applies batch mutation number `kind` (0..KINDS).
pub fn mutate_kind(
    kind: usize,
    records: &[RecordSpec],
    timestamp: i64,
    rng: &mut Rng,
) -> MutatedBatch {
    let mut records = records_or_default(records);
    let n = records.len() as i32;
    let mut header = BatchHeader::plain(n, timestamp);
    let mut codec = Codec::None;
    let invalid = |bytes: Vec<u8>, what: String| MutatedBatch {
        bytes,
        what,
        intent: Intent::Invalid,
    };
    let what = match kind {
        0 => {
            let mut claim = i32_edge(rng);
            if claim == n {
                claim = n + 1;
            }
            header.record_count = claim;
            header.last_offset_delta = claim.saturating_sub(1);
            format!("recordCount {claim} with {n} records present")
        }
        1 => {
            let mut delta = i32_edge(rng);
            if delta == n - 1 {
                delta = n;
            }
            header.last_offset_delta = delta;
            format!("lastOffsetDelta {delta} with {n} records")
        }
        2 => {
            let i = rng.below(records.len());
            let mut d = i64::from(i32_edge(rng));
            if d == i as i64 {
                d += 1;
            }
            records[i].offset_delta = d;
            format!("record {i} offsetDelta {d}")
        }
        3..=6 => length_lie(kind, &mut records, rng),
        7 => {
            let bits = 5 + rng.below(3) as i16;
            header.attributes = bits;
            format!("codec bits {bits}")
        }
        8 => {
            let flagged = *rng.pick(&codec::ALL[1..]).unwrap_or(&Codec::Gzip);
            let actual = loop {
                let c = *rng.pick(&codec::ALL).unwrap_or(&Codec::None);
                if c != flagged {
                    break c;
                }
            };
            let payload = codec::compress(actual, &encode_records(&records)).unwrap_or_default();
            header.attributes = flagged as i16;
            return invalid(
                header.build(&payload),
                format!("{} payload flagged {}", actual.name(), flagged.name()),
            );
        }
        9 => {
            let flagged = *rng.pick(&codec::ALL[1..]).unwrap_or(&Codec::Gzip);
            let garbage = rng.bytes_between(1, 64);
            header.attributes = flagged as i16;
            return invalid(
                header.build(&garbage),
                format!(
                    "{} garbage payload of {} bytes",
                    flagged.name(),
                    garbage.len()
                ),
            );
        }
        10 => {
            let c = *rng.pick(&codec::ALL).unwrap_or(&Codec::Gzip);
            let mut payload = codec::compress(c, &encode_records(&records)).unwrap_or_default();
            let keep = payload.len() / 2;
            payload.truncate(keep);
            header.attributes = c as i16;
            return invalid(
                header.build(&payload),
                format!("{} payload cut to {keep} bytes", c.name()),
            );
        }
        11 => {
            let c = *rng.pick(&codec::ALL).unwrap_or(&Codec::None);
            let mut raw = encode_records(&records);
            let extra = rng.below(32) + 1;
            raw.extend(rng.bytes(extra));
            let payload = codec::compress(c, &raw).unwrap_or_default();
            header.attributes = c as i16;
            return invalid(
                header.build(&payload),
                format!("{extra} garbage bytes after the last record ({})", c.name()),
            );
        }
        12 => {
            header.magic = *rng.pick(&[0i8, 1, 3, -1]).unwrap_or(&3);
            format!("magic {}", header.magic)
        }
        13 => {
            let mut bytes = header.build(&encode_records(&records));
            bytes[17] ^= 0xff;
            return invalid(bytes, "CRC wrong (not recomputed)".into());
        }
        14 => {
            header.record_count = *rng.pick(&[0i32, -1, i32::MIN]).unwrap_or(&0);
            header.last_offset_delta = -1;
            return invalid(
                header.build(&[]),
                format!("recordCount {} with no records", header.record_count),
            );
        }
        CLAIM_KINDS.. => return super::claims::mutate(&records, timestamp, rng),
        // The valid ones, from here on (up to the claims).
        15 => {
            codec = *rng.pick(&codec::ALL).unwrap_or(&Codec::Lz4);
            header.attributes = codec as i16;
            return valid(header, &records, codec, format!("valid, {}", codec.name()));
        }
        16 => {
            header.base_timestamp = *rng.pick(&[-1i64, 0, i64::MAX >> 2, 1 << 45]).unwrap_or(&-1);
            header.max_timestamp = i64_edge(rng);
            for (i, r) in records.iter_mut().enumerate() {
                r.timestamp_delta = i as i64 * 1000;
            }
            let what = format!(
                "valid, base timestamp {} max {}",
                header.base_timestamp, header.max_timestamp
            );
            return valid(header, &records, codec, what);
        }
        17 => {
            header.producer_id = i64_edge(rng);
            header.producer_epoch = super::values::i16_edge(rng);
            header.base_sequence = i32_edge(rng);
            if rng.chance(50) {
                header.attributes |= 1 << 4;
            }
            let what = format!(
                "valid, producer {}/{} sequence {} attributes {:#x}",
                header.producer_id, header.producer_epoch, header.base_sequence, header.attributes
            );
            return valid(header, &records, codec, what);
        }
        18 => {
            let count = rng.below(5000) + 100;
            records = (0..count as i64)
                .map(|i| RecordSpec::value(i, b"v"))
                .collect();
            codec = *rng.pick(&codec::ALL).unwrap_or(&Codec::None);
            let mut header = BatchHeader::plain(count as i32, timestamp);
            header.attributes = codec as i16;
            return valid(
                header,
                &records,
                codec,
                format!("valid, {count} tiny records ({})", codec.name()),
            );
        }
        _ => {
            // 19: null keys, empty or null values, headers.
            for r in records.iter_mut() {
                r.key = None;
                r.value = if rng.chance(50) {
                    None
                } else {
                    Some(Vec::new())
                };
                r.headers = vec![(b"h".to_vec(), None), (Vec::new(), Some(b"v".to_vec()))];
            }
            return valid(
                header,
                &records,
                codec,
                "valid, null keys, empty or null values, headers".into(),
            );
        }
    };
    let raw = encode_records(&records);
    let payload = match Codec::from_attributes(header.attributes) {
        Some(c) if c == codec => codec::compress(c, &raw).unwrap_or(raw),
        _ => raw,
    };
    invalid(header.build(&payload), what)
}

/// Kinds 3-6: one record's length, key length, value length or header count made to lie
/// with a value that can never be read consistently (negative or past the record).
fn length_lie(kind: usize, records: &mut [RecordSpec], rng: &mut Rng) -> String {
    const RUNS_PAST: [i64; 4] = [-2, 1000, i32::MAX as i64, i32::MIN as i64];
    let i = rng.below(records.len());
    let lie = *rng.pick(&RUNS_PAST).unwrap_or(&-2);
    let r = &mut records[i];
    let (slot, field) = match kind {
        3 => (&mut r.length_lie, "length varint"),
        4 => (&mut r.key_length_lie, "key length"),
        5 => (&mut r.value_length_lie, "value length"),
        _ => (&mut r.header_count_lie, "header count"),
    };
    *slot = Some(lie);
    format!("record {i} {field} {lie}")
}

fn valid(header: BatchHeader, records: &[RecordSpec], codec: Codec, what: String) -> MutatedBatch {
    let raw = encode_records(records);
    let payload = codec::compress(codec, &raw).unwrap_or(raw);
    MutatedBatch {
        bytes: header.build(&payload),
        what,
        intent: Intent::Valid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::strict::check_batch;
    use crate::records::{crc_of, stored_crc};

    #[test]
    fn every_batch_mutation_gets_the_strict_verdict_it_intends() {
        for kind in 0..KINDS {
            for case in 0..40 {
                let mut rng = Rng::for_case(kind as u64, case);
                let m = mutate_kind(kind, &default_records(), 1_700_000_000_000, &mut rng);
                let verdict = check_batch(&m.bytes, &Limits::default());
                let expect_ok = m.intent == Intent::Valid;
                assert_eq!(
                    verdict.is_ok(),
                    expect_ok,
                    "kind {kind} case {case}: {} -> {verdict:?}",
                    m.what
                );
            }
        }
    }

    #[test]
    fn the_crc_is_recomputed_except_where_it_is_the_lie() {
        for kind in 0..KINDS {
            let mut rng = Rng::for_case(1, kind as u64);
            let m = mutate_kind(kind, &default_records(), 0, &mut rng);
            if m.bytes.len() < crate::records::HEADER_LEN {
                continue;
            }
            assert_eq!(
                stored_crc(&m.bytes) == crc_of(&m.bytes),
                kind != 13,
                "kind {kind}: {}",
                m.what
            );
        }
    }

    #[test]
    fn records_of_a_client_batch_come_back_reindexed() {
        let mut rng = Rng::for_case(0, 0);
        let m = mutate_kind(15, &default_records(), 5, &mut rng);
        let (_, back) = records_of(&m.bytes).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].offset_delta, 2);
        assert_eq!(back[1].value.as_deref(), Some(&b"fz-1"[..]));
    }
}
