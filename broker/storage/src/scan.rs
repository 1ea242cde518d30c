//! Sequential readers over a segment file: headers only (index lookups, producer-state
//! rebuild) or whole validated batches (crash recovery).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::batch::{
    batch_size_from_prefix, BatchError, BatchHeaderInfo, BatchView, HEADER_LEN, LOG_OVERHEAD,
};
use super::validate::{check_records, OffsetDeltas};
use crate::codec::UNCOMPRESSED_BATCH_CEILING;

/// Bytes read at once when scanning headers: several small batches per read, little waste
/// when batches are large.
const HEADER_WINDOW: usize = 8 * 1024;
/// Bytes read at once when validating whole batches.
const BATCH_WINDOW: usize = 1024 * 1024;

/// Why a scan stopped before the end of the file.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The file could not be read.
    Io(io::Error),
    /// The batch at `position` is torn or invalid.
    Invalid {
        /// Byte position of the bad batch.
        position: u64,
        /// What is wrong with it.
        error: BatchError,
    },
}

/// A window of file bytes `[start, start + buf.len())`.
#[derive(Debug, Default)]
struct Window {
    buf: Vec<u8>,
    start: u64,
}

impl Window {
    /// Makes `[pos, pos + n)` readable, reading at least `window` bytes (bounded by `end`).
    fn ensure(
        &mut self,
        file: &File,
        pos: u64,
        n: usize,
        window: usize,
        end: u64,
    ) -> io::Result<()> {
        let have_end = self.start + self.buf.len() as u64;
        if pos >= self.start && pos + n as u64 <= have_end {
            return Ok(());
        }
        let len = (n.max(window) as u64).min(end - pos) as usize;
        self.buf.resize(len, 0);
        self.start = pos;
        file.read_exact_at(&mut self.buf, pos)
    }

    fn slice(&self, pos: u64, n: usize) -> &[u8] {
        let from = (pos - self.start) as usize;
        &self.buf[from..from + n]
    }
}

fn truncated(position: u64, needed: usize, available: u64) -> ScanError {
    ScanError::Invalid {
        position,
        error: BatchError::Truncated {
            needed,
            available: available as usize,
        },
    }
}

fn read_error(e: io::Error, position: u64, needed: usize) -> ScanError {
    // A file shorter than its recorded size reads as a torn batch, not an I/O failure.
    if e.kind() == io::ErrorKind::UnexpectedEof {
        truncated(position, needed, 0)
    } else {
        ScanError::Io(e)
    }
}

/// Walks batch headers from a position, reading no payloads.
#[derive(Debug)]
pub(crate) struct HeaderScan<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    window: Window,
}

impl<'a> HeaderScan<'a> {
    /// Scans `[start, end)` of `file`; `start` must be a batch boundary.
    pub(crate) fn new(file: &'a File, start: u64, end: u64) -> Self {
        Self {
            file,
            pos: start,
            end,
            window: Window::default(),
        }
    }

    /// Next batch header, or `None` at the end.
    pub(crate) fn next_header(&mut self) -> Result<Option<BatchHeaderInfo>, ScanError> {
        let pos = self.pos;
        if pos >= self.end {
            return Ok(None);
        }
        let available = self.end - pos;
        if available < HEADER_LEN as u64 {
            return Err(truncated(pos, HEADER_LEN, available));
        }
        self.window
            .ensure(self.file, pos, HEADER_LEN, HEADER_WINDOW, self.end)
            .map_err(|e| read_error(e, pos, HEADER_LEN))?;
        let view = BatchView::header(self.window.slice(pos, HEADER_LEN)).map_err(|error| {
            ScanError::Invalid {
                position: pos,
                error,
            }
        })?;
        let size = view.size();
        if size as u64 > available {
            return Err(truncated(pos, size, available));
        }
        self.pos += size as u64;
        Ok(Some(BatchHeaderInfo::from_view(&view, pos)))
    }
}

/// Walks whole batches, checking each header, CRC and its records (recovery of unflushed
/// data).
#[derive(Debug)]
pub(crate) struct BatchScan<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    window: Window,
}

impl<'a> BatchScan<'a> {
    /// Scans `[start, end)` of `file`.
    pub(crate) fn new(file: &'a File, start: u64, end: u64) -> Self {
        Self {
            file,
            pos: start,
            end,
            window: Window::default(),
        }
    }

    /// Next valid batch with its position, or `None` at the end.
    pub(crate) fn next_batch(&mut self) -> Result<Option<(u64, BatchView<'_>)>, ScanError> {
        let pos = self.pos;
        if pos >= self.end {
            return Ok(None);
        }
        let available = self.end - pos;
        if available < LOG_OVERHEAD as u64 {
            return Err(truncated(pos, HEADER_LEN, available));
        }
        self.window
            .ensure(self.file, pos, LOG_OVERHEAD, BATCH_WINDOW, self.end)
            .map_err(|e| read_error(e, pos, LOG_OVERHEAD))?;
        let size = batch_size_from_prefix(self.window.slice(pos, LOG_OVERHEAD))
            .unwrap_or(0)
            .max(HEADER_LEN);
        if size as u64 > available {
            // Let the header check name the problem when the length itself is garbage.
            let head = (available as usize).min(HEADER_LEN);
            self.window
                .ensure(self.file, pos, head, BATCH_WINDOW, self.end)
                .map_err(|e| read_error(e, pos, head))?;
            let error = match BatchView::header(self.window.slice(pos, head)) {
                Err(error) => error,
                Ok(_) => BatchError::Truncated {
                    needed: size,
                    available: available as usize,
                },
            };
            return Err(ScanError::Invalid {
                position: pos,
                error,
            });
        }
        self.window
            .ensure(self.file, pos, size, BATCH_WINDOW, self.end)
            .map_err(|e| read_error(e, pos, size))?;
        let invalid = |error| ScanError::Invalid {
            position: pos,
            error,
        };
        let view = BatchView::parse(self.window.slice(pos, size)).map_err(invalid)?;
        check_records(
            &view,
            OffsetDeltas::Increasing,
            UNCOMPRESSED_BATCH_CEILING,
            |_| {},
        )
        .map_err(invalid)?;
        self.pos += view.size() as u64;
        Ok(Some((pos, view)))
    }
}
