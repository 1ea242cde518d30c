//! The share coordinator over an in-memory log: state written, read back, fenced, and
//! rebuilt from the log by a coordinator that takes the partition over.

use uuid::Uuid;

use super::*;
use crate::log::memory::MemoryLog;
use crate::share::partition::RecordState;

fn key(partition: i32) -> SharePartitionKey {
    SharePartitionKey {
        group: "queue".into(),
        topic: Uuid::from_u128(9),
        partition,
    }
}

fn acked(first: i64, last: i64) -> StateRange {
    StateRange {
        first,
        last,
        state: RecordState::Acknowledged,
        delivery_count: 1,
    }
}

fn coordinator(log: &Arc<MemoryLog>) -> Arc<ShareCoordinator> {
    let log: Arc<dyn CoordinatorLog> = log.clone();
    let c = ShareCoordinator::new(log, Duration::from_secs(5));
    c.sync_leadership();
    c
}

#[tokio::test]
async fn state_is_written_read_back_and_survives_a_new_coordinator() {
    let log = Arc::new(MemoryLog::with_partitions(STATE_PARTITIONS));
    let c = coordinator(&log);
    assert_eq!(c.read(&key(0), 1).await, Ok(None), "never initialized");
    c.initialize(&key(0), 0, 10).await.expect("initialized");
    c.write(&key(0), 0, 1, Some(12), &[acked(12, 15)])
        .await
        .expect("written");
    let expected = StoredState {
        state_epoch: 0,
        start_offset: 12,
        ranges: vec![acked(12, 15)],
    };
    assert_eq!(c.read(&key(0), 1).await, Ok(Some(expected.clone())));

    // Another broker taking the partition over replays the same state from the log.
    let next = coordinator(&log);
    assert_eq!(next.read(&key(0), 2).await, Ok(Some(expected)));
    assert_eq!(next.read(&key(1), 2).await, Ok(None));
}

#[tokio::test]
async fn a_deposed_leader_cannot_write_after_the_new_one_read() {
    let log = Arc::new(MemoryLog::with_partitions(STATE_PARTITIONS));
    let c = coordinator(&log);
    c.initialize(&key(0), 0, 0).await.expect("initialized");
    c.read(&key(0), 4).await.expect("old leader");
    c.read(&key(0), 5).await.expect("new leader");
    assert_eq!(
        c.write(&key(0), 0, 4, None, &[acked(0, 0)]).await,
        Err(ResponseError::FencedLeaderEpoch)
    );
    assert_eq!(
        c.write(&key(0), -1, 5, None, &[acked(0, 0)]).await,
        Err(ResponseError::FencedStateEpoch)
    );
    // The fencing survives a new coordinator: the read was recorded in the log.
    let next = coordinator(&log);
    assert_eq!(
        next.write(&key(0), 0, 4, None, &[acked(0, 0)]).await,
        Err(ResponseError::FencedLeaderEpoch)
    );
    assert_eq!(
        next.write(&key(0), 0, 5, None, &[acked(0, 0)]).await,
        Ok(())
    );
}

#[tokio::test]
async fn a_lost_partition_answers_not_coordinator_and_a_deleted_state_is_gone() {
    let log = Arc::new(MemoryLog::with_partitions(STATE_PARTITIONS));
    let c = coordinator(&log);
    c.initialize(&key(0), 0, 0).await.expect("initialized");
    let partition = c.state_partition(&key(0)).expect("partition");
    log.set_leader(partition, None);
    assert_eq!(
        c.write(&key(0), 0, 1, None, &[]).await,
        Err(ResponseError::NotCoordinator)
    );
    log.set_leader(partition, Some(1));
    c.write(&key(0), 0, 1, None, &[acked(0, 3)])
        .await
        .expect("led again");
    c.delete(&key(0)).await.expect("deleted");
    assert_eq!(c.read(&key(0), 1).await, Ok(None));
    assert_eq!(coordinator(&log).read(&key(0), 1).await, Ok(None));
}

#[tokio::test]
async fn old_records_are_pruned_and_an_idle_share_partition_is_snapshotted_afresh() {
    let log = Arc::new(MemoryLog::with_partitions(STATE_PARTITIONS));
    let c = coordinator(&log);
    // Two share-partitions of one state partition: one busy, one idle.
    let busy = key(0);
    let partition = c.state_partition(&busy).expect("partition");
    let idle = (1..1_000)
        .map(key)
        .find(|k| c.state_partition(k) == Ok(partition))
        .expect("a second key in the partition");
    c.initialize(&idle, 0, 0).await.expect("initialized");
    c.write(&idle, 0, 1, Some(3), &[acked(3, 4)])
        .await
        .expect("written");
    c.initialize(&busy, 0, 0).await.expect("initialized");
    let writes = 3 * i64::from(crate::share::state::UPDATES_PER_SNAPSHOT);
    for i in 0..writes {
        c.write(&busy, 0, 1, None, &[acked(i, i)])
            .await
            .expect("written");
    }
    let start = log.log_start(partition);
    assert!(
        start > 2,
        "the idle share-partition's first records are gone: {start}"
    );
    let kept = log.read(partition, 0).expect("read").records.len();
    let kept = i64::try_from(kept).expect("count");
    assert!(
        kept <= 2 * COLD_RECORDS,
        "{kept} of {} records kept",
        writes + 3
    );

    // A coordinator taking the partition over rebuilds both from what is left.
    let idle_state = c.read(&idle, 1).await.expect("read");
    let busy_state = c.read(&busy, 1).await.expect("read");
    assert_eq!(
        idle_state,
        Some(StoredState {
            state_epoch: 0,
            start_offset: 3,
            ranges: vec![acked(3, 4)],
        })
    );
    let next = coordinator(&log);
    assert_eq!(next.read(&idle, 2).await.expect("read"), idle_state);
    assert_eq!(next.read(&busy, 2).await.expect("read"), busy_state);

    // Once every share-partition is deleted, nothing is kept.
    next.delete(&idle).await.expect("deleted");
    next.delete(&busy).await.expect("deleted");
    assert!(log.read(partition, 0).expect("read").records.is_empty());
    assert_eq!(coordinator(&log).read(&busy, 3).await, Ok(None));
}
