//! ElectLeaders in cluster mode: the broker asks the controller for an election by setting the
//! `tributary.dev/elect-leader` annotation on the partition's KafkaPartition
//! ([`ELECT_LEADER_ANNOTATION`], whose contract is in `tributary_crds::partition`), with a
//! conditional update deciding on the object it read ([`request`]), then watches the object
//! until the controller removes the annotation, its answer. The status then tells the outcome
//! ([`outcome`]): the first replica leads after a preferred election, someone leads after an
//! unclean one. A request of the other type already pending is waited out first; one of the
//! same type is shared. Once an election succeeded the broker also waits (within the
//! request's timeout) for its own image to show the new leader, so its next Metadata or
//! ElectLeaders answer already knows it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::api::{WatchEvent, WatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::time::Instant;
use tributary_crds::update::{ConditionalUpdate, Decision, UpdateError};
use tributary_crds::{ElectionType, KafkaPartition, ELECT_LEADER_ANNOTATION};

use super::error::is_not_found;
use super::names::partition_object;
use crate::config::ClusterSettings;
use crate::metadata::elections::{outcome, ElectedPartition, ElectionError, LeaderElections};
use crate::metadata::{MetadataCache, NO_LEADER};

/// Longest one watch request runs before it is renewed (the API server's limit is lower than
/// 5 minutes).
const WATCH_SECONDS: u32 = 240;
/// Partitions asked about at once in one ElectLeaders request.
const CONCURRENCY: usize = 32;

/// Asks the controller for elections through KafkaPartition annotations.
pub struct KubeElections {
    api: Api<KafkaPartition>,
    cluster: String,
    partitions: Store<KafkaPartition>,
    metadata: Arc<MetadataCache>,
}

impl KubeElections {
    /// Elections for the cluster in `settings`, finding objects through the watch's store and
    /// waiting for `metadata` to apply their outcome.
    pub fn new(
        client: Client,
        settings: &ClusterSettings,
        partitions: Store<KafkaPartition>,
        metadata: Arc<MetadataCache>,
    ) -> KubeElections {
        KubeElections {
            api: Api::namespaced(client, &settings.namespace),
            cluster: settings.name.clone(),
            partitions,
            metadata,
        }
    }

    /// The object holding partition `index` of Kafka topic `topic`.
    fn object_name(&self, topic: &str, index: i32) -> Option<String> {
        partition_object(&self.partitions, &self.cluster, topic, index)
    }

    /// One partition's election, from asking to the outcome.
    async fn elect_one(
        &self,
        kind: ElectionType,
        (topic, index): &ElectedPartition,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), ElectionError> {
        let name = self
            .object_name(topic, *index)
            .ok_or(ElectionError::UnknownTopicOrPartition)?;
        let asked = by(deadline, timeout, self.ask(kind, &name)).await?;
        let answer = self.until(&name, &asked, |p| p.election_request().is_none());
        let answered = by(deadline, timeout, answer).await?;
        let leader = |p: &KafkaPartition| p.status.as_ref().map_or(NO_LEADER, |s| s.leader);
        let result = outcome(
            kind,
            &asked.spec.replicas,
            leader(&asked),
            leader(&answered),
        );
        if result.is_ok() {
            let epoch = answered.status.as_ref().map_or(0, |s| s.leader_epoch);
            let applied = self.applied(topic, *index, leader(&answered), epoch);
            let _ = tokio::time::timeout_at(deadline, applied).await;
        }
        result
    }

    /// Sets the request annotation (or finds the same request pending); returns the object as
    /// it stood with the request on it.
    async fn ask(&self, kind: ElectionType, name: &str) -> Result<KafkaPartition, ElectionError> {
        loop {
            let updated = ConditionalUpdate::new(&self.api, name)
                .run(|object| request(object, kind))
                .await
                .map_err(|error| match error {
                    UpdateError::Aborted(refused) => refused,
                    UpdateError::Gone { .. } => ElectionError::UnknownTopicOrPartition,
                    UpdateError::Read { source, .. } | UpdateError::Write { source, .. } => {
                        read_error(*source)
                    }
                    other => ElectionError::Unavailable(other.to_string()),
                })?;
            let Some(object) = updated.object else {
                return Err(ElectionError::UnknownTopicOrPartition);
            };
            match updated.value {
                Asked::Pending => return Ok(object),
                // Another request is pending: its answer first, then ours.
                Asked::Other => {
                    self.until(name, &object, |p| p.election_request().is_none())
                        .await?;
                }
            }
        }
    }

    /// Watches object `name` from the version `seen` until `done` holds for it; returns it.
    async fn until(
        &self,
        name: &str,
        seen: &KafkaPartition,
        done: impl Fn(&KafkaPartition) -> bool,
    ) -> Result<KafkaPartition, ElectionError> {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(WATCH_SECONDS);
        let mut version = seen.resource_version().unwrap_or_default();
        loop {
            let mut events = self
                .api
                .watch(&params, &version)
                .await
                .map_err(read_error)?
                .boxed();
            while let Some(event) = events.next().await {
                match event.map_err(read_error)? {
                    WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                        if done(&object) {
                            return Ok(object);
                        }
                        version = object.resource_version().unwrap_or_default();
                    }
                    WatchEvent::Deleted(_) => return Err(ElectionError::UnknownTopicOrPartition),
                    WatchEvent::Bookmark(mark) => version = mark.metadata.resource_version,
                    // 410 Gone: the version is too old to watch from; read the object now.
                    WatchEvent::Error(status) if status.code == 410 => {
                        let object = self.api.get(name).await.map_err(read_error)?;
                        if done(&object) {
                            return Ok(object);
                        }
                        version = object.resource_version().unwrap_or_default();
                        break;
                    }
                    WatchEvent::Error(status) => {
                        return Err(ElectionError::Unavailable(status.to_string()))
                    }
                }
            }
        }
    }

    /// Returns once this broker's applied image shows `leader` leading partition `index` of
    /// `topic` at `epoch` or later.
    async fn applied(&self, topic: &str, index: i32, leader: i32, epoch: i32) {
        let mut images = self.metadata.subscribe_applied();
        loop {
            let shown = images
                .borrow_and_update()
                .partition(topic, index)
                .is_some_and(|p| p.leader == leader && p.leader_epoch >= epoch);
            if shown || images.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Where a request stands after [`request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// Ours is pending (set now, or the same request was already there).
    Pending,
    /// A request of another type is pending: wait for its answer, then ask again.
    Other,
}

/// What asking for a `kind` election makes of the partition object as read: the object with
/// the request annotation set, unless a request is pending already.
pub fn request(
    object: Option<&KafkaPartition>,
    kind: ElectionType,
) -> Decision<KafkaPartition, Asked, ElectionError> {
    let Some(object) = object else {
        return Decision::Abort(ElectionError::UnknownTopicOrPartition);
    };
    match object.election_request() {
        Some(pending) if pending == kind.as_str() => Decision::Keep(Asked::Pending),
        Some(_) => Decision::Keep(Asked::Other),
        None => {
            let mut asked = object.clone();
            asked
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ELECT_LEADER_ANNOTATION.to_owned(), kind.as_str().to_owned());
            asked.metadata.managed_fields = None;
            Decision::Replace(asked, Asked::Pending)
        }
    }
}

/// `step`'s outcome, or TimedOut (after the request's `timeout`) once `deadline` passed.
async fn by<T>(
    deadline: Instant,
    timeout: Duration,
    step: impl std::future::Future<Output = Result<T, ElectionError>>,
) -> Result<T, ElectionError> {
    tokio::time::timeout_at(deadline, step)
        .await
        .unwrap_or(Err(ElectionError::TimedOut(timeout)))
}

/// A failed read or write of a KafkaPartition, as an election outcome.
fn read_error(error: kube::Error) -> ElectionError {
    if is_not_found(&error) {
        ElectionError::UnknownTopicOrPartition
    } else {
        ElectionError::Unavailable(error.to_string())
    }
}

impl LeaderElections for KubeElections {
    fn elect(
        &self,
        kind: ElectionType,
        partitions: Vec<ElectedPartition>,
        timeout: Duration,
    ) -> BoxFuture<'_, Vec<(ElectedPartition, Result<(), ElectionError>)>> {
        let deadline = Instant::now() + timeout;
        futures::stream::iter(partitions)
            .map(move |partition| async move {
                let result = self.elect_one(kind, &partition, deadline, timeout).await;
                (partition, result)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_crds::KafkaPartitionSpec;

    fn partition(request: Option<&str>) -> KafkaPartition {
        let mut p = KafkaPartition::new(
            "t-0",
            KafkaPartitionSpec {
                cluster_ref: "demo".into(),
                topic: "t".into(),
                topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                partition: 0,
                replicas: vec![0, 1],
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        );
        p.metadata.annotations =
            request.map(|r| [(ELECT_LEADER_ANNOTATION.to_owned(), r.to_owned())].into());
        p
    }

    #[test]
    fn asking_sets_the_annotation_unless_a_request_is_pending() {
        let Decision::Replace(asked, Asked::Pending) =
            request(Some(&partition(None)), ElectionType::Preferred)
        else {
            panic!("expected the annotation written");
        };
        assert_eq!(asked.election_request(), Some("preferred"));
        assert!(matches!(
            request(Some(&partition(Some("preferred"))), ElectionType::Preferred),
            Decision::Keep(Asked::Pending)
        ));
        assert!(matches!(
            request(Some(&partition(Some("unclean"))), ElectionType::Preferred),
            Decision::Keep(Asked::Other)
        ));
        assert!(matches!(
            request(None, ElectionType::Unclean),
            Decision::Abort(ElectionError::UnknownTopicOrPartition)
        ));
    }
}
