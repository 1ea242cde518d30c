//! The metadata of a standalone broker: its topics in `topics.json` in the data directory,
//! and an image in which it is the only broker, the controller, and the leader of every
//! partition with an ISR of itself. Changes are atomic: a new topic's partitions are opened
//! before the file is saved, and removed again if the save fails.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::metadata::validate::{validate_create, validate_growth};
use crate::metadata::{
    ClusterImage, Growth, MetadataCache, MetadataError, MetadataSource, PartitionState, TopicImage,
    TopicSpec,
};
use crate::replica::ReplicaManager;
use crate::topics::config;
use crate::topics::{MetadataStore, TopicRecord};

/// The incarnation of a standalone broker: nothing else could ever hold its replicas.
const INCARNATION: i64 = 1;

/// Metadata kept in the data directory.
pub struct LocalMetadata {
    config: Arc<BrokerConfig>,
    store: Box<dyn MetadataStore>,
    cache: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
    /// Serialises changes, so each save sees the previous one.
    writes: Mutex<()>,
}

impl LocalMetadata {
    /// Loads the saved topics into `cache` and opens (recovering) their partitions in
    /// `replicas`; a partition that cannot be opened stops the start.
    pub fn open(
        config: Arc<BrokerConfig>,
        store: Box<dyn MetadataStore>,
        cache: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
    ) -> Result<LocalMetadata, MetadataError> {
        let records = store.load()?;
        let broker_id = config.broker_id;
        cache.update(|image| {
            for record in &records {
                image.put_topic(Arc::new(topic_image(record, broker_id)));
            }
        });
        let applied = replicas.apply_latest(&cache);
        if let Some((topic, index)) = applied.failed.first() {
            return Err(MetadataError::InvalidPartitions(format!(
                "partition {index} of topic `{topic}` cannot be opened (see the log)"
            )));
        }
        Ok(LocalMetadata {
            config,
            store,
            cache,
            replicas,
            writes: Mutex::new(()),
        })
    }

    /// Refuses `adding` more partitions than this broker can host.
    fn check_budget(&self, adding: i32) -> Result<(), MetadataError> {
        let limit = self.config.partition_limits.per_broker;
        let hosted = self.replicas.hosted();
        let adding = usize::try_from(adding).unwrap_or(0);
        if hosted.saturating_add(adding) > limit {
            return Err(MetadataError::PolicyViolation(format!(
                "this broker hosts {hosted} partitions; {adding} more would pass its limit of \
                 {limit} (max.broker.partitions)"
            )));
        }
        Ok(())
    }

    /// Saves the image `change` makes of the current one, then publishes it.
    fn commit(
        &self,
        change: impl FnOnce(&mut ClusterImage),
    ) -> Result<Arc<ClusterImage>, MetadataError> {
        let mut next = ClusterImage::clone(&self.cache.image());
        change(&mut next);
        let records: Vec<TopicRecord> = next.topics().map(|t| record_of(t)).collect();
        self.store.save(&records)?;
        self.cache.publish(next);
        Ok(self.cache.image())
    }

    fn create(&self, spec: &TopicSpec) -> Result<Arc<TopicImage>, MetadataError> {
        let _writes = self.writes.lock();
        let topic = self.validate_create(spec)?;
        self.replicas.open_new(&topic, 0)?;
        let topic = Arc::new(topic);
        if let Err(error) = self.commit(|image| image.put_topic(topic.clone())) {
            self.replicas.abandon(&topic.name, 0);
            return Err(error);
        }
        self.replicas.apply_latest(&self.cache);
        tracing::info!(
            topic = topic.name,
            partitions = topic.partitions.len(),
            "created topic"
        );
        Ok(topic)
    }

    fn delete(&self, name: &str) -> Result<Arc<TopicImage>, MetadataError> {
        let _writes = self.writes.lock();
        let topic = self
            .cache
            .image()
            .topic(name)
            .cloned()
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        self.commit(|image| {
            image.remove_topic(name);
        })?;
        self.replicas.apply_latest(&self.cache);
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    fn grow(
        &self,
        name: &str,
        count: i32,
        assignments: &[Vec<i32>],
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let _writes = self.writes.lock();
        let image = self.cache.image();
        let current = validate_growth(name, count, assignments, &image, &self.config)?;
        self.check_budget(count - current)?;
        if validate_only {
            return Ok(());
        }
        let Some(old) = image.topic(name) else {
            return Err(MetadataError::UnknownTopic(name.to_string()));
        };
        let mut grown = TopicImage::clone(old);
        let epoch = grown.partitions.first().map_or(0, |p| p.leader_epoch);
        grown.partitions.extend(
            (current..count)
                .map(|_| PartitionState::sole(self.config.broker_id, INCARNATION, epoch)),
        );
        self.replicas.open_new(&grown, current)?;
        let grown = Arc::new(grown);
        if let Err(error) = self.commit(|image| image.put_topic(grown.clone())) {
            self.replicas.abandon(name, current);
            return Err(error);
        }
        self.replicas.apply_latest(&self.cache);
        Ok(())
    }

    fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let _writes = self.writes.lock();
        let image = self.cache.image();
        let old = image
            .topic(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        config::validate_change(&self.config, &old.configs, &configs)
            .map_err(MetadataError::InvalidConfig)?;
        if validate_only {
            return Ok(());
        }
        let mut changed = TopicImage::clone(old);
        changed.configs = configs;
        self.commit(|image| image.put_topic(Arc::new(changed)))?;
        self.replicas.apply_latest(&self.cache);
        Ok(())
    }
}

impl MetadataSource for LocalMetadata {
    fn validate_create(&self, spec: &TopicSpec) -> Result<TopicImage, MetadataError> {
        let valid = validate_create(spec, &self.cache.image(), &self.config)?;
        self.check_budget(valid.partitions)?;
        let record = TopicRecord {
            name: valid.name,
            id: Uuid::new_v4(),
            partitions: valid.partitions,
            replication_factor: valid.replication_factor,
            configs: valid.configs,
            leader_epoch: 0,
        };
        Ok(topic_image(&record, self.config.broker_id))
    }

    fn create_topic(
        &self,
        spec: TopicSpec,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<Arc<TopicImage>, MetadataError>> {
        let created = self.create(&spec);
        async move { created }.boxed()
    }

    fn delete_topic<'a>(
        &'a self,
        name: &'a str,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Arc<TopicImage>, MetadataError>> {
        let deleted = self.delete(name);
        async move { deleted }.boxed()
    }

    fn create_partitions<'a>(
        &'a self,
        name: &'a str,
        change: Growth,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<(), MetadataError>> {
        let grown = self.grow(
            name,
            change.count,
            &change.assignments,
            change.validate_only,
        );
        async move { grown }.boxed()
    }

    fn set_topic_configs<'a>(
        &'a self,
        name: &'a str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<(), MetadataError>> {
        let set = self.set_configs(name, configs, validate_only);
        async move { set }.boxed()
    }

    fn ensure_topic(&self, spec: TopicSpec) -> Result<Option<Arc<TopicImage>>, MetadataError> {
        if let Some(topic) = self.cache.image().topic(&spec.name) {
            return Ok(Some(topic.clone()));
        }
        match self.create(&spec) {
            Ok(topic) => Ok(Some(topic)),
            // Another request created it first.
            Err(MetadataError::TopicExists(_)) => Ok(self.cache.image().topic(&spec.name).cloned()),
            Err(error) => Err(error),
        }
    }

    fn reapply_defaults(&self) {
        let _writes = self.writes.lock();
        self.replicas.reapply_defaults(&self.cache.image());
    }
}

/// The image of a saved topic: every partition led by this broker alone.
fn topic_image(record: &TopicRecord, broker_id: i32) -> TopicImage {
    TopicImage {
        name: record.name.clone(),
        id: record.id,
        configs: record.configs.clone(),
        replication_factor: record.replication_factor,
        partitions: (0..record.partitions)
            .map(|_| PartitionState::sole(broker_id, INCARNATION, record.leader_epoch))
            .collect(),
    }
}

/// What `topics.json` keeps of a topic.
fn record_of(topic: &TopicImage) -> TopicRecord {
    TopicRecord {
        name: topic.name.clone(),
        id: topic.id,
        partitions: topic.partition_count(),
        replication_factor: topic.replication_factor,
        configs: topic.configs.clone(),
        leader_epoch: topic.partitions.first().map_or(0, |p| p.leader_epoch),
    }
}

#[cfg(test)]
mod tests;
