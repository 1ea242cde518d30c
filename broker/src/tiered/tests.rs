//! Tiered storage end to end inside one broker, against a local-directory object store (no
//! network): produce past local retention, let the leader upload and local retention
//! delete, then read everything back from offset 0 through the Fetch API, byte for byte.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    fetch_request, produce_request, ApiKey, DeleteRecordsRequest, DeleteRecordsResponse,
    FetchRequest, FetchResponse, ListOffsetsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use crate::broker::Broker;
use crate::config::Flags;
use crate::handlers::group_wire_tests::{call, open_broker};
use crate::storage::test_util::{encode, record};

pub(super) const TOPIC: &str = "tiered";

pub(super) fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

pub(super) fn tiered_flags(remote: &std::path::Path) -> Flags {
    Flags {
        remote_log_storage_system_enable: Some(true),
        remote_storage_url: Some(format!("file://{}", remote.display())),
        remote_log_manager_task_interval_ms: Some(20),
        ..Flags::default()
    }
}

/// Creates the tiered test topic with `partitions` partitions: 2 KiB segments, records kept
/// whatever their (old) timestamps, and the `extra` configs.
pub(super) fn create_tiered_topic(b: &Arc<Broker>, partitions: i32, extra: &[(&str, &str)]) {
    let configs: BTreeMap<String, String> = [
        ("remote.storage.enable", "true"),
        ("segment.bytes", "2048"),
        ("retention.ms", "-1"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    crate::test_support::create_topic(b, TOPIC, partitions, configs);
}

pub(super) async fn produce(b: &Arc<Broker>, batch: usize) {
    produce_to(b, 0, batch).await;
}

/// Produces batch number `batch` (five records) to partition `index`.
async fn produce_to(b: &Arc<Broker>, index: i32, batch: usize) {
    let records: Vec<_> = (0..5)
        .map(|i| {
            let n = batch * 5 + i;
            record(
                i as i32,
                Some(&format!("key-{n}")),
                Some(&format!("value-{n:06}")),
            )
        })
        .collect();
    produce_records(b, index, &records).await;
}

/// Produces `records` as one batch to partition `index`, acks=all, failing on an error.
pub(super) async fn produce_records(
    b: &Arc<Broker>,
    index: i32,
    records: &[kafka_protocol::records::Record],
) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(name())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(index)
                    .with_records(Some(encode(records, Compression::None).freeze())),
            ])]);
    let response: ProduceResponse = call(b, ApiKey::Produce, 9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

/// Waits until a broker just opened has checked its tiered partitions' logs against the
/// remote log (until then they do not lead), for at most 10 s.
pub(super) async fn wait_checked(b: &Arc<Broker>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.replicas.all().iter().any(|p| p.awaits_remote_log()) {
        assert!(
            Instant::now() < deadline,
            "tiered partitions still await their remote log check after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One Fetch (v12, by name) of partition 0 from `offset`: (error code, records, log start).
pub(super) async fn fetch(b: &Arc<Broker>, offset: i64) -> (i16, Bytes, i64) {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name())
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(4_096)])]);
    let response: FetchResponse = call(b, ApiKey::Fetch, 12, &request).await;
    let p = &response.responses[0].partitions[0];
    (
        p.error_code,
        p.records.clone().unwrap_or_default(),
        p.log_start_offset,
    )
}

/// Every batch from offset 0 to `end`, fetch after fetch, concatenated.
pub(super) async fn read_everything(b: &Arc<Broker>, end: i64) -> Bytes {
    let mut all = Vec::new();
    let mut offset = 0;
    while offset < end {
        let (code, records, _) = fetch(b, offset).await;
        assert_eq!(code, 0, "fetch at {offset}");
        assert!(!records.is_empty(), "no records at {offset}");
        offset = next_offset(&records);
        all.extend_from_slice(&records);
    }
    Bytes::from(all)
}

/// The offset after the last batch of `records`.
pub(super) fn next_offset(records: &[u8]) -> i64 {
    let mut position = 0;
    let mut next = 0;
    while position + 27 <= records.len() {
        let base = i64::from_be_bytes(records[position..position + 8].try_into().unwrap());
        let length = i32::from_be_bytes(records[position + 8..position + 12].try_into().unwrap());
        let delta = i32::from_be_bytes(records[position + 23..position + 27].try_into().unwrap());
        next = base + i64::from(delta) + 1;
        position += 12 + length as usize;
    }
    next
}

async fn list_offset(b: &Arc<Broker>, timestamp: i64) -> i64 {
    let request = crate::test_support::list_offsets_request(TOPIC, 0, timestamp);
    let response: ListOffsetsResponse = call(b, ApiKey::ListOffsets, 9, &request).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "ListOffsets {timestamp}");
    p.offset
}

/// DeleteRecords (v2) of partition 0 before `offset`: (error code, low watermark).
async fn delete_records(b: &Arc<Broker>, offset: i64) -> (i16, i64) {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name())
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(offset)])]);
    let response: DeleteRecordsResponse = call(b, ApiKey::DeleteRecords, 2, &request).await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

/// The (base, end) offsets of the remote segments of partition 0, from its manifest.
async fn tiered_segments(b: &Arc<Broker>) -> Vec<(i64, i64)> {
    let partition = crate::test_support::partition(b, TOPIC, 0);
    let tiered = b.tiered.clone().expect("tiered storage is on");
    let manifest = tiered.manifest(&partition).await.expect("manifest");
    manifest
        .readable()
        .map(|s| (s.base_offset, s.end_offset))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_moved_to_remote_storage_read_back_byte_identical_from_offset_zero() {
    let data = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("tempdir");
    let b = open_broker(data.path(), tiered_flags(remote.path()));
    create_tiered_topic(&b, 1, &[("local.retention.bytes", "1")]);
    for batch in 0..120 {
        produce(&b, batch).await;
    }
    let end = 600;
    let partition = crate::test_support::partition(&b, TOPIC, 0);
    assert!(
        partition.with_log(|l| l.segment_count()) > 5,
        "several segments rolled"
    );
    let before = read_everything(&b, end).await;
    assert_eq!(next_offset(&before), end);

    let tiered = b.tiered.clone().expect("tiered storage is on");
    let task = tokio::spawn(crate::tiered::run(tiered.clone(), Arc::downgrade(&b)));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        partition
            .enforce_retention(crate::clock::now_ms())
            .expect("retention");
        let (start, segments) = partition.with_log(|l| (l.log_start_offset(), l.segment_count()));
        if start > 0 && segments <= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old segments were not uploaded and deleted locally within 30 s \
             (local log start {start}, {segments} segments)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let local_start = partition.with_log(|l| l.log_start_offset());
    let copied_end = tiered.copied_end(&partition).expect("uploaded");
    assert!(copied_end >= local_start, "no gap between remote and local");

    let after = read_everything(&b, end).await;
    assert_eq!(after.len(), before.len());
    assert!(after == before, "records read back from the bucket differ");
    let (code, _, log_start) = fetch(&b, 0).await;
    assert_eq!((code, log_start), (0, 0), "the log starts in the bucket");
    let (code, _, log_start) = fetch(&b, end - 1).await;
    assert_eq!(
        (code, log_start),
        (0, 0),
        "a local read reports the same log start"
    );

    assert_eq!(
        list_offset(&b, -2).await,
        0,
        "earliest: the remote log start"
    );
    assert_eq!(list_offset(&b, -4).await, local_start, "earliest-local");
    assert_eq!(list_offset(&b, -5).await, copied_end - 1, "latest-tiered");
    assert_eq!(list_offset(&b, -1).await, end);

    // A broker that knows nothing but the bucket serves the remote log (its manifest is
    // read from the bucket at the first fetch); a damaged object is an error, not a crash.
    b.replicas
        .all()
        .iter()
        .for_each(|p| p.flush().expect("flush"));
    drop(partition);
    drop(tiered);
    drop(b);
    let b = open_broker(data.path(), tiered_flags(remote.path()));
    wait_checked(&b).await;
    let (code, records, _) = fetch(&b, 0).await;
    assert_eq!(code, 0);
    assert!(
        before.starts_with(&records),
        "first remote batches after a restart"
    );
    let object = std::fs::read_dir(remote.path().join(format!(
        "{TOPIC}-{}/0",
        crate::test_support::topic(&b, TOPIC).expect("topic").id
    )))
    .expect("partition objects")
    .filter_map(Result::ok)
    .map(|e| e.path())
    .find(|p| {
        p.to_string_lossy().contains("00000000000000000000-")
            && p.extension().is_some_and(|e| e == "log")
    })
    .expect("first segment object");
    let size = std::fs::metadata(&object).expect("object").len() as usize;
    b.replicas
        .all()
        .iter()
        .for_each(|p| p.flush().expect("flush"));
    drop(b);
    let b2 = open_broker(data.path(), tiered_flags(remote.path()));
    wait_checked(&b2).await;
    std::fs::write(&object, vec![0xff; size]).expect("corrupt the object");
    let (code, records, _) = fetch(&b2, 0).await;
    assert_eq!(code, ResponseError::KafkaStorageError.code());
    assert!(records.is_empty());
    std::fs::remove_file(&object).expect("remove the object");
    let (code, _, _) = fetch(&b2, 0).await;
    assert_eq!(
        code,
        ResponseError::KafkaStorageError.code(),
        "a missing object"
    );

    // DeleteRecords moves the remote log start: nothing below it is served from the bucket,
    // and the segments wholly below it are deleted at the next pass.
    let second = tiered_segments(&b2).await[1];
    let cut = second.0 + 3;
    assert_eq!(delete_records(&b2, cut).await, (0, cut));
    assert_eq!(list_offset(&b2, -2).await, cut);
    let (code, _, _) = fetch(&b2, 0).await;
    assert_eq!(code, ResponseError::OffsetOutOfRange.code());
    let (code, records, log_start) = fetch(&b2, cut).await;
    assert_eq!((code, log_start), (0, cut));
    assert!(
        before.windows(records.len()).any(|w| w == &records[..]),
        "the same bytes"
    );
    let tiered = b2.tiered.clone().expect("tiered storage is on");
    tiered
        .run_once(b2.replicas.all(), crate::clock::now_ms())
        .await;
    assert_eq!(
        tiered_segments(&b2).await[0],
        second,
        "the first segment was deleted"
    );

    // Deleting the topic deletes its remote log.
    let partition_dir = object.parent().expect("partition directory").to_path_buf();
    b2.admin
        .delete_topic(TOPIC, Duration::from_secs(5))
        .await
        .expect("delete topic");
    let image = b2.metadata.image();
    tiered
        .delete_removed_topics(|id| image.topic_by_id(id).is_some())
        .await;
    let left = std::fs::read_dir(&partition_dir).map_or(0, |d| d.count());
    assert_eq!(left, 0, "objects left in {}", partition_dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_reads_in_small_read_ahead_chunks_give_the_batches_local_reads_give() {
    let data = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("tempdir");
    let (_broker, partition, tiered) = uploaded(
        data.path(),
        remote.path(),
        &[("index.interval.bytes", "100")],
        60,
    )
    .await;
    let copied_end = tiered.copied_end(&partition).expect("uploaded");
    assert!(copied_end > 100);
    let indexed = std::fs::read_dir(
        remote
            .path()
            .join(format!("{TOPIC}-{}/0", partition.topic_id())),
    )
    .expect("objects")
    .filter_map(Result::ok)
    .filter(|e| e.file_name().to_string_lossy().ends_with(".index"))
    .any(|e| e.metadata().is_ok_and(|m| m.len() > 0));
    assert!(indexed, "the uploaded offset indexes are empty");
    // Chunks far smaller than a batch, so windows span several and must grow.
    let small = reader(remote.path(), 50);
    for max_bytes in [1, 300, 1 << 20] {
        let mut offset = 0;
        while offset < copied_end {
            let remote = small
                .read(&partition, offset, max_bytes)
                .await
                .expect("remote read")
                .expect("in the remote log");
            let local = partition
                .read(
                    offset,
                    max_bytes,
                    true,
                    crate::partition::Isolation::ReadUncommitted,
                )
                .expect("local read");
            assert!(
                !remote.records.is_empty(),
                "offset {offset}, max {max_bytes}"
            );
            assert!(
                local.records.starts_with(&remote.records),
                "offset {offset}, max {max_bytes}: remote bytes differ from local ones"
            );
            offset = next_offset(&remote.records);
        }
        assert_eq!(offset, copied_end);
    }
}

/// One Fetch (v12) of partitions 0 and 1 from offset 0: (error code, records) of each.
async fn fetch_both(
    b: &Arc<Broker>,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> Vec<(i16, Bytes)> {
    let partitions = (0..2)
        .map(|index| {
            fetch_request::FetchPartition::default()
                .with_partition(index)
                .with_fetch_offset(0)
                .with_partition_max_bytes(partition_max_bytes)
        })
        .collect();
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name())
            .with_partitions(partitions)]);
    let response: FetchResponse = call(b, ApiKey::Fetch, 12, &request).await;
    response.responses[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.records.clone().unwrap_or_default()))
        .collect()
}

/// A broker with the tiered topic (one partition, `extra` configs) holding `batches`
/// produced batches, after one tiered storage pass uploaded its closed segments.
pub(super) async fn uploaded(
    data: &std::path::Path,
    remote: &std::path::Path,
    extra: &[(&str, &str)],
    batches: usize,
) -> (
    Arc<Broker>,
    Arc<crate::partition::Partition>,
    Arc<super::TieredStorage>,
) {
    let b = open_broker(data, tiered_flags(remote));
    create_tiered_topic(&b, 1, extra);
    for batch in 0..batches {
        produce(&b, batch).await;
    }
    let partition = crate::test_support::partition(&b, TOPIC, 0);
    let tiered = b.tiered.clone().expect("tiered storage is on");
    tiered
        .run_once(b.replicas.all(), crate::clock::now_ms())
        .await;
    (b, partition, tiered)
}

/// A second broker's tiered storage over the same bucket, reading ahead `read_ahead_bytes`.
fn reader(remote: &std::path::Path, read_ahead_bytes: u64) -> Arc<super::TieredStorage> {
    let bucket = super::settings::RemoteStorageSettings {
        url: format!("file://{}", remote.display()),
        ..Default::default()
    }
    .open()
    .expect("bucket");
    let settings = super::RemoteStorageSettings {
        read_ahead_bytes,
        ..Default::default()
    };
    super::TieredStorage::with_bucket(bucket, settings, &prometheus::Registry::new())
        .expect("tiered storage")
}

/// Sizes of the whole batches of `records`.
fn batch_sizes(records: &[u8]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut position = 0;
    while let Some(length) = records.get(position + 8..position + 12) {
        let size = 12 + i32::from_be_bytes(length.try_into().expect("four bytes")) as usize;
        sizes.push(size);
        position += size;
    }
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_bytes_count_against_the_fetch_and_partition_budgets_like_local_ones() {
    let data = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("tempdir");
    let b = open_broker(data.path(), tiered_flags(remote.path()));
    create_tiered_topic(&b, 2, &[("local.retention.bytes", "1")]);
    for batch in 0..40 {
        produce_to(&b, 0, batch).await;
        produce_to(&b, 1, batch).await;
    }
    let tiered = b.tiered.clone().expect("tiered storage is on");
    tiered
        .run_once(b.replicas.all(), crate::clock::now_ms())
        .await;
    for index in 0..2 {
        let partition = crate::test_support::partition(&b, TOPIC, index);
        partition
            .enforce_retention(crate::clock::now_ms())
            .expect("retention");
        let start = partition.with_log(|l| l.log_start_offset());
        assert!(start > 0, "partition {index}: offset 0 is only remote");
    }

    // A budget of one byte: the first partition gets one whole batch, the next nothing (and
    // no error: its offset is valid).
    let answer = fetch_both(&b, 1, 1 << 20).await;
    assert_eq!(answer[0].0, 0);
    assert_eq!(batch_sizes(&answer[0].1).len(), 1, "one whole batch");
    assert_eq!((answer[1].0, answer[1].1.len()), (0, 0));

    // The fetch budget bounds the sum of both partitions' remote bytes.
    let one = batch_sizes(&answer[0].1)[0];
    let budget = one * 3 + one / 2;
    let answer = fetch_both(&b, budget as i32, 1 << 20).await;
    let total: usize = answer.iter().map(|(_, r)| r.len()).sum();
    assert!(total <= budget, "{total} bytes for a budget of {budget}");
    assert_eq!(
        batch_sizes(&answer[0].1).len(),
        3,
        "as many whole batches as fit"
    );
    assert_eq!(answer[1].1.len(), 0);

    // Each partition's budget bounds its own remote bytes.
    let answer = fetch_both(&b, 1 << 20, (one * 2) as i32).await;
    for (index, (code, records)) in answer.iter().enumerate() {
        assert_eq!(*code, 0, "partition {index}");
        assert_eq!(
            batch_sizes(records).len(),
            2,
            "partition {index}: {} bytes",
            records.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_downloads_a_chunk_once_and_later_fetches_in_it_come_from_the_cache() {
    let data = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("tempdir");
    let (_broker, partition, tiered) = uploaded(data.path(), remote.path(), &[], 40).await;
    let manifest = tiered.manifest(&partition).await.expect("manifest");
    let first = manifest
        .readable()
        .next()
        .expect("a remote segment")
        .clone();
    // Chunks of 1 KiB: a 2 KiB segment is two downloads, whatever the fetch sizes.
    let reader = reader(remote.path(), 1024);
    let mut offset = first.base_offset;
    let mut pieces = Vec::new();
    while offset < first.end_offset {
        let read = reader
            .read(&partition, offset, 1)
            .await
            .expect("remote read")
            .expect("in the remote log");
        offset = next_offset(&read.records);
        pieces.push(reader.probe().cache().len());
    }
    let chunks = first.size_bytes.div_ceil(1024) as usize;
    assert!(pieces.len() > chunks * 2, "many small fetches: {pieces:?}");
    assert_eq!(
        pieces.last().copied(),
        Some(chunks + 1),
        "each chunk (and the index) downloaded once for {} fetches",
        pieces.len()
    );
    assert_eq!(
        pieces[0], 2,
        "the first fetch brings the index and a whole chunk"
    );
    assert!(pieces.windows(2).all(|w| w[0] <= w[1]));
}
