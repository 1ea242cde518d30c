//! Topic changes in cluster mode: the Kafka admin API writes KafkaTopic objects (CreateTopics
//! and auto-creation create them, DeleteTopics deletes them, CreatePartitions and the config
//! APIs update them, each a write conditional on the resourceVersion read) and answers once the
//! cluster image shows the change in effect: the operator has placed new partitions and the
//! controller has given each a leader. `kubectl apply` and `kafka-topics.sh --create` are two
//! doors to the same room.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use tributary_crds::topic::DeletionPolicy;
use tributary_crds::update::{ConditionalUpdate, Decision, UpdateError};
use tributary_crds::{KafkaTopic, KafkaTopicSpec, PartitionReplicas, CLUSTER_LABEL};

use super::error::is_conflict;
use super::names::object_name;
use super::watcher::{find_topic, Stores};
use crate::config::{BrokerConfig, ClusterSettings};
use crate::metadata::validate::{check_cluster_budget, validate_create, validate_growth};
use crate::metadata::{
    ClusterImage, Growth, MetadataCache, MetadataError, MetadataSource, TopicImage, TopicSpec,
};
use crate::replica::ReplicaManager;
use crate::topics::config;

/// How often deletions this broker has not reported yet are looked for.
const DELETION_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Topic metadata in Kubernetes objects.
#[derive(Clone)]
pub struct KubeMetadata {
    api: Api<KafkaTopic>,
    settings: ClusterSettings,
    config: Arc<BrokerConfig>,
    cache: Arc<MetadataCache>,
    stores: Stores,
    replicas: Arc<ReplicaManager>,
}

impl KubeMetadata {
    /// A source writing `settings`' cluster's KafkaTopics and reading `stores`.
    pub fn new(
        client: Client,
        settings: ClusterSettings,
        config: Arc<BrokerConfig>,
        cache: Arc<MetadataCache>,
        stores: Stores,
        replicas: Arc<ReplicaManager>,
    ) -> KubeMetadata {
        KubeMetadata {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            config,
            cache,
            stores,
            replicas,
        }
    }

    /// Waits until the image applied here satisfies `done` (returning what it yields) or
    /// `timeout` passes.
    async fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&ClusterImage) -> Option<T>,
    ) -> Result<T, MetadataError> {
        let mut applied = self.cache.subscribe_applied();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let image = applied.borrow_and_update().clone();
                if let Some(found) = done(&image) {
                    return Ok(found);
                }
                if applied.changed().await.is_err() {
                    return Err(MetadataError::Unavailable(
                        "the broker is shutting down".into(),
                    ));
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            Err(MetadataError::TimedOut(format!(
                "{what} did not take effect within {timeout:?}; the change stays and completes later"
            )))
        })
    }

    /// Whether every partition of `topic` has a leader, and those led here are open here in
    /// that role (other brokers open theirs when their image arrives; until then clients get
    /// a retriable NOT_LEADER_OR_FOLLOWER, as with Kafka).
    fn served(&self, topic: &TopicImage) -> bool {
        let me = self.config.broker_id;
        topic.partitions.iter().enumerate().all(|(index, p)| {
            p.has_leader()
                && (p.leader != me
                    || i32::try_from(index)
                        .ok()
                        .and_then(|i| self.replicas.get(&topic.name, i))
                        .is_some_and(|r| {
                            r.role()
                                == crate::partition::Role::Leader {
                                    epoch: p.leader_epoch,
                                }
                        }))
        })
    }

    async fn create(
        &self,
        spec: TopicSpec,
        timeout: Duration,
    ) -> Result<Arc<TopicImage>, MetadataError> {
        let image = self.cache.image();
        let valid = validate_create(&spec, &image, &self.config)?;
        let replicas = usize::try_from(valid.partitions).unwrap_or(0)
            * usize::try_from(valid.replication_factor).unwrap_or(0);
        check_cluster_budget(&image, &self.config, replicas)?;
        let name = object_name(&valid.name);
        let topic = KafkaTopic {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    CLUSTER_LABEL.to_string(),
                    self.settings.name.clone(),
                )])),
                ..ObjectMeta::default()
            },
            spec: KafkaTopicSpec {
                cluster_ref: self.settings.name.clone(),
                topic_name: (name != valid.name).then(|| valid.name.clone()),
                partitions: valid.partitions,
                replication_factor: i32::from(valid.replication_factor),
                config: valid
                    .configs
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect(),
                deletion_policy: DeletionPolicy::Delete,
                replica_assignments: manual_assignments(0, &valid.assignments),
            },
            status: None,
        };
        match self.api.create(&PostParams::default(), &topic).await {
            Ok(_) => {}
            Err(e) if is_conflict(&e) => return Err(MetadataError::TopicExists(valid.name)),
            Err(e) => return Err(refused(&format!("create KafkaTopic {name}"), e)),
        }
        tracing::info!(topic = valid.name, object = name, "created KafkaTopic");
        let partitions = valid.partitions;
        self.wait_for(timeout, &format!("topic `{}`", valid.name), |image| {
            image
                .topic(&valid.name)
                .filter(|t| t.partition_count() == partitions && self.served(t))
                .cloned()
        })
        .await
    }

    async fn delete(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Arc<TopicImage>, MetadataError> {
        let image = self.cache.image();
        let topic = image
            .topic(name)
            .cloned()
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let object = find_topic(&self.stores, name)
            .and_then(|t| t.metadata.name.clone())
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        match self.api.delete(&object, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if super::error::is_not_found(&e) => {}
            Err(e) => return Err(refused(&format!("delete KafkaTopic {object}"), e)),
        }
        tracing::info!(topic = name, object, "deleted KafkaTopic");
        let id = topic.id;
        self.wait_for(timeout, &format!("deleting topic `{name}`"), |image| {
            image.topic(name).is_none_or(|t| t.id != id).then_some(())
        })
        .await?;
        Ok(topic)
    }

    async fn grow(
        &self,
        name: &str,
        change: Growth,
        timeout: Duration,
    ) -> Result<(), MetadataError> {
        let image = self.cache.image();
        let current = validate_growth(
            name,
            change.count,
            &change.assignments,
            &image,
            &self.config,
        )?;
        let replication = image.topic(name).map_or(0, |t| t.replication_factor);
        let adding = usize::try_from(change.count - current).unwrap_or(0)
            * usize::try_from(replication).unwrap_or(0);
        check_cluster_budget(&image, &self.config, adding)?;
        if change.validate_only {
            return Ok(());
        }
        let count = change.count;
        let assignments = change.assignments;
        self.update(name, |spec| {
            if spec.partitions >= count {
                return Err(MetadataError::InvalidPartitions(format!(
                    "topic `{name}` already has {} partitions",
                    spec.partitions
                )));
            }
            // The new partitions' replicas, if given; older entries name partitions that
            // exist, whose replicas the operator no longer reads from here.
            spec.replica_assignments = manual_assignments(spec.partitions, &assignments);
            spec.partitions = count;
            Ok(())
        })
        .await?;
        self.wait_for(timeout, &format!("growing topic `{name}`"), |image| {
            image
                .topic(name)
                .filter(|t| t.partition_count() >= count && self.served(t))
                .map(drop)
        })
        .await
    }

    async fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), MetadataError> {
        let image = self.cache.image();
        let old = image
            .topic(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        config::validate_change(&self.config, &old.configs, &configs)
            .map_err(MetadataError::InvalidConfig)?;
        if validate_only {
            return Ok(());
        }
        let wanted = configs.clone();
        self.update(name, move |spec| {
            spec.config = wanted
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            Ok(())
        })
        .await?;
        self.wait_for(timeout, &format!("configs of topic `{name}`"), |image| {
            image.topic(name).filter(|t| t.configs == configs).map(drop)
        })
        .await
    }

    /// Applies `change` to the spec of topic `name`'s KafkaTopic with a conditional update
    /// (a lost race re-reads and applies again).
    async fn update(
        &self,
        name: &str,
        change: impl Fn(&mut KafkaTopicSpec) -> Result<(), MetadataError>,
    ) -> Result<(), MetadataError> {
        let object = find_topic(&self.stores, name)
            .and_then(|t| t.metadata.name.clone())
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        ConditionalUpdate::new(&self.api, &object)
            .run(|topic| changed_spec(&object, topic, &change))
            .await
            .map_err(|error| match error {
                UpdateError::Aborted(refused) => refused,
                UpdateError::Read { source, .. } => {
                    refused(&format!("read KafkaTopic {object}"), *source)
                }
                UpdateError::Write { source, .. } => {
                    refused(&format!("update KafkaTopic {object}"), *source)
                }
                UpdateError::Exhausted { .. } => MetadataError::Unavailable(format!(
                    "KafkaTopic {object} kept changing; try again"
                )),
                other => MetadataError::Unavailable(other.to_string()),
            })?;
        Ok(())
    }

    /// Reports dropped topic data after every image applied and every
    /// [`DELETION_REPORT_INTERVAL`] (the operator lists brokers in `pendingDeletion` after the
    /// deletion began, a change the image does not show), until the broker shuts down.
    pub fn spawn_deletion_reports(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let source = Arc::downgrade(self);
        let mut applied = self.cache.subscribe_applied();
        tokio::spawn(async move {
            loop {
                let Some(source) = source.upgrade() else {
                    return;
                };
                source.acknowledge_deletions().await;
                drop(source);
                tokio::select! {
                    changed = applied.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(DELETION_REPORT_INTERVAL) => {}
                }
            }
        })
    }

    /// Tells the operator this broker dropped the data of topics being deleted: removes its
    /// id from their `status.pendingDeletion` (conditional updates, deciding first on the
    /// watched copy; what still fails is retried at the next round).
    async fn acknowledge_deletions(&self) {
        let me = self.config.broker_id;
        for topic in self.stores.topics.state() {
            if topic.metadata.deletion_timestamp.is_none()
                || topic.spec.cluster_ref != self.settings.name
            {
                continue;
            }
            let pending = topic
                .status
                .as_ref()
                .and_then(|s| s.pending_deletion.as_ref());
            if !pending.is_some_and(|p| p.contains(&me)) {
                continue;
            }
            let kafka_name = topic.kafka_name().to_string();
            if self.replicas.all().iter().any(|p| p.topic() == kafka_name) {
                continue;
            }
            let Some(object) = topic.metadata.name.clone() else {
                continue;
            };
            let acknowledged = ConditionalUpdate::new(&self.api, &object)
                .starting_from(KafkaTopic::clone(&topic))
                .run(|topic| acknowledged_deletion(topic, me))
                .await;
            match acknowledged {
                Ok(updated) if updated.written => {
                    tracing::info!(topic = kafka_name, "dropped the data of a deleted topic")
                }
                // Gone already, or no longer waiting for this broker.
                Ok(_) | Err(UpdateError::Gone { .. }) => {}
                // The next round tries again.
                Err(e) => {
                    tracing::warn!(topic = kafka_name, error = %e, "cannot report a deletion")
                }
            }
        }
    }
}

/// KafkaTopic `object` as read with `change` applied to its spec (`None`: it does not
/// exist, though the watch showed it a moment before).
fn changed_spec(
    object: &str,
    topic: Option<&KafkaTopic>,
    change: impl Fn(&mut KafkaTopicSpec) -> Result<(), MetadataError>,
) -> Decision<KafkaTopic, (), MetadataError> {
    let Some(topic) = topic else {
        return Decision::Abort(MetadataError::Unavailable(format!(
            "read KafkaTopic {object}: not found"
        )));
    };
    let mut next = topic.clone();
    match change(&mut next.spec) {
        Ok(()) => Decision::Replace(next, ()),
        Err(refused) => Decision::Abort(refused),
    }
}

/// The KafkaTopic being deleted with broker `me` gone from `status.pendingDeletion`; nothing to
/// write when it does not list `me` (or is not being deleted any more).
pub fn acknowledged_deletion(
    topic: Option<&KafkaTopic>,
    me: i32,
) -> Decision<KafkaTopic, (), std::convert::Infallible> {
    let Some(topic) = topic.filter(|t| t.metadata.deletion_timestamp.is_some()) else {
        return Decision::Keep(());
    };
    let pending = topic
        .status
        .as_ref()
        .and_then(|s| s.pending_deletion.as_ref());
    if !pending.is_some_and(|p| p.contains(&me)) {
        return Decision::Keep(());
    }
    let mut next = topic.clone();
    if let Some(list) = next
        .status
        .as_mut()
        .and_then(|s| s.pending_deletion.as_mut())
    {
        list.retain(|&b| b != me);
    }
    Decision::ReplaceStatus(next, ())
}

/// A refusal or failure of the API server, as a metadata error.
fn refused(what: &str, error: kube::Error) -> MetadataError {
    match &error {
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
            MetadataError::InvalidConfig(format!("{what}: {}", status.message))
        }
        _ => MetadataError::Unavailable(format!("{what}: {error}")),
    }
}

impl MetadataSource for KubeMetadata {
    fn validate_create(&self, spec: &TopicSpec) -> Result<TopicImage, MetadataError> {
        let valid = validate_create(spec, &self.cache.image(), &self.config)?;
        Ok(TopicImage {
            name: valid.name,
            id: uuid::Uuid::nil(),
            configs: valid.configs,
            replication_factor: valid.replication_factor,
            partitions: Vec::new(),
        })
    }

    fn create_topic(
        &self,
        spec: TopicSpec,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Arc<TopicImage>, MetadataError>> {
        self.create(spec, timeout).boxed()
    }

    fn delete_topic<'a>(
        &'a self,
        name: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Arc<TopicImage>, MetadataError>> {
        self.delete(name, timeout).boxed()
    }

    fn create_partitions<'a>(
        &'a self,
        name: &'a str,
        change: Growth,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), MetadataError>> {
        self.grow(name, change, timeout).boxed()
    }

    fn set_topic_configs<'a>(
        &'a self,
        name: &'a str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), MetadataError>> {
        self.set_configs(name, configs, validate_only, timeout)
            .boxed()
    }

    fn ensure_topic(&self, spec: TopicSpec) -> Result<Option<Arc<TopicImage>>, MetadataError> {
        let image = self.cache.image();
        if let Some(topic) = image.topic(&spec.name) {
            let ready =
                topic.partitions.iter().all(|p| p.has_leader()) && !topic.partitions.is_empty();
            return Ok(ready.then(|| topic.clone()));
        }
        if find_topic(&self.stores, &spec.name).is_none() {
            let creator = self.clone();
            tokio::spawn(async move {
                let name = spec.name.clone();
                match creator.create(spec, Duration::from_secs(60)).await {
                    Ok(_) | Err(MetadataError::TopicExists(_)) => {}
                    Err(error) => {
                        tracing::warn!(topic = name, %error, "cannot create an internal topic")
                    }
                }
            });
        }
        Ok(None)
    }

    fn reapply_defaults(&self) {
        self.replicas.reapply_defaults(&self.cache.image());
    }
}

/// The KafkaTopic form of manual replica assignments for the partitions from `first` on.
fn manual_assignments(first: i32, assignments: &[Vec<i32>]) -> Vec<PartitionReplicas> {
    (first..)
        .zip(assignments)
        .map(|(partition, replicas)| PartitionReplicas {
            partition,
            replicas: replicas.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tributary_crds::KafkaTopicStatus;

    fn topic(deleting: bool, pending: Option<Vec<i32>>) -> KafkaTopic {
        let mut t = KafkaTopic::new(
            "t",
            KafkaTopicSpec {
                cluster_ref: "demo".into(),
                topic_name: None,
                partitions: 1,
                replication_factor: 1,
                config: BTreeMap::new(),
                deletion_policy: DeletionPolicy::Delete,
                replica_assignments: Vec::new(),
            },
        );
        if deleting {
            t.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        }
        t.status = Some(KafkaTopicStatus {
            pending_deletion: pending,
            ..KafkaTopicStatus::default()
        });
        t
    }

    fn pending(t: &KafkaTopic) -> Option<Vec<i32>> {
        t.status.as_ref()?.pending_deletion.clone()
    }

    #[test]
    fn a_deletion_is_acknowledged_by_leaving_the_pending_list() {
        let waiting = topic(true, Some(vec![0, 1, 2]));
        let Decision::ReplaceStatus(next, ()) = acknowledged_deletion(Some(&waiting), 1) else {
            panic!("expected a status write");
        };
        assert_eq!(pending(&next), Some(vec![0, 2]));
        for (what, read) in [
            ("not listed", Some(topic(true, Some(vec![0, 2])))),
            ("no list yet", Some(topic(true, None))),
            ("not being deleted", Some(topic(false, Some(vec![1])))),
            ("gone", None),
        ] {
            assert!(
                matches!(acknowledged_deletion(read.as_ref(), 1), Decision::Keep(())),
                "{what}"
            );
        }
    }

    #[test]
    fn a_spec_change_is_applied_to_the_copy_read_or_refused() {
        let read = topic(false, None);
        let grow = |spec: &mut KafkaTopicSpec| {
            spec.partitions = 3;
            Ok(())
        };
        let Decision::Replace(next, ()) = changed_spec("t", Some(&read), grow) else {
            panic!("expected a write");
        };
        assert_eq!(next.spec.partitions, 3);
        let refuse = |_: &mut KafkaTopicSpec| Err(MetadataError::InvalidPartitions("no".into()));
        assert!(matches!(
            changed_spec("t", Some(&read), refuse),
            Decision::Abort(MetadataError::InvalidPartitions(_))
        ));
        assert!(matches!(
            changed_spec("t", None, grow),
            Decision::Abort(MetadataError::Unavailable(_))
        ));
    }
}
