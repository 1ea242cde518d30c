//! Applying images to the hosted replicas: what is opened, in which role, what follows
//! config changes, and what is deleted when a topic goes, a replica moves away, or a topic
//! comes back under the same name.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::ReplicaManager;
use crate::config::{BrokerConfig, Flags};
use crate::journal::Replay;
use crate::metadata::{BrokerInfo, ClusterImage, IsrMember, PartitionState, TopicImage};
use crate::partition::Role;
use crate::topics::config::replica_settings;
use tributary_replication::replicas::Applied;

const ME: i32 = 1;

fn manager(dir: &std::path::Path) -> ReplicaManager {
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.to_path_buf()),
        broker_id: Some(ME),
        ..Flags::default()
    })
    .expect("config");
    ReplicaManager::new(replica_settings(&Arc::new(config)), Replay::default())
}

fn state(replicas: &[i32], leader: i32, epoch: i32) -> PartitionState {
    PartitionState {
        replicas: replicas.to_vec(),
        leader,
        leader_epoch: epoch,
        partition_epoch: epoch,
        isr: replicas
            .iter()
            .map(|&broker| IsrMember {
                broker,
                incarnation: 1,
            })
            .collect(),
        adding: Vec::new(),
        removing: Vec::new(),
    }
}

fn topic(name: &str, id: Uuid, partitions: Vec<PartitionState>) -> TopicImage {
    TopicImage {
        name: name.into(),
        id,
        configs: BTreeMap::new(),
        replication_factor: 3,
        partitions,
    }
}

fn image(topics: Vec<TopicImage>) -> ClusterImage {
    let brokers = (0..3)
        .map(|id| BrokerInfo {
            id,
            host: "h".into(),
            port: 9092,
            rack: None,
            incarnation: 1,
            endpoints: Vec::new(),
        })
        .collect();
    topics.into_iter().fold(
        ClusterImage::new("c".into(), 0, brokers),
        ClusterImage::with_topic,
    )
}

fn key(topic: &str, index: i32) -> (String, i32) {
    (topic.to_string(), index)
}

#[test]
fn replicas_assigned_here_open_as_leaders_or_followers_of_the_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path());
    let id = Uuid::new_v4();
    let applied = m.apply(&image(vec![topic(
        "t",
        id,
        vec![
            state(&[1, 2], 1, 4),
            state(&[2, 0], 2, 0),
            state(&[0, 1], 0, 7),
        ],
    )]));
    assert_eq!(
        applied.opened,
        [key("t", 0), key("t", 2)],
        "partition 1 is not ours"
    );
    assert_eq!(
        m.get("t", 0).map(|p| p.role()),
        Some(Role::Leader { epoch: 4 })
    );
    assert_eq!(
        m.get("t", 2).map(|p| p.role()),
        Some(Role::Follower {
            leader: 0,
            epoch: 7
        })
    );
    assert!(m.get("t", 1).is_none());
    // A leadership change moves the role; nothing is reopened.
    let applied = m.apply(&image(vec![topic(
        "t",
        id,
        vec![
            state(&[1, 2], 2, 5),
            state(&[2, 0], 2, 0),
            state(&[0, 1], 1, 8),
        ],
    )]));
    assert_eq!(applied, Applied::default());
    assert_eq!(
        m.get("t", 0).map(|p| p.role()),
        Some(Role::Follower {
            leader: 2,
            epoch: 5
        })
    );
    assert_eq!(
        m.get("t", 2).map(|p| p.role()),
        Some(Role::Leader { epoch: 8 })
    );
}

#[test]
fn a_replica_moved_away_or_a_deleted_topic_is_deleted_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path());
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    m.apply(&image(vec![
        topic("a", a, vec![state(&[1], 1, 0), state(&[1, 2], 1, 0)]),
        topic("b", b, vec![state(&[1], 1, 0)]),
    ]));
    assert_eq!(m.hosted(), 3);
    let applied = m.apply(&image(vec![topic(
        "a",
        a,
        vec![state(&[1], 1, 0), state(&[0, 2], 2, 1)],
    )]));
    assert_eq!(applied.deleted, [key("a", 1), key("b", 0)]);
    assert!(!dir.path().join("a-1").exists() && !dir.path().join("b-0").exists());
    assert!(dir.path().join("a-0").exists());
}

#[test]
fn a_topic_re_created_under_its_old_name_starts_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path());
    m.apply(&image(vec![topic(
        "t",
        Uuid::new_v4(),
        vec![state(&[1], 1, 0)],
    )]));
    let old = m.get("t", 0).expect("p0");
    old.append(&crate::storage::test_util::simple(2, 1_000), 1_000)
        .expect("append");
    drop(old);
    let new_id = Uuid::new_v4();
    let applied = m.apply(&image(vec![topic("t", new_id, vec![state(&[1], 1, 0)])]));
    assert_eq!((applied.deleted.len(), applied.opened.len()), (1, 1));
    let p0 = m.get("t", 0).expect("p0");
    assert_eq!(p0.topic_id(), new_id);
    assert_eq!(p0.with_log(|log| log.log_end_offset()), 0);
}

#[test]
fn config_changes_reach_hosted_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path());
    let id = Uuid::new_v4();
    m.apply(&image(vec![topic("t", id, vec![state(&[1], 1, 0)])]));
    let mut compacted = topic("t", id, vec![state(&[1], 1, 0)]);
    compacted
        .configs
        .insert("cleanup.policy".into(), "compact".into());
    m.apply(&image(vec![compacted]));
    let p0 = m.get("t", 0).expect("p0");
    let keyless = p0.append_verified(
        &crate::storage::test_util::simple(1, 1_000).freeze(),
        1_000,
        &|_, _| Ok(()),
        false,
    );
    assert!(
        keyless.is_err(),
        "a compacted topic refuses records without keys"
    );
}

#[test]
fn the_first_apply_removes_directories_the_image_does_not_assign_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("moved-0")).expect("stray");
    let m = manager(dir.path());
    m.apply(&image(vec![topic(
        "t",
        Uuid::new_v4(),
        vec![state(&[1], 1, 0)],
    )]));
    assert!(!dir.path().join("moved-0").exists());
    std::fs::create_dir(dir.path().join("later-0")).expect("a directory after start-up");
    m.apply(&image(vec![topic(
        "t",
        Uuid::new_v4(),
        vec![state(&[1], 1, 0)],
    )]));
    assert!(
        dir.path().join("later-0").exists(),
        "only the start-up apply cleans the data directory"
    );
}

#[test]
fn a_restarted_broker_does_not_lead_what_the_image_recorded_under_its_earlier_incarnation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.path().to_path_buf()),
        broker_id: Some(ME),
        ..Flags::default()
    })
    .expect("config");
    // This process registered as incarnation 2; the image still names incarnation 1 leader.
    let m = ReplicaManager::build(super::ReplicaParts {
        incarnation: Some(2),
        ..super::ReplicaParts::new(replica_settings(&Arc::new(config)), Replay::default())
    });
    let id = Uuid::new_v4();
    m.apply(&image(vec![topic("t", id, vec![state(&[1, 2], 1, 4)])]));
    assert_eq!(
        m.get("t", 0).map(|p| p.role()),
        Some(Role::Follower {
            leader: crate::metadata::NO_LEADER,
            epoch: 4
        }),
        "no leading, and no one to follow, until the controller elects"
    );
    // The controller elects the other replica at a new epoch, then this incarnation joins the
    // ISR and is elected back: now it leads.
    m.apply(&image(vec![topic("t", id, vec![state(&[1, 2], 2, 5)])]));
    assert_eq!(
        m.get("t", 0).map(|p| p.role()),
        Some(Role::Follower {
            leader: 2,
            epoch: 5
        })
    );
    let mut back = state(&[1, 2], 1, 6);
    back.isr[0].incarnation = 2;
    m.apply(&image(vec![topic("t", id, vec![back])]));
    assert_eq!(
        m.get("t", 0).map(|p| p.role()),
        Some(Role::Leader { epoch: 6 })
    );
}
