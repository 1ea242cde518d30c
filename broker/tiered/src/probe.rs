//! What the broker's tests of whole brokers look at inside a [`TieredStorage`] (the
//! `test-support` feature): its bucket, metrics and segment cache, and a leader term's
//! manifest reads and writes, to play a deposed leader.

use tributary_replication::partition::Partition;

use crate::cache::SegmentCache;
use crate::metrics::TieredMetrics;
use crate::store::{PartitionPath, RemoteStorage};
use crate::{Manifest, TieredError, TieredStorage};

/// A view of one [`TieredStorage`]'s insides.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a>(pub(crate) &'a TieredStorage);

impl<'a> Probe<'a> {
    /// The bucket as this tiered storage reaches it.
    pub fn remote(&self) -> &'a RemoteStorage {
        &self.0.remote
    }

    /// Its metrics.
    pub fn metrics(&self) -> &'a TieredMetrics {
        &self.0.metrics
    }

    /// The cache of downloaded segment pieces.
    pub fn cache(&self) -> &'a SegmentCache {
        &self.0.cache
    }

    /// Where `partition` keeps its objects.
    pub fn path_of(&self, partition: &Partition) -> PartitionPath {
        self.0.path_of(partition)
    }

    /// The manifest as the leader term `epoch` knows it.
    pub async fn manifest_for_term(
        &self,
        partition: &Partition,
        at: &PartitionPath,
        epoch: i32,
    ) -> Result<Manifest, TieredError> {
        self.0.manifest_for_term(partition, at, epoch).await
    }

    /// Writes `manifest` over the one its term read or last wrote.
    pub async fn save(
        &self,
        partition: &Partition,
        at: &PartitionPath,
        manifest: &Manifest,
    ) -> Result<(), TieredError> {
        self.0.save(partition, at, manifest).await
    }
}
