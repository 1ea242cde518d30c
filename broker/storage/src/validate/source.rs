//! Where the record walker reads from: the batch's own bytes when it is uncompressed, or a
//! decompressing stream that refuses to produce more than a byte budget.

use std::io::{self, Read};

/// Why reading the records section stopped.
#[derive(Debug)]
pub(super) enum SourceError {
    /// The records section ended inside a record.
    Eof,
    /// The decompressed records passed the budget (a compression bomb, or a batch larger than
    /// the broker accepts uncompressed).
    OverBudget,
    /// The compressed payload does not decode.
    Corrupt(String),
}

/// A forward-only reader of the records section.
pub(super) trait Source {
    /// The next byte.
    fn read_u8(&mut self) -> Result<u8, SourceError>;
    /// Skips `n` bytes (keys, values, header contents: validation never looks inside them).
    fn skip(&mut self, n: u64) -> Result<(), SourceError>;
    /// Whether every byte has been read.
    fn at_end(&mut self) -> Result<bool, SourceError>;
    /// Bytes read or skipped so far.
    fn consumed(&self) -> u64;
}

/// The records section of an uncompressed batch.
pub(super) struct SliceSource<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }
}

impl Source for SliceSource<'_> {
    #[inline]
    fn read_u8(&mut self) -> Result<u8, SourceError> {
        let byte = *self.bytes.get(self.pos).ok_or(SourceError::Eof)?;
        self.pos += 1;
        Ok(byte)
    }

    fn skip(&mut self, n: u64) -> Result<(), SourceError> {
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n > remaining {
            self.pos = self.bytes.len();
            return Err(SourceError::Eof);
        }
        self.pos += n as usize;
        Ok(())
    }

    fn at_end(&mut self) -> Result<bool, SourceError> {
        Ok(self.pos == self.bytes.len())
    }

    fn consumed(&self) -> u64 {
        self.pos as u64
    }
}

/// Bytes pulled from a decompressor at once.
const CHUNK: usize = 16 * 1024;

/// A decompressing stream read through a small buffer, with a budget on the bytes it may
/// produce: memory stays at one buffer whatever the batch claims, and time at the budget.
pub(super) struct StreamSource<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    produced: u64,
    consumed: u64,
    budget: u64,
    finished: bool,
}

impl<R: Read> StreamSource<R> {
    pub(super) fn new(inner: R, budget: u64) -> Self {
        Self {
            inner,
            buf: vec![0; CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            produced: 0,
            consumed: 0,
            budget,
            finished: false,
        }
    }

    /// Refills the buffer; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, SourceError> {
        if self.start < self.end {
            return Ok(true);
        }
        if self.finished {
            return Ok(false);
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.finished = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.produced += n as u64;
                    if self.produced > self.budget {
                        return Err(SourceError::OverBudget);
                    }
                    self.start = 0;
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A snappy block larger than the budget is refused before it is decoded.
                Err(e) if e.kind() == io::ErrorKind::OutOfMemory => {
                    return Err(SourceError::OverBudget)
                }
                Err(e) => return Err(SourceError::Corrupt(e.to_string())),
            }
        }
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn read_u8(&mut self) -> Result<u8, SourceError> {
        if !self.fill()? {
            return Err(SourceError::Eof);
        }
        let byte = self.buf[self.start];
        self.start += 1;
        self.consumed += 1;
        Ok(byte)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), SourceError> {
        while n > 0 {
            if !self.fill()? {
                return Err(SourceError::Eof);
            }
            let step = ((self.end - self.start) as u64).min(n) as usize;
            self.start += step;
            self.consumed += step as u64;
            n -= step as u64;
        }
        Ok(())
    }

    fn at_end(&mut self) -> Result<bool, SourceError> {
        Ok(!self.fill()?)
    }

    fn consumed(&self) -> u64 {
        self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_source_reads_skips_and_reports_the_end() {
        let mut s = SliceSource::new(&[1, 2, 3, 4]);
        assert_eq!(s.read_u8().ok(), Some(1));
        assert!(s.skip(2).is_ok());
        assert!(!s.at_end().unwrap_or(true));
        assert_eq!(s.read_u8().ok(), Some(4));
        assert!(s.at_end().unwrap_or(false));
        assert!(matches!(s.read_u8(), Err(SourceError::Eof)));
        assert!(matches!(s.skip(1), Err(SourceError::Eof)));
        assert_eq!(s.consumed(), 4);
    }

    #[test]
    fn stream_source_stops_at_its_budget() {
        let data = vec![7u8; 100_000];
        let mut s = StreamSource::new(&data[..], 50_000);
        assert!(matches!(s.skip(90_000), Err(SourceError::OverBudget)));
        let mut s = StreamSource::new(&data[..], 100_000);
        assert!(s.skip(99_999).is_ok());
        assert_eq!(s.read_u8().ok(), Some(7));
        assert!(s.at_end().unwrap_or(false));
        assert_eq!(s.consumed(), 100_000);
    }
}
