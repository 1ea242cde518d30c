//! The standalone metadata source with real partitions: limits, atomic creation and growth,
//! failed saves, start-up clean-up, and topics re-created under an old name.

use std::path::Path;

use super::*;
use crate::config::Flags;
use crate::journal::Replay;
use crate::topics::{LocalStore, StoreError};

fn config(dir: &Path, per_broker: usize, per_request: usize) -> Arc<BrokerConfig> {
    Arc::new(
        BrokerConfig::resolve(Flags {
            data_dir: Some(dir.to_path_buf()),
            max_broker_partitions: Some(per_broker),
            max_partitions_per_request: Some(per_request),
            ..Flags::default()
        })
        .expect("valid flags"),
    )
}

struct Fixture {
    source: LocalMetadata,
    cache: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
}

fn open_with(
    dir: &Path,
    per_broker: usize,
    per_request: usize,
    store: Box<dyn MetadataStore>,
) -> Fixture {
    let config = config(dir, per_broker, per_request);
    let me = crate::metadata::BrokerInfo {
        id: 0,
        host: "127.0.0.1".into(),
        port: 9092,
        rack: None,
        incarnation: 1,
        endpoints: Vec::new(),
    };
    let cache = Arc::new(MetadataCache::new(ClusterImage::new(
        "c".into(),
        0,
        vec![me],
    )));
    let replicas = Arc::new(ReplicaManager::new(
        crate::topics::config::replica_settings(&config),
        Replay::default(),
    ));
    let source =
        LocalMetadata::open(config, store, cache.clone(), replicas.clone()).expect("open metadata");
    Fixture {
        source,
        cache,
        replicas,
    }
}

fn open(dir: &Path, per_broker: usize, per_request: usize) -> Fixture {
    open_with(dir, per_broker, per_request, Box::new(LocalStore::new(dir)))
}

fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        partitions,
        replication_factor: -1,
        ..TopicSpec::default()
    }
}

/// Partition directories in `dir`, sorted.
fn partition_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn policy_violation<T: std::fmt::Debug>(result: Result<T, MetadataError>) -> String {
    match result {
        Err(MetadataError::PolicyViolation(message)) => message,
        other => panic!("expected a policy violation, got {other:?}"),
    }
}

#[test]
fn a_topic_over_the_per_request_limit_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), 1_000, 10);
    let message = policy_violation(f.source.create(&spec("big", i32::MAX)));
    assert!(
        message.contains("2147483647 requested, limit 10"),
        "{message}"
    );
    assert!(message.contains("max.partitions.per.request"), "{message}");
    assert!(partition_dirs(dir.path()).is_empty());
    assert!(f.source.create(&spec("fits", 10)).is_ok());
}

#[test]
fn the_broker_budget_counts_every_hosted_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), 5, 100);
    f.source.create(&spec("a", 3)).expect("within budget");
    let message = policy_violation(f.source.create(&spec("b", 3)));
    assert!(message.contains("hosts 3 partitions; 3 more"), "{message}");
    assert!(
        message.contains("limit of 5 (max.broker.partitions)"),
        "{message}"
    );
    let grown = f.source.grow("a", 6, &[], false);
    assert!(
        matches!(grown, Err(MetadataError::PolicyViolation(_))),
        "{grown:?}"
    );
    f.source
        .grow("a", 5, &[], false)
        .expect("exactly the budget");
    assert_eq!(f.replicas.hosted(), 5);
    assert_eq!(partition_dirs(dir.path()).len(), 5);
}

#[test]
fn a_partition_that_cannot_be_created_takes_the_earlier_ones_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), 100, 100);
    // A file where partition 3's directory must go: its creation fails.
    std::fs::write(dir.path().join("t-3"), b"in the way").expect("blocker");
    let created = f.source.create(&spec("t", 6));
    assert!(
        matches!(created, Err(MetadataError::Storage(_))),
        "{created:?}"
    );
    assert!(
        partition_dirs(dir.path()).is_empty(),
        "{:?}",
        partition_dirs(dir.path())
    );
    assert!(f.cache.image().topic("t").is_none());
    // Growing a topic is just as atomic.
    f.source.create(&spec("g", 2)).expect("create");
    std::fs::write(dir.path().join("g-4"), b"in the way").expect("blocker");
    assert!(f.source.grow("g", 6, &[], false).is_err());
    assert_eq!(partition_dirs(dir.path()), ["g-0", "g-1"]);
    assert_eq!(
        f.cache.image().topic("g").map(|t| t.partition_count()),
        Some(2)
    );
    assert_eq!(f.replicas.hosted(), 2);
}

/// A metadata store whose saves fail, as on a full disk.
struct FailingStore;

impl MetadataStore for FailingStore {
    fn load(&self) -> Result<Vec<TopicRecord>, StoreError> {
        Ok(Vec::new())
    }

    fn save(&self, _: &[TopicRecord]) -> Result<(), StoreError> {
        Err(StoreError::Io {
            path: "topics.json".into(),
            source: std::io::Error::other("disk full"),
        })
    }
}

#[test]
fn a_creation_whose_metadata_cannot_be_saved_leaves_no_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open_with(dir.path(), 100, 100, Box::new(FailingStore));
    assert!(matches!(
        f.source.create(&spec("t", 4)),
        Err(MetadataError::Store(_))
    ));
    assert!(partition_dirs(dir.path()).is_empty());
    assert_eq!(f.replicas.hosted(), 0);
}

#[test]
fn start_up_removes_partition_directories_no_topic_owns() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let f = open(dir.path(), 100, 100);
        f.source.create(&spec("kept", 2)).expect("create");
    }
    for stray in ["ghost-0", "ghost-1", "kept-2", "kept-17"] {
        std::fs::create_dir(dir.path().join(stray)).expect("stray dir");
        std::fs::write(dir.path().join(stray).join("00000000000000000000.log"), b"")
            .expect("stray segment");
    }
    std::fs::create_dir(dir.path().join("notes")).expect("unrelated dir");
    std::fs::write(dir.path().join("other-3"), b"a file, not a partition").expect("file");
    let f = open(dir.path(), 100, 100);
    assert_eq!(partition_dirs(dir.path()), ["kept-0", "kept-1", "notes"]);
    assert!(dir.path().join("other-3").is_file());
    assert_eq!(f.replicas.hosted(), 2);
}

#[test]
fn a_deleted_topic_leaves_nothing_and_a_new_one_never_inherits_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), 100, 100);
    f.source.create(&spec("t", 1)).expect("create");
    let partition = f.replicas.get("t", 0).expect("p0");
    partition
        .append(&crate::storage::test_util::simple(3, 1_000), 1_000)
        .expect("append");
    drop(partition);
    f.source.delete("t").expect("delete");
    assert!(partition_dirs(dir.path()).is_empty());
    let recreated = f.source.create(&spec("t", 1)).expect("recreate");
    let p0 = f.replicas.get("t", 0).expect("p0");
    assert_eq!(p0.topic_id(), recreated.id);
    assert_eq!(
        p0.with_log(|log| log.log_end_offset()),
        0,
        "the new topic starts empty"
    );
}

#[test]
fn topics_and_their_epochs_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let f = open(dir.path(), 100, 100);
        let t = f.source.create(&spec("t", 3)).expect("create");
        f.source
            .set_configs(
                "t",
                [("retention.ms".to_string(), "1000".to_string())].into(),
                false,
            )
            .expect("configs");
        t.id
    };
    let f = open(dir.path(), 100, 100);
    let image = f.cache.image();
    let t = image.topic("t").expect("topic back");
    assert_eq!((t.id, t.partition_count()), (id, 3));
    assert_eq!(
        t.configs.get("retention.ms").map(String::as_str),
        Some("1000")
    );
    let p = &t.partitions[0];
    assert_eq!(
        (p.leader, p.isr_ids()),
        (0, vec![0]),
        "the broker leads with an ISR of itself"
    );
    assert_eq!(f.replicas.hosted(), 3);
}
