//! Share-partition state wherever its share coordinator runs ([`ShareStates`], Kafka's
//! `Persister`): a share-partition's state lives in the `__share_group_state` partition its
//! key hashes to, so a share-partition leader (or the group coordinator changing a group's
//! offsets) reaches it in this broker's [`ShareCoordinator`] when this broker leads that
//! partition, and otherwise on the leader over the inter-broker APIs
//! Initialize/Read/Write/DeleteShareGroupState and ReadShareGroupStateSummary. A leader that
//! moves meanwhile answers NOT_COORDINATOR, which callers retry as a state still loading.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    delete_share_group_state_request as delete_req,
    initialize_share_group_state_request as init_req, read_share_group_state_request as read_req,
    read_share_group_state_summary_request as summary_req,
    write_share_group_state_request as write_req, ApiKey, DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse, InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse, ReadShareGroupStateRequest, ReadShareGroupStateResponse,
    ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse,
    WriteShareGroupStateRequest, WriteShareGroupStateResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use parking_lot::Mutex;

use crate::coordinator_host::CoordinatorHost;
use crate::peer::{PeerConnection, PeerError};
use crate::security::peer::PeerSecurity;
use crate::share::coordinator::{ShareCoordinator, StoredState, Summary};
use crate::share::manager::StatePersister;
use crate::share::partition::{RecordState, StateRange};
use crate::share::records::{SharePartitionKey, SHARE_STATE_TOPIC};

/// How long a share coordinator on another broker gets to answer (its writes wait for the
/// state partition's in-sync replicas).
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where one share-partition's state is served.
enum Coordinator {
    /// By this broker.
    Here(Arc<ShareCoordinator>),
    /// By the broker at this inter-broker address.
    There(String),
}

/// Idle connections kept per share coordinator.
const MAX_IDLE: usize = 4;

/// What reaching share-partition state needs of the broker beyond what its coordinators'
/// logs do (its id, image and peer security); the broker implements it.
pub trait ShareStateHost: CoordinatorHost {
    /// Whether this broker is one of a cluster: a standalone broker serves every state.
    fn clustered(&self) -> bool;

    /// This broker's share coordinator.
    fn share_coordinator(&self) -> &Arc<ShareCoordinator>;
}

/// The share-partition state of every group, reached where it is served.
pub struct ShareStates {
    broker: Weak<dyn ShareStateHost>,
    /// Idle connections to each other broker's share coordinator, reused: a connection per
    /// call would repeat the TLS handshake and SASL login at every acknowledgement.
    idle: Mutex<HashMap<String, Vec<PeerConnection>>>,
}

impl ShareStates {
    /// State reached from `broker` (weak: the broker owns its persister).
    pub fn new(broker: Weak<dyn ShareStateHost>) -> ShareStates {
        ShareStates {
            broker,
            idle: Mutex::new(HashMap::new()),
        }
    }

    fn broker(&self) -> Result<Arc<dyn ShareStateHost>, ResponseError> {
        self.broker
            .upgrade()
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// Where `key`'s state is served: here on a standalone broker, when this broker leads
    /// its state partition, or when no broker does yet (this broker's coordinator then
    /// answers as Kafka's does while a partition has no leader).
    fn locate(&self, key: &SharePartitionKey) -> Result<Coordinator, ResponseError> {
        let broker = self.broker()?;
        let here = || Coordinator::Here(broker.share_coordinator().clone());
        if !broker.clustered() {
            return Ok(here());
        }
        let partition = broker.share_coordinator().state_partition(key)?;
        let image = broker.metadata().image();
        let leader = image
            .partition(SHARE_STATE_TOPIC, partition)
            .map(|p| p.leader)
            .filter(|l| *l >= 0 && *l != broker.config().broker_id);
        match leader {
            None => Ok(here()),
            Some(id) => {
                let node = image
                    .broker(id)
                    .ok_or(ResponseError::CoordinatorNotAvailable)?;
                Ok(Coordinator::There(format!("{}:{}", node.host, node.port)))
            }
        }
    }

    /// Sends `request` to the share coordinator at `address`, at the version this broker
    /// serves (every broker of a cluster runs the same).
    async fn call<Q: Encodable, R: Decodable>(
        &self,
        address: &str,
        api: ApiKey,
        request: &Q,
    ) -> Result<R, ResponseError> {
        let security: Arc<PeerSecurity> = self.broker()?.peer_security().clone();
        let version = crate::protocol::served_range(api, crate::protocol::ApiSets::ALL)
            .map_or(0, |(_, max)| max);
        let fresh = || PeerConnection::new(address.to_owned(), security.clone());
        let reused = self.idle.lock().get_mut(address).and_then(Vec::pop);
        let was_idle = reused.is_some();
        let mut connection = reused.unwrap_or_else(fresh);
        let mut answer = connection.call(api, version, request, PEER_TIMEOUT).await;
        if was_idle && matches!(answer, Err(PeerError::Io { .. })) {
            // The other broker closed the idle connection meanwhile: once more on a new one
            // (the state APIs are idempotent: a write applied twice leaves the same state).
            connection = fresh();
            answer = connection.call(api, version, request, PEER_TIMEOUT).await;
        }
        match answer {
            Ok(answer) => {
                let mut idle = self.idle.lock();
                let kept = idle.entry(address.to_owned()).or_default();
                if kept.len() < MAX_IDLE {
                    kept.push(connection);
                }
                Ok(answer)
            }
            Err(error) => {
                tracing::warn!(%error, ?api, "share coordinator not reached");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// ReadShareGroupStateSummary of each of `keys` (all of one group): `None` for a
    /// share-partition without state. One request per broker serving some of them.
    pub async fn summaries(
        &self,
        keys: Vec<SharePartitionKey>,
    ) -> Vec<(SharePartitionKey, Result<Option<Summary>, ResponseError>)> {
        let mut out = Vec::with_capacity(keys.len());
        let mut remote: BTreeMap<String, Vec<SharePartitionKey>> = BTreeMap::new();
        for key in keys {
            match self.locate(&key) {
                Ok(Coordinator::Here(shares)) => {
                    let summary = shares.summary(&key);
                    out.push((key, summary));
                }
                Ok(Coordinator::There(address)) => remote.entry(address).or_default().push(key),
                Err(error) => out.push((key, Err(error))),
            }
        }
        for (address, keys) in remote {
            out.extend(self.remote_summaries(&address, keys).await);
        }
        out
    }

    async fn remote_summaries(
        &self,
        address: &str,
        keys: Vec<SharePartitionKey>,
    ) -> Vec<(SharePartitionKey, Result<Option<Summary>, ResponseError>)> {
        let Some(group) = keys.first().map(|k| k.group.clone()) else {
            return Vec::new();
        };
        let mut topics: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
        for key in &keys {
            topics.entry(key.topic).or_default().push(key.partition);
        }
        let request = ReadShareGroupStateSummaryRequest::default()
            .with_group_id(StrBytes::from_string(group.clone()))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        summary_req::ReadStateSummaryData::default()
                            .with_topic_id(topic)
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|p| {
                                        summary_req::PartitionData::default()
                                            .with_partition(p)
                                            .with_leader_epoch(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let answer: Result<ReadShareGroupStateSummaryResponse, _> = self
            .call(address, ApiKey::ReadShareGroupStateSummary, &request)
            .await;
        let answered = match answer {
            Ok(answer) => answer,
            Err(error) => return keys.into_iter().map(|k| (k, Err(error))).collect(),
        };
        let mut found = BTreeMap::new();
        for topic in answered.results {
            for p in topic.partitions {
                let result = match ResponseError::try_from_code(p.error_code) {
                    Some(error) => Err(error),
                    None => Ok((p.start_offset >= 0).then_some(Summary {
                        state_epoch: p.state_epoch,
                        leader_epoch: p.leader_epoch,
                        start_offset: p.start_offset,
                        delivery_complete: (p.delivery_complete_count >= 0)
                            .then_some(i64::from(p.delivery_complete_count)),
                    })),
                };
                found.insert((topic.topic_id, p.partition), result);
            }
        }
        keys.into_iter()
            .map(|k| {
                let result = found
                    .remove(&(k.topic, k.partition))
                    .unwrap_or(Err(ResponseError::UnknownServerError));
                (k, result)
            })
            .collect()
    }

    /// Every share-partition of `group` with state, with its summary: the ones served here
    /// as held, and, on a cluster, every partition of every topic asked of the brokers
    /// serving the rest.
    pub async fn held(
        &self,
        group: &str,
    ) -> Result<Vec<(SharePartitionKey, Summary)>, ResponseError> {
        let broker = self.broker()?;
        let mut keys = broker.share_coordinator().keys_of(group);
        if broker.clustered() {
            let image = broker.metadata().image();
            for topic in image.topics().filter(|t| !t.is_internal()) {
                for index in 0..i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX) {
                    keys.push(SharePartitionKey {
                        group: group.to_owned(),
                        topic: topic.id,
                        partition: index,
                    });
                }
            }
            keys.sort();
            keys.dedup();
        }
        let mut held = Vec::new();
        for (key, summary) in self.summaries(keys).await {
            if let Some(summary) = summary? {
                held.push((key, summary));
            }
        }
        Ok(held)
    }

    /// DeleteShareGroupState: forgets `key`'s state.
    pub async fn delete(&self, key: &SharePartitionKey) -> Result<(), ResponseError> {
        match self.locate(key)? {
            Coordinator::Here(shares) => shares.delete(key).await,
            Coordinator::There(address) => {
                let request = DeleteShareGroupStateRequest::default()
                    .with_group_id(StrBytes::from_string(key.group.clone()))
                    .with_topics(vec![delete_req::DeleteStateData::default()
                        .with_topic_id(key.topic)
                        .with_partitions(vec![
                            delete_req::PartitionData::default().with_partition(key.partition)
                        ])]);
                let answer: DeleteShareGroupStateResponse = self
                    .call(&address, ApiKey::DeleteShareGroupState, &request)
                    .await?;
                first_error(
                    answer
                        .results
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code),
                )
            }
        }
    }
}

/// The first error among the partitions' `codes`; UNKNOWN_SERVER_ERROR when the answer names
/// no partition.
fn first_error(codes: impl Iterator<Item = i16>) -> Result<(), ResponseError> {
    let mut answered = false;
    for code in codes {
        answered = true;
        if let Some(error) = ResponseError::try_from_code(code) {
            return Err(error);
        }
    }
    if answered {
        Ok(())
    } else {
        Err(ResponseError::UnknownServerError)
    }
}

/// Durable ranges in the wire's state batches; INVALID_REQUEST for an impossible one.
pub(crate) fn ranges_from_wire(
    batches: impl IntoIterator<Item = (i64, i64, i8, i16)>,
) -> Result<Vec<StateRange>, ResponseError> {
    batches
        .into_iter()
        .map(|(first, last, state, count)| {
            let state = RecordState::stored(state).ok_or(ResponseError::InvalidRequest)?;
            let delivery_count = u16::try_from(count).map_err(|_| ResponseError::InvalidRequest)?;
            if first < 0 || last < first || last == i64::MAX {
                return Err(ResponseError::InvalidRequest);
            }
            Ok(StateRange {
                first,
                last,
                state,
                delivery_count,
            })
        })
        .collect()
}

impl StatePersister for ShareStates {
    fn read<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        leader_epoch: i32,
    ) -> BoxFuture<'a, Result<Option<StoredState>, ResponseError>> {
        Box::pin(async move {
            let address = match self.locate(key)? {
                Coordinator::Here(shares) => return shares.read(key, leader_epoch).await,
                Coordinator::There(address) => address,
            };
            let request = ReadShareGroupStateRequest::default()
                .with_group_id(StrBytes::from_string(key.group.clone()))
                .with_topics(vec![read_req::ReadStateData::default()
                    .with_topic_id(key.topic)
                    .with_partitions(vec![read_req::PartitionData::default()
                        .with_partition(key.partition)
                        .with_leader_epoch(leader_epoch)])]);
            let answer: ReadShareGroupStateResponse = self
                .call(&address, ApiKey::ReadShareGroupState, &request)
                .await?;
            let p = answer
                .results
                .into_iter()
                .flat_map(|t| t.partitions)
                .next()
                .ok_or(ResponseError::UnknownServerError)?;
            if let Some(error) = ResponseError::try_from_code(p.error_code) {
                return Err(error);
            }
            let ranges = ranges_from_wire(p.state_batches.iter().map(|b| {
                (
                    b.first_offset,
                    b.last_offset,
                    b.delivery_state,
                    b.delivery_count,
                )
            }))
            .map_err(|_| ResponseError::UnknownServerError)?;
            Ok(Some(StoredState {
                state_epoch: p.state_epoch,
                start_offset: p.start_offset,
                ranges,
            }))
        })
    }

    fn initialize<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        Box::pin(async move {
            let address = match self.locate(key)? {
                Coordinator::Here(shares) => {
                    return shares.initialize(key, state_epoch, start_offset).await
                }
                Coordinator::There(address) => address,
            };
            let request = InitializeShareGroupStateRequest::default()
                .with_group_id(StrBytes::from_string(key.group.clone()))
                .with_topics(vec![init_req::InitializeStateData::default()
                    .with_topic_id(key.topic)
                    .with_partitions(vec![init_req::PartitionData::default()
                        .with_partition(key.partition)
                        .with_state_epoch(state_epoch)
                        .with_start_offset(start_offset)])]);
            let answer: InitializeShareGroupStateResponse = self
                .call(&address, ApiKey::InitializeShareGroupState, &request)
                .await?;
            first_error(
                answer
                    .results
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            )
        })
    }

    fn write<'a>(
        &'a self,
        key: &'a SharePartitionKey,
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: Option<i64>,
        ranges: Vec<StateRange>,
    ) -> BoxFuture<'a, Result<(), ResponseError>> {
        Box::pin(async move {
            let address = match self.locate(key)? {
                Coordinator::Here(shares) => {
                    return shares
                        .write(key, state_epoch, leader_epoch, start_offset, &ranges)
                        .await
                }
                Coordinator::There(address) => address,
            };
            let batches = ranges
                .iter()
                .map(|r| {
                    write_req::StateBatch::default()
                        .with_first_offset(r.first)
                        .with_last_offset(r.last)
                        .with_delivery_state(r.state.code())
                        .with_delivery_count(i16::try_from(r.delivery_count).unwrap_or(i16::MAX))
                })
                .collect();
            let request = WriteShareGroupStateRequest::default()
                .with_group_id(StrBytes::from_string(key.group.clone()))
                .with_topics(vec![write_req::WriteStateData::default()
                    .with_topic_id(key.topic)
                    .with_partitions(vec![write_req::PartitionData::default()
                        .with_partition(key.partition)
                        .with_state_epoch(state_epoch)
                        .with_leader_epoch(leader_epoch)
                        .with_start_offset(start_offset.unwrap_or(-1))
                        .with_state_batches(batches)])]);
            let answer: WriteShareGroupStateResponse = self
                .call(&address, ApiKey::WriteShareGroupState, &request)
                .await?;
            first_error(
                answer
                    .results
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            )
        })
    }
}
