//! A raw Kafka Produce with acks=all to one chosen broker, for the answers real clients hide:
//! the Java client and librdkafka retry NOT_LEADER_OR_FOLLOWER and NOT_ENOUGH_REPLICAS
//! silently, and always send to the leader their metadata names. A probe sends one record to
//! the broker a test picks, whatever it leads, and reports the partition's error code.
//!
//! Sending and reading the answer are separate steps, so a test can write a request to a
//! frozen broker (the kernel buffers it) and read what the broker answers once it runs again:
//! the first thing a broker that lost its leadership while frozen does.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Produce v9: flexible, and every broker here serves it.
const VERSION: i16 = 9;
/// No error: the record was acknowledged.
pub const NONE: i16 = 0;
/// NOT_LEADER_OR_FOLLOWER.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// NOT_ENOUGH_REPLICAS: fewer in-sync replicas than min.insync.replicas; nothing written.
pub const NOT_ENOUGH_REPLICAS: i16 = 19;

/// Failures of a probe's own plumbing (the broker's answer is an error code, not this).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The connection failed.
    #[error("probe of {addr}: {source}")]
    Io {
        /// The broker.
        addr: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The request could not be encoded or the answer decoded.
    #[error("probe of {addr}: {message}")]
    Protocol {
        /// The broker.
        addr: String,
        /// What was wrong.
        message: String,
    },
    /// No answer came in time.
    #[error("probe of {addr}: no answer within {timeout:?}")]
    Timeout {
        /// The broker.
        addr: String,
        /// How long it waited.
        timeout: Duration,
    },
}

/// A connection to one broker carrying one Produce request.
pub struct Probe {
    addr: String,
    stream: TcpStream,
}

impl Probe {
    /// Connects to the broker at `addr` (the kernel completes the handshake even while the
    /// broker's process is stopped).
    pub async fn connect(addr: &str) -> Result<Probe, ProbeError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ProbeError::Io {
                addr: addr.to_owned(),
                source,
            })?;
        Ok(Probe {
            addr: addr.to_owned(),
            stream,
        })
    }

    fn protocol(&self, message: impl std::fmt::Display) -> ProbeError {
        ProbeError::Protocol {
            addr: self.addr.clone(),
            message: message.to_string(),
        }
    }

    /// Writes a Produce (acks=all, `timeout`) of one record valued `value` to `partition` of
    /// `topic`; the answer is read by [`Probe::answer`].
    pub async fn send(
        &mut self,
        topic: &str,
        partition: i32,
        value: &str,
        timeout: Duration,
    ) -> Result<(), ProbeError> {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch(value).map_err(|e| self.protocol(e))?))])]);
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(VERSION)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("tributary-e2e-probe")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, ApiKey::Produce.request_header_version(VERSION))
            .and_then(|()| request.encode(&mut body, VERSION))
            .map_err(|e| self.protocol(format!("encode Produce: {e}")))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(i32::try_from(body.len()).unwrap_or(i32::MAX));
        frame.extend_from_slice(&body);
        let addr = self.addr.clone();
        self.stream
            .write_all(&frame)
            .await
            .map_err(|source| ProbeError::Io { addr, source })
    }

    /// Reads the answer to [`Probe::send`]: the partition's error code ([`NONE`] when the
    /// record was acknowledged). Waits at most `timeout`.
    pub async fn answer(&mut self, timeout: Duration) -> Result<i16, ProbeError> {
        let addr = self.addr.clone();
        let io = |source| ProbeError::Io {
            addr: addr.clone(),
            source,
        };
        let read = async {
            let size = self.stream.read_i32().await.map_err(io)?;
            let mut answer = vec![0u8; usize::try_from(size).unwrap_or(0)];
            self.stream.read_exact(&mut answer).await.map_err(io)?;
            Ok::<_, ProbeError>(Bytes::from(answer))
        };
        let mut answer =
            tokio::time::timeout(timeout, read)
                .await
                .map_err(|_| ProbeError::Timeout {
                    addr: self.addr.clone(),
                    timeout,
                })??;
        ResponseHeader::decode(
            &mut answer,
            ApiKey::Produce.response_header_version(VERSION),
        )
        .map_err(|e| self.protocol(format!("decode the response header: {e}")))?;
        let response = ProduceResponse::decode(&mut answer, VERSION)
            .map_err(|e| self.protocol(format!("decode Produce: {e}")))?;
        if answer.has_remaining() {
            return Err(self.protocol("trailing bytes after the Produce response"));
        }
        response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .map(|p| p.error_code)
            .ok_or_else(|| self.protocol("a Produce response without its partition"))
    }
}

/// One record valued `value`, not idempotent, as a v2 record batch.
fn batch(value: &str) -> Result<Bytes, String> {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key: None,
        value: Some(Bytes::from(value.to_owned())),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| format!("encode the record batch: {e}"))?;
    Ok(buf.freeze())
}

/// Milliseconds since the Unix epoch (a record's creation time).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::ResponseHeader;
    use kafka_protocol::records::RecordBatchDecoder;

    /// A listener on a free port of 127.0.0.1, and its address.
    async fn listener() -> (tokio::net::TcpListener, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("address: {e}"))
            .to_string();
        (listener, addr)
    }

    /// Serves one connection: reads a Produce, checks it, answers `code`.
    async fn broker(code: i16) -> (String, tokio::task::JoinHandle<(i16, String)>) {
        let (listener, addr) = listener().await;
        let task = tokio::spawn(async move {
            let (mut s, _) = listener
                .accept()
                .await
                .unwrap_or_else(|e| panic!("accept: {e}"));
            let size = s.read_i32().await.unwrap_or_else(|e| panic!("size: {e}"));
            let mut body = vec![0u8; usize::try_from(size).unwrap_or(0)];
            s.read_exact(&mut body)
                .await
                .unwrap_or_else(|e| panic!("body: {e}"));
            let mut body = Bytes::from(body);
            let header = RequestHeader::decode(&mut body, 2).unwrap_or_else(|e| panic!("{e}"));
            let request = ProduceRequest::decode(&mut body, header.request_api_version)
                .unwrap_or_else(|e| panic!("{e}"));
            let data = &request.topic_data[0];
            let mut records = data.partition_data[0].records.clone().unwrap_or_default();
            let batch = RecordBatchDecoder::decode(&mut records).unwrap_or_else(|e| panic!("{e}"));
            let value = batch.records[0].value.clone().unwrap_or_default();
            let response =
                ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                    .with_name(data.name.clone())
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(data.partition_data[0].index)
                        .with_error_code(code)])]);
            let mut out = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut out, 1)
                .and_then(|()| response.encode(&mut out, header.request_api_version))
                .unwrap_or_else(|e| panic!("{e}"));
            let mut frame = BytesMut::new();
            frame.put_i32(i32::try_from(out.len()).unwrap_or(0));
            frame.extend_from_slice(&out);
            s.write_all(&frame).await.unwrap_or_else(|e| panic!("{e}"));
            (request.acks, String::from_utf8_lossy(&value).into_owned())
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_probe_sends_one_acks_all_record_and_reads_the_partition_s_error_code() {
        let (addr, served) = broker(NOT_ENOUGH_REPLICAS).await;
        let mut probe = Probe::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        probe
            .send("t", 2, "900001", Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let code = probe
            .answer(Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, NOT_ENOUGH_REPLICAS);
        let (acks, value) = served.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((acks, value.as_str()), (-1, "900001"));
    }

    #[tokio::test]
    async fn a_probe_without_an_answer_times_out() {
        let (_listener, addr) = listener().await;
        let mut probe = Probe::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let waited = probe.answer(Duration::from_millis(50)).await;
        assert!(
            matches!(waited, Err(ProbeError::Timeout { .. })),
            "{waited:?}"
        );
    }
}
