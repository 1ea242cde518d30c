//! The strict batch decoder: what "a valid batch" means to the harness. A batch passes only if
//! kafka-protocol's `RecordBatchDecoder` decodes it AND it obeys the rules Kafka's
//! LogValidator enforces that the crate does not: the record count equals the records present,
//! offset deltas run 0..n-1, every length stays inside its record, nothing trails the last
//! record, the codec is real and its payload decompresses within a bound, and no record's
//! offset or timestamp (base plus delta) overflows i64. The crate's decoder only sees batches
//! that passed all of that, so the harness never depends on it handling hostile ones.

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::codec::{self, Codec, DecompressError};
use crate::records::{self, read_varint, BatchHeader, HEADER_LEN};

/// Bounds on what the decoder will do for one batch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes a compressed payload may expand to; a batch that expands further is a bomb.
    pub max_decompressed: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_decompressed: 64 << 20,
        }
    }
}

/// What is wrong with a batch, precisely enough to tell a bug report what to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Defect {
    /// Fewer bytes than a batch header.
    #[error("batch header truncated ({0} of 61 bytes)")]
    ShortHeader(usize),
    /// batchLength disagrees with the bytes present.
    #[error("batchLength says {declared} bytes follow, {present} do")]
    BatchLength {
        /// What the header says.
        declared: i64,
        /// What is there.
        present: usize,
    },
    /// Not a v2 batch.
    #[error("magic byte {0}, only 2 is valid")]
    Magic(i8),
    /// The CRC does not match the contents.
    #[error("CRC {stored:#010x} but the contents hash to {computed:#010x}")]
    Crc {
        /// Stored in the header.
        stored: u32,
        /// Computed over attributes..end.
        computed: u32,
    },
    /// Codec bits 5-7.
    #[error("compression codec bits {0} name no codec")]
    Codec(i16),
    /// recordCount is zero or negative.
    #[error("record count {0}")]
    Count(i32),
    /// lastOffsetDelta is not recordCount - 1.
    #[error("lastOffsetDelta {last_offset_delta} with {record_count} records")]
    LastOffsetDelta {
        /// From the header.
        last_offset_delta: i32,
        /// From the header.
        record_count: i32,
    },
    /// The payload does not decompress.
    #[error("bad {codec} compression: {reason}")]
    Decompress {
        /// The codec the attributes name.
        codec: &'static str,
        /// The codec library's words.
        reason: String,
    },
    /// The payload expands past the bound: a compression bomb.
    #[error("{codec} payload expands past {limit} bytes (compression bomb)")]
    Bomb {
        /// The codec the attributes name.
        codec: &'static str,
        /// The bound.
        limit: usize,
    },
    /// Fewer records present than the header claims.
    #[error("header claims {claimed} records, {present} present")]
    CountMismatch {
        /// recordCount.
        claimed: i32,
        /// Records decoded before the bytes ran out.
        present: i32,
    },
    /// One record is malformed.
    #[error("record {index}: {what}")]
    Record {
        /// Its position in the batch.
        index: i32,
        /// What is wrong.
        what: String,
    },
    /// Bytes after the last claimed record.
    #[error("{0} bytes after the last record")]
    Trailing(usize),
    /// kafka-protocol's decoder refuses what our rules accept (a gap in our rules).
    #[error("kafka-protocol's RecordBatchDecoder refuses it: {0}")]
    Decoder(String),
}

/// What a valid batch holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Its header.
    pub header: BatchHeader,
    /// Bytes it takes on the wire (size fields included).
    pub len: usize,
    /// Records decoded (equals the claimed count).
    pub records: i32,
}

impl BatchInfo {
    /// The offset after this batch (saturating: the base offset is whatever a broker sent).
    pub fn next_offset(&self) -> i64 {
        self.header
            .base_offset
            .saturating_add(i64::from(self.header.last_offset_delta))
            .saturating_add(1)
    }

    /// Whether it is a control batch (transaction marker), which consumers do not show.
    pub fn is_control(&self) -> bool {
        self.header.attributes & (1 << 5) != 0
    }
}

/// One batch as found in a record set: valid, or its base offset and defect.
pub type Checked = Result<BatchInfo, (Option<i64>, Defect)>;

/// Where a record set comes from, which decides two rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A Produce request: whole batches only, and the base offsets are the producer's
    /// placeholders the broker replaces, so they are checked as 0 (a base offset of i64::MAX
    /// is no defect in a produced batch; offsets overflowing from it would be in a stored one).
    Produced,
    /// A Fetch response: it may end in a cut batch, and the base offsets are the stored ones.
    Fetched,
}

/// Checks every batch of a record set from `origin`.
pub fn check_record_set(records: &[u8], limits: &Limits, origin: Origin) -> Vec<Checked> {
    let allow_partial_tail = origin == Origin::Fetched;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let rest = &records[pos..];
        if rest.len() < 12 {
            if !allow_partial_tail {
                out.push(Err((None, Defect::ShortHeader(rest.len()))));
            }
            break;
        }
        let declared = i64::from(i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]));
        let base = i64::from_be_bytes(rest[..8].try_into().unwrap_or([0; 8]));
        let total = usize::try_from(declared).ok().map(|d| d + 12);
        match total {
            Some(total) if total <= rest.len() => {
                let verdict = match origin {
                    Origin::Fetched => check_batch(&rest[..total], limits),
                    Origin::Produced => {
                        let mut placed = rest[..total].to_vec();
                        placed[..8].fill(0);
                        check_batch(&placed, limits)
                    }
                };
                out.push(verdict.map_err(|d| (Some(base), d)));
                pos += total;
            }
            Some(_) if allow_partial_tail => break,
            _ => {
                let present = rest.len() - 12;
                out.push(Err((Some(base), Defect::BatchLength { declared, present })));
                break;
            }
        }
    }
    out
}

/// Checks exactly one batch (`batch` holds it whole, nothing more).
pub fn check_batch(batch: &[u8], limits: &Limits) -> Result<BatchInfo, Defect> {
    let header = BatchHeader::parse(batch).ok_or(Defect::ShortHeader(batch.len()))?;
    let declared = i64::from(i32::from_be_bytes([
        batch[8], batch[9], batch[10], batch[11],
    ]));
    if declared != (batch.len() - 12) as i64 {
        return Err(Defect::BatchLength {
            declared,
            present: batch.len() - 12,
        });
    }
    if header.magic != 2 {
        return Err(Defect::Magic(header.magic));
    }
    let (stored, computed) = (
        records::stored_crc(batch).unwrap_or(0),
        records::crc_of(batch).unwrap_or(0),
    );
    if stored != computed {
        return Err(Defect::Crc { stored, computed });
    }
    let codec =
        Codec::from_attributes(header.attributes).ok_or(Defect::Codec(header.attributes & 0x7))?;
    if header.record_count <= 0 {
        return Err(Defect::Count(header.record_count));
    }
    if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
        return Err(Defect::LastOffsetDelta {
            last_offset_delta: header.last_offset_delta,
            record_count: header.record_count,
        });
    }
    let payload = codec::decompress(codec, &batch[HEADER_LEN..], limits.max_decompressed).map_err(
        |e| match e {
            DecompressError::TooLarge { limit } => Defect::Bomb {
                codec: codec.name(),
                limit,
            },
            DecompressError::Corrupt(reason) => Defect::Decompress {
                codec: codec.name(),
                reason,
            },
        },
    )?;
    walk_records(&payload, &header)?;
    crate_decoder_accepts(batch, payload)?;
    Ok(BatchInfo {
        header,
        len: batch.len(),
        records: BatchHeader::parse(batch).map_or(0, |h| h.record_count),
    })
}

/// Walks the header's `record_count` records of an uncompressed payload with Kafka's rules.
fn walk_records(payload: &[u8], header: &BatchHeader) -> Result<(), Defect> {
    let count = header.record_count;
    let mut pos = 0;
    for index in 0..count {
        if pos >= payload.len() {
            return Err(Defect::CountMismatch {
                claimed: count,
                present: index,
            });
        }
        let bad = |what: &str| Defect::Record {
            index,
            what: what.to_string(),
        };
        let len = read_varint(payload, &mut pos, 5).ok_or_else(|| bad("length varint"))?;
        let len = usize::try_from(len).map_err(|_| bad(&format!("negative length {len}")))?;
        let record = payload
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| bad(&format!("length {len} runs past the batch")))?;
        pos += len;
        check_record(record, index, header).map_err(|what| bad(&what))?;
    }
    match payload.len() - pos {
        0 => Ok(()),
        n => Err(Defect::Trailing(n)),
    }
}

/// Checks one record's fields stay inside it, its offset delta is its index, and its offset
/// and timestamp (the header's base plus its delta) fit i64.
fn check_record(r: &[u8], index: i32, header: &BatchHeader) -> Result<(), String> {
    let mut pos = 1; // attributes
    if r.is_empty() {
        return Err("empty record".into());
    }
    let ts_delta = read_varint(r, &mut pos, 10).ok_or("timestamp delta varlong")?;
    if header.base_timestamp.checked_add(ts_delta).is_none() {
        return Err(format!(
            "timestamp delta {ts_delta} overflows the base timestamp {}",
            header.base_timestamp
        ));
    }
    let delta = read_varint(r, &mut pos, 5).ok_or("offset delta varint")?;
    if delta != i64::from(index) {
        return Err(format!("offset delta {delta}, expected {index}"));
    }
    if header.base_offset.checked_add(delta).is_none() {
        return Err(format!(
            "offset delta {delta} overflows the base offset {}",
            header.base_offset
        ));
    }
    for what in ["key", "value"] {
        skip_bytes(r, &mut pos, what, true)?;
    }
    let headers = read_varint(r, &mut pos, 5).ok_or("header count varint")?;
    if headers < 0 {
        return Err(format!("header count {headers}"));
    }
    for _ in 0..headers {
        skip_bytes(r, &mut pos, "header key", false)?;
        skip_bytes(r, &mut pos, "header value", true)?;
    }
    match r.len() - pos {
        0 => Ok(()),
        n => Err(format!("{n} bytes after its last header")),
    }
}

fn skip_bytes(r: &[u8], pos: &mut usize, what: &str, nullable: bool) -> Result<(), String> {
    let len = read_varint(r, pos, 5).ok_or(format!("{what} length varint"))?;
    if len == -1 && nullable {
        return Ok(());
    }
    let len = usize::try_from(len).map_err(|_| format!("{what} length {len}"))?;
    if r.len() - *pos < len {
        return Err(format!("{what} length {len} runs past the record"));
    }
    *pos += len;
    Ok(())
}

/// The published decoder, fed the payload we already decompressed within bounds.
fn crate_decoder_accepts(batch: &[u8], payload: Vec<u8>) -> Result<(), Defect> {
    let payload = Bytes::from(payload);
    let decompress =
        move |_: &mut Bytes, _: Compression| -> anyhow::Result<Bytes> { Ok(payload.clone()) };
    let mut buf = Bytes::copy_from_slice(batch);
    RecordBatchDecoder::decode_with_custom_compression(&mut buf, Some(decompress))
        .map(|_| ())
        .map_err(|e| Defect::Decoder(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{encode_records, RecordSpec};

    fn two_records() -> Vec<RecordSpec> {
        vec![RecordSpec::value(0, b"a"), RecordSpec::value(1, b"b")]
    }

    fn batch_with(header: BatchHeader, records: &[RecordSpec], codec: Codec) -> Vec<u8> {
        let payload = codec::compress(codec, &encode_records(records)).unwrap();
        header.build(&payload)
    }

    #[test]
    fn honest_batches_pass_with_every_codec() {
        for codec in codec::ALL {
            let mut h = BatchHeader::plain(2, 1000);
            h.attributes = codec as i16;
            let b = batch_with(h, &two_records(), codec);
            let info = check_batch(&b, &Limits::default()).unwrap();
            assert_eq!((info.records, info.next_offset()), (2, 2), "{codec:?}");
        }
    }

    /// The record batch of regression seed `name` (a Produce request of one partition).
    fn seed_batch(name: &str) -> bytes::Bytes {
        let seeds = crate::corpus::regression::seeds().unwrap();
        let seed = seeds.seeds.iter().find(|s| s.source == name).unwrap();
        let Some((_, _, kafka_protocol::messages::RequestKind::Produce(r))) =
            crate::wire::decode_request(&seed.frame)
        else {
            panic!("{name} is a Produce request");
        };
        r.topic_data[0].partition_data[0].records.clone().unwrap()
    }

    #[test]
    fn the_reproducer_batches_are_defective() {
        let gzip = check_record_set(
            &seed_batch("gzip-garbage"),
            &Limits::default(),
            Origin::Produced,
        );
        assert!(
            matches!(
                gzip[..],
                [Err((Some(0), Defect::Decompress { codec: "gzip", .. }))]
            ),
            "{gzip:?}"
        );
        let count = check_record_set(
            &seed_batch("count-2147483647"),
            &Limits::default(),
            Origin::Produced,
        );
        assert_eq!(
            count,
            vec![Err((
                Some(0),
                Defect::CountMismatch {
                    claimed: i32::MAX,
                    present: 1
                }
            ))]
        );
    }

    #[test]
    fn the_claim_and_overflow_reproducers_get_precise_verdicts_without_a_panic() {
        let limits = Limits::default();
        let lat = seed_batch("log-append-time-count-2147483647");
        assert_eq!(BatchHeader::parse(&lat).map(|h| h.attributes), Some(0x0008));
        assert_eq!(
            check_record_set(&lat, &limits, Origin::Produced),
            vec![Err((
                Some(0),
                Defect::CountMismatch {
                    claimed: i32::MAX,
                    present: 1
                }
            ))]
        );
        // A producer's base offset is a placeholder: valid as produced, an overflow as stored.
        let offset = seed_batch("decoder-offset-overflow");
        assert!(matches!(
            check_record_set(&offset, &limits, Origin::Produced)[..],
            [Ok(BatchInfo { records: 2, .. })]
        ));
        let stored = check_record_set(&offset, &limits, Origin::Fetched);
        assert!(
            matches!(&stored[..], [Err((Some(i64::MAX), Defect::Record { index: 1, what }))] if what.contains("overflows the base offset")),
            "{stored:?}"
        );
        let timestamp = seed_batch("decoder-timestamp-overflow");
        for origin in [Origin::Produced, Origin::Fetched] {
            let checked = check_record_set(&timestamp, &limits, origin);
            assert!(
                matches!(&checked[..], [Err((Some(0), Defect::Record { index: 0, what }))] if what.contains("overflows the base timestamp")),
                "{checked:?}"
            );
        }
    }

    #[test]
    fn kafka_protocol_answers_every_reproducer_batch_as_sent_without_a_panic() {
        // The harness only hands it batches the strict rules passed; this is the vendored
        // decoder's own promise on the raw reproducers (an overflow was a panic in debug builds).
        for seed in crate::corpus::regression::seeds().unwrap().seeds {
            let Some((_, _, kafka_protocol::messages::RequestKind::Produce(r))) =
                crate::wire::decode_request(&seed.frame)
            else {
                continue;
            };
            for p in r.topic_data.iter().flat_map(|t| t.partition_data.iter()) {
                let mut buf = p.records.clone().unwrap_or_default();
                let decoded = crate::unwind::catch(|| RecordBatchDecoder::decode(&mut buf).is_ok());
                assert!(decoded.is_ok(), "{}: {decoded:?}", seed.source);
            }
        }
    }

    #[test]
    fn count_and_offset_lies_are_caught() {
        let mut h = BatchHeader::plain(2, 0);
        h.record_count = 3;
        h.last_offset_delta = 2;
        assert!(matches!(
            check_batch(
                &batch_with(h, &two_records(), Codec::None),
                &Limits::default()
            ),
            Err(Defect::CountMismatch {
                claimed: 3,
                present: 2
            })
        ));
        let mut h = BatchHeader::plain(1, 0);
        h.last_offset_delta = 1;
        let r = [RecordSpec::value(0, b"a")];
        assert!(matches!(
            check_batch(&batch_with(h, &r, Codec::None), &Limits::default()),
            Err(Defect::LastOffsetDelta { .. })
        ));
        let mut r = two_records();
        r[1].offset_delta = 5;
        assert!(matches!(
            check_batch(
                &batch_with(BatchHeader::plain(2, 0), &r, Codec::None),
                &Limits::default()
            ),
            Err(Defect::Record { index: 1, .. })
        ));
    }

    #[test]
    fn a_stale_crc_is_caught() {
        let mut b = batch_with(BatchHeader::plain(2, 0), &two_records(), Codec::None);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(
            check_batch(&b, &Limits::default()),
            Err(Defect::Crc { .. })
        ));
    }

    #[test]
    fn a_partial_tail_is_fine_in_a_fetch_but_not_in_a_produce() {
        let b = batch_with(BatchHeader::plain(2, 0), &two_records(), Codec::None);
        let mut set = b.clone();
        set.extend_from_slice(&b[..b.len() - 3]);
        assert_eq!(
            check_record_set(&set, &Limits::default(), Origin::Fetched).len(),
            1
        );
        let produce = check_record_set(&set, &Limits::default(), Origin::Produced);
        assert!(matches!(
            produce[1],
            Err((Some(0), Defect::BatchLength { .. }))
        ));
    }
}
