//! The v2 record batch layout, written field by field so a mutator can make any field lie
//! while the CRC stays right (or is made wrong on purpose). The strict decoder reads the
//! same layout.

/// Bytes before the records: baseOffset(8) batchLength(4) partitionLeaderEpoch(4) magic(1)
/// crc(4) attributes(2) lastOffsetDelta(4) baseTimestamp(8) maxTimestamp(8) producerId(8)
/// producerEpoch(2) baseSequence(4) recordCount(4).
pub const HEADER_LEN: usize = 61;
/// Where the CRC'd part starts (attributes) and where the CRC sits.
pub const CRC_START: usize = 21;
const CRC_AT: usize = 17;

/// Appends a zigzag varint (Kafka's `varint`/`varlong`).
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a zigzag varint of at most `max_bytes` bytes (5 for varint, 10 for varlong).
pub fn read_varint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let b = *buf.get(*pos)?;
        *pos += 1;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    None
}

/// One record, with optional lies about its lengths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSpec {
    /// Record attributes (unused by Kafka, must be 0 in practice).
    pub attributes: i8,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offset relative to the batch's base offset (0..n-1 when honest).
    pub offset_delta: i64,
    /// Key bytes (None: null key).
    pub key: Option<Vec<u8>>,
    /// Value bytes (None: null value).
    pub value: Option<Vec<u8>>,
    /// Header keys and values.
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Written instead of the record's true length.
    pub length_lie: Option<i64>,
    /// Written instead of the key's true length.
    pub key_length_lie: Option<i64>,
    /// Written instead of the value's true length.
    pub value_length_lie: Option<i64>,
    /// Written instead of the true header count.
    pub header_count_lie: Option<i64>,
    /// Written instead of the first header's true key length.
    pub header_key_length_lie: Option<i64>,
    /// Written instead of the first header's true value length.
    pub header_value_length_lie: Option<i64>,
}

fn len_of(bytes: &Option<Vec<u8>>) -> i64 {
    bytes.as_ref().map_or(-1, |b| b.len() as i64)
}

impl RecordSpec {
    /// A plain record with a value, at `offset_delta`.
    pub fn value(offset_delta: i64, value: &[u8]) -> RecordSpec {
        RecordSpec {
            offset_delta,
            value: Some(value.to_vec()),
            ..RecordSpec::default()
        }
    }

    /// Appends the record (length prefix included) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        body.push(self.attributes as u8);
        put_varint(&mut body, self.timestamp_delta);
        put_varint(&mut body, self.offset_delta);
        put_varint(&mut body, self.key_length_lie.unwrap_or(len_of(&self.key)));
        body.extend(self.key.iter().flatten());
        put_varint(
            &mut body,
            self.value_length_lie.unwrap_or(len_of(&self.value)),
        );
        body.extend(self.value.iter().flatten());
        put_varint(
            &mut body,
            self.header_count_lie.unwrap_or(self.headers.len() as i64),
        );
        for (i, (k, v)) in self.headers.iter().enumerate() {
            let first = i == 0;
            let key_len = self.header_key_length_lie.filter(|_| first);
            put_varint(&mut body, key_len.unwrap_or(k.len() as i64));
            body.extend(k);
            let value_len = self.header_value_length_lie.filter(|_| first);
            put_varint(&mut body, value_len.unwrap_or(len_of(v)));
            body.extend(v.iter().flatten());
        }
        put_varint(out, self.length_lie.unwrap_or(body.len() as i64));
        out.extend(body);
    }
}

/// The header fields of a batch, each free to lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    /// Base offset (producers send 0; the broker assigns).
    pub base_offset: i64,
    /// Partition leader epoch (producers send -1).
    pub partition_leader_epoch: i32,
    /// Magic byte (2 for record batches).
    pub magic: i8,
    /// Attributes: codec bits 0-2, timestamp type 3, transactional 4, control 5.
    pub attributes: i16,
    /// Offset delta of the last record (count - 1 when honest).
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id (-1: not idempotent).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub base_sequence: i32,
    /// Records claimed.
    pub record_count: i32,
}

impl BatchHeader {
    /// An honest header for `count` plain records with no producer id.
    pub fn plain(count: i32, timestamp: i64) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            partition_leader_epoch: -1,
            magic: 2,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: timestamp,
            max_timestamp: timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: count,
        }
    }

    /// Reads the header of a batch (None when shorter than a header).
    pub fn parse(batch: &[u8]) -> Option<BatchHeader> {
        let h = batch.get(..HEADER_LEN)?;
        let i16_at = |at: usize| i16::from_be_bytes([h[at], h[at + 1]]);
        let i32_at = |at: usize| i32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[at..at + 8]);
            i64::from_be_bytes(b)
        };
        Some(BatchHeader {
            base_offset: i64_at(0),
            partition_leader_epoch: i32_at(12),
            magic: h[16] as i8,
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            record_count: i32_at(57),
        })
    }

    /// The whole batch: this header, then `payload` (records, compressed or not), with a
    /// true batchLength and a CRC computed over what follows it.
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend(self.base_offset.to_be_bytes());
        out.extend([0; 4]); // batchLength, below
        out.extend(self.partition_leader_epoch.to_be_bytes());
        out.push(self.magic as u8);
        out.extend([0; 4]); // crc, below
        out.extend(self.attributes.to_be_bytes());
        out.extend(self.last_offset_delta.to_be_bytes());
        out.extend(self.base_timestamp.to_be_bytes());
        out.extend(self.max_timestamp.to_be_bytes());
        out.extend(self.producer_id.to_be_bytes());
        out.extend(self.producer_epoch.to_be_bytes());
        out.extend(self.base_sequence.to_be_bytes());
        out.extend(self.record_count.to_be_bytes());
        out.extend(payload);
        let batch_length = i32::try_from(out.len() - 12).unwrap_or(i32::MAX);
        out[8..12].copy_from_slice(&batch_length.to_be_bytes());
        recompute_crc(&mut out);
        out
    }
}

/// The CRC32C a batch's contents hash to (None when shorter than a header).
pub fn crc_of(batch: &[u8]) -> Option<u32> {
    batch.get(CRC_START..).map(crc32c::crc32c)
}

/// Rewrites a batch's CRC to match its contents.
pub fn recompute_crc(batch: &mut [u8]) {
    if let Some(crc) = crc_of(batch) {
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// The CRC stored in a batch.
pub fn stored_crc(batch: &[u8]) -> Option<u32> {
    let b = batch.get(CRC_AT..CRC_AT + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Encodes records back to back (uncompressed payload).
pub fn encode_records(records: &[RecordSpec]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        r.encode(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_boundaries() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut pos = 0;
            assert_eq!(read_varint(&buf, &mut pos, 10), Some(v));
            assert_eq!(pos, buf.len());
        }
        let mut pos = 0;
        assert_eq!(
            read_varint(&[0x80; 6], &mut pos, 5),
            None,
            "overlong varint"
        );
    }

    #[test]
    fn a_built_batch_parses_back_and_carries_a_valid_crc() {
        let payload = encode_records(&[RecordSpec::value(0, b"a"), RecordSpec::value(1, b"b")]);
        let batch = BatchHeader::plain(2, 1_700_000_000_000).build(&payload);
        assert_eq!(
            BatchHeader::parse(&batch),
            Some(BatchHeader::plain(2, 1_700_000_000_000))
        );
        assert_eq!(stored_crc(&batch), crc_of(&batch));
        let len = i32::from_be_bytes(batch[8..12].try_into().unwrap());
        assert_eq!(len as usize, batch.len() - 12);
    }
}
