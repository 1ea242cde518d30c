//! The append path's decisions, on a standalone broker (its own only replica, so every ISR
//! has one member): who may write where, what min.insync.replicas refuses, and what each
//! writer's answer waits for.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use tokio::time::Instant;

use super::append::*;
use crate::broker::Broker;
use crate::config::{BrokerConfig, Flags};
use bytes::Bytes;

use crate::coordinator_host::InternalTopic;
use crate::metadata::TopicSpec;
use crate::partition::{AppendError, CommitWaitError, Durability, Partition, Role};
use crate::producer::ProducerRef;
use crate::producer::{BatchIdentity, Marker, TxnIndex};
use crate::storage::test_util::simple;
use crate::test_support::{create_topic, partition};

/// The client's check of transactional batches; the tests write none.
struct NoTransactions;

impl TxnCheck for NoTransactions {
    fn check(&self, _: &Partition, _: &BatchIdentity, _: &TxnIndex) -> Result<(), AppendError> {
        Err(AppendError::Transaction(ResponseError::InvalidTxnState))
    }
}

/// A standalone broker with `flags`, and topic `t` (one partition) held to
/// min.insync.replicas=2, more than its one in-sync replica.
fn broker_with(dir: &Path, flags: Flags) -> Arc<Broker> {
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.to_path_buf()),
        commit_journal_bytes: Some(1 << 20),
        ..flags
    })
    .expect("config");
    let broker = Broker::open(config).expect("open");
    let configs = BTreeMap::from([("min.insync.replicas".to_string(), "2".to_string())]);
    create_topic(&broker, "t", 1, configs);
    broker
}

fn broker(dir: &Path) -> Arc<Broker> {
    broker_with(dir, Flags::default())
}

fn client(acks: Acks) -> Origin<'static> {
    Origin::Client {
        acks,
        txn: &NoTransactions,
    }
}

/// One batch of two records to partition `index` of `topic` from `origin`.
fn append_one(broker: &Broker, origin: Origin<'_>, topic: &str, index: i32) -> PartitionResult {
    let records = simple(2, crate::clock::now_ms()).freeze();
    let request = AppendRequest {
        origin,
        now_ms: crate::clock::now_ms(),
        partitions: vec![PartitionData {
            topic,
            index,
            records: Some(&records),
        }],
    };
    let mut results = append_records(broker, request);
    assert_eq!(results.len(), 1, "one outcome per partition");
    results.remove(0)
}

fn log_end(broker: &Broker) -> i64 {
    partition(broker, "t", 0).with_log(|log| log.log_end_offset())
}

#[tokio::test]
async fn a_partition_led_elsewhere_is_refused_with_not_leader_or_follower() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let follower = Role::Follower {
        leader: 7,
        epoch: 1,
    };
    partition(&broker, "t", 0).set_role(follower);
    for origin in [client(Acks::One), Origin::Coordinator] {
        let refused = append_one(&broker, origin, "t", 0).expect_err("not the leader");
        assert!(
            matches!(
                refused,
                AppendRecordsError::NotLeader {
                    role: Some(Role::Follower { leader: 7, .. }),
                    ..
                }
            ),
            "{refused:?}"
        );
        assert_eq!(refused.code(), ResponseError::NotLeaderOrFollower);
    }
    assert_eq!(log_end(&broker), 0, "nothing written");
}

#[tokio::test]
async fn a_partition_the_cluster_does_not_have_is_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    for (topic, index) in [("t", 1), ("nope", 0)] {
        let refused = append_one(&broker, client(Acks::All), topic, index).expect_err("unknown");
        assert_eq!(refused.code(), ResponseError::UnknownTopicOrPartition);
    }
}

#[tokio::test]
async fn acks_all_with_the_isr_below_min_insync_replicas_is_refused_before_the_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let refused = append_one(&broker, client(Acks::All), "t", 0).expect_err("ISR short");
    assert!(
        matches!(
            refused,
            AppendRecordsError::NotEnoughReplicas {
                isr: 1,
                min_isr: 2,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(refused.code(), ResponseError::NotEnoughReplicas);
    assert_eq!(log_end(&broker), 0, "nothing written");
}

#[tokio::test]
async fn acks_one_is_appended_with_the_isr_below_min_insync_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let accepted = append_one(&broker, client(Acks::One), "t", 0).expect("appended");
    assert_eq!(
        (accepted.appended.base_offset, accepted.appended.end_offset),
        (0, 2)
    );
    assert_eq!(
        accepted.wait.wait_for(),
        WaitFor::Nothing,
        "answered at once"
    );
    assert_eq!(log_end(&broker), 2);
}

#[tokio::test]
async fn the_wait_follows_the_acks_and_the_fsync_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let configs = BTreeMap::from([("min.insync.replicas".to_string(), "1".to_string())]);
    create_topic(&broker, "one", 1, configs);
    let wait_for = |acks| {
        let accepted = append_one(&broker, client(acks), "one", 0).expect("appended");
        accepted.wait.wait_for()
    };
    assert_eq!(wait_for(Acks::Zero), WaitFor::Nothing);
    assert_eq!(wait_for(Acks::One), WaitFor::Nothing);
    assert_eq!(
        wait_for(Acks::All),
        WaitFor::Committed {
            durability: Durability::Synced,
            min_isr: Some(1),
        },
        "the ISR, the fsync, and min.insync.replicas read once"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let flags = Flags {
        fsync_acks_all: Some(false),
        fsync_acks_one: Some(true),
        ..Flags::default()
    };
    let broker = broker_with(dir.path(), flags);
    let accepted = append_one(&broker, client(Acks::One), "t", 0).expect("appended");
    assert_eq!(accepted.wait.wait_for(), WaitFor::Local);
    set_min_isr_one(&broker);
    let accepted = append_one(&broker, client(Acks::All), "t", 0).expect("appended");
    assert_eq!(
        accepted.wait.wait_for(),
        WaitFor::Committed {
            durability: Durability::Written,
            min_isr: Some(1),
        }
    );
}

fn set_min_isr_one(broker: &Broker) {
    let configs = BTreeMap::from([("min.insync.replicas".to_string(), "1".to_string())]);
    crate::test_support::set_configs(broker, "t", configs);
}

#[tokio::test]
async fn coordinators_write_internal_topics_and_are_not_held_to_min_insync_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let offsets = InternalTopic::offsets(&broker.config);
    let spec = TopicSpec {
        name: offsets.name.to_string(),
        partitions: 1,
        replication_factor: offsets.replication_factor,
        configs: offsets.configs,
        ..TopicSpec::default()
    };
    broker.admin.ensure_topic(spec).expect("offsets topic");

    let refused = append_one(&broker, client(Acks::One), offsets.name, 0).expect_err("internal");
    assert_eq!(refused.code(), ResponseError::InvalidTopicException);
    let accepted = append_one(&broker, Origin::Coordinator, offsets.name, 0).expect("appended");
    assert_eq!(accepted.appended.base_offset, 0);

    let accepted = append_one(&broker, Origin::Coordinator, "t", 0).expect("no min ISR");
    answered_once_committed_and_synced(&accepted).await;
}

#[tokio::test]
async fn a_marker_waits_for_its_fsync_whatever_the_producer_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = Flags {
        fsync_acks_all: Some(false),
        ..Flags::default()
    };
    let broker = broker_with(dir.path(), flags);
    let marker = Origin::TxnMarker(Marker {
        producer: ProducerRef { id: 5, epoch: 0 },
        commit: false,
        transaction_version: 1,
    });
    let request = AppendRequest {
        origin: marker,
        now_ms: crate::clock::now_ms(),
        partitions: vec![PartitionData {
            topic: "t",
            index: 0,
            records: None,
        }],
    };
    let accepted = append_records(&broker, request)
        .remove(0)
        .expect("marker appended");
    assert_eq!(
        (accepted.appended.base_offset, accepted.appended.end_offset),
        (0, 1)
    );
    answered_once_committed_and_synced(&accepted).await;
}

#[tokio::test]
async fn a_client_partition_without_records_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let empty = Bytes::new();
    for records in [None, Some(&empty)] {
        let request = AppendRequest {
            origin: client(Acks::One),
            now_ms: crate::clock::now_ms(),
            partitions: vec![PartitionData {
                topic: "t",
                index: 0,
                records,
            }],
        };
        let refused = append_records(&broker, request)
            .remove(0)
            .expect_err("no records");
        assert_eq!(refused.code(), ResponseError::CorruptMessage);
    }
}

#[tokio::test]
async fn a_write_committed_after_the_isr_shrank_below_min_insync_replicas_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let accepted = append_one(&broker, client(Acks::One), "t", 0).expect("appended");
    let write = accepted.wait.retargeted(
        accepted.wait.end_offset(),
        WaitFor::Committed {
            durability: Durability::Written,
            min_isr: Some(2),
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    assert_eq!(
        wait(&write, deadline).await,
        Err(WaitError::IsrShrank { isr: 1, min_isr: 2 })
    );
}

#[tokio::test]
async fn a_wait_gives_up_at_its_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let accepted = append_one(&broker, client(Acks::One), "t", 0).expect("appended");
    for wait_for in [
        WaitFor::Local,
        WaitFor::Committed {
            durability: Durability::Synced,
            min_isr: None,
        },
    ] {
        let write = accepted.wait.retargeted(100, wait_for);
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(
            matches!(
                wait(&write, deadline).await,
                Err(WaitError::Commit(CommitWaitError::TimedOut(_)))
            ),
            "{wait_for:?}"
        );
    }
}

/// Asserts that `accepted` waits for its commit and fsync, not for min.insync.replicas, and
/// gets them.
async fn answered_once_committed_and_synced(accepted: &Accepted) {
    let committed = WaitFor::Committed {
        durability: Durability::Synced,
        min_isr: None,
    };
    assert_eq!(accepted.wait.wait_for(), committed);
    let deadline = Instant::now() + Duration::from_secs(10);
    assert_eq!(wait(&accepted.wait, deadline).await, Ok(()));
}
