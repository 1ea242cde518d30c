//! The on-disk form of one journal record: the batches of one group-commit round.
//!
//! A record starts on a [`BLOCK`] boundary and is padded to the next one, so recovery finds
//! every record by trying each block, and a record overwritten in part by a newer one fails its
//! CRC instead of being misread:
//!
//! ```text
//! magic u32 | crc32c u32 (of everything after it) | seq u64 | payload length u32 | entries u32
//! entries: topic id [16] | partition i32 | base offset i64 | length u32 | batches as stored
//! ```
//!
//! Integers are big-endian, as in the Kafka wire format.

use uuid::Uuid;

/// Alignment and padding unit of records: a page, so rounds never share one.
pub const BLOCK: u64 = 4096;

const MAGIC: u32 = 0x5452_4a31; // "TRJ1"
/// magic, crc, seq, payload length, entry count.
pub(super) const HEADER_LEN: usize = 4 + 4 + 8 + 4 + 4;
/// topic id, partition, base offset, length.
const ENTRY_HEADER_LEN: usize = 16 + 4 + 8 + 4;

/// Batches of one partition appended in one write, as stored in its log.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The topic's id, so a deleted and recreated topic never gets the old topic's data.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Offset of the first record of `batches`.
    pub base_offset: i64,
    /// Whole record batches, byte for byte as written to the segment, in the pieces they
    /// were written from (a client batch's rewritten header and its records), in order.
    pub batches: [&'a [u8]; 2],
}

impl Entry<'_> {
    /// Bytes of the entry's batches.
    fn len(&self) -> usize {
        self.batches.iter().map(|part| part.len()).sum()
    }
}

/// The size of a record holding `entries`, padding included.
pub(super) fn encoded_len(entries: &[Entry<'_>]) -> u64 {
    let payload: usize = entries.iter().map(|e| ENTRY_HEADER_LEN + e.len()).sum();
    padded(HEADER_LEN as u64 + payload as u64)
}

/// `len` rounded up to whole blocks.
pub(super) fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

/// Writes the record of `entries` numbered `seq` into `out`, which must be exactly
/// [`encoded_len`] bytes long, padding included.
pub(super) fn encode(seq: u64, entries: &[Entry<'_>], out: &mut [u8]) {
    debug_assert_eq!(out.len() as u64, encoded_len(entries));
    let mut at = HEADER_LEN;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    for entry in entries {
        put(entry.topic_id.as_bytes());
        put(&entry.partition.to_be_bytes());
        put(&entry.base_offset.to_be_bytes());
        put(&(entry.len() as u32).to_be_bytes());
        for part in entry.batches {
            put(part);
        }
    }
    let payload_len = (at - HEADER_LEN) as u32;
    out[at..].fill(0);
    out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    out[8..16].copy_from_slice(&seq.to_be_bytes());
    out[16..20].copy_from_slice(&payload_len.to_be_bytes());
    out[20..24].copy_from_slice(&(entries.len() as u32).to_be_bytes());
    let crc = crc32c::crc32c(&out[8..at]);
    out[4..8].copy_from_slice(&crc.to_be_bytes());
}

/// What a record's fixed header says, before its CRC is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    /// Round number; later rounds have larger ones.
    pub(super) seq: u64,
    /// Bytes of entries after the header.
    pub(super) payload_len: u32,
    /// Number of entries.
    pub(super) entries: u32,
    crc: u32,
}

impl Header {
    /// Header and payload length, without padding.
    pub(super) fn len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len)
    }

    /// Whether `record` (header and payload) matches the CRC of this header.
    pub(super) fn verifies(&self, record: &[u8]) -> bool {
        record.len() as u64 == self.len() && crc32c::crc32c(&record[8..]) == self.crc
    }
}

/// The header at the start of `block`, if it carries the journal's magic number.
pub(super) fn decode_header(block: &[u8]) -> Option<Header> {
    let field = |at: usize, len: usize| block.get(at..at + len);
    let u32_at = |at| field(at, 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if u32_at(0)? != MAGIC {
        return None;
    }
    let seq = u64::from_be_bytes(field(8, 8)?.try_into().ok()?);
    Some(Header {
        seq,
        payload_len: u32_at(16)?,
        entries: u32_at(20)?,
        crc: u32_at(4)?,
    })
}

/// Where one entry's batches lie within a verified record, and whose they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EntryRef {
    /// The topic's id.
    pub(super) topic_id: Uuid,
    /// Partition index.
    pub(super) partition: i32,
    /// Offset of the first record.
    pub(super) base_offset: i64,
    /// Start of the batches, counted from the start of the record.
    pub(super) start: usize,
    /// Length of the batches.
    pub(super) len: usize,
}

/// The entries of a verified `record` (header and payload); `None` if their lengths do not
/// add up, which a record whose CRC holds never does unless written by a broken writer.
pub(super) fn decode_entries(header: &Header, record: &[u8]) -> Option<Vec<EntryRef>> {
    // The count is the record's claim: reserve no more than its bytes can hold.
    let room = record.len().saturating_sub(HEADER_LEN) / ENTRY_HEADER_LEN;
    let mut entries = Vec::with_capacity((header.entries as usize).min(room));
    let mut at = HEADER_LEN;
    for _ in 0..header.entries {
        let fixed = record.get(at..at.checked_add(ENTRY_HEADER_LEN)?)?;
        let topic_id = Uuid::from_bytes(fixed[..16].try_into().ok()?);
        let partition = i32::from_be_bytes(fixed[16..20].try_into().ok()?);
        let base_offset = i64::from_be_bytes(fixed[20..28].try_into().ok()?);
        let len = u32::from_be_bytes(fixed[28..32].try_into().ok()?) as usize;
        let start = at + ENTRY_HEADER_LEN;
        record.get(start..start.checked_add(len)?)?;
        entries.push(EntryRef {
            topic_id,
            partition,
            base_offset,
            start,
            len,
        });
        at = start + len;
    }
    (at == record.len()).then_some(entries)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn encoded(seq: u64, entries: &[Entry<'_>]) -> Vec<u8> {
        let mut out = vec![0xff; encoded_len(entries) as usize];
        encode(seq, entries, &mut out);
        out
    }

    fn entries(id: Uuid) -> Vec<Entry<'static>> {
        vec![
            Entry {
                topic_id: id,
                partition: 3,
                base_offset: 42,
                batches: [b"first", b" batches"],
            },
            Entry {
                topic_id: id,
                partition: 0,
                base_offset: 7,
                batches: [b"", b""],
            },
        ]
    }

    #[test]
    fn records_round_trip_block_aligned() {
        let id = Uuid::new_v4();
        let entries = entries(id);
        let out = encoded(9, &entries);
        assert_eq!(out.len() as u64, BLOCK);
        assert_eq!(out.len() as u64, encoded_len(&entries));
        let header = decode_header(&out).expect("header");
        assert_eq!(header.seq, 9);
        let record = &out[..header.len() as usize];
        assert!(header.verifies(record));
        let decoded = decode_entries(&header, record).expect("entries");
        assert_eq!(decoded.len(), 2);
        assert_eq!((decoded[0].topic_id, decoded[0].partition), (id, 3));
        assert_eq!(decoded[0].base_offset, 42);
        let first = &record[decoded[0].start..decoded[0].start + decoded[0].len];
        assert_eq!(first, b"first batches");
        assert_eq!((decoded[1].partition, decoded[1].len), (0, 0));
    }

    #[test]
    fn damage_anywhere_fails_the_crc() {
        let out = encoded(1, &entries(Uuid::new_v4()));
        let header = decode_header(&out).expect("header");
        let len = header.len() as usize;
        for at in 8..len {
            let mut damaged = out.clone();
            damaged[at] ^= 1;
            let verified = decode_header(&damaged)
                .is_some_and(|h| h.verifies(&damaged[..(h.len() as usize).min(len)]));
            assert!(!verified, "flipped byte {at} went unnoticed");
        }
    }

    /// Restores the CRC of a journal record whose bytes were changed, so the change reaches
    /// the entry decoding behind it.
    pub(crate) fn seal_record(bytes: &mut [u8]) {
        let Some(header) = decode_header(bytes) else {
            return;
        };
        let end = usize::try_from(header.len()).map_or(bytes.len(), |l| l.min(bytes.len()));
        if end >= 8 {
            let crc = crc32c::crc32c(&bytes[8..end]);
            bytes[4..8].copy_from_slice(&crc.to_be_bytes());
        }
    }

    #[test]
    fn hostile_records_are_refused_never_panics() {
        let id = Uuid::new_v4();
        let samples = vec![
            encoded(1, &entries(id))[..HEADER_LEN + 2 * ENTRY_HEADER_LEN + 13].to_vec(),
            encoded(2, &entries(id)),
        ];
        crate::hostile::never_panics(samples, seal_record, |bytes| {
            let Some(header) = decode_header(bytes) else {
                return;
            };
            let _ = header.len();
            let end = usize::try_from(header.len()).map_or(bytes.len(), |l| l.min(bytes.len()));
            if header.verifies(&bytes[..end]) {
                let _ = decode_entries(&header, &bytes[..end]);
            }
            let _ = decode_entries(&header, bytes);
        });
    }

    #[test]
    fn zeros_and_garbage_are_not_records() {
        assert_eq!(decode_header(&[0; 4096]), None);
        assert_eq!(decode_header(&[0x54, 0x52]), None);
    }

    #[test]
    fn large_records_span_several_blocks() {
        let batches = vec![7u8; 10_000];
        let entries = [Entry {
            topic_id: Uuid::nil(),
            partition: 0,
            base_offset: 0,
            batches: [&batches, &[]],
        }];
        let out = encoded(1, &entries);
        assert_eq!(out.len() as u64, 3 * BLOCK);
    }
}
