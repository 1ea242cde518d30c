//! Followers that fsync before they acknowledge (`replica.fsync.before.ack`): replication and
//! acks=all work as before, and once the leader's high watermark covers the records every
//! follower has them on disk, not only in its page cache. The replica MaxLag metric reads 0
//! once the followers caught up.

use tributary_e2e::clients::java;

use crate::operated::{count, served, wait_for_isr, Operated};
use crate::support::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_follower_fsync_every_in_sync_replica_holds_acknowledged_records_on_disk() {
    let cluster = Operated::start_tuned(|flags| flags.replica_fsync_before_ack = Some(true)).await;
    cluster.plane.create_topic("synced", 1, 3).await;
    let layout = served(&cluster, "synced", 1).await;
    let leader = i32::try_from(layout[0].1).unwrap_or(-1);
    wait_for_isr(&cluster, "synced-0", 3).await;
    let bootstrap = cluster.broker(leader).address.clone();

    let acks = java(
        &[
            "produce",
            "--bootstrap",
            &bootstrap,
            "--topic",
            "synced",
            "--count",
            "300",
            "--value-prefix",
            "s",
            "--prop",
            "acks=all",
        ],
        None,
    )
    .await;
    assert_eq!(count(&acks, "ack"), 300, "{acks:?}");
    // Every acknowledged record is below the leader's high watermark, which counts only
    // positions the followers reported after fsyncing them.
    let replica = |id: i32| {
        cluster
            .broker(id)
            .broker
            .replicas
            .get("synced", 0)
            .unwrap_or_else(|| panic!("broker {id} hosts no replica of synced-0"))
    };
    let hw = replica(leader).with_log(|log| log.high_watermark());
    assert_eq!(hw, 300);
    for follower in (0..3).filter(|id| *id != leader) {
        let p = replica(follower);
        let (end, durable) = (p.fetch_position().0, p.durable_offset());
        assert_eq!(end, 300, "broker {follower} holds every record");
        assert!(
            durable >= end,
            "broker {follower} reported {end} with only {durable} fsynced"
        );
    }

    // Caught up: no follower lags its leader.
    for id in 0..3 {
        let lag = &cluster.broker(id).broker.metrics.replica_max_lag;
        wait_until(&format!("broker {id}'s MaxLag to read 0"), || async {
            (lag.get() == 0).then_some(())
        })
        .await;
    }

    let read = java(
        &[
            "consume",
            "--bootstrap",
            &bootstrap,
            "--topic",
            "synced",
            "--max",
            "300",
            "--timeout-ms",
            "30000",
        ],
        None,
    )
    .await;
    assert_eq!(count(&read, "record"), 300, "{read:?}");
    cluster.stop().await;
}
