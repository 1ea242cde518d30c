//! Zero-copy fetch responses ([`crate::frame_parts`]) against the copy path: the same fetches,
//! from a client that sends from files and from one that does not, must give the same bytes,
//! whether the parts are read back into memory or sent with `sendfile` over a real socket, and
//! the plaintext connections of a served listener must actually send from files.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use super::group_wire_tests::{call, open_broker, s, topic};
use super::{dispatch, Client, Reply};
use crate::broker::Broker;
use crate::config::Flags;
use crate::frame_parts::{write_parts, FrameParts, Part};
use crate::protocol::supported_range;
use crate::storage::test_util::{encode, record};
use crate::test_support::{create_topic, partition};

const TOPIC: &str = "z";
const PARTITIONS: i32 = 3;

/// A broker whose topic [`TOPIC`] has small segments, each partition holding batches of
/// several sizes over several segments.
async fn broker_with_segments(dir: &std::path::Path) -> Arc<Broker> {
    let broker = open_broker(dir, Flags::default());
    // Kept however old the records' timestamps: a served broker enforces retention.
    let configs: BTreeMap<String, String> = [("segment.bytes", "2048"), ("retention.ms", "-1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    create_topic(&broker, TOPIC, PARTITIONS, configs);
    for round in 0..30 {
        for index in 0..PARTITIONS {
            let records = 1 + (round + index as usize) % 5;
            let request = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5_000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(topic(TOPIC))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(index)
                            .with_records(Some(batch(round, index, records))),
                    ])]);
            let produced: ProduceResponse = call(&broker, ApiKey::Produce, 9, &request).await;
            assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
        }
    }
    for index in 0..PARTITIONS {
        let segments = partition(&broker, TOPIC, index)
            .tiering_view(0)
            .segments
            .len();
        assert!(segments >= 3, "partition {index}: {segments} segments");
    }
    broker
}

/// A batch of `records` records whose values differ by round, partition and record.
fn batch(round: usize, index: i32, records: usize) -> Bytes {
    let values: Vec<String> = (0..records)
        .map(|i| format!("round {round} partition {index} record {i} ").repeat(1 + i % 3))
        .collect();
    let records: Vec<_> = (0..)
        .zip(&values)
        .map(|(i, value)| record(i, Some("key"), Some(value)))
        .collect();
    encode(&records, Compression::None).freeze()
}

pub(super) fn request_frame<Q: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Q,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(s("zero-copy-test")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .expect("header");
    request.encode(&mut buf, version).expect("request");
    buf.freeze()
}

pub(super) async fn reply(broker: &Arc<Broker>, client: &Arc<Client>, frame: Bytes) -> Reply {
    dispatch(broker, frame, client)
        .expect("dispatched")
        .into_pending()
        .await
}

/// One fetch of the test: where each partition is read from and the limits.
#[derive(Debug, Clone)]
struct Fetch {
    offsets: Vec<i64>,
    partition_max_bytes: i32,
    max_bytes: i32,
    isolation_level: i8,
    /// A follower's fetch (replica 1) rather than a consumer's.
    follower: bool,
}

fn fetch_request(version: i16, id: uuid::Uuid, fetch: &Fetch) -> FetchRequest {
    let partitions = fetch
        .offsets
        .iter()
        .enumerate()
        .map(|(index, &offset)| {
            fetch_request::FetchPartition::default()
                .with_partition(index as i32)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(fetch.partition_max_bytes)
        })
        .collect();
    let mut request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(fetch.max_bytes)
        .with_isolation_level(fetch.isolation_level)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(if version < 13 {
                topic(TOPIC)
            } else {
                topic("")
            })
            .with_topic_id(if version >= 13 { id } else { uuid::Uuid::nil() })
            .with_partitions(partitions)]);
    if fetch.follower {
        if version >= 15 {
            request.replica_state = fetch_request::ReplicaState::default()
                .with_replica_id(BrokerId(1))
                .with_replica_epoch(-1);
        } else {
            request.replica_id = BrokerId(1);
        }
    }
    request
}

/// Sends `parts` with [`write_parts`] over a real TCP connection and returns what arrived,
/// with the bytes the counter saw sent from files.
pub(super) async fn sent_over_tcp(parts: &FrameParts) -> (Vec<u8>, u64) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (connected, accepted) =
        tokio::join!(tokio::net::TcpStream::connect(address), listener.accept());
    let (_, write_half) = accepted.expect("accept").0.into_split();
    let mut receiving = connected.expect("connect");
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        receiving.read_to_end(&mut received).await.expect("read");
        received
    });
    let counter = prometheus::IntCounter::new("sent", "sent").expect("counter");
    let mut writer = BufWriter::new(write_half);
    write_parts(&mut writer, parts, &counter)
        .await
        .expect("sent");
    writer.flush().await.expect("flush");
    writer.shutdown().await.expect("shutdown");
    drop(writer);
    (reader.await.expect("reader"), counter.get())
}

/// The fetches of the test, from the partitions' actual extents: from the start, from the
/// middle of batches, just before segment ends, at the end and past it, with budgets that
/// cut batches and a partition limit below one batch.
fn fetches(broker: &Broker) -> Vec<Fetch> {
    let ends: Vec<i64> = (0..PARTITIONS)
        .map(|index| partition(broker, TOPIC, index).with_log(|log| log.log_end_offset()))
        .collect();
    let segment_ends: Vec<i64> = (0..PARTITIONS)
        .map(|index| {
            let view = partition(broker, TOPIC, index).tiering_view(0);
            view.segments[0].end_offset - 1
        })
        .collect();
    let plain = |offsets: Vec<i64>, partition_max_bytes, max_bytes| Fetch {
        offsets,
        partition_max_bytes,
        max_bytes,
        isolation_level: 0,
        follower: false,
    };
    let mut all = vec![
        plain(vec![0, 0, 0], 1 << 20, 1 << 20),
        plain(vec![1, 2, 3], 1 << 20, 1 << 20),
        plain(segment_ends.clone(), 1 << 20, 1 << 20),
        plain(vec![0, 5, 9], 700, 1 << 20),
        plain(vec![0, 0, 0], 1 << 20, 1_500),
        plain(vec![3, 0, 0], 1, 1 << 20),
        plain(vec![0, 0, 0], 1 << 20, 1),
        plain(ends.clone(), 1 << 20, 1 << 20),
        plain(vec![ends[0] - 1, 0, ends[2] + 5], 1 << 20, 1 << 20),
    ];
    let committed: Vec<Fetch> = all
        .iter()
        .take(5)
        .map(|f| Fetch {
            isolation_level: 1,
            ..f.clone()
        })
        .collect();
    let followers: Vec<Fetch> = all
        .iter()
        .take(5)
        .map(|f| Fetch {
            follower: true,
            ..f.clone()
        })
        .collect();
    all.extend(committed);
    all.extend(followers);
    all
}

#[tokio::test]
async fn zero_copy_fetch_frames_are_byte_for_byte_the_copy_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker_with_segments(dir.path()).await;
    let id = crate::test_support::topic(&broker, TOPIC)
        .expect("topic")
        .id;
    let copying = Arc::new(Client::new(Arc::from("/127.0.0.1")));
    let sending = Arc::new(Client::new(Arc::from("/127.0.0.1")).sending_files(true));
    let (min, max) = supported_range(ApiKey::Fetch).expect("fetch served");
    let mut from_files = 0;
    let mut regions_over_tcp = 0;
    for version in min..=max {
        for (n, fetch) in fetches(&broker).iter().enumerate() {
            if fetch.follower && version < 12 {
                continue;
            }
            let what = format!("Fetch v{version} #{n} {fetch:?}");
            let request = fetch_request(version, id, fetch);
            let copied = match reply(
                &broker,
                &copying,
                request_frame(ApiKey::Fetch, version, n as i32, &request),
            )
            .await
            {
                Reply::Frame(frame) => frame,
                other => panic!("{what}: the copy path answers one frame, not {other:?}"),
            };
            let answer = reply(
                &broker,
                &sending,
                request_frame(ApiKey::Fetch, version, n as i32, &request),
            )
            .await;
            let records = record_bytes(&copied, version);
            match answer {
                Reply::Parts(parts) => {
                    let files = file_bytes(&parts);
                    assert_eq!(
                        files, records,
                        "{what}: every record set is sent from its file"
                    );
                    assert_eq!(parts.len(), copied.len(), "{what}: length");
                    assert!(
                        parts.load().expect("load") == copied,
                        "{what}: loaded parts"
                    );
                    // Over TCP for a spread of versions and fetches (each is a connection).
                    if (version as usize + n).is_multiple_of(3) {
                        let (sent, counted) = sent_over_tcp(&parts).await;
                        assert!(sent == copied[..], "{what}: bytes sent with sendfile");
                        assert_eq!(counted as usize, records, "{what}: sent from files");
                        regions_over_tcp += 1;
                    }
                    from_files += 1;
                }
                Reply::Frame(frame) => {
                    assert_eq!(records, 0, "{what}: records but no file parts");
                    assert!(frame == copied, "{what}: same frame");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }
    assert!(from_files > 100, "{from_files} responses sent from files");
    assert!(regions_over_tcp > 30, "{regions_over_tcp} sent over TCP");
}

/// Bytes of `parts` sent from files.
pub(super) fn file_bytes(parts: &FrameParts) -> usize {
    parts
        .parts()
        .iter()
        .map(|p| match p {
            Part::File(plan) => plan.length,
            Part::Bytes(_) => 0,
        })
        .sum()
}

/// Bytes of record sets in a Fetch response frame at `version`, each checked to hold whole
/// batches that decode.
fn record_bytes(frame: &Bytes, version: i16) -> usize {
    let mut body = frame.slice(4..);
    ResponseHeader::decode(&mut body, ApiKey::Fetch.response_header_version(version))
        .expect("header");
    let response = FetchResponse::decode(&mut body, version).expect("fetch response");
    assert!(!body.has_remaining());
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.as_ref())
        .map(|records| {
            if !records.is_empty() {
                let mut buf = records.clone();
                RecordBatchDecoder::decode_all(&mut buf).expect("whole batches");
            }
            records.len()
        })
        .sum()
}

/// A raw request/response exchange on `stream`.
async fn exchange(stream: &mut tokio::net::TcpStream, frame: Bytes) -> Bytes {
    stream
        .write_all(&(frame.len() as u32).to_be_bytes())
        .await
        .expect("write size");
    stream.write_all(&frame).await.expect("write");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.expect("read size");
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).await.expect("read body");
    let mut whole = BytesMut::from(&size[..]);
    whole.extend_from_slice(&body);
    whole.freeze()
}

#[tokio::test]
async fn a_served_plaintext_connection_sends_record_sets_from_their_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker_with_segments(dir.path()).await;
    let id = crate::test_support::topic(&broker, TOPIC)
        .expect("topic")
        .id;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::run(broker.clone(), listener, async {
        let _ = stopped.await;
    }));
    let copying = Arc::new(Client::new(Arc::from("/127.0.0.1")));
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let before = broker.metrics.fetch_sendfile_bytes.get();
    let mut records = 0;
    for (n, fetch) in fetches(&broker).iter().enumerate() {
        for version in [4, 11, 12, 15, 18] {
            let request = fetch_request(version, id, fetch);
            let frame = request_frame(ApiKey::Fetch, version, n as i32, &request);
            let copied = reply(&broker, &copying, frame.clone())
                .await
                .into_frame()
                .expect("frame");
            let received = exchange(&mut stream, frame).await;
            if received != copied {
                let first = received.iter().zip(copied.iter()).position(|(a, b)| a != b);
                panic!(
                    "Fetch v{version} #{n} {fetch:?}: {} vs {} bytes, first difference at {first:?}: {:?} vs {:?}",
                    received.len(),
                    copied.len(),
                    &received[..received.len().min(80)],
                    &copied[..copied.len().min(80)]
                );
            }
            records += record_bytes(&copied, version);
        }
    }
    assert!(records > 0);
    assert_eq!(
        broker.metrics.fetch_sendfile_bytes.get() - before,
        records as u64,
        "every record byte went out with sendfile"
    );
    drop(stream);
    let _ = stop.send(());
    let _ = server.await;
}
