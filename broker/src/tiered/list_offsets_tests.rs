//! ListOffsets v10 and v11 on a tiered topic, through the broker's dispatch: the earliest
//! pending upload offset (-6, KIP-1023) before and after segments are uploaded, lookups by
//! timestamp answered from the bucket once the local log no longer holds the records, within
//! the request's `timeout_ms` (KIP-1075).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ListOffsetsResponse};

use super::tests::{create_tiered_topic, produce_records, tiered_flags, TOPIC};
use crate::broker::Broker;
use crate::handlers::group_wire_tests::{call, open_broker};
use crate::storage::test_util::record;

const EARLIEST_PENDING_UPLOAD: i64 = -6;
const LATEST_TIERED: i64 = -5;
const UNSUPPORTED_VERSION: i16 = 35;

/// The timestamp of the record at `offset`: ten milliseconds apart, growing with the offset.
fn time_of(offset: i64) -> i64 {
    1_700_000_000_000 + 10 * offset
}

/// Produces `batches` batches of five records to partition 0, the record at offset `o`
/// stamped [`time_of`]`(o)`.
async fn produce_stamped(b: &Arc<Broker>, batches: i64) {
    for batch in 0..batches {
        let records: Vec<_> = (0..5)
            .map(|i| {
                let mut r = record(i, Some("key"), Some("value-000000"));
                r.timestamp = time_of(batch * 5 + i64::from(i));
                r
            })
            .collect();
        produce_records(b, 0, &records).await;
    }
}

/// ListOffsets of partition 0 at `timestamp`, version `version` (with `timeout_ms` from v10):
/// (error code, offset, timestamp).
async fn list(b: &Arc<Broker>, version: i16, timestamp: i64, timeout_ms: i32) -> (i16, i64, i64) {
    let request = crate::test_support::list_offsets_request(TOPIC, 0, timestamp)
        .with_timeout_ms(if version >= 10 { timeout_ms } else { 0 });
    let response: ListOffsetsResponse = call(b, ApiKey::ListOffsets, version, &request).await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

/// Uploads every closed segment and deletes them locally, within 30 s.
async fn upload_and_delete_locally(b: &Arc<Broker>) -> i64 {
    let partition = crate::test_support::partition(b, TOPIC, 0);
    let tiered = b.tiered.clone().expect("tiered storage is on");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tiered
            .run_once(b.replicas.all(), crate::clock::now_ms())
            .await;
        partition
            .enforce_retention(crate::clock::now_ms())
            .expect("retention");
        let (start, segments) = partition.with_log(|l| (l.log_start_offset(), l.segment_count()));
        if start > 0 && segments <= 2 {
            return start;
        }
        assert!(
            Instant::now() < deadline,
            "segments not uploaded and deleted locally within 30 s (local start {start})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_earliest_pending_upload_and_lookups_by_timestamp_follow_what_the_bucket_holds() {
    let data = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("tempdir");
    let b = open_broker(data.path(), tiered_flags(remote.path()));
    create_tiered_topic(&b, 1, &[("local.retention.bytes", "1")]);
    produce_stamped(&b, 60).await;
    let end = 300;

    // Nothing uploaded yet: the log start (KIP-1023), only from v11.
    assert_eq!(list(&b, 11, EARLIEST_PENDING_UPLOAD, 0).await, (0, 0, -1));
    assert_eq!(
        list(&b, 10, EARLIEST_PENDING_UPLOAD, 0).await.0,
        UNSUPPORTED_VERSION
    );
    assert_eq!(list(&b, 11, LATEST_TIERED, 0).await, (0, -1, -1));

    let local_start = upload_and_delete_locally(&b).await;
    let partition = crate::test_support::partition(&b, TOPIC, 0);
    let copied_end = b
        .tiered
        .as_ref()
        .and_then(|t| t.copied_end(&partition))
        .expect("uploaded");
    assert!(copied_end >= local_start && copied_end < end);

    // The first offset not uploaded; the last uploaded one for -5.
    assert_eq!(
        list(&b, 11, EARLIEST_PENDING_UPLOAD, 0).await,
        (0, copied_end, -1)
    );
    assert_eq!(
        list(&b, 11, LATEST_TIERED, 0).await,
        (0, copied_end - 1, -1)
    );

    // By timestamp: records only the bucket holds are found there, within v10's timeout and
    // within the broker's own without one; later ones on disk; none past the end.
    for version in [9, 10, 11] {
        for offset in [0, 3, local_start - 1, local_start, end - 1] {
            assert_eq!(
                list(&b, version, time_of(offset), 5_000).await,
                (0, offset, time_of(offset)),
                "v{version}: the record at {offset}"
            );
        }
        assert_eq!(
            list(&b, version, time_of(3) - 5, 5_000).await,
            (0, 3, time_of(3)),
            "v{version}: between two records, the later one"
        );
        assert_eq!(
            list(&b, version, time_of(end), 5_000).await,
            (0, -1, -1),
            "v{version}: after the last record"
        );
    }
}
