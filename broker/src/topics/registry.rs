//! The registry of topics and their open partitions. Topics are immutable snapshots replaced
//! on every change (copy on write), so the produce and fetch paths only take a short read lock
//! to find a partition.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use super::config;
use super::names::validate_topic_name;
use super::store::{MetadataStore, StoreError, TopicRecord};
use crate::codec::CompressionPolicy;
use crate::config::BrokerConfig;
use crate::journal::Replay;
use crate::partition::Partition;
use crate::storage::StorageError;

/// Why a topic operation was refused or failed; the handlers map these to Kafka error codes.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The name breaks Kafka's naming rules.
    #[error("{0}")]
    InvalidName(String),
    /// A topic of that name exists.
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    /// No topic of that name.
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    /// Bad partition count.
    #[error("{0}")]
    InvalidPartitions(String),
    /// Bad replication factor.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// Bad config override.
    #[error("{0}")]
    InvalidConfig(String),
    /// Manual replica assignments are not accepted by a standalone broker.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// The request would pass a partition limit (per request or per broker).
    #[error("{0}")]
    PolicyViolation(String),
    /// A partition log could not be opened or removed.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
    /// Topic metadata could not be saved.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// A request to create a topic, after defaults are applied.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count (-1 for the broker default).
    pub partitions: i32,
    /// Replication factor (-1 for the broker default).
    pub replication_factor: i16,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

/// An immutable snapshot of one topic.
#[derive(Debug)]
pub struct Topic {
    /// Persisted description.
    pub record: TopicRecord,
    /// Open partitions, index = partition id.
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    /// Topic name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Partition by index, if it exists.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    /// Whether this is one of Kafka's internal topics, which clients may read but not write.
    pub fn is_internal(&self) -> bool {
        matches!(
            self.record.name.as_str(),
            "__consumer_offsets" | "__transaction_state"
        )
    }
}

#[derive(Default)]
struct Maps {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

/// All topics of this broker.
pub struct TopicRegistry {
    config: Arc<BrokerConfig>,
    store: Box<dyn MetadataStore>,
    maps: RwLock<Maps>,
    /// Serializes metadata changes so each save sees the previous one.
    writes: Mutex<()>,
}

impl TopicRegistry {
    /// Loads saved topics and opens (recovering) their partitions, re-appending what the
    /// commit journal's `replay` holds beyond their recovered ends.
    pub fn open(
        config: Arc<BrokerConfig>,
        store: Box<dyn MetadataStore>,
        replay: &Replay,
    ) -> Result<TopicRegistry, RegistryError> {
        let mut maps = Maps::default();
        let records = store.load()?;
        remove_stray_directories(&config.data_dir, &records);
        for record in records {
            let partitions = (0..record.partitions)
                .map(|i| open_partition(&config, &record, i, replay))
                .collect::<Result<Vec<_>, _>>()?;
            insert(&mut maps, Topic { record, partitions });
        }
        Ok(TopicRegistry {
            config,
            store,
            maps: RwLock::new(maps),
            writes: Mutex::new(()),
        })
    }

    /// Topic by name.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.maps.read().by_name.get(name).cloned()
    }

    /// Topic by id.
    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.maps.read().by_id.get(id).cloned()
    }

    /// Every topic, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<_> = self.maps.read().by_name.values().cloned().collect();
        topics.sort_by(|a, b| a.name().cmp(b.name()));
        topics
    }

    /// Checks a creation request and applies defaults, without creating anything.
    pub fn validate_create(&self, spec: &TopicSpec) -> Result<TopicRecord, RegistryError> {
        validate_topic_name(&spec.name).map_err(RegistryError::InvalidName)?;
        if self.get(&spec.name).is_some() {
            return Err(RegistryError::TopicExists(spec.name.clone()));
        }
        if let Some(clash) = self.colliding_name(&spec.name) {
            return Err(RegistryError::InvalidName(format!(
                "topic `{}` collides with existing topic `{clash}`: `.` and `_` are interchangeable in metric names",
                spec.name
            )));
        }
        let partitions = match spec.partitions {
            -1 => self.config.num_partitions,
            n if n >= 1 => n,
            n => {
                return Err(RegistryError::InvalidPartitions(format!(
                    "number of partitions must be at least 1, got {n}"
                )))
            }
        };
        self.check_partition_limits(partitions)?;
        let replication_factor = match spec.replication_factor {
            -1 => self.config.default_replication_factor,
            n => n,
        };
        if replication_factor < 1 {
            return Err(RegistryError::InvalidReplicationFactor(format!(
                "replication factor must be at least 1, got {replication_factor}"
            )));
        }
        if replication_factor > 1 {
            return Err(RegistryError::InvalidReplicationFactor(format!(
                "replication factor {replication_factor} is larger than the 1 available broker"
            )));
        }
        config::validate_all(&spec.configs).map_err(RegistryError::InvalidConfig)?;
        Ok(TopicRecord {
            name: spec.name.clone(),
            id: Uuid::new_v4(),
            partitions,
            replication_factor,
            configs: spec.configs.clone(),
            leader_epoch: 0,
        })
    }

    /// Refuses `adding` more partitions when one request may not create that many or this
    /// broker would host more than it can.
    fn check_partition_limits(&self, adding: i32) -> Result<(), RegistryError> {
        let limits = self.config.partition_limits;
        let adding = usize::try_from(adding).unwrap_or(0);
        if adding > limits.per_request {
            return Err(RegistryError::PolicyViolation(format!(
                "Excessively large number of partitions per request: {adding} requested, limit {} \
                 (max.partitions.per.request)",
                limits.per_request
            )));
        }
        let hosted = self.hosted_partitions();
        if hosted.saturating_add(adding) > limits.per_broker {
            return Err(RegistryError::PolicyViolation(format!(
                "this broker hosts {hosted} partitions; {adding} more would pass its limit of {} \
                 (max.broker.partitions)",
                limits.per_broker
            )));
        }
        Ok(())
    }

    /// Partitions of every topic.
    pub fn hosted_partitions(&self) -> usize {
        self.maps
            .read()
            .by_name
            .values()
            .map(|t| t.partitions.len())
            .sum()
    }

    /// Creates a topic and its partitions: all of it, or nothing left on disk.
    pub fn create(&self, spec: &TopicSpec) -> Result<Arc<Topic>, RegistryError> {
        let _guard = self.writes.lock();
        let record = self.validate_create(spec)?;
        let partitions = open_new_partitions(&self.config, &record, 0)?;
        let topic = Arc::new(Topic { record, partitions });
        let committed = self.commit(|maps| {
            maps.by_name.insert(topic.name().to_string(), topic.clone());
            maps.by_id.insert(topic.record.id, topic.clone());
        });
        if let Err(error) = committed {
            discard(&topic.partitions);
            return Err(error);
        }
        tracing::info!(
            topic = topic.name(),
            partitions = topic.partitions.len(),
            "created topic"
        );
        Ok(topic)
    }

    /// Deletes a topic and its data.
    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, RegistryError> {
        let _guard = self.writes.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| RegistryError::UnknownTopic(name.to_string()))?;
        self.commit(|maps| {
            maps.by_name.remove(name);
            maps.by_id.remove(&topic.record.id);
        })?;
        for partition in &topic.partitions {
            partition.delete_data()?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions (never shrinks).
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), RegistryError> {
        let _guard = self.writes.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| RegistryError::UnknownTopic(name.to_string()))?;
        let current = topic.record.partitions;
        if count <= current {
            return Err(RegistryError::InvalidPartitions(format!(
                "topic `{name}` has {current} partitions; the new count must be larger, got {count}"
            )));
        }
        self.check_partition_limits(count - current)?;
        if validate_only {
            return Ok(());
        }
        let mut record = topic.record.clone();
        record.partitions = count;
        let added = open_new_partitions(&self.config, &record, current)?;
        let mut partitions = topic.partitions.clone();
        partitions.extend(added.iter().cloned());
        let replaced = self.replace(Topic { record, partitions });
        if replaced.is_err() {
            discard(&added);
        }
        replaced
    }

    /// Replaces a topic's config overrides with `configs`.
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), RegistryError> {
        let _guard = self.writes.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| RegistryError::UnknownTopic(name.to_string()))?;
        config::validate_all(&configs).map_err(RegistryError::InvalidConfig)?;
        if validate_only {
            return Ok(());
        }
        apply_configs(&self.config, &topic.partitions, &configs);
        let mut record = topic.record.clone();
        record.configs = configs;
        self.replace(Topic {
            record,
            partitions: topic.partitions.clone(),
        })
    }

    /// Applies changed broker defaults (dynamic broker configs) to the partitions of every
    /// topic that does not override them.
    pub fn reapply_defaults(&self) {
        let _guard = self.writes.lock();
        for topic in self.list() {
            apply_configs(&self.config, &topic.partitions, &topic.record.configs);
        }
    }

    /// The broker configuration topics take their defaults from.
    pub fn broker_config(&self) -> &BrokerConfig {
        &self.config
    }

    fn replace(&self, topic: Topic) -> Result<(), RegistryError> {
        let topic = Arc::new(topic);
        self.commit(|maps| {
            maps.by_name.insert(topic.name().to_string(), topic.clone());
            maps.by_id.insert(topic.record.id, topic.clone());
        })
    }

    /// Applies `change` to a copy of the maps, saves it, then publishes it.
    fn commit(&self, change: impl FnOnce(&mut Maps)) -> Result<(), RegistryError> {
        let mut next = {
            let maps = self.maps.read();
            Maps {
                by_name: maps.by_name.clone(),
                by_id: maps.by_id.clone(),
            }
        };
        change(&mut next);
        let mut records: Vec<_> = next.by_name.values().map(|t| t.record.clone()).collect();
        records.sort_by(|a, b| a.name.cmp(&b.name));
        self.store.save(&records)?;
        *self.maps.write() = next;
        Ok(())
    }

    fn colliding_name(&self, name: &str) -> Option<String> {
        let norm = |s: &str| s.replace('.', "_");
        let wanted = norm(name);
        self.maps
            .read()
            .by_name
            .keys()
            .find(|existing| norm(existing) == wanted)
            .cloned()
    }
}

fn insert(maps: &mut Maps, topic: Topic) {
    let topic = Arc::new(topic);
    maps.by_name.insert(topic.name().to_string(), topic.clone());
    maps.by_id.insert(topic.record.id, topic);
}

fn partition_dir(data_dir: &Path, topic: &str, index: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{index}"))
}

/// Opens partitions `from..record.partitions` of a topic being created or grown, each in a
/// fresh directory (a leftover of a deleted topic or an interrupted creation is removed
/// first). On failure every one of them is removed again, so nothing is left on disk.
fn open_new_partitions(
    config: &BrokerConfig,
    record: &TopicRecord,
    from: i32,
) -> Result<Vec<Arc<Partition>>, RegistryError> {
    let mut opened = Vec::new();
    for index in from..record.partitions {
        let dir = partition_dir(&config.data_dir, &record.name, index);
        let fresh = remove_dir(&dir).and_then(|removed| {
            if removed {
                tracing::warn!(dir = %dir.display(), "replaced a leftover partition directory");
            }
            open_partition(config, record, index, &Replay::default())
        });
        match fresh {
            Ok(partition) => opened.push(partition),
            Err(error) => {
                discard(&opened);
                if let Err(e) = remove_dir(&dir) {
                    tracing::warn!(error = %e, "cannot remove a partly created partition");
                }
                return Err(error);
            }
        }
    }
    Ok(opened)
}

/// Removes the data of partitions that were opened for a change that did not happen.
fn discard(partitions: &[Arc<Partition>]) {
    for partition in partitions {
        if let Err(error) = partition.delete_data() {
            tracing::warn!(%error, "cannot remove a partition of a failed creation");
        }
    }
}

/// Removes `dir` and everything in it; false if it did not exist.
fn remove_dir(dir: &Path) -> Result<bool, RegistryError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(RegistryError::Storage(StorageError::Delete {
            path: dir.to_path_buf(),
            source,
        })),
    }
}

/// Removes partition directories (`<topic>-<n>`) that the saved topics do not own: what a
/// crash left of a creation that never completed, or of a deletion that did not finish.
fn remove_stray_directories(data_dir: &Path, records: &[TopicRecord]) {
    let owned: HashMap<&str, i32> = records
        .iter()
        .map(|r| (r.name.as_str(), r.partitions))
        .collect();
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some((topic, index)) = parse_partition_dir(&name) else {
            continue;
        };
        let stray = owned.get(topic).is_none_or(|&count| index >= count);
        if stray && entry.file_type().is_ok_and(|t| t.is_dir()) {
            match remove_dir(&entry.path()) {
                Ok(_) => tracing::warn!(dir = name, "removed a partition directory no topic owns"),
                Err(error) => tracing::warn!(%error, "cannot remove a stray partition directory"),
            }
        }
    }
}

/// `(topic, index)` of a partition directory name, if it is one.
fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, index) = name.rsplit_once('-')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    validate_topic_name(topic).ok()?;
    Some((topic, index.parse().ok()?))
}

fn open_partition(
    config: &BrokerConfig,
    record: &TopicRecord,
    index: i32,
    replay: &Replay,
) -> Result<Arc<Partition>, RegistryError> {
    let dir = partition_dir(&config.data_dir, &record.name, index);
    let log_config = config::log_config(config, &record.configs);
    let partition = Partition::open(
        &dir,
        (&record.name, record.id),
        index,
        record.leader_epoch,
        log_config,
        replay,
    )?;
    partition.set_compression(compression_policy(config, &record.configs));
    Ok(Arc::new(partition))
}

/// Gives partitions the storage settings and compression of a topic's effective configs.
fn apply_configs(
    broker: &BrokerConfig,
    partitions: &[Arc<Partition>],
    configs: &BTreeMap<String, String>,
) {
    let log_config = config::log_config(broker, configs);
    let compression = compression_policy(broker, configs);
    for partition in partitions {
        partition.update_config(log_config.clone());
        partition.set_compression(compression);
    }
}

fn compression_policy(
    config: &BrokerConfig,
    configs: &BTreeMap<String, String>,
) -> CompressionPolicy {
    CompressionPolicy::parse(&config::effective(config, configs, "compression.type"))
}

#[cfg(test)]
mod tests;
