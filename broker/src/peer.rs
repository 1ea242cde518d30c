//! Requests to another broker of the cluster over its advertised Kafka listener, as Kafka's
//! brokers talk to each other (the transaction coordinator's WriteTxnMarkers to a partition's
//! leader) and followers fetch from leaders. A connection that failed is never reused, so no
//! answer is ever read half-way from an earlier timeout.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest answer accepted from a peer.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Why a request to another broker failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The broker could not be reached or the connection broke.
    #[error("broker {address}: {source}")]
    Io {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// The request could not be encoded or the answer decoded.
    #[error("broker {address}: {what}")]
    Protocol { address: String, what: String },
    /// No answer in time.
    #[error("broker {address} did not answer within {timeout:?}")]
    TimedOut { address: String, timeout: Duration },
}

/// Sends `request` at `version` to the broker at `address` over a fresh connection and decodes
/// its answer.
pub async fn call<Q: Encodable, R: Decodable>(
    address: &str,
    api: ApiKey,
    version: i16,
    request: &Q,
    timeout: Duration,
) -> Result<R, PeerError> {
    PeerConnection::new(address.to_owned())
        .call(api, version, request, timeout)
        .await
}

/// A connection to another broker kept across requests (a follower's fetcher sends one fetch
/// after another). Any failure drops the connection, so the next call starts clean rather
/// than reading the rest of an abandoned answer.
#[derive(Debug)]
pub struct PeerConnection {
    address: String,
    stream: Option<tokio::net::TcpStream>,
    correlation_id: i32,
}

impl PeerConnection {
    /// A connection to `address`, opened by the first call.
    pub fn new(address: String) -> PeerConnection {
        PeerConnection {
            address,
            stream: None,
            correlation_id: 0,
        }
    }

    /// The broker this connection reaches.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` at `version` and decodes the answer, connecting first if needed.
    pub async fn call<Q: Encodable, R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Q,
        timeout: Duration,
    ) -> Result<R, PeerError> {
        let result = self.exchange(api, version, request, timeout).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange<Q: Encodable, R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Q,
        timeout: Duration,
    ) -> Result<R, PeerError> {
        let address = self.address.clone();
        let protocol = |what: String| PeerError::Protocol {
            address: address.clone(),
            what,
        };
        let io = |source| PeerError::Io {
            address: address.clone(),
            source,
        };
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("tributary-broker")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .map_err(|e| protocol(format!("request header: {e}")))?;
        request
            .encode(&mut body, version)
            .map_err(|e| protocol(format!("{api:?} v{version}: {e}")))?;
        let size = i32::try_from(body.len()).map_err(|_| protocol("request too large".into()))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(size);
        frame.extend_from_slice(&body);
        let stream = &mut self.stream;
        let exchange = async {
            if stream.is_none() {
                let connected = tokio::net::TcpStream::connect(address.as_str())
                    .await
                    .map_err(io)?;
                let _ = connected.set_nodelay(true);
                *stream = Some(connected);
            }
            let Some(stream) = stream.as_mut() else {
                return Err(protocol("no connection".into()));
            };
            stream.write_all(&frame).await.map_err(io)?;
            let size = stream.read_i32().await.map_err(io)?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= MAX_RESPONSE_BYTES)
                .ok_or_else(|| protocol(format!("answer of {size} bytes")))?;
            let mut answer = vec![0u8; size];
            stream.read_exact(&mut answer).await.map_err(io)?;
            Ok::<Bytes, PeerError>(Bytes::from(answer))
        };
        let mut answer = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| PeerError::TimedOut {
                address: address.clone(),
                timeout,
            })??;
        let header = ResponseHeader::decode(&mut answer, api.response_header_version(version))
            .map_err(|e| protocol(format!("response header: {e}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(protocol(format!(
                "answer to request {} where {} was expected",
                header.correlation_id, self.correlation_id
            )));
        }
        let response = R::decode(&mut answer, version)
            .map_err(|e| protocol(format!("{api:?} v{version}: {e}")))?;
        if answer.has_remaining() {
            return Err(protocol(format!(
                "{} bytes after the answer",
                answer.remaining()
            )));
        }
        Ok(response)
    }
}
