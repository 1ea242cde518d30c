//! Zero-copy views over Kafka RecordBatch v2 headers.
//!
//! Batches are stored exactly as produced; the broker only rewrites the fields the CRC does
//! not cover (base offset, partition leader epoch) and, for `LogAppendTime` topics, the max
//! timestamp and timestamp-type bit (recomputing the CRC). Nothing here looks at records.

use thiserror::Error;

/// Bytes before the part counted by `batchLength`: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed RecordBatch v2 header.
pub const HEADER_LEN: usize = 61;
/// The only record format version this broker stores.
pub const MAGIC_V2: i8 = 2;
/// Smallest encoding of a v2 record (length, attributes, timestamp and offset deltas, key and
/// value lengths, header count: one byte each): what bounds the records a batch's bytes can
/// hold, whatever count its header claims.
pub const MIN_RECORD_BYTES: usize = 7;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORD_COUNT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// Why a batch was rejected; the protocol layer maps these to Kafka error codes
/// (`Truncated`/`Corrupt`/`CrcMismatch`/`UnknownCompression`/`Decompression` →
/// CORRUPT_MESSAGE, `InvalidRecord` → INVALID_RECORD, `InvalidMagic` →
/// UNSUPPORTED_FOR_MESSAGE_FORMAT, `BatchTooLarge`/`UncompressedTooLarge` → MESSAGE_TOO_LARGE).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// The buffer ends before the batch does (a torn write or a short request).
    #[error("record batch truncated: needs {needed} bytes but only {available} are present")]
    Truncated {
        /// Bytes the header says the batch occupies (or the header size).
        needed: usize,
        /// Bytes actually available.
        available: usize,
    },
    /// A header field holds an impossible value.
    #[error("corrupt record batch: {reason}")]
    CorruptBatch {
        /// Which check failed.
        reason: &'static str,
    },
    /// Not a v2 batch; older message formats are not supported.
    #[error("unsupported record batch magic {magic}: only v2 (magic 2) is accepted")]
    InvalidMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The CRC-32C stored in the header does not match the batch contents.
    #[error(
        "record batch CRC mismatch: header says {stored:#010x}, contents give {computed:#010x}"
    )]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// The compression codec bits name no known codec.
    #[error("record batch uses unknown compression codec {codec}")]
    UnknownCompression {
        /// The codec id from the attributes.
        codec: u8,
    },
    /// The batch is larger than the topic's `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    BatchTooLarge {
        /// Batch size including the 12-byte log overhead.
        size: usize,
        /// The configured limit.
        max: u32,
    },
    /// The compressed records do not decode with the batch's codec.
    #[error("the batch's compressed records do not decode: {reason}")]
    Decompression {
        /// What the decoder said.
        reason: String,
    },
    /// The records expand past what the broker accepts uncompressed (a compression bomb).
    #[error(
        "the batch's records expand past {limit} bytes uncompressed (max.uncompressed.batch.bytes)"
    )]
    UncompressedTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The records section is not what the header declares, or a record breaks the v2 record
    /// format.
    #[error("invalid record: {reason}")]
    InvalidRecord {
        /// The record at fault, from 0 (KIP-467's batch index).
        index: i32,
        /// What is wrong.
        reason: String,
    },
}

impl BatchError {
    /// Short stable label for counting rejections by kind in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::CorruptBatch { .. } => "corrupt",
            Self::InvalidMagic { .. } => "invalid_magic",
            Self::CrcMismatch { .. } => "crc_mismatch",
            Self::UnknownCompression { .. } => "unknown_compression",
            Self::BatchTooLarge { .. } => "too_large",
            Self::Decompression { .. } => "decompression",
            Self::UncompressedTooLarge { .. } => "uncompressed_too_large",
            Self::InvalidRecord { .. } => "invalid_record",
        }
    }
}

/// Compression codec of a batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Records stored uncompressed.
    None,
    /// gzip.
    Gzip,
    /// Snappy (xerial framing).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&buf[at..at + 2]);
    i16::from_be_bytes(b)
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

/// Total on-disk size of the batch starting at `buf`, from its first 12 bytes, or `None`
/// when fewer than 12 bytes are present or the length is negative.
pub fn batch_size_from_prefix(buf: &[u8]) -> Option<usize> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let len = read_i32(buf, BATCH_LENGTH);
    usize::try_from(len).ok().map(|l| l + LOG_OVERHEAD)
}

/// Read-only view of a batch header (and, when built by [`BatchView::parse`], the whole
/// batch). Accessors never panic: construction guarantees at least [`HEADER_LEN`] bytes.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    buf: &'a [u8],
}

impl<'a> BatchView<'a> {
    /// Checks the fixed header only (no CRC): used when scanning headers on disk, where
    /// reading whole batches would waste I/O.
    pub fn header(buf: &'a [u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let view = Self { buf };
        let magic = view.magic();
        if magic != MAGIC_V2 {
            return Err(BatchError::InvalidMagic { magic });
        }
        let len = view.batch_length();
        if len < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::CorruptBatch {
                reason: "batch length smaller than the v2 header",
            });
        }
        if view.last_offset_delta() < 0 {
            return Err(BatchError::CorruptBatch {
                reason: "negative lastOffsetDelta",
            });
        }
        if view.record_count() < 0 {
            return Err(BatchError::CorruptBatch {
                reason: "negative record count",
            });
        }
        let codec = (view.attributes() & COMPRESSION_MASK) as u8;
        if codec > 4 {
            return Err(BatchError::UnknownCompression { codec });
        }
        Ok(view)
    }

    /// Validates one complete batch at the start of `buf` (header checks and CRC-32C) and
    /// returns a view covering exactly that batch; trailing bytes are ignored.
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchError> {
        let header = Self::header(buf)?;
        let size = header.size();
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed: size,
                available: buf.len(),
            });
        }
        let view = Self { buf: &buf[..size] };
        let computed = crc32c::crc32c(&view.buf[ATTRIBUTES..]);
        let stored = view.crc();
        if computed != stored {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        Ok(view)
    }

    /// Wraps bytes already checked to hold at least a header.
    pub(crate) fn new_unchecked(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The CRC-32C of the header's fields the batch CRC covers (attributes on): where the
    /// CRC of a batch whose records lie elsewhere starts.
    pub(crate) fn crc_of_header_fields(&self) -> u32 {
        crc32c::crc32c(&self.buf[ATTRIBUTES..HEADER_LEN])
    }

    /// The bytes this view covers (the whole batch when built by [`BatchView::parse`]).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Total size on disk: `batchLength` plus the 12-byte log overhead.
    pub fn size(&self) -> usize {
        self.batch_length() as usize + LOG_OVERHEAD
    }

    /// Offset of the first record (assigned by the broker).
    pub fn base_offset(&self) -> i64 {
        read_i64(self.buf, BASE_OFFSET)
    }

    /// Most records the bytes of this batch can hold uncompressed: a bound on anything sized
    /// by the claimed record count before the records themselves are walked.
    pub fn records_room(&self) -> usize {
        self.buf.len().saturating_sub(HEADER_LEN) / MIN_RECORD_BYTES
    }

    /// Bytes following the length field.
    pub fn batch_length(&self) -> i32 {
        read_i32(self.buf, BATCH_LENGTH)
    }

    /// Leader epoch of the leader that appended the batch.
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(self.buf, LEADER_EPOCH)
    }

    /// Format version; always 2 for a validated view.
    pub fn magic(&self) -> i8 {
        self.buf[MAGIC] as i8
    }

    /// Stored CRC-32C of bytes from the attributes to the end of the batch.
    pub fn crc(&self) -> u32 {
        read_i32(self.buf, CRC) as u32
    }

    /// Raw attribute bits.
    pub fn attributes(&self) -> i16 {
        read_i16(self.buf, ATTRIBUTES)
    }

    /// Compression codec from attribute bits 0-2.
    pub fn compression(&self) -> Compression {
        match self.attributes() & COMPRESSION_MASK {
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// True when the timestamps are the broker's (LogAppendTime), meaning every record's
    /// timestamp is the batch max timestamp.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & TIMESTAMP_TYPE_BIT != 0
    }

    /// True for batches of a transactional producer.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }

    /// True for transaction markers and other control batches.
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }

    /// Last offset minus base offset.
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(self.buf, LAST_OFFSET_DELTA)
    }

    /// Timestamp of the first record (CreateTime).
    pub fn base_timestamp(&self) -> i64 {
        read_i64(self.buf, BASE_TIMESTAMP)
    }

    /// Largest record timestamp, or the append time for LogAppendTime batches.
    pub fn max_timestamp(&self) -> i64 {
        read_i64(self.buf, MAX_TIMESTAMP)
    }

    /// Idempotent/transactional producer id, -1 if none.
    pub fn producer_id(&self) -> i64 {
        read_i64(self.buf, PRODUCER_ID)
    }

    /// Producer epoch, -1 if none.
    pub fn producer_epoch(&self) -> i16 {
        read_i16(self.buf, PRODUCER_EPOCH)
    }

    /// Sequence number of the first record, -1 if none.
    pub fn base_sequence(&self) -> i32 {
        read_i32(self.buf, BASE_SEQUENCE)
    }

    /// Number of records in the batch.
    pub fn record_count(&self) -> i32 {
        read_i32(self.buf, RECORD_COUNT)
    }

    /// Offset of the last record. Saturates rather than overflows: a client's base offset is
    /// arbitrary until the broker assigns one, and a stored batch never comes near the limit.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }

    /// Offset following the batch (saturating, as [`Self::last_offset`]).
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
}

/// Owned copy of the header fields other components need (producer-state rebuild, time
/// lookups), produced when scanning a segment without reading payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeaderInfo {
    /// Byte position of the batch in its segment file.
    pub position: u64,
    /// Total batch size on disk.
    pub size: u32,
    /// First offset.
    pub base_offset: i64,
    /// Last offset (`base_offset + last_offset_delta`).
    pub last_offset: i64,
    /// Last offset minus base offset.
    pub last_offset_delta: i32,
    /// Epoch of the leader that appended it.
    pub partition_leader_epoch: i32,
    /// Raw attributes (compression, timestamp type, transactional, control).
    pub attributes: i16,
    /// First record timestamp.
    pub base_timestamp: i64,
    /// Max timestamp (append time for LogAppendTime batches).
    pub max_timestamp: i64,
    /// Producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// First sequence, -1 if none.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeaderInfo {
    /// Copies the header of `view`, which sits at `position` in its file.
    pub fn from_view(view: &BatchView<'_>, position: u64) -> Self {
        Self {
            position,
            size: view.size() as u32,
            base_offset: view.base_offset(),
            last_offset: view.last_offset(),
            last_offset_delta: view.last_offset_delta(),
            partition_leader_epoch: view.partition_leader_epoch(),
            attributes: view.attributes(),
            base_timestamp: view.base_timestamp(),
            max_timestamp: view.max_timestamp(),
            producer_id: view.producer_id(),
            producer_epoch: view.producer_epoch(),
            base_sequence: view.base_sequence(),
            record_count: view.record_count(),
        }
    }

    /// Offset following the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset + 1
    }

    /// True when every record's timestamp is the batch max timestamp.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// True for batches of a transactional producer.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// True for control batches (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// Mutable view of one complete batch, for the fields the broker rewrites on append.
#[derive(Debug)]
pub struct BatchViewMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> BatchViewMut<'a> {
    /// Validates the batch like [`BatchView::parse`] and returns a mutable view of exactly it.
    pub fn parse(buf: &'a mut [u8]) -> Result<Self, BatchError> {
        let size = BatchView::parse(buf)?.size();
        Ok(Self {
            buf: &mut buf[..size],
        })
    }

    /// Wraps a batch already validated by [`BatchView::parse`]; `buf` must be exactly it.
    pub fn new_unchecked(buf: &'a mut [u8]) -> Self {
        Self { buf }
    }

    /// Read-only view of the same batch.
    pub fn view(&self) -> BatchView<'_> {
        BatchView { buf: self.buf }
    }

    /// Sets the base offset (not covered by the CRC).
    pub fn set_base_offset(&mut self, offset: i64) {
        self.buf[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
    }

    /// Sets the partition leader epoch (not covered by the CRC).
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.buf[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
    }

    /// Sets the max timestamp of a CreateTime batch to the largest record timestamp found by
    /// validation, as Kafka does when a client's header disagrees, and recomputes the CRC.
    pub fn set_max_timestamp(&mut self, max_timestamp: i64) {
        if self.view().max_timestamp() == max_timestamp {
            return;
        }
        self.write_max_timestamp(max_timestamp);
        self.write_crc(crc32c::crc32c(&self.buf[ATTRIBUTES..]));
    }

    /// Stamps the batch with the broker's clock as Kafka does for LogAppendTime topics:
    /// sets the timestamp-type bit and max timestamp, then recomputes the CRC.
    pub fn set_log_append_time(&mut self, now_ms: i64) {
        let view = self.view();
        if view.is_log_append_time() && view.max_timestamp() == now_ms {
            return;
        }
        self.write_log_append_time(now_ms);
        self.write_crc(crc32c::crc32c(&self.buf[ATTRIBUTES..]));
    }

    /// Writes the max timestamp field, leaving the CRC to the caller.
    pub(crate) fn write_max_timestamp(&mut self, max_timestamp: i64) {
        self.buf[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    }

    /// Sets the timestamp-type bit and the max timestamp, leaving the CRC to the caller.
    pub(crate) fn write_log_append_time(&mut self, now_ms: i64) {
        let attributes = self.view().attributes() | TIMESTAMP_TYPE_BIT;
        self.buf[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        self.write_max_timestamp(now_ms);
    }

    /// Writes the CRC field.
    pub(crate) fn write_crc(&mut self, crc: u32) {
        self.buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Iterator over the validated batches concatenated in a buffer (one produce request's
/// records, or a fetched range). Stops after the first error.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
    check_crc: bool,
}

/// Splits `buf` into batches, validating each one (header and CRC).
pub fn split_batches(buf: &[u8]) -> Batches<'_> {
    Batches {
        buf,
        pos: 0,
        failed: false,
        check_crc: true,
    }
}

/// [`split_batches`] for batches whose CRCs the caller has just verified: headers and lengths
/// are checked, the CRC (a pass over every byte) is not computed again.
pub(crate) fn split_verified_batches(buf: &[u8]) -> Batches<'_> {
    Batches {
        check_crc: false,
        ..split_batches(buf)
    }
}

impl<'a> Batches<'a> {
    /// Position in the buffer of the next batch to be returned.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<BatchView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let parsed = if self.check_crc {
            BatchView::parse(rest)
        } else {
            BatchView::header(rest).and_then(|header| match rest.get(..header.size()) {
                Some(buf) => Ok(BatchView { buf }),
                None => Err(BatchError::Truncated {
                    needed: header.size(),
                    available: rest.len(),
                }),
            })
        };
        match parsed {
            Ok(view) => {
                self.pos += view.size();
                Some(Ok(view))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{batch, BatchSpec};

    #[test]
    fn parses_header_fields_of_an_encoded_batch() {
        let buf = batch(&BatchSpec {
            records: 3,
            timestamp: 1_000,
            ..BatchSpec::default()
        });
        let view = BatchView::parse(&buf).expect("valid batch");
        assert_eq!(view.size(), buf.len());
        assert_eq!(view.magic(), 2);
        assert_eq!(view.last_offset_delta(), 2);
        assert_eq!(view.record_count(), 3);
        assert_eq!(view.base_timestamp(), 1_000);
        assert_eq!(view.max_timestamp(), 1_002);
        assert!(!view.is_log_append_time());
    }

    #[test]
    fn base_offset_and_epoch_rewrite_keeps_crc_valid() {
        let mut buf = batch(&BatchSpec::default());
        let mut view = BatchViewMut::parse(&mut buf).expect("valid batch");
        view.set_base_offset(42);
        view.set_partition_leader_epoch(7);
        let view = BatchView::parse(&buf).expect("still valid");
        assert_eq!(view.base_offset(), 42);
        assert_eq!(view.partition_leader_epoch(), 7);
    }

    #[test]
    fn log_append_time_rewrites_max_timestamp_and_crc() {
        let mut buf = batch(&BatchSpec::default());
        BatchViewMut::parse(&mut buf)
            .expect("valid batch")
            .set_log_append_time(99_999);
        let view = BatchView::parse(&buf).expect("crc recomputed");
        assert!(view.is_log_append_time());
        assert_eq!(view.max_timestamp(), 99_999);
    }

    #[test]
    fn flipped_payload_byte_is_a_crc_mismatch() {
        let mut buf = batch(&BatchSpec::default());
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        assert!(matches!(
            BatchView::parse(&buf),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn wrong_magic_and_short_buffers_are_rejected() {
        let mut buf = batch(&BatchSpec::default());
        assert!(matches!(
            BatchView::parse(&buf[..buf.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            BatchView::parse(&buf[..10]),
            Err(BatchError::Truncated { .. })
        ));
        buf[MAGIC] = 1;
        assert_eq!(
            BatchView::parse(&buf).err(),
            Some(BatchError::InvalidMagic { magic: 1 })
        );
    }

    #[test]
    fn split_yields_each_batch_then_reports_a_torn_tail() {
        let mut buf = batch(&BatchSpec::default());
        buf.extend_from_slice(&batch(&BatchSpec {
            records: 5,
            ..BatchSpec::default()
        }));
        let sizes: Vec<_> = split_batches(&buf)
            .map(|b| b.expect("valid").record_count())
            .collect();
        assert_eq!(sizes, vec![1, 5]);
        buf.extend_from_slice(&[0u8; 20]);
        let results: Vec<_> = split_batches(&buf).collect();
        assert_eq!(results.len(), 3);
        assert!(results[2].is_err());
    }
}
