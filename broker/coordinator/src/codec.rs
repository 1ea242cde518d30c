//! The byte-level helpers every coordinator record schema is written with. Kafka's
//! `__consumer_offsets` and `__transaction_state` keys and values are not in kafka-protocol,
//! so their schemas are encoded by hand (`group::records`, `txn::records`) from these parts:
//! big-endian integers, classic lengths (i16 for strings, i32 for bytes and arrays, -1 for
//! null) and, in flexible versions, compact lengths and tagged fields (KIP-482). A schema
//! decides its versions and fields; how a field is laid out is decided here, once.

use bytes::{BufMut, Bytes, BytesMut};

/// Why a record could not be decoded. Records come from disk and other brokers, so every
/// malformed input is one of these, never a panic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes end inside a field.
    #[error("record ends inside a field ({needed} more bytes needed)")]
    Truncated {
        /// Bytes missing.
        needed: usize,
    },
    /// A schema version this broker does not know.
    #[error("unknown {schema} version {version}")]
    UnknownVersion {
        /// Which schema.
        schema: &'static str,
        /// The version found.
        version: i16,
    },
    /// A state id (an enumerated int8 field, such as a transaction's state) the schema does
    /// not define.
    #[error("unknown state {0}")]
    UnknownState(i8),
    /// A string that is not UTF-8.
    #[error("string field is not valid UTF-8")]
    InvalidUtf8,
    /// A negative length other than the null marker, or a null where none is allowed.
    #[error("invalid length {0}")]
    InvalidLength(i64),
}

/// Kafka strings are at most `i16::MAX` bytes: the length of `s` cut to that, at a char
/// boundary.
fn string_len(s: &str) -> usize {
    let mut end = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Big-endian writer of Kafka's classic types and, when `flexible`, its compact lengths and
/// tagged fields.
pub(crate) struct Writer {
    buf: BytesMut,
    flexible: bool,
}

impl Writer {
    /// A writer of a classic (`false`) or flexible (`true`) schema version.
    pub(crate) fn new(flexible: bool) -> Writer {
        Writer {
            buf: BytesMut::new(),
            flexible,
        }
    }

    pub(crate) fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    pub(crate) fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    /// A UUID (topic ids): 16 bytes, most significant first, as Kafka's `uuid` type.
    pub(crate) fn uuid(&mut self, v: uuid::Uuid) {
        self.buf.put_slice(v.as_bytes());
    }

    /// An unsigned varint (the compact lengths and tagged-field headers).
    pub(crate) fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// A length: compact (n + 1, 0 for null) when flexible; otherwise i32 when `wide`, i16
    /// if not, -1 for null.
    fn length(&mut self, len: Option<usize>, wide: bool) {
        match (self.flexible, len) {
            (true, Some(n)) => self.uvarint(n as u64 + 1),
            (true, None) => self.uvarint(0),
            (false, Some(n)) if wide => self.buf.put_i32(i32::try_from(n).unwrap_or(i32::MAX)),
            (false, Some(n)) => self.buf.put_i16(i16::try_from(n).unwrap_or(i16::MAX)),
            (false, None) if wide => self.buf.put_i32(-1),
            (false, None) => self.buf.put_i16(-1),
        }
    }

    /// A string; longer than `i16::MAX` bytes, it is cut at a char boundary.
    pub(crate) fn string(&mut self, s: &str) {
        let end = string_len(s);
        self.length(Some(end), false);
        self.buf.put_slice(&s.as_bytes()[..end]);
    }

    pub(crate) fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.length(None, false),
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.length(Some(b.len()), true);
        self.buf.put_slice(b);
    }

    /// The element count of an array that follows.
    pub(crate) fn array_len(&mut self, n: usize) {
        self.length(Some(n), true);
    }

    pub(crate) fn null_array(&mut self) {
        self.length(None, true);
    }

    /// A tagged-field section holding `fields` (tag, data); nothing in classic versions.
    pub(crate) fn tagged_fields(&mut self, fields: &[(u32, &[u8])]) {
        if !self.flexible {
            return;
        }
        self.uvarint(fields.len() as u64);
        for (tag, data) in fields {
            self.uvarint(u64::from(*tag));
            self.uvarint(data.len() as u64);
            self.buf.put_slice(data);
        }
    }

    /// An empty tagged-field section (flexible versions only).
    pub(crate) fn no_tagged_fields(&mut self) {
        self.tagged_fields(&[]);
    }

    pub(crate) fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

/// The reading side of [`Writer`]: every read checks the bytes left, so truncated or hostile
/// input is an error.
pub(crate) struct Reader<'a> {
    /// The bytes not read yet.
    pub(crate) buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    /// A reader of a classic (`false`) or flexible (`true`) schema version.
    pub(crate) fn new(buf: &'a [u8], flexible: bool) -> Reader<'a> {
        Reader { buf, flexible }
    }

    /// Switches encodings once the version (always classic) says which one follows.
    pub(crate) fn set_flexible(&mut self, flexible: bool) {
        self.flexible = flexible;
    }

    /// Whether compact lengths and tagged fields are read.
    pub(crate) fn flexible(&self) -> bool {
        self.flexible
    }

    /// The next `n` bytes, as they are.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Truncated {
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A UUID (see [`Writer::uuid`]).
    pub(crate) fn uuid(&mut self) -> Result<uuid::Uuid, RecordError> {
        Ok(uuid::Uuid::from_bytes(self.array()?))
    }

    /// An unsigned varint of at most five bytes (Kafka's unsigned int32 varint).
    pub(crate) fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let [b] = self.array::<1>()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::InvalidLength(-1))
    }

    /// A length prefix (see [`Writer`]); `None` is the null marker.
    fn length(&mut self, wide: bool) -> Result<Option<usize>, RecordError> {
        let len: i64 = if self.flexible {
            i64::try_from(self.uvarint()?).unwrap_or(i64::MAX) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match len {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| RecordError::InvalidLength(n)),
        }
    }

    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        match self.length(false)? {
            None => Ok(None),
            Some(n) => String::from_utf8(self.take(n)?.to_vec())
                .map(Some)
                .map_err(|_| RecordError::InvalidUtf8),
        }
    }

    pub(crate) fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?
            .ok_or(RecordError::InvalidLength(-1))
    }

    /// A bytes field; a null one reads as empty, as Kafka's assignment handling does.
    pub(crate) fn bytes(&mut self) -> Result<Bytes, RecordError> {
        match self.length(true)? {
            None => Ok(Bytes::new()),
            Some(n) => Ok(Bytes::copy_from_slice(self.take(n)?)),
        }
    }

    /// An array's element count; `None` for a null array.
    pub(crate) fn array_len(&mut self) -> Result<Option<usize>, RecordError> {
        self.length(true)
    }

    /// A tagged-field section: (tag, data) pairs (none before flexible versions).
    pub(crate) fn tagged_fields(&mut self) -> Result<Vec<(u64, &'a [u8])>, RecordError> {
        if !self.flexible {
            return Ok(Vec::new());
        }
        let count = self.uvarint()?;
        let mut out = Vec::new();
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size =
                usize::try_from(self.uvarint()?).map_err(|_| RecordError::InvalidLength(-1))?;
            out.push((tag, self.take(size)?));
        }
        Ok(out)
    }

    /// Skips a tagged-field section (flexible versions only).
    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        self.tagged_fields().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_fields_have_kafkas_layout() {
        let mut w = Writer::new(false);
        w.i8(-1);
        w.i16(2);
        w.string("ab");
        w.nullable_string(None);
        w.bytes(b"x");
        w.array_len(1);
        w.null_array();
        w.no_tagged_fields();
        let bytes = w.finish();
        assert_eq!(
            &bytes[..],
            &[
                0xff, 0, 2, 0, 2, b'a', b'b', 0xff, 0xff, 0, 0, 0, 1, b'x', 0, 0, 0, 1, 0xff, 0xff,
                0xff, 0xff
            ],
            "no tagged fields in a classic version"
        );
        let mut r = Reader::new(&bytes, false);
        assert_eq!(r.i8(), Ok(-1));
        assert_eq!(r.i16(), Ok(2));
        assert_eq!(r.string().as_deref(), Ok("ab"));
        assert_eq!(r.nullable_string(), Ok(None));
        assert_eq!(&r.bytes().unwrap()[..], b"x");
        assert_eq!(r.array_len(), Ok(Some(1)));
        assert_eq!(r.array_len(), Ok(None));
        assert_eq!(r.tagged_fields(), Ok(vec![]));
        assert!(matches!(r.i8(), Err(RecordError::Truncated { needed: 1 })));
    }

    #[test]
    fn flexible_fields_use_compact_lengths_and_tagged_fields() {
        let mut w = Writer::new(true);
        w.string("ab");
        w.nullable_string(None);
        w.array_len(300);
        w.tagged_fields(&[(10_000, b"zz")]);
        let bytes = w.finish();
        assert_eq!(
            &bytes[..],
            &[3, b'a', b'b', 0, 0xad, 0x02, 1, 0x90, 0x4e, 2, b'z', b'z']
        );
        let mut r = Reader::new(&bytes, true);
        assert_eq!(r.string().as_deref(), Ok("ab"));
        assert_eq!(r.nullable_string(), Ok(None));
        assert_eq!(r.array_len(), Ok(Some(300)));
        assert_eq!(r.tagged_fields(), Ok(vec![(10_000, &b"zz"[..])]));
    }

    #[test]
    fn uuids_are_sixteen_big_endian_bytes() {
        let id = uuid::Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let mut w = Writer::new(true);
        w.uuid(id);
        let bytes = w.finish();
        assert_eq!(&bytes[..], &(1u8..=16).collect::<Vec<_>>()[..]);
        assert_eq!(Reader::new(&bytes, true).uuid(), Ok(id));
        assert!(matches!(
            Reader::new(&bytes[..15], true).uuid(),
            Err(RecordError::Truncated { needed: 1 })
        ));
    }

    #[test]
    fn a_classic_reader_turns_flexible_after_the_version() {
        let mut r = Reader::new(&[0, 4, 2, b'a', 0], false);
        assert!(!r.flexible());
        assert_eq!(r.i16(), Ok(4));
        r.set_flexible(true);
        assert_eq!(r.string().as_deref(), Ok("a"));
        assert_eq!(r.skip_tagged_fields(), Ok(()));
    }

    #[test]
    fn long_strings_are_cut_at_a_char_boundary() {
        let s = "é".repeat(20_000);
        let mut w = Writer::new(false);
        w.string(&s);
        let bytes = w.finish();
        let read = Reader::new(&bytes, false).string().unwrap();
        assert_eq!(
            read.len(),
            32_766,
            "the last whole char under i16::MAX bytes"
        );
        assert!(s.starts_with(&read));
    }

    #[test]
    fn bad_lengths_and_bytes_are_errors() {
        assert_eq!(
            Reader::new(&[0xff, 0xfe], false).nullable_string(),
            Err(RecordError::InvalidLength(-2))
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff], false).string(),
            Err(RecordError::InvalidLength(-1)),
            "null where a string is required"
        );
        assert_eq!(
            Reader::new(&[0, 1, 0xc3], false).string(),
            Err(RecordError::InvalidUtf8)
        );
        assert_eq!(
            Reader::new(&[0x80; 6], true).uvarint(),
            Err(RecordError::InvalidLength(-1)),
            "a varint longer than five bytes"
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff], false).bytes(),
            Ok(Bytes::new()),
            "null bytes read as empty"
        );
        assert!(matches!(
            Reader::new(&[0, 0, 0, 9, 1], false).bytes(),
            Err(RecordError::Truncated { needed: 8 })
        ));
    }
}
