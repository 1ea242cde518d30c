//! Size-prefixed frames: reading one from a socket and writing a response into one.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read or a response encoded; all of these close the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed mid-frame.
    #[error("socket read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The size prefix is negative or above socket.request.max.bytes.
    #[error("frame of {size} bytes is outside {min}..={max} (socket.request.max.bytes, or 524288 before authentication)")]
    BadSize { size: i64, min: usize, max: usize },
    /// The response could not be encoded at the requested version.
    #[error("cannot encode response: {0}")]
    Encode(String),
}

/// The fixed start of every request header, readable before the version-specific decoding.
#[derive(Debug, Clone, Copy)]
pub struct RequestPrefix {
    /// API key.
    pub api_key: i16,
    /// API version.
    pub api_version: i16,
    /// Correlation id echoed in the response.
    pub correlation_id: i32,
}

impl RequestPrefix {
    /// Reads the prefix from a frame (frames are at least 8 bytes long).
    pub fn parse(frame: &[u8]) -> Option<RequestPrefix> {
        let api_key = i16::from_be_bytes(frame.get(0..2)?.try_into().ok()?);
        let api_version = i16::from_be_bytes(frame.get(2..4)?.try_into().ok()?);
        let correlation_id = i32::from_be_bytes(frame.get(4..8)?.try_into().ok()?);
        Some(RequestPrefix {
            api_key,
            api_version,
            correlation_id,
        })
    }
}

/// Reads one request frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    read_sized(reader, 8, max).await
}

/// Reads one size-prefixed frame of `min..=max` bytes (a raw SASL token after a v0
/// SaslHandshake may be shorter than a request header).
pub async fn read_sized<R: AsyncRead + Unpin>(
    reader: &mut R,
    min: usize,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    let len = usize::try_from(size)
        .ok()
        .filter(|len| (min..=max).contains(len))
        .ok_or(FrameError::BadSize {
            size: i64::from(size),
            min,
            max,
        })?;
    Ok(Some(read_claimed(reader, len).await?.into()))
}

/// What a claimed length may reserve before any of its bytes arrived.
const FIRST_RESERVATION: usize = 64 * 1024;

/// Reads exactly `len` bytes whose length the peer claimed, growing the buffer as they arrive
/// rather than reserving `len` up front: a peer that claims 100 MB and sends nothing costs
/// 64 KiB, not 100 MB per connection. The buffer doubles, never past `len`, and the read stops
/// at `len` (no probe for more, which would grow a full buffer once more and copy the frame).
pub async fn read_claimed<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len.min(FIRST_RESERVATION));
    while buf.len() < len {
        if buf.len() == buf.capacity() {
            buf.reserve_exact(buf.capacity().max(FIRST_RESERVATION).min(len - buf.len()));
        }
        let rest = u64::try_from(len - buf.len()).unwrap_or(u64::MAX);
        if (&mut *reader).take(rest).read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the peer closed after {} of the {len} bytes it announced",
                    buf.len()
                ),
            ));
        }
    }
    Ok(buf)
}

/// Encodes `response` with its header at `version`, size prefix included.
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &R,
) -> Result<Bytes, FrameError> {
    let header_version = R::header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encode_err = |e: anyhow::Error| FrameError::Encode(e.to_string());
    let size = header
        .compute_size(header_version)
        .and_then(|h| response.compute_size(version).map(|b| h + b))
        .map_err(encode_err)?;
    let mut buf = BytesMut::with_capacity(size + 4);
    buf.put_u32(u32::try_from(size).map_err(|_| FrameError::Encode("response too large".into()))?);
    header
        .encode(&mut buf, header_version)
        .map_err(encode_err)?;
    response.encode(&mut buf, version).map_err(encode_err)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A frame arriving in pieces is read whole, the bytes after it stay for the next read,
    /// and the buffer never grows past the frame.
    #[tokio::test]
    async fn a_claimed_frame_is_read_exactly_and_its_buffer_not_grown_past_it() {
        for len in [
            0,
            1,
            1000,
            FIRST_RESERVATION,
            FIRST_RESERVATION + 1,
            3 * FIRST_RESERVATION + 17,
        ] {
            let frame: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (mut client, mut server) = tokio::io::duplex(4096);
            let sent = frame.clone();
            let writer = tokio::spawn(async move {
                for piece in sent.chunks(5_000) {
                    client.write_all(piece).await.expect("write");
                }
                client.write_all(b"next").await.expect("write");
            });
            let read = read_claimed(&mut server, len).await.expect("read");
            assert_eq!(read, frame, "{len}");
            assert_eq!(read.capacity(), len, "grown past the frame");
            let mut next = [0u8; 4];
            server.read_exact(&mut next).await.expect("next");
            assert_eq!(&next, b"next");
            writer.await.expect("writer");
        }
    }

    /// A peer that closes mid-frame, even one that claimed 100 MiB, is an error saying how
    /// far it got.
    #[tokio::test]
    async fn a_frame_cut_short_is_an_unexpected_end() {
        let mut short: &[u8] = &[1, 2, 3];
        let error = read_claimed(&mut short, 100 << 20)
            .await
            .expect_err("short");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(
            error.to_string().contains("after 3 of the 104857600 bytes"),
            "{error}"
        );
    }
}
