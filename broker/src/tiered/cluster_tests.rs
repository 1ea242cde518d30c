//! Tiered storage between replicas, in-process: two partition replicas (leader and follower,
//! each with the tiered storage of its own broker over one bucket directory) exchanging
//! fetches as the fetcher and the replica-fetch handler do. Shows KIP-405's follower path: a
//! follower with an empty log is answered OFFSET_MOVED_TO_TIERED_STORAGE, rebuilds from the
//! remote log metadata and catches up from the leader's local log start; and a new leader
//! continues the manifest while the deposed one is fenced.

use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use super::plan::follower_out_of_range;
use super::{RemoteStorageSettings, TieredError, TieredStorage};
use crate::journal::Replay;
use crate::partition::follower::EpochEnd;
use crate::partition::follower::{next_step, FollowerStep, LeaderAnswer, LocalLog};
use crate::partition::{Partition, ReplicaFetch, ReplicaRead, Role};
use crate::storage::test_util::{simple, NOW};
use crate::storage::{LogConfig, StorageError};

const TOPIC_ID: Uuid = Uuid::from_u128(0x7157);

fn tiered(bucket: &std::path::Path) -> Arc<TieredStorage> {
    let settings = RemoteStorageSettings {
        url: format!("file://{}", bucket.display()),
        ..RemoteStorageSettings::default()
    };
    TieredStorage::open(settings, &prometheus::Registry::new()).expect("tiered storage")
}

/// The bucket directory and two brokers' data directories.
fn dirs() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    let dir = || tempfile::tempdir().expect("dir");
    (dir(), dir(), dir())
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        remote_storage: true,
        local_retention_bytes: 0,
        ..LogConfig::default()
    }
}

fn open(dir: &std::path::Path, role: Role) -> Arc<Partition> {
    let topic = ("events", TOPIC_ID);
    Arc::new(
        Partition::open(dir, topic, 0, role, config().into(), &Replay::default()).expect("open"),
    )
}

/// A follower of broker 0 in leader epoch `epoch`.
fn follower(dir: &std::path::Path, epoch: i32) -> Arc<Partition> {
    open(dir, Role::Follower { leader: 0, epoch })
}

/// Fetches until the follower's position reaches `end`.
async fn catch_up(
    leader: &Partition,
    leader_tiered: &TieredStorage,
    follower: &Partition,
    follower_tiered: &TieredStorage,
    end: i64,
) {
    while follower.fetch_position().0 < end {
        fetch_once(leader, leader_tiered, follower, follower_tiered).await;
    }
}

fn write(p: &Partition, batches: usize) {
    for _ in 0..batches {
        p.append(&simple(3, NOW), NOW).expect("append");
    }
}

fn epochs_of(p: &Partition) -> Vec<(i32, i64)> {
    p.with_log(|log| {
        log.epoch_entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    })
}

/// One follower fetch answered as the replica-fetch handler answers it (with the leader
/// broker's tiered storage deciding OFFSET_MOVED_TO_TIERED_STORAGE) and the follower's step,
/// performed as the fetcher performs it (the rebuild through the follower broker's tiered
/// storage).
async fn fetch_once(
    leader: &Partition,
    leader_tiered: &TieredStorage,
    follower: &Partition,
    follower_tiered: &TieredStorage,
) -> FollowerStep {
    let (fetch_offset, last_fetched_epoch) = follower.fetch_position();
    let fetch = ReplicaFetch {
        broker: 1,
        incarnation: 1,
        fetch_offset,
        last_fetched_epoch,
        registered_incarnation: Some(1),
    };
    let (hw, local_start) = leader.with_log(|l| (l.high_watermark(), l.log_start_offset()));
    let (answer, records) = match leader.read_for_follower(fetch, 1 << 20, NOW) {
        Ok((ReplicaRead::Data(d), _)) => {
            (answer(0, d.high_watermark, d.log_start_offset), d.records)
        }
        Ok((ReplicaRead::Diverging { .. }, _)) => panic!("no divergence expected"),
        Err(StorageError::OffsetOutOfRange { .. }) => {
            let remote_start = leader_tiered.remote_log_start(leader);
            let code = follower_out_of_range(fetch_offset, local_start, remote_start);
            (answer(code.code(), hw, local_start), Bytes::new())
        }
        Err(error) => panic!("the leader cannot serve the fetch: {error}"),
    };
    let step = follower.with_log(|log| next_step(&LocalLog::of(log), &answer));
    match step {
        FollowerStep::Append => {
            follower
                .append_from_leader(
                    &records,
                    answer.high_watermark,
                    answer.log_start_offset,
                    NOW,
                )
                .expect("append from leader");
        }
        FollowerStep::FromRemote { leader_local_start } => {
            let plan = follower_tiered
                .rebuild_plan_for(follower, leader_local_start)
                .await
                .expect("rebuild plan");
            assert_eq!(plan.restart_at, leader_local_start);
            let restarted = follower
                .restart_replica_from_remote(
                    plan.restart_at,
                    &plan.epochs,
                    plan.producers.as_ref(),
                    follower.role(),
                )
                .expect("restart");
            assert!(restarted);
        }
        other => panic!("unexpected step {other:?}"),
    }
    step
}

fn answer(error_code: i16, high_watermark: i64, log_start_offset: i64) -> LeaderAnswer {
    LeaderAnswer {
        error_code,
        diverging: EpochEnd::UNDEFINED,
        high_watermark,
        log_start_offset,
    }
}

/// A leader at epoch 1 then 2 whose closed segments are uploaded and deleted locally.
async fn tiered_leader(dir: &std::path::Path, tiered: &TieredStorage) -> Arc<Partition> {
    let leader = open(dir, Role::Leader { epoch: 1 });
    write(&leader, 6);
    leader.set_role(Role::Leader { epoch: 2 });
    write(&leader, 6);
    tiered.run_once(vec![leader.clone()], NOW).await;
    leader.enforce_retention(NOW).expect("retention");
    leader
}

#[tokio::test]
async fn an_empty_follower_rebuilds_from_the_remote_log_and_catches_up_from_the_local_log_start() {
    let (bucket, a_dir, b_dir) = dirs();
    let (a_tiered, b_tiered) = (tiered(bucket.path()), tiered(bucket.path()));
    let a = tiered_leader(a_dir.path(), &a_tiered).await;
    let local_start = a.with_log(|l| l.log_start_offset());
    assert!(local_start > 0, "local retention deleted uploaded segments");
    assert_eq!(a_tiered.remote_log_start(&a), Some(0));

    let b = follower(b_dir.path(), 2);
    let step = fetch_once(&a, &a_tiered, &b, &b_tiered).await;
    assert_eq!(
        step,
        FollowerStep::FromRemote {
            leader_local_start: local_start
        }
    );
    assert_eq!(
        b.with_log(|l| (l.log_start_offset(), l.log_end_offset())),
        (local_start, local_start)
    );
    assert_eq!(
        b.fetch_position(),
        (local_start, epochs_of(&a).last().expect("an epoch").0),
        "the next fetch carries the restored epoch"
    );
    // Nothing of the remote log was copied to the follower's disk.
    let end = a.with_log(|l| l.log_end_offset());
    while b.fetch_position().0 < end {
        assert_eq!(
            fetch_once(&a, &a_tiered, &b, &b_tiered).await,
            FollowerStep::Append
        );
    }
    assert_eq!(
        epochs_of(&b),
        epochs_of(&a),
        "the epoch caches agree from the local log start"
    );
    let read = |p: &Partition| {
        p.read(
            local_start,
            1 << 20,
            true,
            crate::partition::Isolation::LogEnd,
        )
        .expect("read")
        .records
    };
    assert_eq!(read(&b), read(&a), "the local logs hold the same bytes");

    // Whichever broker leads serves the remote part: the follower's broker reads it too.
    let (from_a, from_b) = (
        remote_from(&a_tiered, &a).await,
        remote_from(&b_tiered, &b).await,
    );
    assert_eq!(from_a.records, from_b.records);
    assert_eq!(from_b.log_start_offset, 0);
}

#[tokio::test]
async fn a_follower_pass_bounds_local_retention_by_what_the_bucket_holds() {
    let (bucket, a_dir, b_dir) = dirs();
    let (a_tiered, b_tiered) = (tiered(bucket.path()), tiered(bucket.path()));
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    let b = follower(b_dir.path(), 1);
    write(&a, 12);
    catch_up(
        &a,
        &a_tiered,
        &b,
        &b_tiered,
        a.with_log(|l| l.log_end_offset()),
    )
    .await;
    // Before any upload, the follower keeps every segment whatever local.retention says.
    b_tiered.run_once(vec![b.clone()], NOW).await;
    b.enforce_retention(NOW).expect("retention");
    assert_eq!(b.with_log(|l| l.log_start_offset()), 0);
    a_tiered.run_once(vec![a.clone()], NOW).await;
    let copied = a_tiered.copied_end(&a).expect("uploaded");
    // The follower learns the copied end from the manifest and deletes what lies below it.
    b_tiered.run_once(vec![b.clone()], NOW).await;
    b.enforce_retention(NOW).expect("retention");
    let start = b.with_log(|l| l.log_start_offset());
    assert!(
        start > 0 && start <= copied,
        "follower log start {start}, copied end {copied}"
    );
}

#[tokio::test]
async fn a_new_leader_continues_the_manifest_and_the_deposed_leader_is_fenced() {
    let (bucket, a_dir, b_dir) = dirs();
    let (a_tiered, b_tiered) = (tiered(bucket.path()), tiered(bucket.path()));
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    let b = follower(b_dir.path(), 1);
    write(&a, 6);
    catch_up(
        &a,
        &a_tiered,
        &b,
        &b_tiered,
        a.with_log(|l| l.log_end_offset()),
    )
    .await;
    a_tiered.run_once(vec![a.clone()], NOW).await;
    let first = a_tiered.copied_end(&a).expect("uploaded");
    // b, as a follower, has read the manifest; it leads epoch 2 and writes on.
    b_tiered.run_once(vec![b.clone()], NOW).await;
    b.set_role(Role::Leader { epoch: 2 });
    write(&b, 6);
    b_tiered.run_once(vec![b.clone()], NOW).await;
    let manifest = b_tiered.manifest(&b).await.expect("manifest");
    assert_eq!(manifest.leader_epoch, 2);
    assert!(
        manifest.copied_end_offset().expect("copied") > first,
        "b continued the remote log"
    );
    assert_eq!(manifest.segments[0].base_offset, 0, "a's segments are kept");

    // a still believes it leads epoch 1 with its cached manifest: every write is refused.
    write(&a, 6);
    let at = a_tiered.probe().path_of(&a);
    let stale = a_tiered.probe().manifest_for_term(&a, &at, 1).await;
    let result = match stale {
        Err(error) => Err(error),
        Ok(manifest) => a_tiered.probe().save(&a, &at, &manifest).await,
    };
    assert!(
        matches!(
            result,
            Err(TieredError::Fenced { .. } | TieredError::ManifestConflict { .. })
        ),
        "{result:?}"
    );
    let after = tiered(bucket.path()).manifest(&b).await.expect("manifest");
    assert_eq!(after.leader_epoch, 2, "the newer leader's manifest stands");
    assert_eq!(after.segments, manifest.segments);
}

/// A batch of `records` records of idempotent producer `pid` (epoch 0) from `sequence`.
fn idempotent(pid: i64, sequence: i32, records: usize) -> bytes::BytesMut {
    crate::storage::test_util::batch(&crate::storage::test_util::BatchSpec {
        records,
        producer_id: pid,
        base_sequence: sequence,
        timestamp: NOW,
        ..Default::default()
    })
}

#[tokio::test]
async fn a_replica_rebuilt_from_the_remote_log_answers_a_retry_of_a_remote_only_batch_as_a_duplicate(
) {
    let (bucket, a_dir, b_dir) = dirs();
    let (a_tiered, b_tiered) = (tiered(bucket.path()), tiered(bucket.path()));
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    // Producer 42 writes batches of 3, plain writes follow and a pass uploads them; then
    // producer 43 does the same, and the next pass carries 42's state on from the snapshot
    // the first pass uploaded. Both producers' batches end up only in the bucket.
    let mut last = Vec::new();
    for (pid, plain) in [(42, 6), (43, 12)] {
        for n in 0..5 {
            let appended = a.append(&idempotent(pid, n * 3, 3), NOW).expect("append");
            assert_eq!(appended.records, 3);
        }
        last.push((pid, 12, a.with_log(|l| l.log_end_offset()) - 3));
        write(&a, plain);
        a_tiered.run_once(vec![a.clone()], NOW).await;
        a.enforce_retention(NOW).expect("retention");
    }
    let local_start = a.with_log(|l| l.log_start_offset());
    assert!(
        last.iter().all(|&(_, _, offset)| local_start > offset),
        "the producers' batches left the leader's disk (local start {local_start})"
    );
    let manifest = a_tiered.manifest(&a).await.expect("manifest");
    assert!(manifest.readable().all(|s| s.producer_snapshot));

    // An empty replica rebuilds from the remote log and catches up.
    let b = follower(b_dir.path(), 1);
    let end = a.with_log(|l| l.log_end_offset());
    let mut rebuilt = false;
    while b.fetch_position().0 < end {
        let step = fetch_once(&a, &a_tiered, &b, &b_tiered).await;
        rebuilt |= matches!(step, FollowerStep::FromRemote { .. });
    }
    assert!(rebuilt, "the follower restarted from the remote log");
    assert_eq!(b.with_log(|l| l.log_start_offset()), local_start);

    // It becomes the leader; each producer retries its last acknowledged batch.
    b.set_role(Role::Leader { epoch: 2 });
    for &(pid, last_sequence, last_offset) in &last {
        let retry = b
            .append(&idempotent(pid, last_sequence, 3), NOW)
            .expect("retry");
        assert_eq!(
            (retry.base_offset, retry.records),
            (last_offset, 0),
            "producer {pid}: answered with the original offset, nothing appended"
        );
    }
    assert_eq!(b.with_log(|l| l.log_end_offset()), end);
    // Producer 42's sequence goes on from where the snapshots left it; a gap is refused.
    assert!(
        b.append(&idempotent(42, 12 + 9, 3), NOW).is_err(),
        "out of order"
    );
    let next = b.append(&idempotent(42, 12 + 3, 3), NOW).expect("next");
    assert_eq!((next.base_offset, next.records), (end, 3));
}

/// What a broker's tiered storage reads of the partition's remote log from offset 0.
async fn remote_from(tiered: &TieredStorage, p: &Partition) -> super::RemoteRead {
    tiered
        .read(p, 0, 1 << 20)
        .await
        .expect("read")
        .expect("remote")
}

/// Sets a file's modification time `age` into the past.
fn age_file(path: &std::path::Path, age: std::time::Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open object");
    file.set_modified(std::time::SystemTime::now() - age)
        .expect("set mtime");
}

#[tokio::test]
async fn a_new_leader_deletes_old_objects_its_manifest_does_not_name_and_keeps_fresh_ones() {
    let (bucket, a_dir, b_dir) = dirs();
    let (a_tiered, b_tiered) = (tiered(bucket.path()), tiered(bucket.path()));
    let a = tiered_leader(a_dir.path(), &a_tiered).await;
    let objects = bucket.path().join(format!("events-{TOPIC_ID}")).join("0");
    let named: Vec<std::path::PathBuf> = std::fs::read_dir(&objects)
        .expect("objects")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(named.len() > 5, "segments were uploaded");
    let old = super::orphans::ORPHAN_GRACE + std::time::Duration::from_secs(60);
    for path in &named {
        age_file(path, old);
    }
    // What a deposed leader's late upload, or a crash before its manifest write, leaves.
    let orphan = Uuid::new_v4();
    let late = Uuid::new_v4();
    let plant = |id: Uuid, suffix: &str| {
        let path = objects.join(format!("{:020}-{id}.{suffix}", 3));
        std::fs::write(&path, b"bytes nobody names").expect("plant");
        path
    };
    let orphans = [plant(orphan, "log"), plant(orphan, "snapshot")];
    for path in &orphans {
        age_file(path, old);
    }
    let fresh = plant(late, "log");

    // b leads the next term and sweeps at its start.
    let b = follower(b_dir.path(), 2);
    b_tiered.run_once(vec![b.clone()], NOW).await;
    b.set_role(Role::Leader { epoch: 3 });
    b_tiered.run_once(vec![b.clone()], NOW).await;
    assert_eq!(
        b_tiered.manifest(&b).await.expect("manifest").leader_epoch,
        3
    );
    for path in &orphans {
        assert!(!path.exists(), "{} was not deleted", path.display());
    }
    assert!(
        fresh.exists(),
        "an unnamed object within the grace period is kept"
    );
    for path in &named {
        assert!(path.exists(), "{} is named and must stay", path.display());
    }
    let (from_a, from_b) = (
        remote_from(&a_tiered, &a).await,
        remote_from(&b_tiered, &b).await,
    );
    assert_eq!(from_a.records, from_b.records, "the remote log is intact");
}

#[tokio::test]
async fn a_transaction_open_across_remote_segments_is_known_to_a_rebuilt_replica_when_it_aborts() {
    let (bucket, a_dir, b_dir) = dirs();
    let (a_tiered, b_tiered) = (tiered(bucket.path()), tiered(bucket.path()));
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    // Producer 50's transaction starts at 0 and spans closed segments; its abort marker lands
    // in the active one, which stays local.
    let data = crate::storage::test_util::encode(
        &[kafka_protocol::records::Record {
            transactional: true,
            producer_id: 50,
            producer_epoch: 0,
            sequence: 0,
            timestamp: NOW,
            ..crate::storage::test_util::record(0, Some("k"), Some("v"))
        }],
        kafka_protocol::records::Compression::None,
    );
    assert_eq!(a.append(&data, NOW).expect("transactional").base_offset, 0);
    write(&a, 12);
    let marker_end = a.append_marker(50, 0, false, 1, NOW).expect("abort");
    let marker = marker_end - 1;
    a_tiered.run_once(vec![a.clone()], NOW).await;
    a.enforce_retention(NOW).expect("retention");
    let local_start = a.with_log(|l| l.log_start_offset());
    assert!(
        local_start > 0 && local_start <= marker,
        "the transaction's start is remote, its marker local ({local_start}, {marker})"
    );

    let b = follower(b_dir.path(), 1);
    catch_up(&a, &a_tiered, &b, &b_tiered, marker_end).await;
    let aborted = |p: &Partition| {
        p.read(
            local_start,
            1 << 20,
            true,
            crate::partition::Isolation::ReadCommitted,
        )
        .expect("read")
        .aborted
    };
    let expected = crate::storage::AbortedRange {
        producer_id: 50,
        first_offset: 0,
        last_offset: marker,
    };
    assert_eq!(aborted(&a), vec![expected]);
    assert_eq!(
        aborted(&b),
        vec![expected],
        "the rebuilt replica reports the aborted range from the transaction's remote start"
    );
}

/// A broker of a cluster in its incarnation 2, with tiered storage over `bucket`, hosting
/// partition 0 of the tiered topic as its only replica, led here at `epoch`.
fn rf1_broker(
    data: &std::path::Path,
    bucket: &std::path::Path,
    epoch: i32,
) -> (
    crate::replica::ReplicaManager,
    crate::metadata::ClusterImage,
) {
    use crate::metadata::{BrokerInfo, ClusterImage, IsrMember, PartitionState, TopicImage};
    let config = crate::config::BrokerConfig::resolve(crate::config::Flags {
        data_dir: Some(data.to_path_buf()),
        broker_id: Some(0),
        ..super::tests::tiered_flags(bucket)
    })
    .expect("config");
    let parts = crate::replica::ReplicaParts {
        incarnation: Some(2),
        ..crate::replica::ReplicaParts::new(
            crate::topics::config::replica_settings(&Arc::new(config)),
            Replay::default(),
        )
    };
    let configs = [
        ("remote.storage.enable", "true"),
        ("segment.bytes", "600"),
        ("local.retention.bytes", "0"),
        ("retention.ms", "-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let me = BrokerInfo {
        id: 0,
        host: "h".into(),
        port: 9092,
        rack: None,
        incarnation: 2,
        endpoints: Vec::new(),
    };
    let image = ClusterImage::new("c".into(), 0, vec![me]).with_topic(TopicImage {
        name: "events".into(),
        id: TOPIC_ID,
        configs,
        replication_factor: 1,
        partitions: vec![PartitionState {
            replicas: vec![0],
            leader: 0,
            leader_epoch: epoch,
            partition_epoch: epoch,
            isr: vec![IsrMember {
                broker: 0,
                incarnation: 2,
            }],
            adding: Vec::new(),
            removing: Vec::new(),
        }],
    });
    (crate::replica::ReplicaManager::build(parts), image)
}

#[tokio::test]
async fn a_broker_on_a_new_empty_volume_leads_its_rf1_tiered_partition_after_the_remote_log() {
    let (bucket, a_dir, b_dir) = dirs();
    let a_tiered = tiered(bucket.path());
    // The broker's first volume: producer 42's batches, then plain ones under epochs 1 and 2;
    // the closed segments go to the bucket and leave the disk.
    let a = open(a_dir.path(), Role::Leader { epoch: 1 });
    for n in 0..5 {
        a.append(&idempotent(42, n * 3, 3), NOW).expect("append");
    }
    let last_of_42 = a.with_log(|l| l.log_end_offset()) - 3;
    write(&a, 6);
    a.set_role(Role::Leader { epoch: 2 });
    write(&a, 6);
    a_tiered.run_once(vec![a.clone()], NOW).await;
    a.enforce_retention(NOW).expect("retention");
    let remote_end = a_tiered.copied_end(&a).expect("uploaded");
    assert!(a.with_log(|l| l.log_start_offset()) == remote_end && remote_end > last_of_42);

    // The volume is replaced (the active segment is lost with it); the broker comes back as a
    // new incarnation on an empty disk and leads the partition again at epoch 3.
    let (replicas, image) = rf1_broker(b_dir.path(), bucket.path(), 3);
    let b_tiered = tiered(bucket.path());
    replicas.apply(&image);
    let b = replicas.get("events", 0).expect("hosted");
    assert!(b.awaits_remote_log());
    assert!(
        replicas.leader(&image, "events", 0).is_err(),
        "it does not lead from an empty log"
    );
    assert!(matches!(
        b.append(&simple(3, NOW), NOW),
        Err(crate::partition::AppendError::AwaitingRemoteLog)
    ));

    // Its first pass reads the manifest and restarts the log after the remote end.
    b_tiered.run_once(replicas.all(), NOW).await;
    assert!(!b.awaits_remote_log());
    assert!(replicas.leader(&image, "events", 0).is_ok());
    assert_eq!(
        b.with_log(|l| (l.log_start_offset(), l.log_end_offset(), l.high_watermark())),
        (remote_end, remote_end, remote_end)
    );
    assert_eq!(
        b_tiered.log_start_offset(&b, remote_end),
        0,
        "the log starts in the bucket"
    );
    assert_eq!(
        epochs_of(&b),
        vec![(3, remote_end)],
        "this leader's epoch starts where the remote log's last one ends"
    );
    assert_eq!(
        remote_from(&b_tiered, &b).await.records,
        remote_from(&a_tiered, &a).await.records,
        "it serves the remote part"
    );
    // A retry of producer 42's last batch, which only the bucket holds, is a duplicate.
    let retry = b.append(&idempotent(42, 12, 3), NOW).expect("retry");
    assert_eq!((retry.base_offset, retry.records), (last_of_42, 0));

    // New records continue after the remote end, and reach the bucket after it.
    let next = b.append(&simple(3, NOW), NOW).expect("append");
    assert_eq!(next.base_offset, remote_end);
    write(&b, 8);
    b_tiered.run_once(replicas.all(), NOW).await;
    let manifest = b_tiered.manifest(&b).await.expect("manifest");
    assert_eq!(manifest.leader_epoch, 3);
    assert!(manifest.copied_end_offset().expect("copied") > remote_end);
    assert!(
        manifest
            .readable()
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[0].end_offset == w[1].base_offset),
        "the remote log goes on without a gap or an overlap"
    );
}
