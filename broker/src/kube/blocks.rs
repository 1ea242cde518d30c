//! Producer id blocks from the ConfigMap `<cluster>-producer-ids` (Kafka's AllocateProducerIds):
//! the next free id is a shared document ([`super::shared`]), and a block is taken by moving it
//! on with a replace conditional on the resourceVersion read, so two brokers never take the
//! same one.

use std::ops::Range;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use tributary_crds::registration::{
    producer_ids_name, NEXT_PRODUCER_ID_KEY, PRODUCER_ID_BLOCK_SIZE,
};

use super::document::SharedDocument;
use crate::producer::{BlockSource, IdAllocatorError};
use crate::shared_state::Shared;

/// Blocks reserved in the cluster's producer-id ConfigMap.
pub struct ConfigMapBlocks {
    next: SharedDocument<ConfigMap, i64>,
}

impl ConfigMapBlocks {
    /// Blocks of `cluster` in `namespace`.
    pub fn new(client: Client, namespace: &str, cluster: &str) -> ConfigMapBlocks {
        ConfigMapBlocks {
            next: SharedDocument::new(
                client,
                namespace,
                producer_ids_name(cluster),
                NEXT_PRODUCER_ID_KEY,
            ),
        }
    }

    async fn reserve(&self) -> Result<Range<i64>, IdAllocatorError> {
        let next = self
            .next
            .update(&|next| *next = (*next).max(0) + PRODUCER_ID_BLOCK_SIZE)
            .await
            .map_err(IdAllocatorError::Cluster)?;
        Ok(next - PRODUCER_ID_BLOCK_SIZE..next)
    }
}

impl BlockSource for ConfigMapBlocks {
    fn next_block(&self) -> BoxFuture<'_, Result<Range<i64>, IdAllocatorError>> {
        self.reserve().boxed()
    }
}
