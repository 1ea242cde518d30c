//! Streaming reader of Kafka's snappy payloads: xerial's framing (a 16-byte header, then
//! blocks of a big-endian length and a raw snappy block), or one raw snappy block when the
//! header is absent, as xerial's `SnappyInputStream` reads them.

use std::io::{self, Read};

/// `\x82SNAPPY\0`: the first 8 bytes of xerial's header (version and compatible version follow).
const MAGIC: &[u8] = b"\x82SNAPPY\x00";
/// Magic plus two 32-bit version fields.
const HEADER_LEN: usize = 16;

/// Decodes one block at a time, never allocating more than `budget` for any of them.
pub(crate) struct SnappyReader<'a> {
    rest: &'a [u8],
    /// Blocks framed with lengths (xerial), or one raw block.
    framed: bool,
    out: Vec<u8>,
    pos: usize,
    budget: u64,
}

impl<'a> SnappyReader<'a> {
    /// A reader over `data` that fails once more than `budget` bytes would be produced.
    pub(crate) fn new(data: &'a [u8], budget: u64) -> Self {
        let framed = data.len() >= HEADER_LEN && data.starts_with(MAGIC);
        let rest = if framed { &data[HEADER_LEN..] } else { data };
        Self {
            rest,
            framed,
            out: Vec::new(),
            pos: 0,
            budget,
        }
    }

    /// The next block's compressed bytes, or `None` at the end.
    fn next_block(&mut self) -> io::Result<Option<&'a [u8]>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        if !self.framed {
            return Ok(Some(std::mem::take(&mut self.rest)));
        }
        let (len, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| invalid("snappy block length cut short"))?;
        let len = usize::try_from(u32::from_be_bytes(*len))
            .map_err(|_| invalid("snappy block length too large"))?;
        if len > rest.len() {
            return Err(invalid("snappy block longer than the payload"));
        }
        let (block, rest) = rest.split_at(len);
        self.rest = rest;
        Ok(Some(block))
    }

    fn decode(&mut self, block: &[u8]) -> io::Result<()> {
        let len = snap::raw::decompress_len(block).map_err(|e| invalid(&e.to_string()))?;
        // The length is the block's claim; no valid block expands more than MAX_EXPANSION
        // times, so a larger claim is refused before anything is reserved for it.
        if len > block.len().saturating_mul(MAX_EXPANSION) {
            return Err(invalid(
                "snappy block claims more than its bytes can expand to",
            ));
        }
        if len as u64 > self.budget {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "snappy block larger than the decompression budget",
            ));
        }
        self.budget -= len as u64;
        self.out.resize(len, 0);
        let written = snap::raw::Decoder::new()
            .decompress(block, &mut self.out)
            .map_err(|e| invalid(&e.to_string()))?;
        self.out.truncate(written);
        self.pos = 0;
        Ok(())
    }
}

/// More than a snappy block can expand: a 3-byte copy element yields at most 64 bytes
/// (21.3 times), so a block never claims 32 times its size.
const MAX_EXPANSION: usize = 32;

fn invalid(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_string())
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            match self.next_block()? {
                Some(block) => self.decode(block)?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], budget: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        SnappyReader::new(data, budget).read_to_end(&mut out)?;
        Ok(out)
    }

    fn framed(blocks: &[&[u8]]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for block in blocks {
            let packed = snap::raw::Encoder::new()
                .compress_vec(block)
                .expect("compress");
            out.extend_from_slice(&(packed.len() as u32).to_be_bytes());
            out.extend_from_slice(&packed);
        }
        out
    }

    #[test]
    fn framed_and_raw_payloads_decode() {
        let data = framed(&[b"hello ", b"world"]);
        assert_eq!(read_all(&data, 100).expect("framed"), b"hello world");
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"raw block")
            .expect("compress");
        assert_eq!(read_all(&raw, 100).expect("raw"), b"raw block");
    }

    #[test]
    fn garbage_lying_lengths_and_bombs_are_errors() {
        assert!(read_all(b"definitely not snappy", 1 << 20).is_err());
        let mut data = framed(&[b"abc"]);
        data.truncate(data.len() - 1);
        assert!(read_all(&data, 100).is_err());
        let zeros = vec![0u8; 1 << 20];
        let bomb = framed(&[&zeros]);
        assert!(read_all(&bomb, 1 << 19).is_err());
        assert_eq!(
            read_all(&bomb, 1 << 20).expect("within budget").len(),
            1 << 20
        );
    }
}
