//! Request frames as bytes: the size prefix, the request header, the body. Mutators work on
//! these bytes; the runner needs only to know where the header ends and which API it names.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::{Error, Result};

/// Largest response frame the harness reads (a Fetch answer is bounded by its max_bytes).
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// The fixed start of every request header (v0 and later): what the runner tallies by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// API key as sent (may be unknown).
    pub api_key: i16,
    /// API version as sent.
    pub api_version: i16,
    /// Correlation id the response must echo.
    pub correlation_id: i32,
}

/// Reads the header prefix of a whole frame (size prefix included).
pub fn prefix(frame: &[u8]) -> Option<Prefix> {
    let b = frame.get(4..12)?;
    Some(Prefix {
        api_key: i16::from_be_bytes([b[0], b[1]]),
        api_version: i16::from_be_bytes([b[2], b[3]]),
        correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

/// Overwrites the correlation id of a whole frame (no-op on a frame too short to have one).
pub fn set_correlation_id(frame: &mut [u8], id: i32) {
    if let Some(slot) = frame.get_mut(8..12) {
        slot.copy_from_slice(&id.to_be_bytes());
    }
}

/// Rewrites the size prefix so it matches the bytes that follow.
pub fn fix_size(frame: &mut [u8]) {
    let len = i32::try_from(frame.len().saturating_sub(4)).unwrap_or(i32::MAX);
    if let Some(slot) = frame.get_mut(0..4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

/// Prefixes `payload` (header and body) with its size.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(payload);
    fix_size(&mut out);
    out
}

/// A frame split into its decoded header and its body bytes.
#[derive(Debug, Clone)]
pub struct Split {
    /// The API the header names.
    pub api: ApiKey,
    /// The decoded header.
    pub header: RequestHeader,
    /// Everything after the header.
    pub body: Bytes,
}

/// Splits a whole frame whose size prefix is honest and whose API key is known.
pub fn split(frame: &[u8]) -> Option<Split> {
    let p = prefix(frame)?;
    let api = ApiKey::try_from(p.api_key).ok()?;
    let range = api.valid_versions();
    if !(range.min..=range.max).contains(&p.api_version) {
        return None;
    }
    let mut buf = Bytes::copy_from_slice(frame.get(4..)?);
    let header = RequestHeader::decode(&mut buf, api.request_header_version(p.api_version)).ok()?;
    Some(Split {
        api,
        header,
        body: buf,
    })
}

/// Decodes the body of a whole frame at its declared API and version.
pub fn decode_request(frame: &[u8]) -> Option<(ApiKey, RequestHeader, RequestKind)> {
    let mut s = split(frame)?;
    let version = s.header.request_api_version;
    let request = RequestKind::decode(s.api, &mut s.body, version).ok()?;
    Some((s.api, s.header, request))
}

/// Encodes a request with a v1/v2 header into a whole frame.
pub fn encode_request(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    request: &RequestKind,
) -> Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    encode_with_header(api, &header, request)
}

/// Encodes `request` after `header` (at the header version its API and version call for).
pub fn encode_with_header(
    api: ApiKey,
    header: &RequestHeader,
    request: &RequestKind,
) -> Result<Vec<u8>> {
    let version = header.request_api_version;
    let encode_err = |e: anyhow::Error| Error::Encode {
        api: api as i16,
        version,
        reason: e.to_string(),
    };
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(encode_err)?;
    request.encode(&mut buf, version).map_err(encode_err)?;
    let mut out = buf.to_vec();
    fix_size(&mut out);
    Ok(out)
}

/// A decoded response with the correlation id it carried.
#[derive(Debug)]
pub struct Response {
    /// The echoed correlation id.
    pub correlation_id: i32,
    /// The body, if it decoded at the request's API and version.
    pub body: Option<ResponseKind>,
}

/// Decodes a response payload (size prefix removed) to `api` at `version`.
pub fn decode_response(api: ApiKey, version: i16, payload: &[u8]) -> Option<Response> {
    let mut buf = Bytes::copy_from_slice(payload);
    let header = ResponseHeader::decode(&mut buf, api.response_header_version(version)).ok()?;
    let body = ResponseKind::decode(api, &mut buf, version)
        .ok()
        .filter(|_| buf.is_empty());
    Some(Response {
        correlation_id: header.correlation_id,
        body,
    })
}

/// Reads one response frame; refuses sizes above `max` instead of allocating them.
pub fn read_frame(stream: &mut TcpStream, max: usize) -> std::io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= max)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("response frame declares {size} bytes"),
            )
        })?;
    let mut payload = vec![0u8; size];
    stream.read_exact(&mut payload)?;
    Ok(payload)
}

/// Sends a whole frame.
pub fn send(stream: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    stream.write_all(frame)?;
    stream.flush()
}

/// Hex of `bytes`, lower case: how reproducers are printed and stored.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    #[test]
    fn an_encoded_request_splits_back_into_header_and_body() {
        let req = RequestKind::Metadata(MetadataRequest::default());
        let frame = encode_request(ApiKey::Metadata, 12, 42, "fz", &req).unwrap();
        let p = prefix(&frame).unwrap();
        assert_eq!((p.api_key, p.api_version, p.correlation_id), (3, 12, 42));
        let (api, header, back) = decode_request(&frame).unwrap();
        assert_eq!(api, ApiKey::Metadata);
        assert_eq!(header.client_id.as_deref(), Some("fz"));
        assert_eq!(back, req);
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap(),
            vec![0, 1, 0xab, 0xff]
        );
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn fix_size_and_correlation_id_edit_the_frame_in_place() {
        let mut f = vec![0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 0, 9, 0xff, 0xff];
        fix_size(&mut f);
        set_correlation_id(&mut f, 77);
        assert_eq!(&f[0..4], &10i32.to_be_bytes());
        assert_eq!(prefix(&f).unwrap().correlation_id, 77);
    }
}
