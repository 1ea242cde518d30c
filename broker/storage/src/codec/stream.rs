//! Streaming decoders for Kafka's codecs, so a compressed batch is read record by record and a
//! compression bomb costs a bounded buffer, not the size it expands to.

use std::io::Read;

use kafka_protocol::records::Compression;

use super::snappy::SnappyReader;
use super::CodecError;

/// Largest zstd window a frame may ask for: 2^27 bytes, zstd's own default limit (and
/// zstd-jni's, so whatever the Java producer writes decodes here).
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// A reader of `data` decompressed with `codec`. `budget` bounds the buffers a decoder may
/// allocate for one block (snappy); callers still count the bytes they read.
pub fn decoder<'a>(
    codec: Compression,
    data: &'a [u8],
    budget: u64,
) -> Result<Box<dyn Read + 'a>, CodecError> {
    let failed = |reason: String| CodecError::new(codec, "decompression", reason);
    Ok(match codec {
        Compression::None => Box::new(data),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Compression::Snappy => Box::new(SnappyReader::new(data, budget)),
        Compression::Lz4 => Box::new(Lz4Reader(Some(
            lz4::Decoder::new(data).map_err(|e| failed(e.to_string()))?,
        ))),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| failed(e.to_string()))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| failed(e.to_string()))?;
            Box::new(decoder)
        }
    })
}

/// An LZ4 frame reader that fails on a frame cut before its end mark: the `lz4` decoder
/// reports such input as a clean end, and consumers would fail on it.
struct Lz4Reader<'a>(Option<lz4::Decoder<&'a [u8]>>);

impl Read for Lz4Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(decoder) = self.0.as_mut() else {
            return Ok(0);
        };
        let n = decoder.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(decoder) = self.0.take() {
                decoder.finish().1.map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the LZ4 frame ends before its end mark",
                    )
                })?;
            }
        }
        Ok(n)
    }
}

/// Decompresses all of `data`, refusing to produce more than `limit` bytes.
pub fn decompress_bounded(
    codec: Compression,
    data: &[u8],
    limit: u64,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let read = decoder(codec, data, limit)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut out);
    match read {
        Ok(_) if out.len() as u64 <= limit => Ok(out),
        // A snappy block larger than the budget is refused before it is decoded.
        Err(e) if e.kind() != std::io::ErrorKind::OutOfMemory => {
            Err(CodecError::new(codec, "decompression", e.to_string()))
        }
        _ => Err(CodecError {
            over_limit: true,
            ..CodecError::new(
                codec,
                "decompression",
                format!("the records expand past the {limit}-byte limit"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::compress;

    const CODECS: &[Compression] = &crate::test_util::ALL_CODECS;

    #[test]
    fn every_codec_streams_what_kafka_protocol_compressed() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 253).to_be_bytes())
            .collect();
        for &codec in CODECS {
            let packed = compress(codec, &data).expect("compress");
            let out = decompress_bounded(codec, &packed, 1 << 20).expect("decompress");
            assert_eq!(out, data, "{codec:?}");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for &codec in &CODECS[1..] {
            let packed = compress(codec, &zeros).expect("compress");
            assert!(
                packed.len() < 1 << 20,
                "{codec:?} should compress zeros well"
            );
            let err = decompress_bounded(codec, &packed, 1 << 20).expect_err("a bomb");
            assert!(err.is_over_limit(), "{codec:?}: {err}");
        }
    }

    #[test]
    fn garbage_fails_in_every_codec() {
        for &codec in &CODECS[1..] {
            assert!(
                decompress_bounded(codec, b"\x01\x02garbage\xff\xfe", 1 << 20).is_err(),
                "{codec:?}"
            );
        }
    }
}
