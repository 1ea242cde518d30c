//! What the transaction coordinator needs of the rest of the broker: producer ids, markers
//! in the transaction's partitions, and the group coordinator for transactional offsets.
//! A narrow trait, so the coordinator depends on no broker type and tests can stand in.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;

use super::coordinator::ProducerRef;
use crate::group::coordinator::CommitOffset;
use crate::partition::{CommitWaitError, Durability, Partition};

/// How long a marker may take to be committed before the end is retried later.
pub const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// A marker appended to a partition, on its way to being committed.
#[derive(Debug)]
pub struct MarkerWrite {
    partition: Arc<Partition>,
    end_offset: i64,
}

impl MarkerWrite {
    /// A marker in `partition` whose offset ends before `end_offset`.
    pub fn new(partition: Arc<Partition>, end_offset: i64) -> MarkerWrite {
        MarkerWrite {
            partition,
            end_offset,
        }
    }

    /// Returns once the marker is committed and durable.
    pub async fn committed(&self, timeout: Duration) -> Result<(), ResponseError> {
        self.partition
            .wait_committed(self.end_offset, Durability::Synced, timeout)
            .await
            .map_err(|error| match error {
                CommitWaitError::Gone => ResponseError::UnknownTopicOrPartition,
                CommitWaitError::TimedOut(_) => ResponseError::RequestTimedOut,
            })
    }
}

/// The broker as the transaction coordinator sees it.
pub trait TxnHost: Send + Sync {
    /// A producer id no other producer has.
    fn next_producer_id(&self) -> BoxFuture<'_, Result<i64, ResponseError>>;

    /// Appends `producer`'s COMMIT or ABORT marker to the partition and starts making it
    /// durable; `Ok(None)` when the partition no longer exists (nothing is left to mark).
    fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        producer: ProducerRef,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<MarkerWrite>, ResponseError>;

    /// Commits offsets sent with a transaction to `group` once the transaction commits.
    fn commit_offsets<'a>(
        &'a self,
        group: &'a str,
        offsets: Vec<CommitOffset>,
    ) -> BoxFuture<'a, Result<(), ResponseError>>;
}
