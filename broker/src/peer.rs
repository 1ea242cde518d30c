//! Requests to another broker of the cluster over its inter-broker listener, as Kafka's
//! brokers talk to each other (the transaction coordinator's WriteTxnMarkers to a partition's
//! leader) and followers fetch from leaders: TLS and SASL as that listener asks
//! ([`PeerSecurity`]). A connection that failed is never reused, so no answer is ever read
//! half-way from an earlier timeout; a connection the other broker closed (an expired SASL
//! session) is opened and authenticated afresh by the next call.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tributary_replication::fetcher::{HostError, LeaderLink};

use crate::security::peer::{PeerCredentials, PeerSecurity};
use crate::security::sasl::scram::ScramClient;
use crate::security::sasl::Mechanism;

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
    /// The TLS handshake or the SASL authentication failed.
    #[error("broker {address}: authentication failed: {what}")]
    Authentication { address: String, what: String },
}

/// A byte stream to another broker: TCP, or TLS over it.
trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

/// Sends `request` at `version` to the broker at `address` over a fresh connection secured
/// as `security` says, and decodes its answer.
pub async fn call<Q: Encodable, R: Decodable>(
    address: &str,
    security: Arc<PeerSecurity>,
    api: ApiKey,
    version: i16,
    request: &Q,
    timeout: Duration,
) -> Result<R, PeerError> {
    PeerConnection::new(address.to_owned(), security)
        .call(api, version, request, timeout)
        .await
}

/// A connection to another broker kept across requests (a follower's fetcher sends one fetch
/// after another). Any failure drops the connection, so the next call starts clean rather
/// than reading the rest of an abandoned answer.
pub struct PeerConnection {
    address: String,
    security: Arc<PeerSecurity>,
    stream: Option<Box<dyn PeerStream>>,
    correlation_id: i32,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConnection")
            .field("address", &self.address)
            .field("connected", &self.stream.is_some())
            .finish()
    }
}

impl PeerConnection {
    /// A connection to `address`, opened (and secured) by the first call.
    pub fn new(address: String, security: Arc<PeerSecurity>) -> PeerConnection {
        PeerConnection {
            address,
            security,
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
        let address = self.address.clone();
        let exchange = async {
            if self.stream.is_none() {
                self.stream = Some(self.connect().await?);
            }
            self.exchange(api, version, request).await
        };
        let result = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| PeerError::TimedOut { address, timeout })
            .and_then(|r| r);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn connect(&mut self) -> Result<Box<dyn PeerStream>, PeerError> {
        let address = self.address.clone();
        let io = |source| PeerError::Io {
            address: address.clone(),
            source,
        };
        let tcp = tokio::net::TcpStream::connect(address.as_str())
            .await
            .map_err(io)?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn PeerStream> = match &self.security.tls {
            None => Box::new(tcp),
            Some(config) => {
                let host = address
                    .rsplit_once(':')
                    .map_or(address.as_str(), |(h, _)| h);
                let name =
                    PeerSecurity::server_name(host).ok_or_else(|| PeerError::Authentication {
                        address: address.clone(),
                        what: format!("{host} is not a valid TLS server name"),
                    })?;
                let connector = tokio_rustls::TlsConnector::from(config.current());
                let tls = connector
                    .connect(name, crate::security::tls::buffered(tcp))
                    .await
                    .map_err(|e| PeerError::Authentication {
                        address: address.clone(),
                        what: format!("TLS handshake: {e}"),
                    })?;
                Box::new(tls)
            }
        };
        self.stream = Some(stream);
        if let Some(credentials) = self.security.sasl.clone() {
            self.authenticate(&credentials).await?;
        }
        self.stream.take().ok_or_else(|| PeerError::Protocol {
            address,
            what: "no connection".into(),
        })
    }

    /// SaslHandshake v1, then SaslAuthenticate until the mechanism is done.
    async fn authenticate(&mut self, credentials: &PeerCredentials) -> Result<(), PeerError> {
        let address = self.address.clone();
        let failed = |what: String| PeerError::Authentication {
            address: address.clone(),
            what,
        };
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(credentials.mechanism.name()));
        let answer: SaslHandshakeResponse =
            self.exchange(ApiKey::SaslHandshake, 1, &handshake).await?;
        if answer.error_code != 0 {
            return Err(failed(format!(
                "SaslHandshake for {}: {:?}",
                credentials.mechanism.name(),
                ResponseError::try_from_code(answer.error_code)
            )));
        }
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut scram = match credentials.mechanism {
            Mechanism::ScramSha256 => Some(ScramClient::new(
                crate::security::credentials::Mechanism::Sha256,
                &credentials.username,
                &credentials.password,
                nonce,
            )),
            Mechanism::ScramSha512 => Some(ScramClient::new(
                crate::security::credentials::Mechanism::Sha512,
                &credentials.username,
                &credentials.password,
                nonce,
            )),
            Mechanism::Plain | Mechanism::OAuthBearer => None,
        };
        let first = match &scram {
            Some(client) => client.first(),
            None => format!("\0{}\0{}", credentials.username, credentials.password).into_bytes(),
        };
        let answer = self.sasl_step(first).await?;
        let Some(client) = scram.as_mut() else {
            return Ok(());
        };
        let last = client
            .last(&answer)
            .ok_or_else(|| failed("unusable SCRAM server-first message".into()))?;
        let answer = self.sasl_step(last).await?;
        if !client.verify(&answer) {
            return Err(failed(
                "the other broker's SCRAM signature does not verify".into(),
            ));
        }
        Ok(())
    }

    async fn sasl_step(&mut self, bytes: Vec<u8>) -> Result<Bytes, PeerError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes));
        let answer: SaslAuthenticateResponse =
            self.exchange(ApiKey::SaslAuthenticate, 1, &request).await?;
        if answer.error_code != 0 {
            return Err(PeerError::Authentication {
                address: self.address.clone(),
                what: answer
                    .error_message
                    .map_or_else(|| format!("error {}", answer.error_code), |m| m.to_string()),
            });
        }
        Ok(answer.auth_bytes)
    }

    async fn exchange<Q: Encodable, R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Q,
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
        let Some(stream) = self.stream.as_mut() else {
            return Err(protocol("no connection".into()));
        };
        stream.write_all(&frame).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let size = stream.read_i32().await.map_err(io)?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| protocol(format!("answer of {size} bytes")))?;
        let answer = crate::protocol::read_claimed(stream, size)
            .await
            .map_err(io)?;
        let mut answer = Bytes::from(answer);
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

/// A follower's connection to its leader is a peer connection to that broker.
impl LeaderLink for PeerConnection {
    fn address(&self) -> &str {
        PeerConnection::address(self)
    }

    fn fetch<'a>(
        &'a mut self,
        request: &'a FetchRequest,
        version: i16,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<FetchResponse, HostError>> {
        Box::pin(async move {
            let answer = self.call(ApiKey::Fetch, version, request, timeout).await;
            answer.map_err(HostError::from)
        })
    }
}
