//! The broker as the parts below it see it: each of them names only the narrow trait it
//! needs (the append path, the follower fetchers, the coordinators' logs and markers, the
//! transaction coordinator, the controlled shutdown), and the broker implements them here,
//! so none of those parts depends on the broker.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;

use super::Broker;
use crate::config::BrokerConfig;
use crate::coordinator_host::txn_verify::VerifyHost;
use crate::coordinator_host::CoordinatorHost;
use crate::flusher::Flusher;
use crate::group::coordinator::CommitOffset;
use crate::kube::registration::Registrar;
use crate::kube::shutdown::Registered;
use crate::metadata::{MetadataCache, MetadataSource};
use crate::partition::Partition;
use crate::peer::PeerConnection;
use crate::quotas::replication::{is_throttled, FOLLOWER_RATE_KEY, FOLLOWER_REPLICAS_KEY};
use crate::replica::append::{AckDurability, AppendHost};
use crate::replica::fetcher::lag::FollowedKey;
use crate::replica::fetcher::{self, FetcherHost, FetcherSettings, LeaderLink, RemoteRebuild};
use crate::replica::{ReplicaHost, ReplicaManager};
use crate::security::peer::PeerSecurity;
use crate::share::coordinator::ShareCoordinator;
use crate::share_state::ShareStateHost;
use crate::txn::{Marker, MarkerWrite, ProducerRef, TransactionCoordinator, TxnHost};

impl VerifyHost for Broker {
    fn txns(&self) -> &Arc<TransactionCoordinator> {
        &self.txns
    }

    fn peer_security(&self) -> &Arc<PeerSecurity> {
        &self.peer_security
    }
}

impl ReplicaHost for Broker {
    fn config(&self) -> &BrokerConfig {
        &self.config
    }
}

impl AppendHost for Broker {
    fn ack_durability(&self) -> AckDurability {
        AckDurability {
            fsync_acks_all: self.config.fsync_acks_all,
            fsync_acks_one: self.config.fsync_acks_one,
        }
    }

    fn metadata(&self) -> &MetadataCache {
        &self.metadata
    }

    fn replicas(&self) -> &ReplicaManager {
        &self.replicas
    }

    fn flusher(&self) -> &Flusher {
        &self.flusher
    }
}

impl FetcherHost for Broker {
    fn fetcher_settings(&self) -> FetcherSettings {
        FetcherSettings {
            broker_id: self.config.broker_id,
            replica_lag_time_max_ms: self.config.replica_lag_time_max_ms,
            replica_fetch_wait_max_ms: self.config.replica_fetch_wait_max_ms,
            replica_fsync_before_ack: self.config.replica_fsync_before_ack,
        }
    }

    fn link_to(&self, address: String) -> Box<dyn LeaderLink> {
        Box::new(PeerConnection::new(address, self.peer_security.clone()))
    }

    fn incarnation(&self) -> i64 {
        self.registrar.as_ref().map_or(-1, |r| r.incarnation())
    }

    fn report_refusal(&self, leader: i32, incarnation: Option<i64>) {
        let Some(registrar) = self.registrar.clone() else {
            return;
        };
        if registrar.report_refusal(leader, incarnation) {
            tokio::spawn(
                async move { registrar.renew_now("reporting a refused connection").await },
            );
        }
    }

    fn throttled_replicas(&self, sent: &[Arc<Partition>]) -> HashSet<FollowedKey> {
        follower_throttled(self, sent)
    }

    fn follower_throttle_used_up(&self, now_ms: i64) -> bool {
        let bound = self.config.dynamic.replication_rate(FOLLOWER_RATE_KEY);
        self.replication_quotas.follower.exceeded(bound, now_ms)
    }

    fn record_throttled_bytes(&self, bytes: usize, now_ms: i64) {
        self.replication_quotas.follower.record(bytes, now_ms);
    }

    fn remote_rebuild(&self) -> Option<Arc<dyn RemoteRebuild>> {
        self.tiered
            .clone()
            .map(|tiered| tiered as Arc<dyn RemoteRebuild>)
    }
}

/// The replicas in `sent` the follower's replication throttle applies to (listed in their
/// topic's `follower.replication.throttled.replicas`, not in the ISR), when it is bounded.
fn follower_throttled(broker: &Broker, sent: &[Arc<Partition>]) -> HashSet<FollowedKey> {
    let config = &broker.config;
    if config.dynamic.replication_rate(FOLLOWER_RATE_KEY).is_none() {
        return HashSet::new();
    }
    let image = broker.metadata.image();
    let me = config.broker_id;
    sent.iter()
        .filter(|p| {
            image.topic(p.topic()).is_some_and(|topic| {
                is_throttled(&topic.configs, FOLLOWER_REPLICAS_KEY, p.index(), me, || {
                    p.is_in_sync(me)
                })
            })
        })
        .map(|p| fetcher::key(p))
        .collect()
}

impl ShareStateHost for Broker {
    fn clustered(&self) -> bool {
        self.registrar.is_some()
    }

    fn share_coordinator(&self) -> &Arc<ShareCoordinator> {
        &self.shares
    }
}

impl CoordinatorHost for Broker {
    fn admin(&self) -> &dyn MetadataSource {
        &*self.admin
    }

    fn peer_security(&self) -> &Arc<PeerSecurity> {
        &self.peer_security
    }
}

impl Broker {
    /// What follows a marker's commit on this broker: on a `__consumer_offsets` partition
    /// (the group coordinator's, since this broker leads it), the offsets the transaction
    /// wrote there take effect or are dropped.
    pub(crate) fn after_marker(
        &self,
        write: MarkerWrite,
        topic: &str,
        partition: i32,
        producer: ProducerRef,
        commit: bool,
    ) -> MarkerWrite {
        if topic != crate::group::OFFSETS_TOPIC {
            return write;
        }
        let groups = self.groups.clone();
        write.then_here(move || groups.complete_txn_offsets(partition, producer.id, commit))
    }
}

impl TxnHost for Broker {
    fn next_producer_id(&self) -> BoxFuture<'_, Result<i64, ResponseError>> {
        async move {
            self.producer_ids.next_id().await.map_err(|error| {
                tracing::error!(%error, "cannot allocate a producer id");
                ResponseError::KafkaStorageError
            })
        }
        .boxed()
    }

    fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        marker: Marker,
        now_ms: i64,
    ) -> Result<Option<MarkerWrite>, ResponseError> {
        let write = crate::coordinator_host::append_marker(self, topic, partition, marker, now_ms)?;
        Ok(write.map(|w| self.after_marker(w, topic, partition, marker.producer, marker.commit)))
    }

    fn commit_offsets<'a>(
        &'a self,
        group: &'a str,
        offsets: Vec<CommitOffset>,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        async move {
            let results = self.groups.commit_transactional(group, offsets).await;
            match results.into_iter().find_map(Result::err) {
                Some(error) => {
                    tracing::warn!(group, ?error, "transactional offsets not committed");
                    Err(error)
                }
                None => Ok(()),
            }
        }
        .boxed()
    }
}

impl Registered for Broker {
    fn registrar(&self) -> Option<&Registrar> {
        self.registrar.as_deref()
    }
}
