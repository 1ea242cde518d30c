//! The fuzz campaign's reproducers, byte for byte (issue: "validate every record batch as
//! Kafka does, bound partition creation"): each frame is sent as the campaign sent it, and
//! the broker must refuse it without storing or creating anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    fetch_request, ApiKey, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, ResponseHeader,
};
use kafka_protocol::protocol::Decodable;

use super::group_wire_tests::{broker, call, topic};
use super::wire_tests::plain_batch;
use super::{dispatch, Client, Reply};
use crate::broker::Broker;

/// A gzip-flagged batch holding 16 garbage bytes, CRC valid, to topic `fz-g1` (Produce v9).
const GZIP_GARBAGE: &str = "0000007100000009000000090002667a00000001000013880206667a2d673102000000004e000000000000000000000041ffffffff02d43bcb570001000000000000018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff000000010102030405060708090a0b0c0d0e0f10000000";
/// A batch claiming 2,147,483,647 records but holding one, to topic `fz-o` (Produce v9).
const LYING_COUNT: &str = "0000006900000009000000010002667a00000001000013880205667a2d6f02000000004700000000000000000000003affffffff028e1d64a200007ffffffe0000018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff7fffffff10000000026b027600000000";
/// CreateTopics v5 asking for 2,147,483,647 partitions of topic `big`.
const HUGE_TOPIC: &str =
    "0000002100130005000000050002667a0002046269677fffffff0001010100000075300000";

/// Sends one whole frame (size prefix included) and returns the response body after its
/// header.
async fn send(broker: &Arc<Broker>, hex: &str) -> (i16, Bytes) {
    let mut frame = Bytes::from(decode_hex(hex));
    let size = frame.get_i32();
    assert_eq!(
        size as usize,
        frame.len(),
        "the reproducer is one whole frame"
    );
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let client = Arc::new(Client::new(Arc::from("/127.0.0.1")));
    let pending = dispatch(broker, frame, &client)
        .expect("the frame decodes")
        .into_pending();
    let Reply::Frame(mut response) = pending.await else {
        panic!("no response frame");
    };
    response.advance(4);
    let api = ApiKey::try_from(api_key).expect("known api");
    ResponseHeader::decode(&mut response, api.response_header_version(version))
        .expect("response header");
    (version, response)
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn create(broker: &Broker, name: &str) {
    create_with(broker, name, 1);
}

fn create_with(broker: &Broker, name: &str, partitions: i32) {
    crate::test_support::create_topic(broker, name, partitions, BTreeMap::new());
}

fn log_end(broker: &Broker, name: &str) -> i64 {
    crate::test_support::partition(broker, name, 0).with_log(|log| log.log_end_offset())
}

/// Produces one valid record to partition 0 of `name` (Produce v9, acks=1).
async fn produce_one(broker: &Arc<Broker>, name: &str) -> ProduceResponse {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic(name))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(plain_batch()))])]);
    call(broker, ApiKey::Produce, 9, &request).await
}

/// The response's single partition: (error code, error message, record error indexes).
fn outcome(version: i16, mut body: Bytes) -> (i16, Option<String>, Vec<i32>) {
    let response = ProduceResponse::decode(&mut body, version).expect("produce response");
    let p = &response.responses[0].partition_responses[0];
    (
        p.error_code,
        p.error_message.as_ref().map(|m| m.to_string()),
        p.record_errors.iter().map(|e| e.batch_index).collect(),
    )
}

#[tokio::test]
async fn a_gzip_batch_of_garbage_is_refused_as_corrupt_and_never_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = broker(dir.path()).await;
    create(&b, "fz-g1");
    let (version, body) = send(&b, GZIP_GARBAGE).await;
    let (code, message, _) = outcome(version, body);
    assert_eq!(code, 2, "CORRUPT_MESSAGE: {message:?}");
    assert!(message.is_some_and(|m| m.contains("do not decode")));
    assert_eq!(log_end(&b, "fz-g1"), 0);
}

#[tokio::test]
async fn a_batch_claiming_two_billion_records_is_refused_and_offsets_stay_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = broker(dir.path()).await;
    create(&b, "fz-o");
    let (version, body) = send(&b, LYING_COUNT).await;
    let (code, message, record_errors) = outcome(version, body);
    assert_eq!(code, 87, "INVALID_RECORD: {message:?}");
    assert!(
        message.is_some_and(|m| m.contains("declares 2147483647 records but holds 1")),
        "the message says what is wrong"
    );
    assert_eq!(record_errors, [1]);
    assert_eq!(log_end(&b, "fz-o"), 0);
    // The next valid batch lands at offset 0, not 2^31.
    let response = produce_one(&b, "fz-o").await;
    let p = &response.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    assert_eq!(log_end(&b, "fz-o"), 1);
}

/// [`LYING_COUNT`] with the LogAppendTime timestamp type (attributes 0x0008) and its CRC
/// made valid again: the frame that aborted the broker, which allocated one error entry per
/// claimed record (2^31-1 of them) before anything checked the records were there.
fn log_append_time_lying_count() -> String {
    let mut frame = decode_hex(LYING_COUNT);
    // The batch starts at its base offset; its length (58) follows.
    let marker = decode_hex("00000000000000000000003affffffff02");
    let start = frame
        .windows(marker.len())
        .position(|w| w == marker.as_slice())
        .expect("the batch is in the frame");
    let (count, delta) = (start + 57, start + 23);
    assert_eq!(
        frame[count..count + 4],
        [0x7f, 0xff, 0xff, 0xff],
        "recordCount"
    );
    assert_eq!(
        frame[delta..delta + 4],
        [0x7f, 0xff, 0xff, 0xfe],
        "lastOffsetDelta"
    );
    frame[start + 21..start + 23].copy_from_slice(&[0x00, 0x08]);
    let end = start + 12 + 58;
    let crc = crc32c::crc32c(&frame[start + 21..end]);
    frame[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
    frame.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_log_append_time_batch_claiming_two_billion_records_gets_invalid_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = broker(dir.path()).await;
    create(&b, "fz-o");
    let (version, body) = send(&b, &log_append_time_lying_count()).await;
    let (code, message, record_errors) = outcome(version, body);
    assert_eq!(code, 32, "INVALID_TIMESTAMP: {message:?}");
    // One error per record the 70-byte batch could hold, not one per claimed record.
    assert!(
        !record_errors.is_empty() && record_errors.len() <= 2,
        "{record_errors:?}"
    );
    assert_eq!(log_end(&b, "fz-o"), 0);
    // The broker goes on serving: the next valid batch lands at offset 0.
    let response = produce_one(&b, "fz-o").await;
    let p = &response.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
}

#[tokio::test]
async fn two_billion_partitions_are_refused_naming_the_limit_with_nothing_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = broker(dir.path()).await;
    let dirs_before = std::fs::read_dir(dir.path()).expect("dir").count();
    let (version, mut body) = send(&b, HUGE_TOPIC).await;
    let response = CreateTopicsResponse::decode(&mut body, version).expect("response");
    let result = &response.topics[0];
    assert_eq!(result.error_code, 44, "POLICY_VIOLATION");
    let message = result
        .error_message
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(message.contains("max.partitions.per.request"), "{message}");
    assert!(crate::test_support::topic(&b, "big").is_none());
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        dirs_before
    );
}

/// Descriptors of this process still open on files under `dir` whose names start with
/// `prefix`.
fn open_files_under(dir: &std::path::Path, prefix: &str) -> usize {
    let wanted = dir.join(prefix);
    let wanted = wanted.to_string_lossy();
    std::fs::read_dir("/proc/self/fd")
        .map(|fds| {
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with(&*wanted))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn deleting_a_topic_ends_long_polls_on_it_and_closes_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = broker(dir.path()).await;
    create_with(&b, "gone", 3);
    let gone = crate::test_support::partition(&b, "gone", 0);
    let held = Arc::downgrade(&gone);
    assert!(
        open_files_under(dir.path(), "gone-") >= 3,
        "segments are open"
    );
    // A fetch asking to wait 24 days for data that never comes.
    let fetch = FetchRequest::default()
        .with_max_wait_ms(i32::MAX)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic("gone"))
            .with_partitions(
                (0..3)
                    .map(|p| {
                        fetch_request::FetchPartition::default()
                            .with_partition(p)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    let fetcher = b.clone();
    let waiting = tokio::spawn(async move {
        let response: FetchResponse = call(&fetcher, ApiKey::Fetch, 12, &fetch).await;
        response
    });
    // The fetch holds the partitions while it waits (the replica manager and this test hold
    // one reference each).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while Arc::strong_count(&gone) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fetch never started waiting"
        );
        tokio::task::yield_now().await;
    }
    drop(gone);
    let delete = DeleteTopicsRequest::default()
        .with_topic_names(vec![topic("gone")])
        .with_timeout_ms(5_000);
    let deleted: DeleteTopicsResponse = call(&b, ApiKey::DeleteTopics, 5, &delete).await;
    assert_eq!(deleted.responses[0].error_code, 0);
    let answered = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("the fetch answers once its topic is gone")
        .expect("fetch task");
    let codes: Vec<i16> = answered.responses[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, [3, 3, 3], "UNKNOWN_TOPIC_OR_PARTITION");
    assert!(
        held.upgrade().is_none(),
        "nothing holds the deleted partition"
    );
    assert_eq!(
        open_files_under(dir.path(), "gone-"),
        0,
        "no descriptor outlives the topic"
    );
}

#[tokio::test]
async fn produce_to_an_unknown_topic_creates_nothing_as_in_kafka() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = broker(dir.path()).await;
    let response = produce_one(&b, "never-created").await;
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert!(crate::test_support::topic(&b, "never-created").is_none());
}
