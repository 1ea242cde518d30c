//! DescribeLogDirs with tiered storage: the local directory reports local bytes only (as
//! Kafka does) and the remote tier is a second directory, `remote://...`, holding the bytes
//! of the remote log of each tiered partition this broker leads; at v5 neither is cordoned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::tests::{produce, tiered_flags, TOPIC};
use crate::handlers::group_wire_tests::{call, open_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_log_dirs_reports_local_and_remote_bytes_apart() {
    let data = tempfile::tempdir().expect("tempdir");
    let remote = tempfile::tempdir().expect("tempdir");
    let b = open_broker(data.path(), tiered_flags(remote.path()));
    let configs: BTreeMap<String, String> = [
        ("remote.storage.enable", "true"),
        ("segment.bytes", "2048"),
        ("local.retention.bytes", "1"),
        ("retention.ms", "-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    crate::test_support::create_topic(&b, TOPIC, 1, configs);
    crate::test_support::create_topic(&b, "local-only", 1, BTreeMap::new());
    for batch in 0..60 {
        produce(&b, batch).await;
    }
    let partition = crate::test_support::partition(&b, TOPIC, 0);
    let tiered = b.tiered.clone().expect("tiered storage is on");
    let task = tokio::spawn(crate::tiered::run(tiered.clone(), Arc::downgrade(&b)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while partition.with_log(|l| l.log_start_offset()) == 0 {
        partition
            .enforce_retention(crate::clock::now_ms())
            .expect("retention");
        assert!(
            Instant::now() < deadline,
            "no segment was uploaded and deleted locally within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let local = i64::try_from(partition.size_bytes()).expect("size");
    let in_bucket = i64::try_from(tiered.remote_size(&partition).expect("manifest")).expect("size");
    assert!(in_bucket > 0, "the bucket holds segments");

    for version in [1, 4, 5] {
        let response: DescribeLogDirsResponse = call(
            &b,
            ApiKey::DescribeLogDirs,
            version,
            &DescribeLogDirsRequest::default().with_topics(None),
        )
        .await;
        assert_eq!(response.results.len(), 2, "v{version}: local and remote");
        let sizes = |i: usize| -> BTreeMap<String, i64> {
            response.results[i]
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        (
                            format!("{}-{}", t.name.as_str(), p.partition_index),
                            p.partition_size,
                        )
                    })
                })
                .collect()
        };
        let (local_dir, remote_dir) = (&response.results[0], &response.results[1]);
        assert!(!local_dir.log_dir.starts_with("remote://"));
        assert_eq!(
            sizes(0).get("tiered-0"),
            Some(&local),
            "v{version}: local bytes only"
        );
        assert!(sizes(0).contains_key("local-only-0"));
        assert_eq!(
            remote_dir.log_dir.as_str(),
            format!("remote://{}", remote.path().display()),
            "v{version}: named after the storage URL"
        );
        assert_eq!(
            sizes(1),
            BTreeMap::from([("tiered-0".to_owned(), in_bucket)]),
            "v{version}: only tiered partitions, with their remote bytes"
        );
        if version >= 4 {
            assert_eq!(
                (remote_dir.total_bytes, remote_dir.usable_bytes),
                (-1, -1),
                "a bucket has no capacity"
            );
            assert!(local_dir.total_bytes > 0 && local_dir.usable_bytes >= 0);
        }
        // v5 (KIP-1066): no directory is cordoned, this broker has no cordoning.
        assert!(!local_dir.is_cordoned && !remote_dir.is_cordoned);
    }
}
