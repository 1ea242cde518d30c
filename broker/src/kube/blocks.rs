//! Producer id blocks from the ConfigMap `<cluster>-producer-ids` (Kafka's AllocateProducerIds):
//! a block is taken by a replace conditional on the resourceVersion read, so two brokers never
//! take the same one.

use std::collections::BTreeMap;
use std::ops::Range;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};
use tributary_crds::registration::{
    producer_ids_name, NEXT_PRODUCER_ID_KEY, PRODUCER_ID_BLOCK_SIZE,
};

use super::error::is_conflict;
use crate::producer::{BlockSource, IdAllocatorError};

/// Attempts before a reservation gives up on losing races.
const ATTEMPTS: usize = 50;

/// Blocks reserved in the cluster's producer-id ConfigMap.
pub struct ConfigMapBlocks {
    api: Api<ConfigMap>,
    name: String,
}

impl ConfigMapBlocks {
    /// Blocks of `cluster` in `namespace`.
    pub fn new(client: Client, namespace: &str, cluster: &str) -> ConfigMapBlocks {
        ConfigMapBlocks {
            api: Api::namespaced(client, namespace),
            name: producer_ids_name(cluster),
        }
    }

    async fn reserve(&self) -> Result<Range<i64>, IdAllocatorError> {
        let failed = |what: &str, e: kube::Error| {
            IdAllocatorError::Cluster(format!("{what} ConfigMap {}: {e}", self.name))
        };
        for _ in 0..ATTEMPTS {
            let existing = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| failed("read", e))?;
            let written = match existing {
                None => {
                    // The operator creates it; a broker may come first.
                    let map = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            ..ObjectMeta::default()
                        },
                        data: Some(BTreeMap::from([(
                            NEXT_PRODUCER_ID_KEY.to_string(),
                            PRODUCER_ID_BLOCK_SIZE.to_string(),
                        )])),
                        ..ConfigMap::default()
                    };
                    self.api
                        .create(&PostParams::default(), &map)
                        .await
                        .map(|_| 0)
                }
                Some(mut map) => {
                    let start = map
                        .data
                        .as_ref()
                        .and_then(|d| d.get(NEXT_PRODUCER_ID_KEY))
                        .and_then(|v| v.trim().parse::<i64>().ok())
                        .unwrap_or(0)
                        .max(0);
                    map.data.get_or_insert_with(BTreeMap::new).insert(
                        NEXT_PRODUCER_ID_KEY.to_string(),
                        (start + PRODUCER_ID_BLOCK_SIZE).to_string(),
                    );
                    self.api
                        .replace(&self.name, &PostParams::default(), &map)
                        .await
                        .map(|_| start)
                }
            };
            match written {
                Ok(start) => return Ok(start..start + PRODUCER_ID_BLOCK_SIZE),
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(failed("update", e)),
            }
        }
        Err(IdAllocatorError::Cluster(format!(
            "ConfigMap {} kept changing; no block reserved",
            self.name
        )))
    }
}

impl BlockSource for ConfigMapBlocks {
    fn next_block(&self) -> BoxFuture<'_, Result<Range<i64>, IdAllocatorError>> {
        self.reserve().boxed()
    }
}
