//! ListOffsets v10 and v11 through `dispatch` on a topic without tiered storage: v10's
//! `timeout_ms` is accepted, -6 (KIP-1023) is none there and needs v11, and a timestamp a
//! version cannot ask for is UNSUPPORTED_VERSION, as Kafka answers.

use kafka_protocol::messages::*;

use super::group_wire_tests::{broker, call};
use super::topic_id_wire_tests::produce_request;

const UNSUPPORTED_VERSION: i16 = 35;

/// ListOffsets of `t`'s partition 0 at `timestamp`, version `version`:
/// (error code, offset, leader epoch).
async fn list(
    b: &std::sync::Arc<crate::broker::Broker>,
    version: i16,
    timestamp: i64,
    timeout_ms: i32,
) -> (i16, i64, i32) {
    let request =
        crate::test_support::list_offsets_request("t", 0, timestamp).with_timeout_ms(timeout_ms);
    let response: ListOffsetsResponse = call(b, ApiKey::ListOffsets, version, &request).await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.leader_epoch)
}

#[tokio::test]
async fn v10_takes_a_timeout_and_v11_the_earliest_pending_upload_which_an_untiered_topic_has_not() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let request = produce_request(9, "t", uuid::Uuid::nil(), 0, 4);
    let response: ProduceResponse = call(&b, ApiKey::Produce, 9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);

    // v10 with and without a timeout: the same answers.
    for timeout_ms in [0, 1, 30_000] {
        assert_eq!(list(&b, 10, -2, timeout_ms).await, (0, 0, 0));
        assert_eq!(list(&b, 10, -1, timeout_ms).await, (0, 4, 0));
        assert_eq!(list(&b, 10, 1_002, timeout_ms).await.1, 2);
    }
    // -6 without tiered storage: none (offset and epoch -1, no error), as Kafka's UnifiedLog.
    assert_eq!(list(&b, 11, -6, 0).await, (0, -1, -1));
    assert_eq!(list(&b, 11, -5, 0).await, (0, -1, -1));
    // Each special timestamp from its version on; unknown ones never.
    for (version, timestamp) in [(10, -6), (8, -5), (7, -4), (6, -3), (11, -7), (11, -100)] {
        assert_eq!(
            list(&b, version, timestamp, 0).await.0,
            UNSUPPORTED_VERSION,
            "{timestamp} at v{version}"
        );
    }
    assert_eq!(
        list(&b, 11, 1_004, 0).await,
        (0, -1, -1),
        "after the last record"
    );
}

/// The leader epoch of an answer is the epoch its offset was written in (Kafka's
/// `epochForOffset`); the latest offset carries the leader's current epoch.
#[tokio::test]
async fn each_offset_carries_the_epoch_it_was_written_in() {
    use crate::metadata::TopicImage;

    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let request = produce_request(9, "t", uuid::Uuid::nil(), 0, 4);
    let response: ProduceResponse = call(&b, ApiKey::Produce, 9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    // The leadership moves to epoch 3 as a controller moves it: in the image, which the
    // replica manager applies. (Set on the partition alone, the broker's own image applier,
    // still running behind the topic's creation, would set it back to the image's epoch.)
    b.metadata.update(|image| {
        let mut topic = TopicImage::clone(image.topic("t").expect("topic t"));
        topic.partitions[0].leader_epoch = 3;
        topic.partitions[0].partition_epoch = 7;
        image.put_topic(std::sync::Arc::new(topic));
    });
    b.replicas.apply_latest(&b.metadata);
    let response: ProduceResponse = call(&b, ApiKey::Produce, 9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);

    assert_eq!(list(&b, 10, -2, 0).await, (0, 0, 0), "earliest: epoch 0");
    assert_eq!(list(&b, 10, -1, 0).await, (0, 8, 3), "latest: the leader's");
    assert_eq!(list(&b, 10, 1_002, 0).await, (0, 2, 0), "by timestamp");
    assert_eq!(list(&b, 10, -4, 0).await, (0, 0, 0), "earliest local");
    // Versions before 4 have no epoch field.
    assert_eq!(list(&b, 3, -1, 0).await, (0, 8, -1));
}

/// A partition named twice is INVALID_REQUEST wherever it appears, as Kafka answers
/// (`ListOffsetsRequest.duplicatePartitions`); the others are answered.
#[tokio::test]
async fn a_partition_asked_for_twice_is_an_invalid_request() {
    use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;

    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let request = produce_request(9, "t", uuid::Uuid::nil(), 0, 4);
    let _: ProduceResponse = call(&b, ApiKey::Produce, 9, &request).await;
    let mut request = crate::test_support::list_offsets_request("t", 0, -1);
    let other = ListOffsetsPartition::default()
        .with_partition_index(1)
        .with_timestamp(-1);
    let twice = request.topics[0].partitions[0].clone();
    request.topics[0].partitions.extend([other, twice]);
    let response: ListOffsetsResponse = call(&b, ApiKey::ListOffsets, 7, &request).await;
    let codes: Vec<(i32, i16)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(codes, [(0, 42), (1, 0), (0, 42)]);
}
