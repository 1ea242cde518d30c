//! The record-batch compression codecs (attribute bits 0-2), with decompression bounded by a
//! limit: the strict decoder must read a compression bomb back without becoming one's victim.

use std::io::{Read, Write};

/// A record-batch codec, numbered as in the batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// Uncompressed records.
    None = 0,
    /// gzip (one member, as the Java client and librdkafka write it).
    Gzip = 1,
    /// Snappy, in the xerial framing the Java client writes (raw blocks are read too).
    Snappy = 2,
    /// LZ4 frame format (KIP-57).
    Lz4 = 3,
    /// Zstandard.
    Zstd = 4,
}

/// Every codec, in attribute order.
pub const ALL: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];

/// The 16-byte header of the xerial snappy framing.
pub const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Uncompressed bytes per xerial block (the Java client's default).
pub const XERIAL_BLOCK: usize = 32 * 1024;

impl Codec {
    /// The codec named by attribute bits 0-2, if any.
    pub fn from_attributes(attributes: i16) -> Option<Codec> {
        ALL.get(usize::try_from(attributes & 0x7).ok()?).copied()
    }

    /// Lower-case name, as Kafka's `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// Why a payload did not decompress.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// It expands past the limit (a bomb, or simply too big to validate).
    #[error("expands past {limit} bytes")]
    TooLarge {
        /// The limit it passed.
        limit: usize,
    },
    /// It is not a valid stream of its codec.
    #[error("{0}")]
    Corrupt(String),
}

/// Compresses `data` with `codec` as a producer would.
pub fn compress(codec: Codec, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match codec {
        Codec::None => Ok(data.to_vec()),
        Codec::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data)?;
            enc.finish()
        }
        Codec::Snappy => {
            let mut out = XERIAL_MAGIC.to_vec();
            for block in data.chunks(XERIAL_BLOCK) {
                push_snappy_block(&mut out, block)?;
            }
            Ok(out)
        }
        Codec::Lz4 => {
            let mut enc = lz4::EncoderBuilder::new().build(Vec::new())?;
            enc.write_all(data)?;
            let (out, result) = enc.finish();
            result.map(|()| out)
        }
        Codec::Zstd => zstd::stream::encode_all(data, 3),
    }
}

/// Appends one xerial block (length-prefixed raw snappy) holding `block`.
pub fn push_snappy_block(out: &mut Vec<u8>, block: &[u8]) -> std::io::Result<()> {
    let compressed = snap::raw::Encoder::new()
        .compress_vec(block)
        .map_err(std::io::Error::other)?;
    let len = u32::try_from(compressed.len()).map_err(std::io::Error::other)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&compressed);
    Ok(())
}

/// Decompresses `data`, refusing to produce more than `limit` bytes.
pub fn decompress(codec: Codec, data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let corrupt = |e: std::io::Error| DecompressError::Corrupt(e.to_string());
    match codec {
        Codec::None => Ok(data.to_vec()),
        Codec::Gzip => read_bounded(flate2::read::GzDecoder::new(data), limit),
        Codec::Lz4 => read_bounded(lz4::Decoder::new(data).map_err(corrupt)?, limit),
        Codec::Zstd => read_bounded(
            zstd::stream::read::Decoder::new(data).map_err(corrupt)?,
            limit,
        ),
        Codec::Snappy => snappy_bounded(data, limit),
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    if out.is_empty() {
        return Err(DecompressError::Corrupt("empty stream".into()));
    }
    Ok(out)
}

fn snappy_raw(block: &[u8], room: usize, limit: usize) -> Result<Vec<u8>, DecompressError> {
    let len =
        snap::raw::decompress_len(block).map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    if len > room {
        return Err(DecompressError::TooLarge { limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(block)
        .map_err(|e| DecompressError::Corrupt(e.to_string()))
}

fn snappy_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let Some(mut rest) = data.strip_prefix(&XERIAL_MAGIC[..]) else {
        return snappy_raw(data, limit, limit);
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let short = || DecompressError::Corrupt("xerial block truncated".into());
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?;
        let len = usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| short())?;
        let block = rest.get(4..4 + len).ok_or_else(short)?;
        out.extend(snappy_raw(block, limit - out.len(), limit)?);
        rest = &rest[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed, 1 << 20).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn decompression_stops_at_the_limit() {
        let zeros = vec![0u8; 200_000];
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let packed = compress(codec, &zeros).unwrap();
            assert_eq!(
                decompress(codec, &packed, 100_000),
                Err(DecompressError::TooLarge { limit: 100_000 }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn garbage_is_corrupt_for_every_real_codec() {
        let garbage: Vec<u8> = (1..=16).collect();
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            assert!(
                matches!(
                    decompress(codec, &garbage, 1 << 20),
                    Err(DecompressError::Corrupt(_))
                ),
                "{codec:?}"
            );
        }
    }
}
