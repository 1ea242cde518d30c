//! The replica manager: which partitions this broker hosts, opened from its data directory,
//! and in which role. It applies each new [`ClusterImage`]: replicas assigned here are opened
//! (re-appending what the commit journal holds for them at start-up), their role follows the
//! leader and epoch of the image, config changes reach their logs, and replicas no longer
//! assigned here are deleted. New topics are opened all or nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::settings::ReplicaSettings;
use kafka_protocol::error::ResponseError;
use parking_lot::{Mutex, RwLock};

use tributary_storage::journal::Replay;
use tributary_storage::StorageError;

use super::dirs::{partition_dir, remove_dir, remove_stray};
use super::{IsrCounters, IsrWriter};
use crate::fence::Fence;
use crate::metadata::{ClusterImage, MetadataCache, PartitionState, TopicImage, NO_LEADER};
use crate::partition::{IsrProposal, Leadership, Partition, Recovery, Role};

/// A hosted partition's key: topic name and index.
type Key = (String, i32);

/// What one [`ReplicaManager::apply`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Replicas opened.
    pub opened: Vec<Key>,
    /// Replicas deleted (their topic is gone or they moved away).
    pub deleted: Vec<Key>,
    /// Replicas the image assigns here that could not be opened (logged; retried at the
    /// next image).
    pub failed: Vec<Key>,
}

/// The partitions this broker hosts.
pub struct ReplicaManager {
    broker_id: i32,
    settings: ReplicaSettings,
    partitions: RwLock<BTreeMap<Key, Arc<Partition>>>,
    /// The configs each hosted topic's partitions run with, to notice changes.
    applied_configs: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// The commit journal's batches, re-appended to partitions opened at start-up; dropped
    /// once the first image has been applied.
    replay: Mutex<Option<Replay>>,
    /// Serialises applies and creations.
    changes: Mutex<()>,
    /// Replicas opened for a change not yet in a published image (a standalone creation
    /// opens them before it commits): an apply of an earlier image leaves them alone.
    pending: Mutex<HashSet<Key>>,
    /// The broker's self-fence, which every hosted replica obeys.
    fence: Arc<Fence>,
    /// Where leaders record ISR changes (cluster mode; a standalone broker has no followers).
    isr_writer: Option<Arc<dyn IsrWriter>>,
    /// The counters those changes count in.
    isr_counters: Option<IsrCounters>,
    /// This process's incarnation in cluster mode (`None` standalone): leadership recorded
    /// with this broker in the ISR under another incarnation is not taken.
    incarnation: Option<i64>,
}

/// What a [`ReplicaManager`] is built from, each part complete before the manager exists.
pub struct ReplicaParts {
    /// The broker's settings: its id, data directory and topic defaults.
    pub settings: ReplicaSettings,
    /// What the commit journal kept, re-appended to the partitions opened at start-up.
    pub replay: Replay,
    /// The broker's self-fence, shared with whatever raises it (cluster mode's registration).
    pub fence: Arc<Fence>,
    /// Where leaders record ISR changes; `None` refuses every change (a standalone broker has
    /// no followers).
    pub isr_writer: Option<Arc<dyn IsrWriter>>,
    /// The counters of ISR changes; `None` counts nothing (tests).
    pub isr_counters: Option<IsrCounters>,
    /// This process's registered incarnation (cluster mode); `None` standalone.
    pub incarnation: Option<i64>,
}

impl ReplicaParts {
    /// The parts of a manager with a fresh fence that records no ISR changes and counts none.
    pub fn new(settings: ReplicaSettings, replay: Replay) -> ReplicaParts {
        ReplicaParts {
            settings,
            replay,
            fence: Arc::default(),
            isr_writer: None,
            isr_counters: None,
            incarnation: None,
        }
    }
}

impl ReplicaManager {
    /// A manager hosting nothing yet, with a fresh fence and no ISR changes recorded or
    /// counted; `replay` holds what the commit journal kept.
    pub fn new(settings: ReplicaSettings, replay: Replay) -> ReplicaManager {
        ReplicaManager::build(ReplicaParts::new(settings, replay))
    }

    /// A manager hosting nothing yet, made of `parts`.
    pub fn build(parts: ReplicaParts) -> ReplicaManager {
        let ReplicaParts {
            settings,
            replay,
            fence,
            isr_writer,
            isr_counters,
            incarnation,
        } = parts;
        ReplicaManager {
            broker_id: settings.broker_id,
            settings,
            partitions: RwLock::new(BTreeMap::new()),
            applied_configs: Mutex::new(HashMap::new()),
            replay: Mutex::new(Some(replay)),
            changes: Mutex::new(()),
            pending: Mutex::new(HashSet::new()),
            fence,
            isr_writer,
            isr_counters,
            incarnation,
        }
    }

    /// Records an ISR change a hosted leader proposed, in the background.
    pub fn submit_isr_change(&self, partition: Arc<Partition>, proposal: IsrProposal) {
        super::isr_changes::submit(
            self.isr_writer.clone(),
            self.isr_counters.clone(),
            partition,
            proposal,
        );
    }

    /// Proposes removing followers that lagged for `max_lag_ms` from every ISR this broker
    /// leads (Kafka's periodic `maybeShrinkIsr`).
    pub fn shrink_lagging(&self, now_ms: i64, max_lag_ms: i64) {
        for partition in self.all() {
            if let Some(proposal) = partition.propose_shrink(now_ms, max_lag_ms) {
                self.submit_isr_change(partition, proposal);
            }
        }
    }

    /// The self-fence every hosted replica obeys (raised by cluster mode's registration).
    pub fn fence(&self) -> &Arc<Fence> {
        &self.fence
    }

    /// The hosted replica of partition `index` of `topic`.
    pub fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .get(&(topic.to_string(), index))
            .cloned()
    }

    /// The replica of partition `index` of `topic` this broker leads, for a request or a write
    /// naming it: UNKNOWN_TOPIC_OR_PARTITION when `image` has no such partition (or it was
    /// deleted under the request), NOT_LEADER_OR_FOLLOWER when another broker leads it.
    pub fn leader(
        &self,
        image: &ClusterImage,
        topic: &str,
        index: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        if image.partition(topic, index).is_none() {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        match self.get(topic, index) {
            Some(p) if p.is_deleted() => Err(ResponseError::UnknownTopicOrPartition),
            Some(p) if p.acts_as_leader() => Ok(p),
            _ => Err(ResponseError::NotLeaderOrFollower),
        }
    }

    /// Every hosted replica, by topic and index.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// How many replicas this broker hosts.
    pub fn hosted(&self) -> usize {
        self.partitions.read().len()
    }

    /// Opens the replicas `topic` has here from partition `from` on, in fresh directories (a
    /// leftover of a deleted topic or an interrupted creation is removed first), and starts
    /// hosting them. All or nothing: on failure every one opened is removed again.
    pub fn open_new(&self, topic: &TopicImage, from: i32) -> Result<(), StorageError> {
        let _changes = self.changes.lock();
        let mut opened = Vec::new();
        for (index, state) in (0..)
            .zip(&topic.partitions)
            .skip(usize::try_from(from).unwrap_or(0))
        {
            if !state.has_replica(self.broker_id) {
                continue;
            }
            let dir = partition_dir(&self.settings.data_dir, &topic.name, index);
            let fresh = remove_dir(&dir).and_then(|removed| {
                if removed {
                    tracing::warn!(dir = %dir.display(), "replaced a leftover partition directory");
                }
                self.open(topic, index, state, &Replay::default(), Opened::New)
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
        let mut partitions = self.partitions.write();
        let mut pending = self.pending.lock();
        for partition in opened {
            let key = (topic.name.clone(), partition.index());
            pending.insert(key.clone());
            partitions.insert(key, partition);
        }
        drop((partitions, pending));
        self.applied_configs
            .lock()
            .insert(topic.name.clone(), topic.configs.clone());
        Ok(())
    }

    /// Stops hosting the replicas of `topic` from partition `from` on, opened by a change
    /// that did not happen, and removes their data.
    pub fn abandon(&self, topic: &str, from: i32) {
        let _changes = self.changes.lock();
        let removed = {
            let mut partitions = self.partitions.write();
            let keys: Vec<Key> = partitions
                .keys()
                .filter(|(name, index)| name == topic && *index >= from)
                .cloned()
                .collect();
            let mut pending = self.pending.lock();
            keys.iter()
                .filter_map(|k| {
                    pending.remove(k);
                    partitions.remove(k)
                })
                .collect::<Vec<_>>()
        };
        discard(&removed);
    }

    /// Brings the hosted replicas in line with the cache's current image, read under the lock
    /// that serialises applies: whoever applies last applies the newest image, so an apply
    /// that raced a newer publication never undoes it. The first call also removes partition
    /// directories the image does not assign here and drops the journal's replay. The cache
    /// then records the image as applied.
    pub fn apply_latest(&self, cache: &MetadataCache) -> Applied {
        let _changes = self.changes.lock();
        let image = cache.image();
        let applied = self.apply_locked(&image);
        cache.mark_applied(image);
        applied
    }

    /// [`ReplicaManager::apply_latest`] of a given image (tests).
    #[cfg(any(test, feature = "test-support"))]
    pub fn apply(&self, image: &ClusterImage) -> Applied {
        let _changes = self.changes.lock();
        self.apply_locked(image)
    }

    fn apply_locked(&self, image: &ClusterImage) -> Applied {
        let mut applied = Applied::default();
        let assigned: HashMap<Key, (&Arc<TopicImage>, &PartitionState)> = image
            .replicas_of(self.broker_id)
            .map(|(topic, index, state)| ((topic.name.clone(), index), (topic, state)))
            .collect();
        // Deleted topics, replicas moved away, and topics re-created under the same name.
        let gone: Vec<Key> = {
            let mut pending = self.pending.lock();
            let partitions = self.partitions.read();
            pending.retain(|key| {
                let arrived = assigned.get(key).zip(partitions.get(key));
                arrived.is_none_or(|((topic, _), p)| topic.id != p.topic_id())
            });
            partitions
                .iter()
                .filter(|(key, p)| {
                    !pending.contains(*key)
                        && assigned
                            .get(*key)
                            .is_none_or(|(topic, _)| topic.id != p.topic_id())
                })
                .map(|(key, _)| key.clone())
                .collect()
        };
        for key in gone {
            if let Some(partition) = self.partitions.write().remove(&key) {
                if let Err(error) = partition.delete_data() {
                    tracing::warn!(%error, ?partition, "cannot delete a replica's data");
                }
                applied.deleted.push(key);
            }
        }
        let mut replay = self.replay.lock();
        if replay.is_some() {
            let owned: HashSet<Key> = assigned.keys().cloned().collect();
            remove_stray(&self.settings.data_dir, &owned);
        }
        let journal = replay.take().unwrap_or_default();
        drop(replay);
        let mut configs_changed = HashSet::new();
        {
            let mut applied_configs = self.applied_configs.lock();
            for (topic, _) in assigned.values() {
                if applied_configs.get(&topic.name) != Some(&topic.configs) {
                    applied_configs.insert(topic.name.clone(), topic.configs.clone());
                    configs_changed.insert(topic.name.clone());
                }
            }
            applied_configs.retain(|name, _| image.topic(name).is_some());
        }
        for (key, (topic, state)) in &assigned {
            let existing = self.get(&key.0, key.1);
            match existing {
                Some(partition) => {
                    partition.apply_leadership(
                        self.leadership_in(state),
                        tributary_storage::clock::now_ms(),
                    );
                    if configs_changed.contains(&topic.name) {
                        self.apply_configs(&partition, &topic.configs);
                    }
                }
                None => match self.open(topic, key.1, state, &journal, Opened::FromDisk) {
                    Ok(partition) => {
                        self.partitions.write().insert(key.clone(), partition);
                        applied.opened.push(key.clone());
                    }
                    Err(error) => {
                        tracing::error!(topic = key.0, partition = key.1, %error, "cannot open a replica");
                        applied.failed.push(key.clone());
                    }
                },
            }
        }
        applied.opened.sort();
        applied
    }

    /// Applies changed broker-wide topic defaults to every hosted partition.
    pub fn reapply_defaults(&self, image: &ClusterImage) {
        let _changes = self.changes.lock();
        for partition in self.all() {
            if let Some(topic) = image.topic(partition.topic()) {
                self.apply_configs(&partition, &topic.configs);
            }
        }
    }

    /// This broker's role in a partition with `state`.
    fn role_in(&self, state: &PartitionState) -> Role {
        let epoch = state.leader_epoch;
        if state.leader != self.broker_id {
            Role::Follower {
                leader: state.leader,
                epoch,
            }
        } else if leads(state, self.broker_id, self.incarnation) {
            Role::Leader { epoch }
        } else {
            // Named leader under an earlier incarnation: no one to follow until the election.
            Role::Follower {
                leader: NO_LEADER,
                epoch,
            }
        }
    }

    /// This broker's share of a partition with `state`: its role, the assignment and the ISR.
    fn leadership_in(&self, state: &PartitionState) -> Leadership {
        Leadership {
            me: self.broker_id,
            role: self.role_in(state),
            replicas: state.replicas.clone(),
            isr: state.isr.clone(),
            partition_epoch: state.partition_epoch,
        }
    }

    fn open(
        &self,
        topic: &TopicImage,
        index: i32,
        state: &PartitionState,
        replay: &Replay,
        opened: Opened,
    ) -> Result<Arc<Partition>, StorageError> {
        let dir = partition_dir(&self.settings.data_dir, &topic.name, index);
        let settings = self.settings.resolve(&topic.configs);
        // A tiered partition's disk may have lost what the bucket holds: it leads only once
        // tiered storage has checked the log against the remote log metadata.
        let tiered = self.settings.tiered && settings.log.remote_storage;
        let recovery = Recovery {
            replay,
            awaits_remote_log: tiered && opened == Opened::FromDisk,
        };
        let partition = Partition::open(
            &dir,
            (&topic.name, topic.id),
            index,
            self.role_in(state),
            settings,
            recovery,
        )?;
        partition.attach_fence(self.fence.clone());
        partition.apply_leadership(
            self.leadership_in(state),
            tributary_storage::clock::now_ms(),
        );
        Ok(Arc::new(partition))
    }

    fn apply_configs(&self, partition: &Partition, configs: &BTreeMap<String, String>) {
        partition.configure(self.settings.resolve(configs));
    }
}

/// How a replica comes to be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    /// For a topic (or partitions) being created here: a fresh directory, and nothing in the
    /// bucket under the new topic id.
    New,
    /// From what the data directory holds, which may be less than the bucket does.
    FromDisk,
}

/// Removes the data of replicas that were opened for a change that did not happen.
fn discard(partitions: &[Arc<Partition>]) {
    for partition in partitions {
        if let Err(error) = partition.delete_data() {
            tracing::warn!(%error, "cannot remove a partition of a failed creation");
        }
    }
}

/// Whether broker `me`, running as `incarnation`, takes the leadership `state` records
/// (REPLICATION.md 1.7, KIP-903): a restarted broker finds itself named leader, at the old
/// leader epoch, by the image written before it died; while the ISR still records it under
/// its earlier incarnation, the controller has yet to elect (it elects only current
/// members), and leading meanwhile would serve the previous process's leader epoch with a log
/// that may end short of what that process acknowledged (followers fetching from it would
/// cut acknowledged records). It follows instead until the controller's election names the
/// leader at a new epoch.
fn leads(state: &PartitionState, me: i32, incarnation: Option<i64>) -> bool {
    state.leader == me
        && incarnation.is_none_or(|current| {
            state
                .isr
                .iter()
                .filter(|m| m.broker == me)
                .all(|m| m.incarnation == current)
        })
}
