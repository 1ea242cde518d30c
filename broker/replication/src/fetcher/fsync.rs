//! Followers that fsync before they acknowledge (`replica.fsync.before.ack`). A follower's
//! fetch offset tells its leader how far its copy reaches, and the leader moves the high
//! watermark, and answers acks=all, by the lowest such position over the ISR. By default (as in
//! Kafka) a follower reports what it has written to the page cache; with this setting it
//! reports only what it has fsynced, so an acknowledged acks=all record is on disk on every
//! in-sync replica and survives a power loss of all of them (Redpanda's guarantee). The cost is
//! one fsync round per fetch round on each follower, in the same group-commit rounds the
//! broker's own acks=all writes use.

use std::sync::Arc;
use std::time::Duration;

use crate::flusher::Flusher;
use crate::partition::Partition;

/// Longest a fetcher waits for its fsync round before it looks again; a partition whose
/// position is not durable by then is left out of the next fetch rather than reported early.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// Whether the next fetch may report `partition`'s position (its log end): always by default,
/// and with `fsync_before_ack` only once everything below it is fsynced.
pub fn may_report(partition: &Partition, fsync_before_ack: bool) -> bool {
    !fsync_before_ack || partition.durable_offset() >= partition.fetch_position().0
}

/// Fsyncs what `partitions` hold beyond their durable offsets, in the flusher's shared rounds,
/// and waits (at most [`SYNC_WAIT`]) until it is durable.
pub async fn sync_fetched(flusher: &Flusher, partitions: &[Arc<Partition>]) {
    let unsynced: Vec<(&Arc<Partition>, i64)> = partitions
        .iter()
        .filter_map(|p| {
            let end = p.fetch_position().0;
            (p.durable_offset() < end).then_some((p, end))
        })
        .collect();
    if unsynced.is_empty() {
        return;
    }
    flusher.request_syncs(unsynced.iter().map(|(p, _)| *p));
    let durable = futures::future::join_all(unsynced.iter().map(|(p, end)| p.wait_durable(*end)));
    if tokio::time::timeout(SYNC_WAIT, durable).await.is_err() {
        tracing::warn!(
            partitions = unsynced.len(),
            "follower fsync is slow; its position is reported once it is durable"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use uuid::Uuid;

    use super::*;
    use crate::partition::{Isolation, Role};
    use tributary_storage::journal::Replay;
    use tributary_storage::test_util::{simple, NOW};
    use tributary_storage::LogConfig;

    fn open(dir: &Path, role: Role) -> Arc<Partition> {
        let topic = ("t", Uuid::nil());
        let config = LogConfig::default();
        let partition = Partition::open(dir, topic, 0, role, config.into(), &Replay::default());
        Arc::new(partition.expect("open"))
    }

    fn flusher() -> Flusher {
        let seconds = prometheus::Histogram::with_opts(prometheus::histogram_opts!("f", "f"));
        Flusher::new(
            seconds.expect("histogram"),
            prometheus::IntCounter::new("w", "w").expect("counter"),
            None,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_fsync_before_ack_a_follower_reports_only_what_it_has_fsynced() {
        let leader_dir = tempfile::tempdir().expect("tempdir");
        let follower_dir = tempfile::tempdir().expect("tempdir");
        let leader = open(leader_dir.path(), Role::Leader { epoch: 3 });
        for _ in 0..3 {
            leader.append(&simple(4, NOW), NOW).expect("append");
        }
        let fetched = leader
            .read(0, 1 << 20, true, Isolation::ReadUncommitted)
            .expect("read");
        let role = Role::Follower {
            leader: 0,
            epoch: 3,
        };
        let follower = open(follower_dir.path(), role);
        follower
            .append_from_leader(&fetched.records, fetched.high_watermark, 0, NOW)
            .expect("append from leader");
        assert_eq!(follower.fetch_position().0, 12);
        assert_eq!(follower.durable_offset(), 0, "written, not fsynced");
        assert!(may_report(&follower, false), "the default reports writes");
        assert!(!may_report(&follower, true), "not before the fsync");

        let flusher = flusher();
        sync_fetched(&flusher, std::slice::from_ref(&follower)).await;
        assert!(may_report(&follower, true));
        assert_eq!(follower.durable_offset(), follower.fetch_position().0);

        // Nothing new: no fsync, nothing to wait for.
        sync_fetched(&flusher, std::slice::from_ref(&follower)).await;
        assert!(may_report(&follower, true));
    }
}
