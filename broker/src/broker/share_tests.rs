//! The share coordinator on a real broker: its state lives in `__share_group_state`, created
//! on first use as an internal topic, and a broker opened again on the same data directory
//! reads back what was written.

use std::sync::Arc;

use uuid::Uuid;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Flags};
use crate::share::coordinator::StoredState;
use crate::share::partition::{RecordState, StateRange};
use crate::share::records::{SharePartitionKey, SHARE_STATE_TOPIC};

fn open_broker(dir: &std::path::Path) -> Arc<Broker> {
    let config = BrokerConfig::resolve(Flags {
        data_dir: Some(dir.to_path_buf()),
        commit_journal_bytes: Some(1 << 20),
        ..Flags::default()
    })
    .expect("config");
    Broker::open(config).expect("open broker")
}

fn key() -> SharePartitionKey {
    SharePartitionKey {
        group: "queue".into(),
        topic: Uuid::from_u128(42),
        partition: 0,
    }
}

/// Retries while the state topic is being created (COORDINATOR_NOT_AVAILABLE) or loaded.
async fn until_served<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kafka_protocol::error::ResponseError>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{what}: still {error:?} after 20 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn share_state_is_kept_in_its_internal_topic_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = StateRange {
        first: 3,
        last: 5,
        state: RecordState::Acknowledged,
        delivery_count: 1,
    };
    let key = key();
    {
        let broker = open_broker(dir.path());
        let shares = broker.shares.clone();
        until_served("initialize", || shares.initialize(&key, 0, 3)).await;
        until_served("write", || {
            shares.write(&key, 0, 0, Some(3), std::slice::from_ref(&acked))
        })
        .await;
        let topic = crate::test_support::topic(&broker, SHARE_STATE_TOPIC).expect("created");
        assert!(topic.is_internal(), "an internal topic");
        let config = |key: &str| topic.configs.get(key).map(String::as_str);
        assert_eq!(config("cleanup.policy"), Some("delete"));
        assert_eq!(
            config("retention.ms"),
            Some("-1"),
            "state is pruned by the coordinator, never expired by time"
        );
    }
    let broker = open_broker(dir.path());
    let shares = broker.shares.clone();
    let read = until_served("read", || shares.read(&key, 0)).await;
    assert_eq!(
        read,
        Some(StoredState {
            state_epoch: 0,
            start_offset: 3,
            ranges: vec![acked],
        })
    );
}

#[tokio::test]
async fn records_of_share_group_state_no_longer_needed_are_deleted_and_the_state_survives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key();
    let writes = 3 * i64::from(crate::share::state::UPDATES_PER_SNAPSHOT);
    let expected = {
        let broker = open_broker(dir.path());
        let shares = broker.shares.clone();
        until_served("initialize", || shares.initialize(&key, 0, 0)).await;
        for i in 0..writes {
            let range = StateRange {
                first: i,
                last: i,
                state: RecordState::Acknowledged,
                delivery_count: 1,
            };
            until_served("write", || {
                shares.write(&key, 0, 0, None, std::slice::from_ref(&range))
            })
            .await;
        }
        let partition = shares.state_partition(&key).expect("partition");
        let replica = broker
            .replicas
            .get(SHARE_STATE_TOPIC, partition)
            .expect("a replica");
        let (start, end) = replica.with_log(|log| (log.log_start_offset(), log.log_end_offset()));
        assert!(
            start >= writes - i64::from(crate::share::state::UPDATES_PER_SNAPSHOT),
            "records before the last snapshot are deleted: start {start}, end {end}"
        );
        until_served("read", || shares.read(&key, 1)).await
    };
    // Opened again, the broker rebuilds the state from what is left.
    let broker = open_broker(dir.path());
    let shares = broker.shares.clone();
    assert_eq!(
        until_served("read", || shares.read(&key, 2)).await,
        expected
    );
}
