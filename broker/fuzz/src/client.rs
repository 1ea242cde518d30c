//! A minimal blocking Kafka client on kafka-protocol types, for what the harness must do
//! precisely itself: ask for the served versions, create topics, and fetch raw record batches
//! (real consumers would hide a bad batch behind their own error handling).

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::corpus::widen::Served;
use crate::wire;
use crate::{Error, Result};

/// One connection to the broker.
pub struct Conn {
    stream: TcpStream,
    next_id: i32,
}

impl Conn {
    /// Connects with `timeout` for connecting, every write and every response: no call on a
    /// connection can wait without a bound.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Conn> {
        let connecting = format!("connecting to {addr}");
        let socket = addr
            .to_socket_addrs()
            .map_err(Error::io(connecting.clone()))?
            .next()
            .ok_or_else(|| Error::Setup(format!("{connecting}: no address")))?;
        let stream = TcpStream::connect_timeout(&socket, timeout).map_err(Error::io(connecting))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(Error::io("setting a timeout"))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(Error::io("setting a timeout"))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn { stream, next_id: 1 })
    }

    /// Sends `request` at `version` and decodes the answer.
    pub fn call(
        &mut self,
        api: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Result<ResponseKind> {
        self.next_id += 1;
        let frame = wire::encode_request(api, version, self.next_id, "tributary-fuzz", &request)?;
        wire::send(&mut self.stream, &frame).map_err(Error::io(format!("sending {api:?}")))?;
        let payload = wire::read_frame(&mut self.stream, wire::MAX_RESPONSE_BYTES)
            .map_err(Error::io(format!("reading the {api:?} response")))?;
        wire::decode_response(api, version, &payload)
            .and_then(|r| r.body)
            .ok_or_else(|| Error::Setup(format!("the {api:?} v{version} response does not decode")))
    }
}

fn unexpected(api: ApiKey) -> Error {
    Error::Setup(format!(
        "the broker answered {api:?} with another API's response"
    ))
}

/// The broker's served APIs and versions (ApiVersions v3).
pub fn served(addr: &str) -> Result<Served> {
    let mut c = Conn::connect(addr, Duration::from_secs(10))?;
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("tributary-fuzz"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let ResponseKind::ApiVersions(r) = c.call(ApiKey::ApiVersions, 3, request.into())? else {
        return Err(unexpected(ApiKey::ApiVersions));
    };
    Ok(r.api_keys
        .iter()
        .filter_map(|k| {
            Some((
                ApiKey::try_from(k.api_key).ok()?,
                k.min_version,
                k.max_version,
            ))
        })
        .collect())
}

/// Creates topics (an existing one is fine); returns per-topic errors other than "exists".
pub fn create_topics(addr: &str, topics: &[(String, i32)]) -> Result<Vec<(String, i16)>> {
    let mut c = Conn::connect(addr, Duration::from_secs(30))?;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(20_000)
        .with_topics(
            topics
                .iter()
                .map(|(name, parts)| {
                    CreatableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.clone())))
                        .with_num_partitions(*parts)
                        .with_replication_factor(1)
                })
                .collect(),
        );
    let ResponseKind::CreateTopics(r) = c.call(ApiKey::CreateTopics, 5, request.into())? else {
        return Err(unexpected(ApiKey::CreateTopics));
    };
    const TOPIC_ALREADY_EXISTS: i16 = 36;
    Ok(r.topics
        .iter()
        .filter(|t| t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS)
        .map(|t| (t.name.0.to_string(), t.error_code))
        .collect())
}

/// One partition's answer to a fetch.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Partition error code.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// The raw record batches.
    pub records: bytes::Bytes,
}

/// Fetches one partition from `offset` (Fetch v12, read_uncommitted, no wait).
pub fn fetch(
    c: &mut Conn,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> Result<Fetched> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)
                .with_log_start_offset(-1)])]);
    let ResponseKind::Fetch(r) = c.call(ApiKey::Fetch, 12, request.into())? else {
        return Err(unexpected(ApiKey::Fetch));
    };
    let p = r
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| Error::Setup(format!("the Fetch response lacks {topic}-{partition}")))?;
    Ok(Fetched {
        error_code: p.error_code,
        high_watermark: p.high_watermark,
        log_start_offset: p.log_start_offset,
        records: p.records.unwrap_or_default(),
    })
}
