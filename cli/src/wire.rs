//! Requests trib sends over the Kafka protocol itself, for the APIs the bundled librdkafka
//! (2.10) does not speak: share groups (KIP-932). One connection per broker, plaintext only
//! (the share-group commands refuse `-X security.protocol` other than PLAINTEXT), every call
//! bounded by the command's timeout.

use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::admin_groups::Coordinator;
use crate::client::Settings;
use crate::error::{Error, Result};

/// The largest answer accepted.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A connection to one broker.
#[derive(Debug)]
pub struct Connection {
    address: String,
    stream: Option<TcpStream>,
    correlation_id: i32,
    timeout: Duration,
    /// A call started and not finished: it was cancelled (Ctrl-C) mid-way, so the
    /// connection may hold the rest of its answer and is not used again.
    in_flight: bool,
}

impl Connection {
    /// A connection to `address`, opened by the first call.
    pub fn new(address: String, timeout: Duration) -> Connection {
        Connection {
            address,
            stream: None,
            correlation_id: 0,
            timeout,
            in_flight: false,
        }
    }

    /// The broker this connection reaches.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` at `version` and decodes the answer, within the timeout plus
    /// `extra` (a fetch that waits at the broker). A failed call drops the connection.
    pub async fn call<Q: Encodable, R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Q,
        extra: Duration,
    ) -> Result<R> {
        let timeout = self.timeout + extra;
        let action = format!("call {api:?} on {}", self.address);
        if self.in_flight {
            self.stream = None;
        }
        self.in_flight = true;
        let result = tokio::time::timeout(timeout, self.exchange(api, version, request)).await;
        self.in_flight = false;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout { action, timeout }),
        };
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
    ) -> Result<R> {
        let address = self.address.clone();
        let io = |what: &str, e| Error::io(format!("{what} {address}"), e);
        if self.stream.is_none() {
            let tcp = TcpStream::connect(&address)
                .await
                .map_err(|e| Error::Unreachable {
                    brokers: address.clone(),
                    detail: e.to_string(),
                })?;
            let _ = tcp.set_nodelay(true);
            self.stream = Some(tcp);
        }
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("trib")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .and_then(|()| request.encode(&mut body, version))
            .map_err(|e| protocol(&address, format!("encode {api:?} v{version}: {e}")))?;
        let size = u32::try_from(body.len())
            .map_err(|_| protocol(&address, "request too large".to_owned()))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_u32(size);
        frame.extend_from_slice(&body);
        let Some(stream) = self.stream.as_mut() else {
            return Err(protocol(&address, "no connection".to_owned()));
        };
        stream
            .write_all(&frame)
            .await
            .map_err(|e| io("send to", e))?;
        let len = stream.read_u32().await.map_err(|e| io("read from", e))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_RESPONSE_BYTES {
            return Err(protocol(&address, format!("answer of {len} bytes")));
        }
        let mut answer = vec![0u8; len];
        stream
            .read_exact(&mut answer)
            .await
            .map_err(|e| io("read from", e))?;
        let mut answer = bytes::Bytes::from(answer);
        let header = ResponseHeader::decode(&mut answer, api.response_header_version(version))
            .map_err(|e| protocol(&address, format!("decode the {api:?} header: {e}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(protocol(
                &address,
                format!(
                    "answer {} to request {}",
                    header.correlation_id, self.correlation_id
                ),
            ));
        }
        let response = R::decode(&mut answer, version)
            .map_err(|e| protocol(&address, format!("decode {api:?} v{version}: {e}")))?;
        if answer.has_remaining() {
            return Err(protocol(
                &address,
                format!("{} bytes after the {api:?} answer", answer.remaining()),
            ));
        }
        Ok(response)
    }
}

fn protocol(address: &str, detail: String) -> Error {
    Error::Protocol {
        broker: address.to_owned(),
        detail,
    }
}

/// The broker's `error` as an [`Error`] for `action`.
pub fn refusal(action: &str, error: ResponseError) -> Error {
    Error::Refused {
        action: action.to_owned(),
        error: format!("{error} ({})", error.code()),
    }
}

/// The broker error `code` as an [`Error`] for `action`, `None` when there is none.
pub fn refused(action: &str, code: i16) -> Option<Error> {
    ResponseError::try_from_code(code).map(|error| refusal(action, error))
}

/// Where a broker is reached.
pub fn address(c: &Coordinator) -> String {
    format!("{}:{}", c.host, c.port)
}

/// The bootstrap addresses of `settings`, refusing security settings the protocol-level
/// commands cannot honour (they speak PLAINTEXT only).
pub fn bootstrap(settings: &Settings) -> Result<Vec<String>> {
    let protocol = settings
        .overrides
        .iter()
        .rev()
        .find(|(k, _)| k == "security.protocol")
        .map(|(_, v)| v.to_ascii_uppercase());
    if let Some(p) = protocol.filter(|p| p != "PLAINTEXT") {
        return Err(Error::Usage(format!(
            "share groups are served to trib over PLAINTEXT listeners only (-X \
             security.protocol={p} is not supported here); use a plaintext listener"
        )));
    }
    let addresses: Vec<String> = settings
        .brokers
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if addresses.is_empty() {
        return Err(Error::Usage("no bootstrap broker given (--brokers)".into()));
    }
    Ok(addresses)
}

/// A connection to any bootstrap broker that answers (a Metadata request probes it).
pub async fn any_broker(settings: &Settings) -> Result<Connection> {
    let mut last = None;
    for address in bootstrap(settings)? {
        let mut conn = Connection::new(address, settings.timeout);
        let probe = MetadataRequest::default().with_topics(Some(Vec::new()));
        match conn
            .call::<_, MetadataResponse>(ApiKey::Metadata, 12, &probe, Duration::ZERO)
            .await
        {
            Ok(_) => return Ok(conn),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Usage("no bootstrap broker given (--brokers)".into())))
}

/// Whether the brokers serve `api` (asked of one bootstrap broker's ApiVersions): a broker
/// without share groups, or another Kafka implementation, is not asked about them.
pub async fn serves(settings: &Settings, api: ApiKey) -> Result<bool> {
    let mut conn = any_broker(settings).await?;
    let versions: ApiVersionsResponse = conn
        .call(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
            Duration::ZERO,
        )
        .await?;
    Ok(versions.api_keys.iter().any(|k| k.api_key == api as i16))
}

/// The id and address of `group`'s coordinator (FindCoordinator v6, key type GROUP, which
/// also finds share groups' coordinators), asked again while it loads, up to the timeout.
pub async fn find_coordinator(settings: &Settings, group: &str) -> Result<Coordinator> {
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let action = format!("find the coordinator of group '{group}'");
    loop {
        let mut conn = any_broker(settings).await?;
        let request = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_string(group.to_owned())]);
        let answer: FindCoordinatorResponse = conn
            .call(ApiKey::FindCoordinator, 6, &request, Duration::ZERO)
            .await?;
        let Some(c) = answer.coordinators.first() else {
            return Err(protocol(
                conn.address(),
                "FindCoordinator named no coordinator".into(),
            ));
        };
        match ResponseError::try_from_code(c.error_code) {
            None => {
                return Ok(Coordinator {
                    id: c.node_id.0,
                    host: c.host.to_string(),
                    port: u16::try_from(c.port).unwrap_or(0),
                })
            }
            Some(
                ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress
                | ResponseError::NotCoordinator,
            ) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some(error) => return Err(refusal(&action, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(overrides: &[(&str, &str)]) -> Settings {
        Settings {
            brokers: "a:9092, b:9092".into(),
            timeout: Duration::from_secs(1),
            overrides: overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            verbose: false,
        }
    }

    #[test]
    fn only_plaintext_listeners_are_reached() {
        assert_eq!(
            bootstrap(&settings(&[])).ok(),
            Some(vec!["a:9092".to_owned(), "b:9092".to_owned()])
        );
        assert!(bootstrap(&settings(&[("security.protocol", "plaintext")])).is_ok());
        let e = bootstrap(&settings(&[("security.protocol", "SASL_SSL")])).expect_err("refused");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("SASL_SSL"), "{e}");
    }

    #[test]
    fn broker_codes_become_errors_with_their_names() {
        assert!(refused("join", 0).is_none());
        let e = refused("join group 'q'", 25).expect("an error");
        let text = e.to_string();
        assert!(text.starts_with("could not join group 'q': "), "{text}");
        assert!(text.ends_with("(25)"), "{text}");
    }
}
