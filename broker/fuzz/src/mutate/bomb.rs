//! Compression bombs: batches whose few compressed bytes expand to hundreds of MB or more.
//! Built by streaming zeros through the encoder, so the harness never holds the expansion.
//! A broker must refuse them at bounded memory and time, never store them.

use std::io::Write;
use std::sync::Arc;

use crate::codec::{self, Codec};
use crate::records::{put_varint, BatchHeader};
use crate::rng::Rng;

/// How the expansion is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One honest record whose value is all the zeros (well-formed but enormous).
    GiantRecord,
    /// One small record and then the zeros (trailing garbage past the count).
    TrailingZeros,
}

/// The bombs of a run: (expansion, shape). One well-formed giant record of 1 GiB and a
/// 256 MiB tail of zeros after a small record, per codec.
pub const KINDS: [(usize, Shape); 2] = [
    (1 << 30, Shape::GiantRecord),
    (256 << 20, Shape::TrailingZeros),
];
/// The codecs bombs are built with.
pub const CODECS: [Codec; 4] = [Codec::Gzip, Codec::Lz4, Codec::Zstd, Codec::Snappy];

/// One bomb: its batch and what it is.
#[derive(Debug, Clone)]
pub struct Bomb {
    /// The whole batch (CRC valid).
    pub batch: Arc<Vec<u8>>,
    /// For the report.
    pub what: String,
}

/// Every bomb of a run, built before the first round (in parallel: the gigabyte ones cost
/// seconds of CPU each) so picking one is instant and the same for the same seed.
#[derive(Debug, Default)]
pub struct Arsenal {
    bombs: Vec<Bomb>,
}

impl Arsenal {
    /// Builds every (codec, kind) bomb.
    pub fn build() -> std::io::Result<Arsenal> {
        let specs: Vec<(Codec, usize, Shape)> = CODECS
            .iter()
            .flat_map(|&c| KINDS.iter().map(move |&(size, shape)| (c, size, shape)))
            .collect();
        let built: Vec<std::io::Result<Bomb>> = std::thread::scope(|scope| {
            let handles: Vec<_> = specs
                .iter()
                .map(|&(codec, size, shape)| {
                    scope.spawn(move || {
                        build(codec, size, shape).map(|b| Bomb {
                            batch: Arc::new(b),
                            what: format!(
                                "{} bomb expanding to {} MiB ({shape:?})",
                                codec.name(),
                                size >> 20
                            ),
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("bomb builder panicked")))
                })
                .collect()
        });
        Ok(Arsenal {
            bombs: built.into_iter().collect::<std::io::Result<Vec<_>>>()?,
        })
    }

    /// A random bomb (None when the arsenal is empty).
    pub fn pick(&self, rng: &mut Rng) -> Option<&Bomb> {
        rng.pick(&self.bombs)
    }
}

/// Builds a bomb batch: `size` bytes of records before compression.
pub fn build(codec: Codec, size: usize, shape: Shape) -> std::io::Result<Vec<u8>> {
    let prefix = record_prefix(size, shape);
    let zeros = size.saturating_sub(prefix.len());
    let payload = compress_zeros(codec, &prefix, zeros)?;
    let mut header = BatchHeader::plain(1, 1_700_000_000_000);
    header.attributes = codec as i16;
    Ok(header.build(&payload))
}

/// The bytes of record 0 that precede the zeros.
fn record_prefix(size: usize, shape: Shape) -> Vec<u8> {
    let mut out = Vec::new();
    match shape {
        Shape::TrailingZeros => crate::records::RecordSpec::value(0, b"bomb").encode(&mut out),
        Shape::GiantRecord => {
            // length, attributes, timestampDelta, offsetDelta, key -1, value length; the value
            // is the zeros that follow, and the last zero is the header count. The prefix's
            // own length depends on the varints in it, so find the fixed point.
            for prefix_len in 4..32 {
                let value_len = size as i64 - prefix_len - 1;
                let mut body = vec![0u8];
                put_varint(&mut body, 0);
                put_varint(&mut body, 0);
                put_varint(&mut body, -1);
                put_varint(&mut body, value_len);
                let mut candidate = Vec::new();
                put_varint(&mut candidate, body.len() as i64 + value_len + 1);
                candidate.extend(body);
                if candidate.len() as i64 == prefix_len {
                    return candidate;
                }
            }
        }
    }
    out
}

/// Compresses `prefix` followed by `zeros` zero bytes, streaming.
fn compress_zeros(codec: Codec, prefix: &[u8], zeros: usize) -> std::io::Result<Vec<u8>> {
    const CHUNK: usize = 1 << 20;
    let chunk = vec![0u8; CHUNK];
    let feed = |w: &mut dyn Write| -> std::io::Result<()> {
        w.write_all(prefix)?;
        let mut left = zeros;
        while left > 0 {
            let n = left.min(CHUNK);
            w.write_all(&chunk[..n])?;
            left -= n;
        }
        Ok(())
    };
    match codec {
        Codec::None => {
            let mut out = Vec::new();
            feed(&mut out)?;
            Ok(out)
        }
        Codec::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            feed(&mut enc)?;
            enc.finish()
        }
        Codec::Lz4 => {
            let mut enc = lz4::EncoderBuilder::new().build(Vec::new())?;
            feed(&mut enc)?;
            let (out, result) = enc.finish();
            result.map(|()| out)
        }
        Codec::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3)?;
            feed(&mut enc)?;
            enc.finish()
        }
        Codec::Snappy => {
            // Xerial blocks of 32 KiB: the first holds the prefix, the rest are identical zero
            // blocks compressed once.
            let mut out = codec::XERIAL_MAGIC.to_vec();
            let total = prefix.len() + zeros;
            let first_len = total.min(codec::XERIAL_BLOCK);
            let mut first = prefix.to_vec();
            first.resize(first_len, 0);
            codec::push_snappy_block(&mut out, &first)?;
            let mut zero_block = Vec::new();
            codec::push_snappy_block(&mut zero_block, &chunk[..codec::XERIAL_BLOCK])?;
            let mut left = total - first_len;
            while left >= codec::XERIAL_BLOCK {
                out.extend_from_slice(&zero_block);
                left -= codec::XERIAL_BLOCK;
            }
            if left > 0 {
                codec::push_snappy_block(&mut out, &chunk[..left])?;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::strict::{check_batch, Defect, Limits};

    #[test]
    fn bombs_are_small_on_the_wire_and_refused_by_the_strict_decoder() {
        for codec in [Codec::Gzip, Codec::Lz4, Codec::Zstd, Codec::Snappy] {
            for shape in [Shape::GiantRecord, Shape::TrailingZeros] {
                let b = build(codec, 8 << 20, shape).unwrap();
                assert!(b.len() < 1 << 20, "{codec:?} {shape:?}: {} bytes", b.len());
                let limits = Limits {
                    max_decompressed: 4 << 20,
                };
                assert!(
                    matches!(check_batch(&b, &limits), Err(Defect::Bomb { .. })),
                    "{codec:?} {shape:?}"
                );
            }
        }
    }

    #[test]
    fn a_giant_record_is_well_formed_below_the_bound() {
        let b = build(Codec::Zstd, 1 << 20, Shape::GiantRecord).unwrap();
        let limits = Limits {
            max_decompressed: 2 << 20,
        };
        assert!(
            check_batch(&b, &limits).is_ok(),
            "{:?}",
            check_batch(&b, &limits)
        );
        let t = build(Codec::Zstd, 1 << 20, Shape::TrailingZeros).unwrap();
        assert!(matches!(check_batch(&t, &limits), Err(Defect::Trailing(_))));
    }
}
