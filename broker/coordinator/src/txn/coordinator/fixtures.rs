//! What the coordinator's tests share: a stand-in for the broker (producer ids from a counter,
//! markers that find their partition gone, so nothing to wait on, or fail while told to,
//! offsets committed at once) and a transaction opened on one partition.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::TransactionCoordinator;
use crate::offset_commit::CommitOffset;
use crate::txn::{Marker, MarkerWrite, ProducerRef, TxnHost};

/// The transaction timeout the tests' producers ask for.
pub(super) const TIMEOUT_MS: i32 = 60_000;

/// The broker as the tests' coordinators see it.
#[derive(Default)]
pub(super) struct Host {
    ids: AtomicI64,
    /// Markers fail (NOT_LEADER_OR_FOLLOWER) while set.
    pub(super) failing: AtomicBool,
    /// Markers are refused for their epoch (INVALID_PRODUCER_EPOCH, as a partition that
    /// already holds them answers) while set.
    pub(super) already_marked: AtomicBool,
    /// Every marker asked for, in order.
    pub(super) markers: Mutex<Vec<Marker>>,
}

impl TxnHost for Host {
    fn next_producer_id(&self) -> BoxFuture<'_, Result<i64, ResponseError>> {
        let id = self.ids.fetch_add(1, Ordering::SeqCst) + 100;
        async move { Ok(id) }.boxed()
    }

    fn append_marker(
        &self,
        _topic: &str,
        _partition: i32,
        marker: Marker,
        _now_ms: i64,
    ) -> Result<Option<MarkerWrite>, ResponseError> {
        self.markers.lock().push(marker);
        if self.failing.load(Ordering::SeqCst) {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        if self.already_marked.load(Ordering::SeqCst) {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        Ok(None)
    }

    fn commit_offsets<'a>(
        &'a self,
        _group: &'a str,
        _offsets: Vec<CommitOffset>,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        async { Ok(()) }.boxed()
    }
}

/// `id`'s producer initialized with [`TIMEOUT_MS`] and its transaction opened on `t-0`.
pub(super) async fn open(c: &Arc<TransactionCoordinator>, host: &Host, id: &str) -> ProducerRef {
    let p = c
        .init_producer_id(host, id, TIMEOUT_MS, None)
        .await
        .expect("init");
    c.add_partitions(id, p, &[("t".into(), 0)])
        .await
        .expect("add");
    p
}
