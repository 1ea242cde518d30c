use std::path::Path;

use super::*;
use crate::config::Flags;
use crate::topics::LocalStore;

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

fn registry(dir: &Path, per_broker: usize, per_request: usize) -> TopicRegistry {
    let config = config(dir, per_broker, per_request);
    TopicRegistry::open(config, Box::new(LocalStore::new(dir)), &Replay::default())
        .expect("open registry")
}

fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        partitions,
        replication_factor: -1,
        configs: BTreeMap::new(),
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

fn policy_violation(result: Result<Arc<Topic>, RegistryError>) -> String {
    match result {
        Err(RegistryError::PolicyViolation(message)) => message,
        other => panic!("expected a policy violation, got {other:?}"),
    }
}

#[test]
fn a_topic_over_the_per_request_limit_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = registry(dir.path(), 1_000, 10);
    let message = policy_violation(topics.create(&spec("big", i32::MAX)));
    assert!(
        message.contains("2147483647 requested, limit 10"),
        "{message}"
    );
    assert!(message.contains("max.partitions.per.request"), "{message}");
    assert!(partition_dirs(dir.path()).is_empty());
    assert!(topics.create(&spec("fits", 10)).is_ok());
}

#[test]
fn the_broker_budget_counts_every_hosted_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = registry(dir.path(), 5, 100);
    topics.create(&spec("a", 3)).expect("within budget");
    let message = policy_violation(topics.create(&spec("b", 3)));
    assert!(message.contains("hosts 3 partitions; 3 more"), "{message}");
    assert!(
        message.contains("limit of 5 (max.broker.partitions)"),
        "{message}"
    );
    let grown = topics.add_partitions("a", 6, false);
    assert!(
        matches!(grown, Err(RegistryError::PolicyViolation(_))),
        "{grown:?}"
    );
    topics
        .add_partitions("a", 5, false)
        .expect("exactly the budget");
    assert_eq!(topics.hosted_partitions(), 5);
    assert_eq!(partition_dirs(dir.path()).len(), 5);
}

#[test]
fn a_partition_that_cannot_be_created_takes_the_earlier_ones_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = registry(dir.path(), 100, 100);
    // A file where partition 3's directory must go: its creation fails.
    std::fs::write(dir.path().join("t-3"), b"in the way").expect("blocker");
    let created = topics.create(&spec("t", 6));
    assert!(
        matches!(created, Err(RegistryError::Storage(_))),
        "{created:?}"
    );
    assert!(
        partition_dirs(dir.path()).is_empty(),
        "{:?}",
        partition_dirs(dir.path())
    );
    assert!(topics.get("t").is_none());
    // Growing a topic is just as atomic.
    topics.create(&spec("g", 2)).expect("create");
    std::fs::write(dir.path().join("g-4"), b"in the way").expect("blocker");
    assert!(topics.add_partitions("g", 6, false).is_err());
    assert_eq!(partition_dirs(dir.path()), ["g-0", "g-1"]);
    assert_eq!(topics.get("g").map(|t| t.partitions.len()), Some(2));
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
    let config = config(dir.path(), 100, 100);
    let topics = TopicRegistry::open(config, Box::new(FailingStore), &Replay::default())
        .expect("open registry");
    assert!(matches!(
        topics.create(&spec("t", 4)),
        Err(RegistryError::Store(_))
    ));
    assert!(partition_dirs(dir.path()).is_empty());
}

#[test]
fn start_up_removes_partition_directories_no_topic_owns() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let topics = registry(dir.path(), 100, 100);
        topics.create(&spec("kept", 2)).expect("create");
    }
    for stray in ["ghost-0", "ghost-1", "kept-2", "kept-17"] {
        std::fs::create_dir(dir.path().join(stray)).expect("stray dir");
        std::fs::write(dir.path().join(stray).join("00000000000000000000.log"), b"")
            .expect("stray segment");
    }
    std::fs::create_dir(dir.path().join("notes")).expect("unrelated dir");
    std::fs::write(dir.path().join("other-3"), b"a file, not a partition").expect("file");
    let topics = registry(dir.path(), 100, 100);
    assert_eq!(partition_dirs(dir.path()), ["kept-0", "kept-1", "notes"]);
    assert!(dir.path().join("other-3").is_file());
    assert_eq!(topics.hosted_partitions(), 2);
}

#[test]
fn a_new_topic_never_inherits_a_leftover_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topics = registry(dir.path(), 100, 100);
    topics.create(&spec("t", 1)).expect("create");
    let partition = topics
        .get("t")
        .and_then(|t| t.partition(0).cloned())
        .expect("p0");
    partition
        .append(&crate::storage::test_util::simple(3, 1_000), 1_000)
        .expect("append");
    // Deleted from the metadata, its data left behind (a crash before the removal).
    topics
        .commit(|maps| {
            maps.by_name.remove("t");
        })
        .expect("forget the topic");
    drop(partition);
    let recreated = topics.create(&spec("t", 1)).expect("recreate");
    let log_end = recreated.partitions[0].with_log(|log| log.log_end_offset());
    assert_eq!(log_end, 0, "the new topic starts empty");
}
