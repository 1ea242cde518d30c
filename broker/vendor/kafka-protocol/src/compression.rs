//! Provides compression utilities for encoding records.
//!
//! This module has implementations of gzip, Snappy, as well as a noop compression format that
//! allows encoding and decoding records into a [`Record`](crate::records::Record).

use crate::protocol::buf::{ByteBuf, ByteBufMut};
use anyhow::Result;
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
use std::io;

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "lz4")]
mod lz4;
mod none;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(feature = "zstd")]
mod zstd;

#[cfg(feature = "gzip")]
pub use gzip::Gzip;
#[cfg(feature = "lz4")]
pub use lz4::Lz4;
pub use none::None;
#[cfg(feature = "snappy")]
pub use snappy::Snappy;
#[cfg(feature = "zstd")]
pub use zstd::Zstd;

/// Patched: the most the records of one batch may decompress to, in bytes (1 GiB). The
/// published decompressors grew their output without limit (and the Snappy one allocated
/// whatever length the stream's header claimed), so a few bytes of hostile input could make
/// them allocate gigabytes; past this they fail instead. Kafka itself sets no such limit; 1 GiB
/// is far above what `message.max.bytes` lets producers send.
pub const MAX_DECOMPRESSED_SIZE: usize = 1 << 30;

/// Patched: the output of a streaming decompressor: a `Vec` that grows geometrically as data
/// arrives, never past `limit` bytes of capacity, and fails the write that would cross it.
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
pub(crate) struct BoundedWriter {
    out: Vec<u8>,
    limit: usize,
}

#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
impl BoundedWriter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            out: Vec::new(),
            limit,
        }
    }

    pub(crate) fn into_bytes(self) -> bytes::Bytes {
        self.out.into()
    }
}

#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
impl io::Write for BoundedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.out.len());
        if data.len() > room {
            return Err(io::Error::other(format!(
                "decompressed data exceeds the {}-byte limit",
                self.limit
            )));
        }
        if self.out.capacity() - self.out.len() < data.len() {
            // Double, as Vec would, but never past the limit.
            let grow = data.len().max(self.out.capacity()).min(room);
            self.out.reserve_exact(grow);
        }
        self.out.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A trait for record compression algorithms.
pub trait Compressor<B: ByteBufMut> {
    /// Target buffer type for compression.
    type BufMut: ByteBufMut;
    /// Compresses into provided [`ByteBufMut`], with records encoded by `F` into `R`.
    fn compress<R, F>(buf: &mut B, f: F) -> Result<R>
    where
        F: FnOnce(&mut Self::BufMut) -> Result<R>;
}

/// A trait for record decompression algorithms.
pub trait Decompressor<B: ByteBuf> {
    /// Target buffer type for decompression.
    type Buf: ByteBuf;
    /// Decompress records from `B` mapped using `F` into `R`.
    fn decompress<R, F>(buf: &mut B, f: F) -> Result<R>
    where
        F: FnOnce(&mut Self::Buf) -> Result<R>;
}
